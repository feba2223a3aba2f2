"""Offline mode of the live link [issue 13 item 4; docs/link.md "Offline mode"]: the pure parts.

For hardware that outruns the design engine, a whole payload is designed ahead into a transmit file and a
capture of it is decoded afterwards. This module holds what does not touch files' formats:

* :func:`encode_key` — everything the designs of a transmission depend on (scenario, seed, per-user payload
  SHA-256, framing and engine settings, software fingerprint), hashed; partial results are stored under it
  so that runs with different inputs can never mix;
* :class:`DesignChunks` — the resume store: one ``.npz`` per chunk of ``batch`` frames (fixed boundaries),
  written atomically, carrying the key digest and a SHA-256 of its arrays; a file that does not parse, is
  from another key or was altered is reported in one line and redesigned (``np.load(allow_pickle=False)``:
  no deserialiser that can run code);
* :func:`design_frames` — payload symbols (F, K, L) → waveforms (F, M, L) chunk by chunk through a
  :class:`~isac_opt.link.engine.LinkEngine` (built lazily: a fully stored run needs no engine);
* :func:`tx_samples` — the sample stream: per frame L designed slots then ``gap`` zeros (isac_opt.bench.framing),
  times the front end's scale, complex64 (F·(L+gap), M);
* :func:`simulate_capture` — that stream through paper A's channel (:class:`isac_opt.bench.channel.ChannelEmulator`,
  target in every other frame, fresh RCS) → user streams (units of σ_k) and radar streams (units of ξ_z);
* :func:`decide_symbols` / :func:`user_payload` — user receivers that do NOT know the symbols: angle-sector
  decisions → Gray bits → fixed-boundary CRC'd packets (:mod:`isac_opt.link.packets`);
* :func:`frame_mvdr` / :func:`radar_z` — per-frame MVDR filters of the waveforms actually sent (Woodbury,
  batched) and the detector statistic z_f = |w_fᴴy_f|²/(w_fᴴC_f w_f) [spec A.4].
"""
from __future__ import annotations

import hashlib
import json
import sys
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Callable

import numpy as np

from ..errors import IsacError
from .packets import bits_per_symbol, parse_packets, symbols_to_bytes, user_frames

FORMAT = "isac-link-offline/1"


@dataclass(frozen=True)
class EncodeSettings:
    """Framing and engine settings that determine the designs (all part of the resume key).

    chunk: payload bytes per CRC'd packet; batch: frames per engine call = frames per resume chunk;
    layers: x-block polish layers (0 = radar-aware codebook lookup); dtype: "float32"|"float64" of the
    polish; threads: torch intra-op threads (float reductions may depend on it); device: torch device.
    """

    chunk: int = 64
    batch: int = 64
    layers: int = 2
    dtype: str = "float32"
    threads: int = 1
    device: str = "cpu"
    radar_codebook: bool = True

    def check(self) -> "EncodeSettings":
        for name, lo in (("chunk", 1), ("batch", 1), ("layers", 0), ("threads", 1)):
            v = getattr(self, name)
            if not isinstance(v, (int, np.integer)) or v < lo:
                raise IsacError(f"{name}: expected an integer >= {lo}, got {v!r}")
        if self.chunk > 65535:
            raise IsacError(f"chunk: expected at most 65535 payload bytes per packet, got {self.chunk}")
        if self.dtype not in ("float32", "float64"):
            raise IsacError(f"dtype: expected 'float32' or 'float64', got {self.dtype!r}")
        return self


def sha256_hex(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def payload_digest(payloads: list[bytes]) -> str:
    """One SHA-256 over the per-user payloads (length-prefixed, so ("ab","c") ≠ ("a","bc"))."""
    h = hashlib.sha256()
    for p in payloads:
        h.update(len(p).to_bytes(8, "big"))
        h.update(p)
    return h.hexdigest()


def scenario_digest(scn) -> str:
    from ..repro.store import digest
    return digest(scn.to_dict())


def encode_key(scn, seed: int, payloads: list[bytes], settings: EncodeSettings, *, symbols=None,
               software: dict | None = None) -> dict:
    """The resume key of an encode run: every input the designs depend on (JSON-plain): scenario, seed (the
    link state), per-user payload SHA-256, settings, the software fingerprint and, when given, the frame
    count and SHA-256 of the symbol frames (F, K, L) actually designed (so ``--frames`` is part of it)."""
    from ..repro.store import canonical, software_fingerprint
    k = {"format": FORMAT, "scenario": scn.to_dict(), "seed": int(seed),
         "payload_sha256": [sha256_hex(p) for p in payloads], "settings": asdict(settings),
         "software": software_fingerprint() if software is None else software}
    if symbols is not None:
        sym = np.ascontiguousarray(symbols, dtype=np.int64)
        k["frames"] = int(sym.shape[0])
        k["symbols_sha256"] = sha256_hex(sym.tobytes())
    return json.loads(canonical(k))


def key_digest(key: dict) -> str:
    from ..repro.store import digest
    return digest(key)


def link_state(scn, seed: int):
    """Channels and RIS state of the coherence block, as ``isac-testbed link --seed`` draws them."""
    from ..paper_a.channels import draw_channels, realisation_rng
    from ..paper_a.starting import init_phi
    ch = draw_channels(scn, realisation_rng(int(seed), 0))
    return ch, init_phi(scn, ch, realisation_rng(int(seed), 1))


def plan_symbols(scn, payloads: list[bytes], chunk: int, frames: int | None = None) -> tuple[np.ndarray, list[int]]:
    """Symbol indices (F, K, L) carrying the payloads (idle packets fill up), and data packets per user."""
    K, L, O = scn.K, scn.L, scn.psk_order
    if len(payloads) != K:
        raise IsacError(f"payload: expected {K} payloads (one per user), got {len(payloads)}")
    bits_per_symbol(O)
    per = [user_frames(p, chunk, O, L) for p in payloads]
    F = max(max(f.shape[0] for f, _ in per), int(frames or 0))
    sym = np.stack([user_frames(p, chunk, O, L, F)[0] for p in payloads], axis=1)
    return sym, [n for _, n in per]


# ------------------------------------------------------------------------------------------------------
# resume store
_ARRAYS = ("X", "sinr", "min_margin", "ok")


def _arrays_sha(d: dict) -> str:
    h = hashlib.sha256()
    for n in _ARRAYS:
        a = np.ascontiguousarray(d[n])
        h.update(n.encode() + b"\0" + str(a.dtype).encode() + b"\0" + repr(a.shape).encode())
        h.update(a.tobytes())
    return h.hexdigest()


class DesignChunks:
    """Keyed resume store of designed frames: ``<directory>/chunk_<i>.npz`` per chunk of ``batch`` frames.

    Each file holds X (n, M, L) complex128, sinr (n,), min_margin (n,), ok (n,) bool, the key digest and a
    SHA-256 of the arrays. :meth:`load` returns None (and reports one line through ``warn``) for a file that
    does not parse, belongs to another key, has the wrong frame count or whose arrays changed.
    """

    def __init__(self, directory, key: dict, warn: Callable[[str], None] | None = None):
        self.dir = Path(directory)
        self.key = key
        self.digest = key_digest(key)
        self.warn = warn or (lambda m: print(m, file=sys.stderr, flush=True))

    def path(self, i: int) -> Path:
        return self.dir / f"chunk_{int(i):06d}.npz"

    def prepare(self) -> None:
        """Create the directory and record the full key next to the chunks (for a human reading it)."""
        from ..repro.store import atomic_write_text
        self.dir.mkdir(parents=True, exist_ok=True)
        kp = self.dir / "key.json"
        if not kp.exists():
            atomic_write_text(kp, json.dumps(self.key, indent=1, sort_keys=True))

    def load(self, i: int, n: int, M: int, L: int) -> dict | None:
        p = self.path(i)
        if not p.exists():
            return None
        why = None
        try:
            with np.load(p, allow_pickle=False) as z:
                d = {k: z[k] for k in _ARRAYS + ("key", "sha256")}
        except Exception as e:      # any damage of the file: it is recomputed, never trusted
            why = f"unreadable ({type(e).__name__})"
        else:
            if str(d["key"]) != self.digest:
                why = "from another encode run (its key is not this run's)"
            elif d["X"].shape != (n, M, L) or d["X"].dtype != np.complex128 or any(
                    d[k].shape != (n,) for k in ("sinr", "min_margin", "ok")):
                why = f"wrong shape (expected {n} frames of ({M}, {L}))"
            elif str(d["sha256"]) != _arrays_sha(d):
                why = "checksum mismatch (its arrays changed after it was written)"
        if why is not None:
            self.warn(f"encode: partial result {p}: {why}; designing it again")
            return None
        return {k: d[k] for k in _ARRAYS}

    def save(self, i: int, d: dict) -> None:
        import os
        from ..safeio import atomic_output
        d = {"X": np.asarray(d["X"], np.complex128), "sinr": np.asarray(d["sinr"], np.float64),
             "min_margin": np.asarray(d["min_margin"], np.float64), "ok": np.asarray(d["ok"], bool)}
        with atomic_output(self.path(i)) as tmp, open(tmp, "wb") as f:
            np.savez(f, key=np.array(self.digest), sha256=np.array(_arrays_sha(d)), **d)
            f.flush()
            os.fsync(f.fileno())          # a chunk that says it is done survives a crash


@dataclass
class Designed:
    """Designed frames of a transmission: X (F, M, L) complex128, predicted MVDR SINR (F,) linear,
    min normalised CI margin (F,), certified flag (F,); chunks loaded from the store vs designed now."""

    X: np.ndarray
    sinr: np.ndarray
    min_margin: np.ndarray
    ok: np.ndarray
    chunks_loaded: int = 0
    chunks_designed: int = 0
    design_seconds: float = 0.0
    frames_designed: int = 0
    engine_info: dict | None = None


def make_engine(scn, ch, phi, settings: EncodeSettings):
    import torch
    from .engine import LinkEngine
    torch.set_num_threads(int(settings.threads))
    eng = LinkEngine(scn, ch, phi, dtype=getattr(torch, settings.dtype), device=settings.device,
                     layers=settings.layers, radar_codebook=settings.radar_codebook)
    if not eng.codebook_ok.all():
        raise IsacError(f"link state is not CI-feasible: {int((~eng.codebook_ok).sum())} of {eng.n_tuples} "
                        f"symbol tuples have no constant-modulus waveform meeting every CI constraint "
                        f"(worst normalised margin {eng.codebook_margin.min():.3g})")
    return eng


def design_frames(scn, ch, phi, sym: np.ndarray, settings: EncodeSettings, store: DesignChunks | None = None, *,
                  progress: Callable[[int, int], None] | None = None, engine=None) -> Designed:
    """Design every frame of ``sym`` (F, K, L) in chunks of ``settings.batch`` frames (fixed boundaries),
    taking valid chunks from ``store`` and saving each new one before the next (so an interrupted run
    loses at most one chunk). ``progress(done_frames, F)`` after each chunk."""
    import time
    F, M, L = sym.shape[0], scn.M, scn.L
    b = int(settings.batch)
    out = Designed(np.empty((F, M, L), np.complex128), np.empty(F), np.empty(F), np.zeros(F, bool))
    if store is not None:
        store.prepare()
    for i, f0 in enumerate(range(0, F, b)):
        f1 = min(F, f0 + b)
        d = store.load(i, f1 - f0, M, L) if store is not None else None
        if d is None:
            if engine is None:
                engine = make_engine(scn, ch, phi, settings)
            t0 = time.perf_counter()
            r = engine.design(sym[f0:f1])
            out.design_seconds += time.perf_counter() - t0
            d = {"X": r.X, "sinr": r.sinr, "min_margin": r.min_margin, "ok": r.ok}
            if store is not None:
                store.save(i, d)
            out.chunks_designed += 1
            out.frames_designed += f1 - f0
        else:
            out.chunks_loaded += 1
        out.X[f0:f1], out.sinr[f0:f1], out.min_margin[f0:f1], out.ok[f0:f1] = d["X"], d["sinr"], d["min_margin"], d["ok"]
        if progress is not None:
            progress(f1, F)
    if engine is not None:
        out.engine_info = engine.info()
    return out


# ------------------------------------------------------------------------------------------------------
# samples
def frame_len(scn) -> tuple[int, int]:
    """(gap, F = L + gap) of the frame layout (isac_opt.bench.framing.auto_gap)."""
    from ..bench.framing import auto_gap
    g = auto_gap(scn)
    return g, scn.L + g


def tx_samples(X: np.ndarray, gap: int, scale: float = 1.0) -> np.ndarray:
    """Sample stream of frames X (F, M, L): each frame's L slots then ``gap`` zeros, times ``scale``;
    complex64 (F·(L+gap), M) — frame f starts at sample f·(L+gap)."""
    X = np.asarray(X)
    F, M, L = X.shape
    out = np.zeros((F, L + int(gap), M), np.complex64)
    out[:, :L, :] = (scale * np.transpose(X, (0, 2, 1))).astype(np.complex64)
    return out.reshape(-1, M)


def simulate_capture(scn, ch, phi, samples: np.ndarray, frame_len_: int, rng: np.random.Generator, *,
                     tx_scale: float = 1.0, user_noise_db: float = 0.0, block_frames: int = 4096):
    """Play the transmit stream (n, M) through paper A's channel [spec A.3, A.4]; frames start every
    ``frame_len_`` samples (a partial last frame is an error). Target in every other frame (even ids), fresh
    RCS per frame. Returns users (n, K) complex64 in units of σ_k, radar (n, M) complex64 in units of ξ_z,
    target present (F,) bool."""
    from ..bench.channel import ChannelEmulator
    n = samples.shape[0]
    Fs = int(frame_len_)
    if n % Fs:
        raise IsacError(f"samples: expected a whole number of frames of {Fs} samples, got {n} samples")
    F = n // Fs
    chan = ChannelEmulator(scn, ch, phi, rng, target_mode="alternate", tx_scale=tx_scale,
                           user_noise_offset_db=user_noise_db)
    users = np.empty((n, scn.K), np.complex64)
    radar = np.empty((n, scn.M), np.complex64)
    present = np.empty(F, bool)
    for f0 in range(0, F, block_frames):
        f1 = min(F, f0 + block_frames)
        ids = np.arange(f0, f1)
        u, r, p = chan.process(samples[f0 * Fs:f1 * Fs], (ids - f0) * Fs, ids)
        users[f0 * Fs:f1 * Fs], radar[f0 * Fs:f1 * Fs], present[f0:f1] = u, r, p
    return users, radar, present


# ------------------------------------------------------------------------------------------------------
# user receivers (they never see the transmitted symbols)
def decide_symbols(users: np.ndarray, frame_len_: int, L: int, order: int) -> np.ndarray:
    """Angle-sector decisions (F, K, L) int64 of the first L samples of every frame of user streams (n, K):
    the constellation point e^{j(π/Ω + 2πi/Ω)} owns the sector [2πi/Ω, 2π(i+1)/Ω)."""
    n, K = users.shape
    F = n // int(frame_len_)
    U = np.asarray(users[:F * frame_len_]).reshape(F, frame_len_, K)[:, :L, :]
    d = np.floor(np.mod(np.angle(U), 2 * np.pi) / (2 * np.pi / order)).astype(np.int64) % order
    return np.transpose(d, (0, 2, 1))


def user_payload(decided_k: np.ndarray, order: int, chunk: int) -> tuple[bytes, int, int]:
    """One user's decided symbols (F, L) → (delivered bytes = CRC-passed packets in order, packets parsed
    (data packets, CRC ok or not; idle filler left out), packets failed)."""
    pk = parse_packets(symbols_to_bytes(np.asarray(decided_k).ravel(), order), chunk)
    data = b"".join(p for _, p in pk if p is not None)
    return data, len(pk), sum(1 for _, p in pk if p is None)


def error_counts(decided: np.ndarray, sent: np.ndarray, order: int) -> tuple[np.ndarray, np.ndarray]:
    """Per-user symbol and bit errors (Gray labels) of decisions vs sent indices, both (F, K, L)."""
    lab = lambda i: np.asarray(i) ^ (np.asarray(i) >> 1)
    x = lab(decided) ^ lab(sent)
    bps = bits_per_symbol(order)
    bits = sum(((x >> b) & 1) for b in range(bps))
    return (decided != sent).sum(axis=(0, 2)), bits.sum(axis=(0, 2))


# ------------------------------------------------------------------------------------------------------
# radar of the waveforms actually sent
def frame_mvdr(scn, ch, phi, X: np.ndarray):
    """Per-frame MVDR filters of waveforms X (F, M, L) [spec A.4 (20), Woodbury, batched]:
    returns w (F, M·L) complex128 with wᴴs = 1 (vec, antenna fastest) and SINR* = ξ0² sᴴC⁻¹s (F,) linear."""
    from ..paper_a.channels import legs
    X = np.asarray(X, np.complex128)
    F, M, L = X.shape
    a, b = legs(ch, phi, scn.ris_leg_model)                                  # (Q+1, M) each
    bins = (scn.target_bin,) + tuple(scn.clutter_bins)
    cols = []
    for i, d in enumerate(bins):
        t = np.einsum("m,fml->fl", b[i], X)
        if d:
            t = np.concatenate([np.zeros((F, d), complex), t[:, :L - d]], axis=1)
        cols.append((t[:, :, None] * a[i][None, None, :]).reshape(F, -1))  # (F, L·M), antenna fastest
    s = cols[0]
    nz = scn.noise_radar_w
    xi = np.sqrt(np.asarray(scn.xi_q_sq, float))
    if scn.Q:
        U = np.stack([xi[q] * cols[q + 1] for q in range(scn.Q)], axis=2)    # (F, ML, Q)
        Uh = np.conj(np.swapaxes(U, 1, 2))
        core = nz * np.eye(scn.Q) + Uh @ U
        m = (s - (U @ np.linalg.solve(core, Uh @ s[..., None]))[..., 0]) / nz
    else:
        m = s / nz
    q = np.real(np.sum(s.conj() * m, axis=1))
    return m / q[:, None], scn.xi0_sq * q


def radar_z(scn, w: np.ndarray, sinr: np.ndarray, radar: np.ndarray, frame_len_: int) -> np.ndarray:
    """Detector statistic z_f = |w_fᴴy_f|²/(w_fᴴC_f w_f) (F,) of radar streams (n, M) in units of ξ_z
    (first L samples of each frame). With wᴴs = 1, wᴴCw = ξ0²/SINR_f; in ξ_z units it is ξ0²/(ξ_z² SINR_f).
    E z = 1 without the target and 1 + SINR_f with it; z | H0 ~ Exp(1), z | H1 ~ Exp(1 + SINR_f)."""
    F = w.shape[0]
    M, L = scn.M, scn.L
    Y = np.asarray(radar[:F * frame_len_]).reshape(F, frame_len_, M)[:, :L, :].reshape(F, -1)
    den = scn.xi0_sq / (scn.noise_radar_w * np.asarray(sinr, float))
    return np.abs(np.einsum("fn,fn->f", np.conj(w), Y)) ** 2 / den


def ci_margins_frames(scn, ch, phi, X: np.ndarray, sym: np.ndarray) -> np.ndarray:
    """min_l m_{k,l}/γ_k per frame and user (F, K) of waveforms X (F, M, L) for symbol indices (F, K, L)
    [spec A.3]."""
    from ..ci import ci_margins, ci_thresholds, psk_constellation
    from ..paper_a.channels import effective_user_channels
    H = effective_user_channels(ch, phi)
    gam = ci_thresholds(scn.noise_comm_w, scn.gamma_db, scn.psk_order)
    S = psk_constellation(scn.psk_order)[sym]
    Z = np.einsum("km,fml->fkl", H, np.asarray(X, np.complex128))
    return (ci_margins(Z, S, scn.psk_order) / gam[None, :, None]).min(axis=2)


def cf32_margin_tolerance(scn, ch, phi) -> np.ndarray:
    """Largest change (K,) of m_{k,l}/γ_k that rounding a CM waveform to complex64 can cause: each
    component of x_m (|x_m| = amp) moves by at most 2^-24·amp (round to nearest), so |Δx_m| ≤ 2^-23.5·amp
    and |Δm_{k,l}| ≤ |Δz_{k,l}| ≤ ‖h̃_k‖₁ 2^-23.5 amp (bounded here by 2^-23) [spec A.3]."""
    from ..ci import ci_thresholds
    from ..paper_a.channels import effective_user_channels
    H = effective_user_channels(ch, phi)
    gam = ci_thresholds(scn.noise_comm_w, scn.gamma_db, scn.psk_order)
    return np.abs(H).sum(axis=1) * scn.amp * 2.0 ** -23 / gam


def analytic_ser_ber(scn, ch, phi, X: np.ndarray, sym: np.ndarray, user_noise_db: float = 0.0):
    """Mean over frames of the analytic per-user SER (and QPSK BER, else None) of each frame's noise-free
    points [isac_opt.ci.ser_analytic / ber_analytic_qpsk], at the user noise σ_k²·10^{dB/10}."""
    from ..ci import ber_analytic_qpsk, psk_constellation, ser_analytic
    from ..paper_a.channels import effective_user_channels
    H = effective_user_channels(ch, phi)
    S = psk_constellation(scn.psk_order)[sym]
    Z = np.einsum("km,fml->fkl", H, np.asarray(X, np.complex128))
    nw = np.asarray(scn.noise_comm_w, float) * 10 ** (user_noise_db / 10)
    ser = ser_analytic(Z, S, nw, scn.psk_order).mean(axis=(0, 2))
    ber = ber_analytic_qpsk(Z, S, nw).mean(axis=(0, 2)) if scn.psk_order == 4 else None
    return ser, ber
