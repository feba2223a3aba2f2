"""Run report of the bench: MEASURED vs DESIGNED radar SINR, Pd at the set Pfa, SER and CI margins.

``build_report`` turns the detector results (:meth:`DetectorCore.results`) and the user receiver state
(:class:`ReceiverCore`) of one run into a flat JSON-able dict; ``format_text`` prints it;
``plot_report`` draws, per user, the received samples DE-ROTATED by the intended symbol (z̃ = y e^{−j∠s})
with the CI region (m = sinΘ Re z̃ − cosΘ |Im z̃| ≥ 0, shaded) and the user's threshold line m = γ_k/σ_k
[spec A.3], so CI feasibility shows at a glance (raw constellations of SLP look like noise); the
detector statistic under H0/H1 on a log-density scale with the NP threshold; and the ROC.
"""
from __future__ import annotations

import math

import numpy as np

from .demod import designed_margins, expected_ser, measured_margins, ser_z
from .stap import detection_rates, empirical_roc, estimate_sinr, filter_stats, roc_check
from ..radar import pd_from_pfa


def build_report(design, det: dict, rx, *, pfa: float = 1e-3, phi_applied=None,
                 user_noise_offset_db: float = 0.0) -> dict:
    """Flat report dict (see module docstring). ``phi_applied``: RIS coefficients the channel used.

    ``*_designed``: the design's own values (continuous φ); ``sinr_predicted_db`` / ``ser_analytic``: the
    model at the RIS state really applied (after the board's quantisation); ``*_measured``: from the run.
    """
    fs_nom = filter_stats(design)
    fs = filter_stats(design, phi_applied) if phi_applied is not None else fs_nom
    t0, t1 = det["stat"][det["target"] == 0], det["stat"][det["target"] == 1]
    est = estimate_sinr(t0, t1)
    rates = detection_rates(t0, t1, pfa)
    roc = roc_check(t0, t1, fs["sinr"])
    ser_a = expected_ser(design, phi_applied, user_noise_offset_db)
    tot = rx.totals()
    st = next(iter(rx.per_design.values()), None)
    m_des = designed_margins(design, phi_applied)
    m_meas = measured_margins(st["ysum"] / max(st["nframes"], 1), design.channels.S, design.scenario.psk_order) \
        if st is not None else np.full_like(m_des, np.nan)
    ser_m = tot["ser"]
    return {
        "frames": int(det["frame"].size), "frames_h0": int(t0.size), "frames_h1": int(t1.size),
        "frames_dropped": int(det.get("dropped", 0)), "user_frames": int(tot["frames"]),
        "method": design.method, "seed": design.seed,
        "sinr_designed_db": fs_nom["sinr_db"], "sinr_predicted_db": fs["sinr_db"],
        "sinr_measured_db": est["sinr_db"], "sinr_measured_ci_db": [est["lo_db"], est["hi_db"]],
        "pfa": pfa, "pfa_measured": rates["pfa_measured"], "pfa_ci": list(rates["pfa_ci"]),
        "pd_model": float(pd_from_pfa(pfa, fs["sinr"])), "pd_measured": rates["pd_measured"],
        "pd_ci": list(rates["pd_ci"]),
        "roc": [{k: (list(v) if isinstance(v, tuple) else v) for k, v in r.items()} for r in roc],
        "roc_consistent": bool(all(r["pfa_ok"] and r["pd_ok"] for r in roc)) if roc else None,
        "user_noise_offset_db": float(user_noise_offset_db),
        "ser_analytic": [float(v) for v in ser_a], "ser_measured": [float(v) for v in ser_m],
        "ser_designed": [float(v) for v in expected_ser(design, None, user_noise_offset_db)],
        "ser_z": [ser_z(int(e), int(n), float(p)) for e, n, p in zip(tot["sym_err"], tot["n_sym"], ser_a)],
        "ber_measured": [float(v) for v in tot["ber"]],
        "symbols_per_user": int(tot["n_sym"][0]) if tot["n_sym"].size else 0,
        "ci_margin_designed_min": float(np.min(m_des)), "ci_margin_measured_min": float(np.min(m_meas)),
        "ci_margin_designed_mean": float(np.mean(m_des)), "ci_margin_measured_mean": float(np.mean(m_meas)),
        "ci_threshold_sigma": ci_threshold_sigma(design),
    }


def ci_threshold_sigma(design) -> list:
    """Each user's CI threshold in units of its σ_k: γ_k/σ_k = sqrt(Γ_k) sinΘ [spec A.3] (K,)."""
    scn = design.scenario
    return [float(math.sqrt(10 ** (g / 10)) * math.sin(math.pi / scn.psk_order)) for g in scn.gamma_db]


def derotated_points(st: dict, K: int) -> np.ndarray:
    """Received points of one design's receiver state de-rotated by their intended symbols, (K, n) complex.

    ``st["points"]`` holds whole frames flattened slot-major ((L, K) per frame), so point j is slot j mod L;
    ``st["sym"]`` (K, L) are the PSK indices of that design (symbol s = e^{j(π/order + 2π i/order)}).
    """
    from .framing import symbols_from_indices
    if st is None or not st["points"]:
        return np.zeros((K, 0), complex)
    pts = np.concatenate(st["points"])                                    # (n, K)
    sym = np.asarray(st["sym"])
    L = sym.shape[1]
    s = symbols_from_indices(sym, int(st["order"]))                              # (K, L)
    idx = np.arange(pts.shape[0]) % L
    return (pts * np.conj(s[:, idx]).T).T


def format_text(r: dict) -> str:
    """Human-readable report."""
    f = lambda v: "nan" if v is None or (isinstance(v, float) and math.isnan(v)) else f"{v:.3g}"
    lines = [
        f"frames: {r['frames']} radar ({r['frames_h1']} target present, {r['frames_h0']} absent), "
        f"{r['frames_dropped']} dropped; {r['user_frames']} user frames; design method {r['method']} seed {r['seed']}",
        f"radar output SINR  designed {r['sinr_designed_db']:.2f} dB | predicted at the applied RIS state "
        f"{r['sinr_predicted_db']:.2f} dB | MEASURED {r['sinr_measured_db']:.2f} dB "
        f"(95% CI {r['sinr_measured_ci_db'][0]:.2f} .. {r['sinr_measured_ci_db'][1]:.2f})",
        f"detection at Pfa = {r['pfa']:g}: Pd model {r['pd_model']:.3f} | MEASURED {r['pd_measured']:.3f} "
        f"(95% CI {r['pd_ci'][0]:.3f} .. {r['pd_ci'][1]:.3f}); measured Pfa {f(r['pfa_measured'])}",
        "ROC points (set Pfa: measured Pfa, measured Pd vs model Pd): " + "; ".join(
            f"{p['pfa_set']:g}: {p['pfa_measured']:.3g}, {p['pd_measured']:.3f} vs {p['pd_model']:.3f}"
            for p in r["roc"]) + {True: "  [consistent]", False: "  [INCONSISTENT]", None: "none (no truth tags)"}[
                r["roc_consistent"]],
        f"users (noise offset {r['user_noise_offset_db']:g} dB, {r['symbols_per_user']} symbols each): SER analytic "
        + ", ".join(f(v) for v in r["ser_analytic"]) + " | MEASURED " + ", ".join(f(v) for v in r["ser_measured"])
        + " (analytic at the designed continuous RIS state: " + ", ".join(f(v) for v in r["ser_designed"]) + ")",
        f"CI margin / sigma_k: designed min {r['ci_margin_designed_min']:.2f} mean {r['ci_margin_designed_mean']:.2f}"
        f" | measured min {r['ci_margin_measured_min']:.2f} mean {r['ci_margin_measured_mean']:.2f}",
    ]
    return "\n".join(lines)


def plot_report(path, r: dict, det: dict, rx):
    """PNG (see module docstring): de-rotated user samples with CI region and thresholds, log-scale detector
    histograms with the threshold, ROC. Returns the (closed) matplotlib figure."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    st = next(iter(rx.per_design.values()), None)
    K = rx.K
    fig, ax = plt.subplots(1, K + 2, figsize=(4 * (K + 2), 4))
    z = derotated_points(st, K)
    th = math.pi / int(st["order"]) if st is not None else math.pi / 4
    gam = r.get("ci_threshold_sigma") or [0.0] * K
    for k in range(K):
        zk = z[k] if z.shape[1] else np.zeros(0, complex)
        ext = max(float(np.percentile(np.abs(zk), 99)) if zk.size else 1.0, 2.0 * gam[k] / math.sin(th), 1.0)
        re = np.linspace(0, 1.2 * ext, 50)
        ax[k].fill_between(re, -re * math.tan(th), re * math.tan(th), color="g", alpha=0.12,
                           label="CI region (m >= 0)")
        r0 = gam[k] / math.sin(th)                                       # apex of the threshold wedge
        rr = np.linspace(r0, 1.2 * ext, 50)
        ax[k].plot(rr, (rr - r0) * math.tan(th), "r--", lw=1, label=f"threshold m = {gam[k]:.2f} sigma")
        ax[k].plot(rr, -(rr - r0) * math.tan(th), "r--", lw=1)
        if zk.size:
            m = math.sin(th) * zk.real - math.cos(th) * np.abs(zk.imag)
            ok = m >= gam[k]
            ax[k].plot(zk[ok].real, zk[ok].imag, ".", ms=2, color="C0", label=f"{ok.mean():.0%} above threshold")
            ax[k].plot(zk[~ok].real, zk[~ok].imag, ".", ms=2, color="C3")
        ax[k].axhline(0, color="k", lw=0.5); ax[k].axvline(0, color="k", lw=0.5)
        ax[k].set_title(f"user {k}: de-rotated by the intended symbol (units of sigma)", fontsize=8)
        ax[k].set_xlabel("Re z~"); ax[k].set_ylabel("Im z~"); ax[k].legend(fontsize=6, loc="lower left")
        ax[k].set_aspect("equal", "datalim")
    t0, t1 = det["stat"][det["target"] == 0], det["stat"][det["target"] == 1]
    thr = -math.log(r["pfa"])
    hi = max(np.percentile(np.r_[t0, t1], 99.9) if t0.size + t1.size else 1.0, 1.5 * thr)
    bins = np.linspace(0, hi, 80)
    ax[K].hist(t0, bins, alpha=0.6, density=True, label="H0 (no target)")
    ax[K].hist(t1, bins, alpha=0.6, density=True, label="H1 (target)")
    ax[K].set_yscale("log")                                               # the H0 tail at the threshold shows
    ax[K].axvline(thr, color="r", ls="--", label=f"threshold -ln(Pfa), Pfa={r['pfa']:g}")
    ax[K].set_xlabel("T / eps0"); ax[K].set_ylabel("density (log)"); ax[K].legend(fontsize=7)
    ax[K].set_title("detector statistic")
    pfa_e, pd_e = empirical_roc(t0, t1)
    pf = np.logspace(-4, 0, 100)
    ax[K + 1].semilogx(pf, pd_from_pfa(pf, 10 ** (r["sinr_predicted_db"] / 10)), label="model Pfa^(1/(1+SINR))")
    ax[K + 1].semilogx(np.maximum(pfa_e, 1e-4), pd_e, "o", ms=3, label="measured")
    ax[K + 1].set_xlabel("Pfa"); ax[K + 1].set_ylabel("Pd"); ax[K + 1].legend(fontsize=7)
    ax[K + 1].set_title(f"ROC, SINR meas {r['sinr_measured_db']:.1f} dB / pred {r['sinr_predicted_db']:.1f} dB")
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)
    return fig
