"""STAP receiver maths of the bench: statistic, NP threshold, SINR estimate, ROC [spec A.4, V-9].

Per frame the receiver stacks the first L samples of the M radar streams as R (M, L), forms
r_o = wᴴ vec(R) and the statistic T = |r_o|². Under H0/H1, r_o ~ CN(0, ε0) / CN(0, ε1) with
ε0 = wᴴCw and ε1 = ε0 + ξ0²|wᴴs|², so T/ε0 ~ Exp(1) under H0 and Exp(1 + SINR) under H1:
threshold δ = −ε0 ln Pfa and Pd = Pfa^{1/(1+SINR)}.

Units: when the channel output is normalised by ξ_z (noise std), ε0 and δ are in units of ξ_z².
"""
from __future__ import annotations

import math

import numpy as np
from scipy import stats

from ..radar import apply_filter, pd_from_pfa
from ..paper_a.radar import echo, sinr_of_filter


def filter_stats(design, phi=None, normalized: bool = True) -> dict:
    """Designed receiver quantities of a paper-A design with RIS state ``phi`` (default: the design's).

    Returns ``{"w", "eps0", "sinr", "sinr_db", "signal"}``: w (M·L,), ε0 = wᴴCw and the target output
    power ξ0²|wᴴs|² (both divided by ξ_z² when ``normalized``), SINR(w) [spec A.4 (17)].
    """
    scn = design.scenario
    phi = design.phi if phi is None else np.asarray(phi, np.complex128)
    e = echo(scn, design.channels, design.X, phi)
    w = np.asarray(design.w, np.complex128)
    s = e.s.T.reshape(-1)                           # vec(S), antenna fastest
    Uw = e.U.conj() @ w
    eps0 = e.noise_w * np.vdot(w, w).real + float(np.sum(np.abs(Uw) ** 2))
    sig = e.xi0_sq * abs(np.vdot(w, s)) ** 2
    unit = scn.noise_radar_w if normalized else 1.0
    sinr = sinr_of_filter(e, w)
    return {"w": w, "eps0": eps0 / unit, "signal": sig / unit, "sinr": sinr, "sinr_db": 10 * math.log10(sinr)}


def frame_statistic(frames, w, L: int) -> np.ndarray:
    """T = |wᴴ vec(R)|² for frames (nf, F, M) (samples × antennas), R = first L samples; float64 (nf,)."""
    fr = np.asarray(frames)[:, :L, :].astype(np.complex128)
    ro = apply_filter(np.swapaxes(fr, 1, 2), w)       # (nf,)
    return np.abs(ro) ** 2


def np_threshold(pfa: float, eps0: float) -> float:
    """Neyman–Pearson threshold δ = −ε0 ln Pfa [spec A.4]."""
    if not 0 < pfa < 1:
        raise ValueError(f"pfa: expected 0 < pfa < 1, got {pfa}")
    return -float(eps0) * math.log(pfa)


def estimate_sinr(t0, t1, conf: float = 0.95) -> dict:
    """SINR from statistics under H0 (t0) and H1 (t1): mean(t1)/mean(t0) − 1, with an exact CI.

    mean(t1)/mean(t0) = (ε1/ε0)·F(2n1, 2n0) for exponential statistics, which gives the interval
    [ratio/F_{1−a/2}, ratio/F_{a/2}] for ε1/ε0 = 1 + SINR. Returns sinr, sinr_db, lo_db, hi_db, n0, n1.
    """
    t0, t1 = np.asarray(t0, float), np.asarray(t1, float)
    n0, n1 = t0.size, t1.size
    out = {"n0": int(n0), "n1": int(n1), "sinr": float("nan"), "sinr_db": float("nan"),
           "lo_db": float("nan"), "hi_db": float("nan")}
    if n0 == 0 or n1 == 0:
        return out
    ratio = t1.mean() / t0.mean()
    a = 1 - conf
    flo, fhi = stats.f.ppf([a / 2, 1 - a / 2], 2 * n1, 2 * n0)
    db = lambda v: 10 * math.log10(v) if v > 0 else float("-inf")
    out.update(sinr=float(ratio - 1), sinr_db=db(ratio - 1), lo_db=db(ratio / fhi - 1), hi_db=db(ratio / flo - 1))
    return out


def estimate_sinr_known_eps0(t1, eps0: float) -> float:
    """Online SINR estimate with the designed ε0: mean(T|H1)/ε0 − 1."""
    t1 = np.asarray(t1, float)
    return float(t1.mean() / eps0 - 1) if t1.size else float("nan")


def binom_ci(k: int, n: int, conf: float = 0.95) -> tuple[float, float]:
    """Clopper–Pearson interval of a binomial proportion k/n."""
    if n == 0:
        return 0.0, 1.0
    a = 1 - conf
    lo = stats.beta.ppf(a / 2, k, n - k + 1) if k > 0 else 0.0
    hi = stats.beta.ppf(1 - a / 2, k + 1, n - k) if k < n else 1.0
    return float(lo), float(hi)


def detection_rates(t0n, t1n, pfa: float) -> dict:
    """Empirical Pfa and Pd at the NP threshold −ln Pfa for ε0-normalised statistics t0n, t1n."""
    thr = -math.log(pfa)
    k0, k1 = int(np.count_nonzero(np.asarray(t0n) > thr)), int(np.count_nonzero(np.asarray(t1n) > thr))
    n0, n1 = len(t0n), len(t1n)
    return {"pfa_set": pfa, "threshold": thr,
            "pfa_measured": k0 / n0 if n0 else float("nan"), "pfa_ci": binom_ci(k0, n0),
            "pd_measured": k1 / n1 if n1 else float("nan"), "pd_ci": binom_ci(k1, n1)}


def roc_check(t0n, t1n, sinr: float, pfas=(0.3, 0.1, 0.03, 0.01), conf: float = 0.999) -> list[dict]:
    """Empirical ROC points at thresholds −ln Pfa against the model Pd = Pfa^{1/(1+SINR)} [V-9].

    For each set Pfa: the measured (Pfa, Pd), their Clopper–Pearson intervals at ``conf`` and whether the
    model values of Pfa (the set one) and Pd lie inside them.
    """
    out = []
    if len(t0n) == 0 or len(t1n) == 0:          # no truth tags (e.g. a hardware loopback): no ROC
        return out
    for p in pfas:
        r = detection_rates(t0n, t1n, p)
        pd_model = float(pd_from_pfa(p, sinr))
        r.update(pfa_ci=binom_ci(round(r["pfa_measured"] * len(t0n)), len(t0n), conf),
                 pd_ci=binom_ci(round(r["pd_measured"] * len(t1n)), len(t1n), conf), pd_model=pd_model)
        r["pfa_ok"] = r["pfa_ci"][0] <= p <= r["pfa_ci"][1]
        r["pd_ok"] = r["pd_ci"][0] <= pd_model <= r["pd_ci"][1]
        out.append(r)
    return out


def empirical_roc(t0n, t1n, n_points: int = 60) -> tuple[np.ndarray, np.ndarray]:
    """Empirical ROC curve (Pfa, Pd) over a log grid of thresholds (for plots)."""
    t0n, t1n = np.sort(np.asarray(t0n, float)), np.sort(np.asarray(t1n, float))
    if t0n.size == 0 or t1n.size == 0:
        return np.zeros(0), np.zeros(0)
    pf = np.logspace(math.log10(max(1.0 / t0n.size, 1e-6)), 0, n_points)
    thr = -np.log(pf)
    pfa = 1 - np.searchsorted(t0n, thr, side="right") / t0n.size
    pd = 1 - np.searchsorted(t1n, thr, side="right") / t1n.size
    return pfa, pd


class DetectorCore:
    """Frame the radar streams by tags, apply w, threshold, and accumulate results (the block's core).

    Parameters
    ----------
    pfa : float — design false-alarm probability of the NP threshold
    frame_len : int — F, samples per frame (0: take it from the first ``design`` tag)
    n_ch : int — M radar channels
    track : :class:`~isac_opt.bench.framing.DesignTrack` — designs by frame (w and ε0 come from them)
    phi : complex (N,) or None — RIS state assumed for ε0 (default: the design's)
    """

    def __init__(self, pfa: float, n_ch: int, track, frame_len: int = 0, phi=None):
        from .framing import FrameAssembler
        np_threshold(pfa, 1.0)                    # validates pfa
        self.pfa, self.M, self.track = float(pfa), int(n_ch), track
        self._Asm = FrameAssembler
        self.asm = FrameAssembler(frame_len, n_ch) if frame_len else None
        self.phi = phi
        self._fstats: dict[str, dict] = {}
        self._toffs, self._tvals = np.zeros(0, np.int64), np.zeros(0, bool)
        self._frames, self._stat, self._target, self._eps0 = [], [], [], []
        self._ew = np.zeros(4)                    # exponentially weighted [Σt0, n0, Σt1, n1]
        self.n_frames = 0                         # frames accepted so far
        self.errors: list[str] = []               # designs that could not be loaded

    def set_phi(self, phi) -> None:
        """RIS state assumed for ε0 from now on (None = each design's own φ)."""
        self.phi = None if phi is None else np.asarray(phi, np.complex128)
        self._fstats.clear()

    def stats_for(self, pos: int) -> dict:
        d = self.track.design(pos)
        key = self.track.tags[pos]["id"]
        if key not in self._fstats:
            self._fstats[key] = filter_stats(d, self.phi)
        return self._fstats[key]

    def process(self, data, offset0: int, frame_offs=(), frame_vals=(), target_offs=(), target_vals=()):
        """Consume samples (n, M); returns per completed frame: frame (nf,), stat T/ε0 (nf,), detected,
        target (int8: 1 present, 0 absent, −1 unknown)."""
        if self.asm is None:
            if not self.track.tags:
                return None
            self.asm = self._Asm(int(self.track.tags[0]["F"]), self.M)
        if len(target_offs):   # target tags wait here until their frame is complete
            self._toffs = np.concatenate([self._toffs, np.asarray(target_offs, np.int64)])
            self._tvals = np.concatenate([self._tvals, np.asarray(target_vals, bool)])
        frames, idx, starts = self.asm.push(data, offset0, frame_offs, frame_vals)
        if idx.size == 0:
            return None
        pos = self.track.lookup(idx)
        stat = np.full(idx.size, np.nan)
        eps0 = np.full(idx.size, np.nan)
        for p in np.unique(pos[pos >= 0]):
            sel = pos == p
            try:
                fs = self.stats_for(int(p))
            except Exception as e:                # an unreadable design must not stop the receiver
                self.errors.append(f"design {self.track.tags[int(p)].get('id')}: {e}")
                continue
            L = int(self.track.tags[int(p)]["L"])
            stat[sel] = frame_statistic(frames[sel], fs["w"], L) / fs["eps0"]
            eps0[sel] = fs["eps0"]
        tgt = np.full(idx.size, -1, np.int8)
        if self._toffs.size:
            to, tv = self._toffs, self._tvals
            hit = np.searchsorted(to, starts)
            ok = (hit < to.size) & (to[np.minimum(hit, to.size - 1)] == starts)
            tgt[ok] = tv[hit[ok]].astype(np.int8)
            later = to > starts[-1]
            self._toffs, self._tvals = to[later], tv[later]
        keep = ~np.isnan(stat)
        out = {"frame": idx[keep], "stat": stat[keep], "target": tgt[keep],
               "detected": stat[keep] > -math.log(self.pfa), "eps0": eps0[keep]}
        self._frames.append(out["frame"]); self._stat.append(out["stat"]); self._target.append(out["target"])
        self._eps0.append(out["eps0"])
        self.n_frames += int(out["frame"].size)
        return out

    def running_sinr_db(self, stat, target, window: int) -> np.ndarray:
        """Per-frame running SINR estimate [dB]: exponentially weighted means of T/ε0 under H1 and H0
        (memory ``window`` frames; 0 = all frames), ratio minus one; NaN until both are seen."""
        from scipy.signal import lfilter
        stat, target = np.asarray(stat, float), np.asarray(target)
        a = 1.0 if window <= 0 else 1.0 / window
        x = np.stack([stat * (target == 0), target == 0, stat * (target == 1), target == 1]).astype(float)
        if window <= 0:
            y = self._ew[:, None] + np.cumsum(x, axis=1)
        else:
            y, zf = lfilter([a], [1.0, -(1.0 - a)], x, axis=1, zi=((1.0 - a) * self._ew)[:, None])
        self._ew = y[:, -1].copy() if y.shape[1] else self._ew
        with np.errstate(divide="ignore", invalid="ignore"):
            v = (y[2] / y[3]) / (y[0] / y[1]) - 1.0
            return np.where(v > 0, 10 * np.log10(np.where(v > 0, v, 1.0)), np.nan)

    def results(self) -> dict:
        """All frames so far: frame, stat (T/ε0), target, eps0, dropped."""
        cat = lambda v, dt: np.concatenate(v) if v else np.zeros(0, dt)
        return {"frame": cat(self._frames, np.int64), "stat": cat(self._stat, float),
                "target": cat(self._target, np.int8), "eps0": cat(self._eps0, float),
                "dropped": self.asm.dropped if self.asm else 0}

    def summary(self) -> dict:
        """Online estimates: frames, SINR (truth-based), measured Pfa/Pd at the set Pfa."""
        r = self.results()
        t0, t1 = r["stat"][r["target"] == 0], r["stat"][r["target"] == 1]
        est = estimate_sinr(t0, t1)
        out = {"frames": int(r["frame"].size), "dropped": int(r["dropped"]), "sinr_est_db": est["sinr_db"]}
        if t1.size and not t0.size:        # no H0 frames: use the designed ε0 (stat already /ε0)
            v = float(t1.mean() - 1)
            out["sinr_est_db"] = 10 * math.log10(v) if v > 0 else float("-inf")
        out.update({k: v for k, v in detection_rates(t0, t1, self.pfa).items() if k in ("pfa_measured", "pd_measured")})
        return out
