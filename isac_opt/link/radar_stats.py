"""Radar statistics over per-frame varying waveforms [issue 13; spec A.4 (11)–(16); docs/link.md].

The live link sends a different waveform X_f in every frame f, so the MVDR output SINR_f = ξ0² s_fᴴC_f⁻¹s_f
varies from frame to frame. With the filter of the frame actually sent (w_fᴴs_f = 1) the detector statistic
is normalised per frame,

    z_f = |w_fᴴ y_f|² / (w_fᴴ C_f w_f),   ε0,f := w_fᴴC_f w_f = ξ0²/SINR_f.

Under H0, w_fᴴy_f = w_fᴴn_f ~ CN(0, ε0,f) (clutter with fresh Gaussian RCS + noise: covariance C_f exactly);
under H1 (Swerling-I-like target: α ~ CN(0, ξ0²) fresh per frame, the scenario's RCS model)
w_fᴴy_f = α + w_fᴴn_f ~ CN(0, ξ0² + ε0,f). A |CN(0, v)|² variable is exponential with mean v, hence

    z_f | H0 ~ Exp(mean 1),   z_f | H1 ~ Exp(mean 1 + SINR_f).

A threshold η on z gives, for every frame, Pfa = e^{−η} (independent of the waveform — the per-frame
normalisation is what makes one threshold a constant-false-alarm-rate detector) and
Pd_f = e^{−η/(1+SINR_f)} = Pfa^{1/(1+SINR_f)} — the fixed-waveform formula of spec A.4 with that frame's SINR.
Over the target frames of a run the detection probability is the mean of the per-frame values,

    Pd(Pfa) = (1/F1) Σ_{f ∈ H1} Pfa^{1/(1+SINR_f)}          (not Pfa^{1/(1+mean SINR)}: Pd is concave-ish in
                                                             SINR, Jensen's gap),

and E z | H1 = 1 + SINR_f, so mean z(H1 frames) − mean z(H0 frames) estimates the mean per-frame SINR
(linear) of the target frames without bias.

Detections over target frames with different Pd_f are a Poisson-binomial count, whose variance is at most
the binomial one at the mean Pd: the binomial intervals below (Clopper–Pearson exact, Wilson score) are
conservative for it.
"""
from __future__ import annotations

import math

import numpy as np

from ..errors import IsacError

__all__ = ["pd_fixed", "pd_varying", "clopper_pearson", "wilson", "sinr_estimate", "roc_check", "z_quantile"]


def z_quantile(conf: float) -> float:
    """Two-sided normal quantile: P(|N(0,1)| ≤ q) = conf."""
    from scipy.stats import norm
    return float(norm.ppf(0.5 + conf / 2))


def pd_fixed(pfa, sinr):
    """Pd = Pfa^{1/(1+SINR)} of one waveform [spec A.4 (16)]; broadcasts."""
    return np.asarray(pfa, float) ** (1.0 / (1.0 + np.asarray(sinr, float)))


def pd_varying(pfa, sinr_frames) -> np.ndarray:
    """Model Pd over frames with varying SINR: mean_f Pfa^{1/(1+SINR_f)}; pfa (T,) → (T,)."""
    p = np.atleast_1d(np.asarray(pfa, float))
    s = np.asarray(sinr_frames, float).ravel()
    if s.size == 0:
        raise IsacError("sinr_frames: expected at least one target frame")
    return (p[:, None] ** (1.0 / (1.0 + s[None, :]))).mean(axis=1)


def clopper_pearson(k, n, conf: float = 0.95):
    """Exact (Clopper–Pearson) two-sided interval of a binomial proportion k/n; arrays broadcast."""
    from scipy.stats import beta
    k, n = np.asarray(k, float), np.asarray(n, float)
    a = 1 - conf
    lo = np.where(k > 0, beta.ppf(a / 2, k, n - k + 1), 0.0)
    hi = np.where(k < n, beta.ppf(1 - a / 2, k + 1, n - k), 1.0)
    return lo, hi


def wilson(k, n, conf: float = 0.95):
    """Wilson score interval of k/n; arrays broadcast."""
    k, n = np.asarray(k, float), np.asarray(n, float)
    z = z_quantile(conf)
    p = k / n
    c = (p + z * z / (2 * n)) / (1 + z * z / n)
    h = z * np.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    return c - h, c + h


def sinr_estimate(z, present, sinr_pred, conf: float = 0.95) -> dict:
    """Measured mean SINR (linear) = mean z(H1) − mean z(H0) with a CLT interval, vs the mean predicted
    per-frame SINR of the target frames. ``sinr_pred`` (F,) linear, per frame (only H1 frames are used).

    Returns measured / predicted (linear and dB), se, the interval [lo, hi] (linear and dB; dB lo is −inf
    when lo ≤ 0), diff_db = measured − predicted [dB], and ``predicted_in_ci``.
    """
    z = np.asarray(z, float)
    pr = np.asarray(present, bool)
    sp = np.asarray(sinr_pred, float)
    n1, n0 = int(pr.sum()), int((~pr).sum())
    if n1 < 2 or n0 < 2:
        raise IsacError(f"frames: expected at least 2 frames with and 2 without the target, got {n1} and {n0}")
    z1, z0 = z[pr], z[~pr]
    m = float(z1.mean() - z0.mean())
    se = float(math.sqrt(z1.var(ddof=1) / n1 + z0.var(ddof=1) / n0))
    q = z_quantile(conf)
    lo, hi = m - q * se, m + q * se
    pred = float(sp[pr].mean())
    db = lambda v: 10 * math.log10(v) if v > 0 else float("-inf")
    return {"measured": m, "predicted": pred, "se": se, "lo": lo, "hi": hi, "conf": conf,
            "measured_db": db(m), "predicted_db": db(pred), "lo_db": db(lo), "hi_db": db(hi),
            "diff_db": db(m) - db(pred) if m > 0 else float("-inf"), "predicted_in_ci": bool(lo <= pred <= hi),
            "target_frames": n1, "clear_frames": n0,
            "predicted_min_db": db(float(sp[pr].min())), "predicted_max_db": db(float(sp[pr].max())),
            "predicted_std_db": float(np.std(10 * np.log10(sp[pr])))}


def roc_check(z, present, sinr_pred, pfa, conf: float = 0.95, bonferroni: bool = True,
              method: str = "clopper-pearson") -> dict:
    """Empirical (Pfa, Pd) at the model thresholds η = −ln Pfa against the model curve.

    Per nominal ``pfa`` (T,): empirical Pfa = #(z > η | H0)/F0 and Pd = #(z > η | H1)/F1 with binomial
    intervals at level ``conf`` (Bonferroni-corrected over the 2T intervals when ``bonferroni``, so that
    "every point inside" is a test at level 1 − conf), the model Pd = mean over target frames of
    Pfa^{1/(1+SINR_f)} (:func:`pd_varying`) and, for contrast, the fixed-waveform formula at the mean SINR.
    """
    z = np.asarray(z, float)
    pr = np.asarray(present, bool)
    sp = np.asarray(sinr_pred, float)
    pfa = np.atleast_1d(np.asarray(pfa, float))
    if np.any((pfa <= 0) | (pfa >= 1)):
        raise IsacError(f"pfa: expected values in (0, 1), got {pfa.tolist()}")
    n1, n0 = int(pr.sum()), int((~pr).sum())
    if n1 == 0 or n0 == 0:
        raise IsacError(f"frames: expected frames with and without the target, got {n1} and {n0}")
    eta = -np.log(pfa)
    k0 = (z[~pr][None, :] > eta[:, None]).sum(axis=1)
    k1 = (z[pr][None, :] > eta[:, None]).sum(axis=1)
    lvl = 1 - (1 - conf) / (2 * pfa.size) if bonferroni else conf
    iv = clopper_pearson if method == "clopper-pearson" else wilson
    if method not in ("clopper-pearson", "wilson"):
        raise IsacError(f"method: expected 'clopper-pearson' or 'wilson', got {method!r}")
    f_lo, f_hi = iv(k0, n0, lvl)
    d_lo, d_hi = iv(k1, n1, lvl)
    pd_m = pd_varying(pfa, sp[pr])
    pfa_in = (f_lo <= pfa) & (pfa <= f_hi)
    pd_in = (d_lo <= pd_m) & (pd_m <= d_hi)
    pd_fx = pd_fixed(pfa, float(sp[pr].mean()))
    return {"pfa": pfa, "threshold": eta, "pfa_emp": k0 / n0, "pfa_lo": f_lo, "pfa_hi": f_hi,
            "pd_emp": k1 / n1, "pd_lo": d_lo, "pd_hi": d_hi, "pd_model": pd_m,
            "pd_fixed_at_mean_sinr": pd_fx, "pd_fixed_in_ci": (d_lo <= pd_fx) & (pd_fx <= d_hi),
            "pfa_in_ci": pfa_in, "pd_in_ci": pd_in, "all_in_ci": bool(pfa_in.all() and pd_in.all()),
            "level": lvl, "conf": conf, "method": method, "target_frames": n1, "clear_frames": n0}
