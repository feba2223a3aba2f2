"""Pure per-frame pieces of the live link shared by the numpy loop and the GNU Radio blocks [issue 13].

* :func:`frames_to_samples` — designed frames X (n, M, L) → the sample stream (L slots + ``gap`` zeros per
  frame, the bench's layout, :mod:`isac_opt.bench.framing`);
* :func:`slot_frames` — one packet slot (a CRC'd packet per user) → P symbol frames (P, K, L);
* :func:`decide_psk` — the users' decisions by angle sector, WITHOUT the transmitted symbols;
* :class:`SlotAssembler` — decided frames (by frame id) → per-slot packets per user; a missing frame
  leaves its slot incomplete (zero symbols: the CRC fails), never shifts another slot;
* :func:`error_counts`, :func:`analytic_error_rates` — raw SER/BER against the sent symbols (measurement
  only) and the analytic SER/BER of each frame's noise-free points;
* :func:`radar_statistic`, :func:`radar_sinr` — per-frame MVDR statistic of the frame actually sent and
  the measured vs predicted SINR (see :mod:`isac_opt.link.loop`);
* :class:`DesignTable` — frame id → what the receivers need of that frame's design (sent symbols, MVDR
  filter, predicted SINR), shared in-process by name (the design travels with the frame id tag);
* :class:`LinkTally` + :meth:`LinkTally.report` — the counters and the one JSON report of both backends.
"""
from __future__ import annotations

import math
import threading
from collections import OrderedDict

import numpy as np

from ..errors import IsacError
from .packets import bits_per_symbol, bytes_to_symbols, symbols_to_bytes

__all__ = ["frames_to_samples", "slot_frames", "decide_psk", "SlotAssembler", "error_counts",
           "analytic_error_rates", "radar_statistic", "radar_sinr", "DesignTable", "get_table", "LinkTally"]

IDLE_FRAME = -2          # ``frame`` tag value of a filler frame sent when the engine was late (not a frame)


def frames_to_samples(X, gap: int, scale: float = 1.0) -> np.ndarray:
    """X (n, M, L) → complex64 (n·(L+gap), M): each frame's L slots then ``gap`` zero samples."""
    X = np.asarray(X)
    n, M, L = X.shape
    out = np.zeros((n, L + int(gap), M), np.complex64)
    out[:, :L, :] = np.transpose(X, (0, 2, 1)) * scale
    return out.reshape(-1, M)


def slot_frames(packets: list[bytes], order: int, L: int) -> np.ndarray:
    """One slot: K CRC'd packets (one per user, equal length filling P whole frames) → indices (P, K, L)."""
    sym = np.stack([bytes_to_symbols(p, order) for p in packets])           # (K, P·L)
    K, n = sym.shape
    if n % L:
        raise IsacError(f"packet of {len(packets[0])} bytes does not fill whole frames of L = {L} symbols")
    return np.transpose(sym.reshape(K, n // L, L), (1, 0, 2))


def decide_psk(U, order: int) -> np.ndarray:
    """Hard Ω-PSK decisions by angle sector: U (n, L, K) received slots → indices (n, K, L) int64.

    Sector i = [2πi/Ω, 2π(i+1)/Ω) holds s_i = e^{j(π/Ω + 2πi/Ω)} [spec A.1]; the receiver needs no pilot
    because SLP rotates every noise-free point into its symbol's sector (the CI constraints).
    """
    a = np.mod(np.angle(np.asarray(U)), 2 * np.pi)
    idx = np.floor(a / (2 * np.pi / order)).astype(np.int64) % order
    return np.transpose(idx, (0, 2, 1))


class SlotAssembler:
    """Decided frames → per-slot packets (bytes) per user.

    Frame f belongs to slot f // P. Frames must come in increasing id order (the frame assembler's); a
    slot is closed when a frame of a later slot arrives (or at :meth:`flush`). Returns, per closed slot,
    ``(slot, [packet bytes per user], complete)`` — frames that never arrived are zero symbols, so the
    packet's CRC fails and ARQ resends it.
    """

    def __init__(self, K: int, L: int, P: int, order: int):
        self.K, self.L, self.P, self.order = int(K), int(L), int(P), int(order)
        self._slot = None                 # the open slot
        self._closed = -1                 # highest closed slot (its late frames are ignored)
        self._buf = np.zeros((self.P, self.K, self.L), np.int64)
        self._have = np.zeros(self.P, bool)
        self.incomplete = 0

    def _close(self, out: list) -> None:
        sym = np.transpose(self._buf, (1, 0, 2)).reshape(self.K, -1)
        pk = [symbols_to_bytes(sym[k], self.order) for k in range(self.K)]
        ok = bool(self._have.all())
        self.incomplete += int(not ok)
        out.append((self._slot, pk, ok))
        self._closed, self._slot = self._slot, None

    def push(self, frame_ids, decided) -> list:
        """frame_ids (n,) increasing, decided (n, K, L) → closed slots (see the class docstring)."""
        out: list = []
        ids = np.asarray(frame_ids, np.int64)
        dec = np.asarray(decided)
        slots = ids // self.P
        for s in np.unique(slots):
            s = int(s)
            if s <= self._closed:
                continue                                # frames of a slot already closed: ignore
            if self._slot is not None and s != self._slot:
                self._close(out)
            if self._slot is None:
                self._slot = s
                self._buf[:] = 0
                self._have[:] = False
            sel = slots == s
            pos = ids[sel] % self.P
            self._buf[pos] = dec[sel]
            self._have[pos] = True
            if self._have.all():                        # complete: close now (lower feedback latency)
                self._close(out)
        return out

    def flush(self) -> list:
        out: list = []
        if self._slot is not None:
            self._close(out)
        return out


def error_counts(decided, sent, order: int) -> tuple[np.ndarray, np.ndarray]:
    """Symbol and bit errors per user (Gray labels) of decided vs sent indices (n, K, L) → (K,), (K,)."""
    d, s = np.asarray(decided, np.int64), np.asarray(sent, np.int64)
    sym = np.count_nonzero(d != s, axis=(0, 2))
    x = (d ^ (d >> 1)) ^ (s ^ (s >> 1))
    bits = sum(((x >> b) & 1).sum(axis=(0, 2)) for b in range(bits_per_symbol(order)))
    return sym.astype(np.int64), np.asarray(bits, np.int64)


def analytic_error_rates(Htil, X, S_idx, noise_w, order: int) -> tuple[np.ndarray, np.ndarray]:
    """Sum over frames of the per-frame mean analytic SER and BER (QPSK; NaN otherwise) per user, from the
    noise-free received points Z = H̃X (``ci.ser_analytic`` / ``ci.ber_analytic_qpsk``) → (K,), (K,)."""
    from ..bench.framing import symbols_from_indices
    from ..ci import ber_analytic_qpsk, ser_analytic
    S = symbols_from_indices(S_idx, order)
    Z = np.einsum("km,bml->bkl", Htil, X)
    ser = ser_analytic(Z, S, noise_w, order).mean(axis=2).sum(axis=0)
    ber = (ber_analytic_qpsk(Z, S, noise_w).mean(axis=2).sum(axis=0) if order == 4
           else np.full(ser.shape, np.nan))
    return ser, ber


def radar_statistic(W, Y, sinr, xi0_sq: float, noise_radar_w: float) -> np.ndarray:
    """z_f = |w_fᴴ vec(Y_f)|² / (w_fᴴ C_f w_f) per frame: W (n, M·L) MVDR filters (wᴴs = 1), Y (n, L, M)
    radar samples in noise-std units (antenna fastest), sinr (n,) the filters' SINR. With wᴴs = 1,
    wᴴCw = ξ0²/SINR, i.e. ξ0²/(σ_z² SINR) in noise units, so E z = 1 (no target), 1 + SINR_f (target)."""
    Y = np.asarray(Y).reshape(len(W), -1)
    den = xi0_sq / (noise_radar_w * np.asarray(sinr, float))
    return np.abs(np.einsum("bn,bn->b", np.conj(W), Y)) ** 2 / den


def radar_sinr(z, present, sinr_pred) -> tuple[float, float]:
    """(measured, predicted) linear mean SINR: mean z(target) − mean z(no target) vs mean SINR_f(target)."""
    z, pr, sp = np.asarray(z, float), np.asarray(present, bool), np.asarray(sinr_pred, float)
    meas = float(z[pr].mean() - z[~pr].mean()) if pr.any() and (~pr).any() else float("nan")
    pred = float(sp[pr].mean()) if pr.any() else float("nan")
    return meas, pred


class DesignTable:
    """frame id → (sent symbol indices (K, L), MVDR filter (M·L,), predicted SINR), bounded (oldest
    evicted first; a look-up of an evicted or never-designed frame returns None and is counted)."""

    def __init__(self, capacity: int = 8192):
        self.capacity = int(capacity)
        self._d: OrderedDict = OrderedDict()
        self._lock = threading.Lock()
        self.evicted = 0
        self.misses = 0

    def put(self, ids, S_idx, W, sinr) -> None:
        with self._lock:
            for j, f in enumerate(ids):
                self._d[int(f)] = (S_idx[j], W[j], float(sinr[j]))
            while len(self._d) > self.capacity:
                self._d.popitem(last=False)
                self.evicted += 1

    def get(self, frame_id: int):
        with self._lock:
            v = self._d.get(int(frame_id))
            if v is None:
                self.misses += 1
            return v

    def get_many(self, frame_ids) -> list:
        """[entry or None] for each id (one lock; misses counted)."""
        with self._lock:
            out = [self._d.get(int(f)) for f in frame_ids]
        self.misses += sum(v is None for v in out)
        return out

    def clear(self) -> None:
        with self._lock:
            self._d.clear()


_TABLES: dict[str, DesignTable] = {}
_TLOCK = threading.Lock()


def get_table(name: str, create: bool = True, capacity: int = 8192) -> DesignTable | None:
    """The process-wide design table called ``name`` (created on first use)."""
    with _TLOCK:
        t = _TABLES.get(str(name))
        if t is None and create:
            t = _TABLES[str(name)] = DesignTable(capacity)
        return t


class LinkTally:
    """Counters of one link run and the report both backends print (docs/link.md, "JSON keys")."""

    def __init__(self, K: int, order: int, L: int, rate: float):
        self.K, self.order, self.L, self.rate = int(K), int(order), int(L), float(rate)
        self.frames = 0               # designed frames sent (engine failures included)
        self.frames_failed = 0        # engine failures (sent silent)
        self.frames_late = 0          # idle filler frames sent because the engine was late (underruns)
        self.ci_ok = 0
        self.sym_err = np.zeros(K, np.int64)
        self.bit_err = np.zeros(K, np.int64)
        self.sym_counted = 0          # frames whose decisions were compared with the sent symbols
        self.ser_an = np.zeros(K)
        self.ber_an = np.zeros(K)
        self.an_frames = 0
        self.z, self.present, self.sinr_pred = [], [], []
        self.derotated = [[] for _ in range(K)]     # a sample of received slots per user (report PNG)
        self.n_derotated = 0

    def add_samples(self, U, decided, keep: int = 4000) -> None:
        """Keep up to ``keep`` received user samples per user, de-rotated by the DECIDED symbol (the
        receiver does not know the sent one): U (n, L, K) in units of σ_k, decided (n, K, L) indices."""
        if self.n_derotated >= keep or not len(U):
            return
        from ..ci import psk_constellation
        c = psk_constellation(self.order)
        take = min(len(U), -(-(keep - self.n_derotated) // self.L))
        for k in range(self.K):
            self.derotated[k].append((U[:take, :, k] * np.conj(c[decided[:take, k, :]])).ravel())
        self.n_derotated += take * self.L

    def arrays(self, gamma_db) -> dict:
        """Per-frame data for :func:`isac_testbed.link_png.write_link_png` (its ``arrays`` keys)."""
        cat = lambda v, dt: np.concatenate(v) if v else np.zeros(0, dt)
        return {"z": cat(self.z, float), "present": cat(self.present, bool), "sinr_pred": cat(self.sinr_pred, float),
                "derotated": [cat(d, complex) for d in self.derotated] if self.n_derotated else None,
                "derotated_by": "decided symbol", "gamma_db": list(gamma_db), "psk_order": self.order,
                "symbols_per_user": max(self.sym_counted, 1) * self.L}

    def add_decisions(self, decided, sent) -> None:
        s, b = error_counts(decided, sent, self.order)
        self.sym_err += s
        self.bit_err += b
        self.sym_counted += len(decided)

    def add_radar(self, z, present, sinr) -> None:
        self.z.append(np.asarray(z, float))
        self.present.append(np.asarray(present, bool))
        self.sinr_pred.append(np.asarray(sinr, float))

    def report(self, *, senders, receivers, designed: int, busy_s: float, wall_s: float, gap: int,
               cpu_s: float = float("nan"), extra: dict | None = None) -> tuple[dict, list[bytes]]:
        """The report dict and the delivered bytes per user. ``senders``/``receivers``: the ARQ ends;
        ``designed``/``busy_s``: engine frames and its busy time; ``wall_s``: the link's run time;
        ``cpu_s``: the process's CPU time over the run (all threads; = wall on an idle dedicated core)."""
        bps = bits_per_symbol(self.order)
        F = max(self.frames, 1)
        n_sym = max(self.sym_counted, 1) * self.L
        got = [r.delivered() for r in receivers]
        cat = lambda v, dt: np.concatenate(v) if v else np.zeros(0, dt)
        meas, pred = radar_sinr(cat(self.z, float), cat(self.present, bool), cat(self.sinr_pred, float))
        Fs = self.L + int(gap)
        samples = (self.frames + self.frames_late) * Fs
        bits_ok = sum(8 * len(g) for g in got)
        air = samples / self.rate if samples else float("nan")
        db = lambda v: 10 * math.log10(v) if v > 0 else float("nan")
        st = [s.stats() for s in senders]
        tot = [r.packets_ok + r.packets_failed for r in receivers]
        rep = {
            "frames": self.frames, "frames_failed": self.frames_failed, "frames_late": self.frames_late,
            "ci_frames_ok": self.ci_ok / F,
            "ber": (self.bit_err / (n_sym * bps)).tolist(), "per": [r.packets_failed / max(t, 1)
                                                                   for r, t in zip(receivers, tot)],
            "ser": (self.sym_err / n_sym).tolist(),
            "ser_analytic": (self.ser_an / max(self.an_frames, 1)).tolist(),
            "ber_analytic": [None if math.isnan(v) else v for v in (self.ber_an / max(self.an_frames, 1))],
            "payload_match": all(g == s._data for g, s in zip(got, senders)),
            "payload_bytes": [len(s._data) for s in senders], "delivered_bytes": [len(g) for g in got],
            "packets": [s["packets"] for s in st], "packets_sent": [s["sent"] for s in st],
            "retransmissions": [s["retransmissions"] for s in st],
            "packets_failed": [r.packets_failed for r in receivers],
            "duplicates": [r.duplicates for r in receivers],
            "goodput_bps": bits_ok / air if samples else 0.0, "goodput_wall_bps": bits_ok / wall_s if wall_s else 0.0,
            "designs_per_s": designed / busy_s if busy_s > 0 else float("nan"),
            "realtime_factor": (samples / wall_s) / self.rate if wall_s > 0 else float("nan"),
            "sample_rate": self.rate, "samples_per_s": samples / wall_s if wall_s > 0 else float("nan"),
            "cpu_s": cpu_s, "samples_per_cpu_s": samples / cpu_s if cpu_s > 0 else float("nan"),
            "sinr_measured_db": db(meas), "sinr_predicted_db": db(pred),
            "target_frames": int(cat(self.present, bool).sum()), "wall_s": wall_s,
        }
        rep.update(extra or {})
        return rep, got
