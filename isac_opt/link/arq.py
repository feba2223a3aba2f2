"""Selective-repeat ARQ of the live link and its frame-aligned packet slots [issue 13; docs/link.md].

Packet (the format of :mod:`isac_opt.link.packets`): ``seq`` u16 | ``len`` u16 | payload (``chunk`` bytes,
zero-padded) | CRC-32 (zlib, big-endian). With ARQ the chunk is rounded up by :func:`aligned_chunk` so that
one packet fills exactly ``P`` = :func:`frames_per_packet` frames of L symbols: every user sends one packet
per **slot** (P frames, all users in lockstep, idle packets (len 0) when a user has nothing to send), and a
lost or inserted sample — which costs the one frame it falls into — costs at most one packet per user.

Return channel (documented as **ideal**: no loss, no delay beyond the pipeline's own): the receiver reports
the outcome of every slot, CRC passed or failed, to the sender (:meth:`ArqSender.feedback`). A failed
packet is queued for retransmission before any new packet; a slot whose outcome never arrives is taken as
failed once outcomes ``expire_after`` slots later have arrived. Sequence numbers are u16 on air; the sender
keeps at most ``window`` (≤ 32768) packets unacknowledged so that the receiver unwraps them unambiguously.

Pure Python/numpy, thread-safe (the GNU Radio source posts packets from its message thread while feedback
arrives from another; the numpy loop's design-ahead worker likewise).
"""
from __future__ import annotations

import math
import struct
import threading
import zlib
from collections import deque

from ..errors import IsacError
from .packets import CRC_BYTES, HEADER, bits_per_symbol, packet_bytes

__all__ = ["aligned_chunk", "frames_per_packet", "ArqSender", "ArqReceiver", "packet_body", "with_crc",
           "check_packet"]

SEQ_MOD = 1 << 16
MAX_WINDOW = SEQ_MOD // 2


def aligned_chunk(chunk: int, order: int, L: int) -> int:
    """Smallest payload size ≥ ``chunk`` whose packet (:func:`packet_bytes`) fills whole frames of L
    Ω-PSK symbols (``log2 Ω`` bits each)."""
    if not 1 <= int(chunk) <= 65535 - 64:
        raise IsacError(f"chunk: expected 1..65471 payload bytes per packet, got {chunk}")
    bits = int(L) * bits_per_symbol(order)
    c = int(chunk)
    while (packet_bytes(c) * 8) % bits:
        c += 1
    return c


def frames_per_packet(chunk: int, order: int, L: int) -> int:
    """P = frames of L symbols one packet of ``chunk`` payload bytes fills (``chunk`` must be aligned)."""
    bits = packet_bytes(chunk) * 8
    per = int(L) * bits_per_symbol(order)
    if bits % per:
        raise IsacError(f"chunk: {chunk} payload bytes do not fill whole frames (use aligned_chunk)")
    return bits // per


def packet_body(seq: int, data: bytes, chunk: int) -> bytes:
    """Header + zero-padded payload (the part the CRC covers); ``data`` empty = idle packet."""
    return HEADER.pack(seq % SEQ_MOD, len(data)) + bytes(data).ljust(chunk, b"\0")


def with_crc(body: bytes) -> bytes:
    """``body`` + its CRC-32 (zlib, big-endian) — what GNU Radio's ``digital.crc_append`` with the CRC-32
    defaults (poly 0x4C11DB7, init/xor 0xFFFFFFFF, reflected, no byte swap) appends."""
    return body + struct.pack(">I", zlib.crc32(body))


def check_packet(pkt: bytes, chunk: int):
    """(seq, payload bytes) of a CRC-passed packet (payload empty for idle), or None when the CRC fails."""
    if len(pkt) != packet_bytes(chunk):
        return None
    body, crc = pkt[:-CRC_BYTES], struct.unpack(">I", pkt[-CRC_BYTES:])[0]
    if zlib.crc32(body) != crc:
        return None
    return parse_body(body, chunk)


def parse_body(body: bytes, chunk: int):
    """(seq, payload) of a CRC-checked body (header + padded payload); None when ``len`` is impossible."""
    seq, ln = HEADER.unpack(bytes(body[:HEADER.size]))
    if ln > chunk or len(body) < HEADER.size + ln:
        return None
    return seq, bytes(body[HEADER.size:HEADER.size + ln])


class ArqSender:
    """Selective-repeat sender of one user's payload (see the module docstring).

    ``arq=False``: every packet is sent exactly once (raw PER, no recovery).
    Counters: ``sent`` (payload packets put on air, first sends + retransmissions), ``retransmissions``,
    ``idle`` (idle packets), ``acked``.
    """

    def __init__(self, payload: bytes, chunk: int, *, window: int = 4096, arq: bool = True,
                 expire_after: int = 64):
        if not 1 <= int(window) <= MAX_WINDOW:
            raise IsacError(f"window: expected 1..{MAX_WINDOW} packets, got {window}")
        self.chunk = int(chunk)
        self.n_packets = math.ceil(len(payload) / self.chunk) if payload else 0
        self._data = bytes(payload)
        self.window, self.arq, self.expire_after = int(window), bool(arq), int(expire_after)
        self._lock = threading.Lock()
        self._next_new = 0                  # next never-sent sequence number
        self._retx: deque[int] = deque()    # failed packets, oldest first
        self._inflight: dict[int, int] = {} # slot -> seq (payload packets awaiting their outcome)
        self._acked = bytearray(self.n_packets)
        self._base = 0                      # lowest unacknowledged seq
        self.sent = self.retransmissions = self.idle = self.acked = 0
        self.last_feedback = -1

    def chunk_of(self, seq: int) -> bytes:
        return self._data[seq * self.chunk:(seq + 1) * self.chunk]

    @property
    def done(self) -> bool:
        """Every packet acknowledged (ARQ) / sent once (no ARQ)."""
        with self._lock:
            return self.acked == self.n_packets if self.arq else self._next_new == self.n_packets

    def next_body(self, slot: int) -> bytes:
        """Packet body (header + padded payload, no CRC) to send in ``slot`` (slots strictly increasing)."""
        with self._lock:
            seq = None
            while self._retx:
                s = self._retx.popleft()
                if not self._acked[s]:
                    seq = s
                    self.retransmissions += 1
                    break
            if seq is None and self._next_new < self.n_packets and self._next_new - self._base < self.window:
                seq = self._next_new
                self._next_new += 1
            if seq is None:
                self.idle += 1
                return packet_body(0xFFFF, b"", self.chunk)
            self.sent += 1
            if self.arq:
                self._inflight[int(slot)] = seq
            return packet_body(seq, self.chunk_of(seq), self.chunk)

    def feedback(self, slot: int, ok: bool) -> None:
        """Outcome of ``slot`` at the receiver (CRC passed or not); slots without an outcome that lie
        ``expire_after`` slots before the newest reported one count as failed."""
        with self._lock:
            slot = int(slot)
            self._outcome(slot, bool(ok))
            if slot > self.last_feedback:
                self.last_feedback = slot
                old = [s for s in self._inflight if s < slot - self.expire_after]
                for s in sorted(old):
                    self._outcome(s, False)

    def _outcome(self, slot: int, ok: bool) -> None:
        seq = self._inflight.pop(slot, None)
        if seq is None or self._acked[seq]:
            return
        if ok:
            self._acked[seq] = 1
            self.acked += 1
            while self._base < self.n_packets and self._acked[self._base]:
                self._base += 1
        else:
            self._retx.append(seq)

    def stats(self) -> dict:
        with self._lock:
            return {"packets": self.n_packets, "sent": self.sent, "retransmissions": self.retransmissions,
                    "idle": self.idle, "acked": self.acked}


class ArqReceiver:
    """Receiver side of one user: CRC-passed packets in, payload bytes out in order (duplicates dropped).

    u16 sequence numbers are unwrapped against the next expected one (the sender's window ≤ 32768 keeps
    this unambiguous). ``delivered()`` is the in-order prefix; ``packets_ok``/``packets_failed`` count slot
    outcomes (idle packets included), ``duplicates`` retransmissions of packets already held.
    """

    def __init__(self):
        self._next = 0
        self._held: dict[int, bytes] = {}
        self._out: list[bytes] = []
        self._lock = threading.Lock()
        self.packets_ok = self.packets_failed = self.duplicates = 0

    def on_packet(self, seq16: int | None, data: bytes | None) -> bool:
        """One slot's outcome: (seq, payload) of a CRC-passed packet, or (None, None) for a failed one.
        Returns True when the packet passed its CRC."""
        with self._lock:
            if data is None:
                self.packets_failed += 1
                return False
            self.packets_ok += 1
            if not data:                        # idle packet
                return True
            d = (int(seq16) - self._next) % SEQ_MOD
            if d >= MAX_WINDOW or (self._next + d) in self._held:
                self.duplicates += 1
                return True
            self._held[self._next + d] = bytes(data)
            while self._next in self._held:
                self._out.append(self._held.pop(self._next))
                self._next += 1
            return True

    def delivered(self) -> bytes:
        with self._lock:
            return b"".join(self._out)
