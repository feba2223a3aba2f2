"""User receivers of the bench: per-slot PSK demodulation, SER/BER counting, measured CI margins.

User k receives y_k[l] = h̃_kᴴ x[l] + n_k[l] [spec A.3 (1)] and decides the PSK symbol by its angle
sector (minimum distance, [spec D.8]). With outputs normalised by the user noise std σ_k, the measured
CI margin of a slot is m/σ_k with m = sinΘ Re z̃ − cosΘ |Im z̃|, z̃ = ȳ e^{−j∠s}, where ȳ is the mean over
frames of the same design (the noise averages out); the designed value is ci_margins(H̃X, S)/σ_k.
"""
from __future__ import annotations

import math

import numpy as np

from ..ci import ci_margins, ser_analytic


def psk_index(y, order: int) -> np.ndarray:
    """Index i of the PSK point e^{j(π/Ω + 2πi/Ω)} whose sector contains y; int64."""
    return np.floor(np.mod(np.angle(y), 2 * np.pi) / (2 * np.pi / order)).astype(np.int64) % order


def gray(i) -> np.ndarray:
    """Binary-reflected Gray code of PSK index i (adjacent points differ in one bit)."""
    i = np.asarray(i, np.int64)
    return i ^ (i >> 1)


def _popcount(v) -> np.ndarray:
    v = np.asarray(v, np.int64)
    c = np.zeros(v.shape, np.int64)
    while np.any(v):
        c += v & 1
        v = v >> 1
    return c


def count_errors(Y, sym_idx, order: int) -> dict:
    """Symbol and Gray-bit errors of frames Y (nf, L, K) against indices sym_idx (K, L).

    Returns per-user arrays: ``sym_err`` (K,), ``bit_err`` (K,), ``n_sym`` (K,), ``n_bit`` (K,).
    """
    Y = np.asarray(Y)
    det = psk_index(Y, order)                             # (nf, L, K)
    tx = np.asarray(sym_idx, np.int64).T[None, :, :]      # (1, L, K)
    wrong = det != tx
    bits = int(round(math.log2(order)))
    be = _popcount(gray(det) ^ gray(tx))
    nf, L, K = Y.shape
    return {"sym_err": wrong.sum(axis=(0, 1)).astype(np.int64), "bit_err": be.sum(axis=(0, 1)).astype(np.int64),
            "n_sym": np.full(K, nf * L, np.int64), "n_bit": np.full(K, nf * L * bits, np.int64)}


def expected_ser(design, phi=None, user_noise_offset_db: float = 0.0) -> np.ndarray:
    """Analytic SER per user (K,) of a paper-A design at RIS state φ [spec V-7]."""
    from ..paper_a.channels import effective_user_channels
    scn = design.scenario
    phi = design.phi if phi is None else phi
    Z = effective_user_channels(design.channels, phi) @ design.X
    nw = np.asarray(scn.noise_comm_w, float) * 10 ** (user_noise_offset_db / 10)
    return ser_analytic(Z, design.channels.S, nw, scn.psk_order).mean(axis=1)


def designed_margins(design, phi=None) -> np.ndarray:
    """Noise-free CI margins normalised by σ_k, (K, L) [spec A.3]."""
    from ..paper_a.channels import effective_user_channels
    scn = design.scenario
    phi = design.phi if phi is None else phi
    Z = effective_user_channels(design.channels, phi) @ design.X
    return ci_margins(Z, design.channels.S, scn.psk_order) / np.sqrt(np.asarray(scn.noise_comm_w))[:, None]


def measured_margins(Ymean, S, order: int) -> np.ndarray:
    """CI margins of the frame-averaged received points Ymean (K, L) (normalised outputs → units of σ_k)."""
    return ci_margins(np.asarray(Ymean), np.asarray(S), order)


def ser_z(errors: int, n: int, p: float) -> float:
    """z-score of a measured error count against probability p (binomial σ)."""
    if n == 0:
        return 0.0
    sd = math.sqrt(max(p * (1 - p), 1e-300) / n)
    return (errors / n - p) / sd if p > 0 else (0.0 if errors == 0 else float("inf"))


class ReceiverCore:
    """Frame the K user streams by tags, demodulate per slot, count errors per design (the block's core).

    Keeps per design: error counts, the frame-mean of the received points (for measured CI margins)
    and up to ``keep_points`` received points per user (for constellation plots).
    """

    def __init__(self, n_users: int, track, frame_len: int = 0, keep_points: int = 2000):
        from .framing import FrameAssembler
        self.K, self.track = int(n_users), track
        self._Asm = FrameAssembler
        self.asm = FrameAssembler(frame_len, n_users) if frame_len else None
        self.keep_points = int(keep_points)
        self.per_design: dict[str, dict] = {}
        self.frames = 0

    def process(self, data, offset0: int, frame_offs=(), frame_vals=()):
        """Consume samples (n, K); returns per-frame symbol errors (nf, K) of the completed frames."""
        if self.asm is None:
            if not self.track.tags:
                return None
            self.asm = self._Asm(int(self.track.tags[0]["F"]), self.K)
        frames, idx, _ = self.asm.push(data, offset0, frame_offs, frame_vals)
        if idx.size == 0:
            return None
        pos = self.track.lookup(idx)
        errs = np.zeros((idx.size, self.K), np.int64)
        for p in np.unique(pos[pos >= 0]):
            sel = pos == p
            tag = self.track.tags[int(p)]
            L, order = int(tag["L"]), int(tag["order"])
            sym = np.asarray(tag["sym"], np.int64).reshape(self.K, L)
            Y = frames[sel, :L, :].astype(np.complex128)          # (nf, L, K)
            c = count_errors(Y, sym, order)
            errs[sel] = (psk_index(Y, order) != sym.T[None]).sum(axis=1)
            st = self.per_design.setdefault(tag["id"], {
                "sym_err": np.zeros(self.K, np.int64), "bit_err": np.zeros(self.K, np.int64),
                "n_sym": np.zeros(self.K, np.int64), "n_bit": np.zeros(self.K, np.int64),
                "ysum": np.zeros((self.K, L), np.complex128), "nframes": 0, "pos": int(p),
                "points": [], "n_points": 0, "sym": sym, "order": order})
            for k in ("sym_err", "bit_err", "n_sym", "n_bit"):
                st[k] += c[k]
            st["ysum"] += Y.sum(axis=0).T
            st["nframes"] += int(sel.sum())
            if st["n_points"] < self.keep_points:
                pts = Y.reshape(-1, self.K)[: self.keep_points - st["n_points"]]
                st["points"].append(pts)
                st["n_points"] += pts.shape[0]
        self.frames += int(np.count_nonzero(pos >= 0))
        return errs

    def margins(self) -> np.ndarray | None:
        """Measured CI margins (K, L) of the most recent design (frame-mean received points; units of σ_k)."""
        if not self.per_design:
            return None
        from .framing import symbols_from_indices
        st = max(self.per_design.values(), key=lambda v: v["pos"])
        S = symbols_from_indices(st["sym"], st["order"])
        return measured_margins(st["ysum"] / max(st["nframes"], 1), S, st["order"])

    def totals(self) -> dict:
        """Error counts over all designs: sym_err, n_sym, bit_err, n_bit (each (K,)), ser (K,), ber (K,)."""
        t = {k: np.zeros(self.K, np.int64) for k in ("sym_err", "n_sym", "bit_err", "n_bit")}
        for st in self.per_design.values():
            for k in t:
                t[k] += st[k]
        t["ser"] = t["sym_err"] / np.maximum(t["n_sym"], 1)
        t["ber"] = t["bit_err"] / np.maximum(t["n_bit"], 1)
        t["frames"] = self.frames
        return t
