"""Packets of the live link: payload bytes ↔ CRC'd packets ↔ Gray-coded PSK symbol indices [issue 13].

Packet (fixed size ``PACKET_BYTES`` = 4 + ``chunk`` + 4 bytes, big-endian):
``seq`` u16 | ``len`` u16 (payload bytes in this packet, 0 = idle filler) | payload (zero-padded to chunk) |
CRC-32 (zlib) of everything before it. A user's packets are concatenated and cut into frames of L symbols of
log2(Ω) bits (Gray labels, MSB first); the last frame is filled with idle packets' bits.
The receiver cuts the decided bit stream at the same fixed packet boundaries and keeps the CRC-passed
packets in order — it never sees the transmitted symbols.
"""
from __future__ import annotations

import math
import struct
import zlib

import numpy as np

from ..errors import IsacError

HEADER = struct.Struct(">HH")
CRC_BYTES = 4


def packet_bytes(chunk: int) -> int:
    return HEADER.size + int(chunk) + CRC_BYTES


def make_packets(payload: bytes, chunk: int) -> list[bytes]:
    """Cut ``payload`` into CRC'd packets of ``chunk`` payload bytes (the last one shorter, zero-padded)."""
    if not 1 <= int(chunk) <= 65535:
        raise IsacError(f"chunk: expected 1..65535 payload bytes per packet, got {chunk}")
    out = []
    for seq, i in enumerate(range(0, len(payload), chunk)):
        part = payload[i:i + chunk]
        body = HEADER.pack(seq & 0xFFFF, len(part)) + part.ljust(chunk, b"\0")
        out.append(body + struct.pack(">I", zlib.crc32(body)))
    return out


def idle_packet(chunk: int, seq: int = 0xFFFF) -> bytes:
    body = HEADER.pack(seq, 0) + bytes(chunk)
    return body + struct.pack(">I", zlib.crc32(body))


def parse_packets(stream: bytes, chunk: int) -> list[tuple[int, bytes | None]]:
    """Fixed-boundary packets of a received byte stream → [(seq, payload or None if the CRC failed)];
    idle packets (len 0, CRC ok) are left out. A trailing partial packet is ignored."""
    n = packet_bytes(chunk)
    out = []
    for i in range(0, len(stream) - n + 1, n):
        p = stream[i:i + n]
        body, crc = p[:-CRC_BYTES], struct.unpack(">I", p[-CRC_BYTES:])[0]
        seq, ln = HEADER.unpack(body[:HEADER.size])
        if zlib.crc32(body) != crc or ln > chunk:
            out.append((seq, None))
        elif ln:
            out.append((seq, body[HEADER.size:HEADER.size + ln]))
    return out


def _gray_tables(order: int):
    idx = np.arange(order)
    g = idx ^ (idx >> 1)                    # Gray label of index i (isac_opt.bench.demod.gray)
    inv = np.empty(order, np.int64)
    inv[g] = idx
    return g, inv


def bits_per_symbol(order: int) -> int:
    b = int(round(math.log2(order)))
    if 2 ** b != order:
        raise IsacError(f"psk_order: expected a power of two, got {order}")
    return b


def bytes_to_symbols(data: bytes, order: int) -> np.ndarray:
    """PSK indices (int64) carrying ``data`` (MSB first; the last symbol zero-padded)."""
    bps = bits_per_symbol(order)
    bits = np.unpackbits(np.frombuffer(data, np.uint8))
    pad = (-bits.size) % bps
    bits = np.concatenate([bits, np.zeros(pad, np.uint8)]).reshape(-1, bps)
    label = bits @ (1 << np.arange(bps - 1, -1, -1))
    return _gray_tables(order)[1][label]


def symbols_to_bytes(idx, order: int) -> bytes:
    """Inverse of :func:`bytes_to_symbols` (trailing bits that do not fill a byte are dropped)."""
    bps = bits_per_symbol(order)
    label = _gray_tables(order)[0][np.asarray(idx, np.int64).ravel()]
    bits = ((label[:, None] >> np.arange(bps - 1, -1, -1)) & 1).astype(np.uint8).ravel()
    return np.packbits(bits[: bits.size - bits.size % 8]).tobytes()


def user_frames(payload: bytes, chunk: int, order: int, L: int, n_frames: int | None = None) -> tuple[np.ndarray, int]:
    """Symbol frames (F, L) of one user's payload (idle-packet filled); returns (frames, data packets).

    ``n_frames`` pads with idle packets to at least that many frames.
    """
    pk = make_packets(payload, chunk)
    bps = bits_per_symbol(order)
    sym_per_pkt = packet_bytes(chunk) * 8 / bps
    need = math.ceil(len(pk) * sym_per_pkt / L)
    F = max(need, int(n_frames or 0), 1)
    while len(pk) * sym_per_pkt < F * L:           # fill with idle packets (whole packets only)
        pk.append(idle_packet(chunk))
    sym = bytes_to_symbols(b"".join(pk), order)[: F * L]
    return sym.reshape(F, L), len(make_packets(payload, chunk))


def load_payloads(spec: str, K: int, n_bytes: int, seed: int, option: str = "--payload") -> list[bytes]:
    """Payloads of the K users: ``random`` (``n_bytes`` each from seeds (seed, 7, k)), one FILE for every
    user, or K comma-separated files (one per user). Bad input raises IsacError naming ``option``."""
    from pathlib import Path
    if spec == "random":
        if int(n_bytes) < 1:
            raise IsacError(f"--bytes: expected an integer >= 1, got {n_bytes}")
        return [np.random.default_rng([seed, 7, k]).bytes(int(n_bytes)) for k in range(K)]
    files = [s for s in str(spec).split(",")]
    if len(files) not in (1, K) or any(not f for f in files):
        raise IsacError(f"{option}: expected 'random', one FILE, or {K} comma-separated files (one per user), "
                        f"got {spec!r}")
    out = []
    for f in files:
        p = Path(f)
        if not p.is_file():
            raise IsacError(f"{option}: {f}: no such file")
        try:
            data = p.read_bytes()
        except OSError as e:
            raise IsacError(f"{option}: {f}: cannot read ({e.strerror})") from None
        if not data:
            raise IsacError(f"{option}: {f}: the file is empty")
        out.append(data)
    return out * K if len(out) == 1 else out
