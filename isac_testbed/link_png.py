"""Link report PNG [issue 13 item 3; docs/link.md]: ``write_link_png(path, report, arrays)`` (matplotlib Agg).

Panels (each drawn from what is given; a panel without its data says so instead of failing):

1. per-user BER and PER (measured, with a 95 % Wilson interval from the symbol/packet counts) against the
   analytic BER of each frame's margins (``report``: ``ber``, ``ber_analytic``, ``per``, ``packets``);
2. received user samples de-rotated by the decided (or intended) symbol, in units of σ_k, with the CI region
   sinΘ Re z̃ − cosΘ |Im z̃| ≥ √Γ_k sinΘ [spec A.3] and the decision sector |∠z̃| < Θ = π/Ω;
3. the detector statistic z = |wᴴy|²/(wᴴCw) per frame, H0 and H1 histograms (log density) with the threshold
   −ln Pfa and the model densities Exp(1) and the mixture over frames of Exp(1 + SINR_f);
4. measured vs predicted radar SINR: the per-frame predicted SINR (dB) histogram of the varying waveforms,
   the mean predicted and the measured mean with its interval.

``report`` keys (all optional): ber, ber_analytic, ser, ser_analytic, per, packets, frames, ci_frames_ok,
sinr_measured_db, sinr_predicted_db, sinr_ci_db [lo, hi], pfa (float), symbols_per_user.
``arrays`` keys (all optional): derotated (list per user of complex arrays, units of σ_k), derotated_by (str),
gamma_db (per user), psk_order, z (F,), present (F,) bool, sinr_pred (F,) linear, symbols_per_user.
Returns the (closed) figure so tests can read its artists.
"""
from __future__ import annotations

import math

import numpy as np


def _wilson(p, n, z=1.96):
    if not n or p is None:
        return None
    c = (p + z * z / (2 * n)) / (1 + z * z / n)
    h = z * math.sqrt(max(p * (1 - p), 0.0) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    return max(c - h, 0.0), c + h


def _empty(ax, what):
    ax.text(0.5, 0.5, f"{what}: not available", ha="center", va="center", transform=ax.transAxes, fontsize=9)
    ax.set_xticks([]); ax.set_yticks([])


def write_link_png(path, report: dict, arrays: dict | None = None):
    """Write the link report PNG to ``path`` (see the module docstring); returns the figure."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    arrays = arrays or {}
    rep = report or {}
    fig, ax = plt.subplots(2, 2, figsize=(11, 8.5))
    ax = ax.ravel()
    fig._link_panels = {}
    # 1. BER / PER vs analytic -----------------------------------------------------------------------
    ber, per = rep.get("ber"), rep.get("per")
    if ber:
        K = len(ber)
        nsym = arrays.get("symbols_per_user") or rep.get("symbols_per_user")
        order = int(arrays.get("psk_order") or 4)
        nbits = nsym * int(round(math.log2(order))) if nsym else None
        x = np.arange(K)
        floor = 1e-7
        b = np.maximum(np.asarray(ber, float), floor)
        iv = [_wilson(v, nbits) for v in ber]
        err = None
        if all(i is not None for i in iv):
            err = np.array([[max(bi - max(lo, floor), 0.0), hi - bi] for bi, (lo, hi) in zip(b, iv)]).T
        ax[0].bar(x - 0.2, b, 0.35, yerr=err, capsize=3, label="BER measured (95% Wilson)", color="C0")
        ba = rep.get("ber_analytic")
        if ba and all(v is not None for v in ba):
            ax[0].plot(x - 0.2, np.maximum(ba, floor), "k_", ms=22, mew=2, label="BER analytic (frames' margins)")
        if per:
            p = np.maximum(np.asarray(per, float), floor)
            pk = rep.get("packets")
            ivp = [_wilson(v, n) for v, n in zip(per, pk)] if pk else [None] * K
            errp = None
            if all(i is not None for i in ivp):
                errp = np.array([[max(pi - max(lo, floor), 0.0), hi - pi] for pi, (lo, hi) in zip(p, ivp)]).T
            ax[0].bar(x + 0.2, p, 0.35, yerr=errp, capsize=3, label="PER (CRC)", color="C1")
        ax[0].set_yscale("log")
        ax[0].set_xticks(x, [f"user {k}" for k in range(K)])
        ax[0].set_ylabel(f"error rate (floor {floor:g} = none)")
        ax[0].legend(fontsize=7)
        ci = rep.get("ci_frames_ok")
        ax[0].set_title(f"users: BER/PER vs analytic ({rep.get('frames', '?')} frames"
                        + (f", CI ok {100 * ci:.1f} %" if ci is not None else "") + ")", fontsize=9)
        fig._link_panels["ber"] = True
    else:
        _empty(ax[0], "BER/PER")
    # 2. de-rotated samples with the CI region ---------------------------------------------------------
    der = arrays.get("derotated")
    if der:
        order = int(arrays.get("psk_order") or 4)
        th = math.pi / order
        gdb = np.broadcast_to(np.asarray(arrays.get("gamma_db", [10.0] * len(der)), float), (len(der),))
        rng = np.random.default_rng(0)
        ext = 1.0
        for k, zk in enumerate(der):
            zk = np.asarray(zk)
            if zk.size > 3000:                           # a readable cloud: a fixed-seed subsample
                zk = zk[rng.choice(zk.size, 3000, replace=False)]
            ax[1].plot(zk.real, zk.imag, ".", ms=1.5, alpha=0.5, color=f"C{k}", label=f"user {k}")
            ext = max(ext, float(np.percentile(np.abs(zk), 99.5)) if zk.size else 1.0)
        apex = math.sqrt(10 ** (float(gdb.min()) / 10))    # √Γ sinΘ / sinΘ: apex of the CI wedge [σ units]
        re = np.linspace(apex, 1.2 * ext, 60)
        ax[1].fill_between(re, -(re - apex) * math.tan(th), (re - apex) * math.tan(th), color="g", alpha=0.15,
                           label=f"CI region (Γ = {gdb.min():g} dB)")
        rr = np.linspace(0, 1.2 * ext, 10)
        ax[1].plot(rr, rr * math.tan(th), "k--", lw=0.8, label="decision sector")
        ax[1].plot(rr, -rr * math.tan(th), "k--", lw=0.8)
        ax[1].axhline(0, color="k", lw=0.3); ax[1].axvline(0, color="k", lw=0.3)
        ax[1].set_aspect("equal", "datalim")
        ax[1].set_xlabel("Re z~ / sigma_k"); ax[1].set_ylabel("Im z~ / sigma_k")
        ax[1].legend(fontsize=7, markerscale=5, loc="lower left")
        ax[1].set_title(f"received samples de-rotated by the {arrays.get('derotated_by', 'intended symbol')}",
                        fontsize=9)
        fig._link_panels["derotated"] = True
    else:
        _empty(ax[1], "de-rotated samples")
    # 3. detector histogram ----------------------------------------------------------------------------
    z, pres = arrays.get("z"), arrays.get("present")
    if z is not None and pres is not None and len(z):
        z, pres = np.asarray(z, float), np.asarray(pres, bool)
        pfa = float(rep.get("pfa", 1e-2))
        thr = -math.log(pfa)
        # log-spaced bins on a log z axis: H0 (mean 1) and H1 (mean 1 + SINR, ~100) both readable
        lo = max(float(np.min(z[z > 0])) if np.any(z > 0) else 1e-3, 1e-4)
        hi = max(float(np.max(z)), 1.5 * thr)
        bins = np.logspace(np.log10(lo), np.log10(hi), 60)
        ax[2].hist(z[~pres], bins, density=True, alpha=0.55, label=f"H0 ({(~pres).sum()} frames)")
        ax[2].hist(z[pres], bins, density=True, alpha=0.55, label=f"H1 ({pres.sum()} frames)")
        t = np.logspace(np.log10(lo), np.log10(hi), 300)
        ax[2].plot(t, np.exp(-t), "C0-", lw=1, label="model Exp(1)")
        sp = arrays.get("sinr_pred")
        if sp is not None:
            s1 = 1 + np.asarray(sp, float)[pres]
            ax[2].plot(t, (np.exp(-t[:, None] / s1[None, :]) / s1[None, :]).mean(axis=1), "C1-", lw=1,
                       label="model mean_f Exp(1+SINR_f)")
        ax[2].axvline(thr, color="r", ls="--", label=f"threshold -ln Pfa (Pfa = {pfa:g})")
        ax[2].set_xscale("log")
        ax[2].set_yscale("log")
        ax[2].set_ylim(1e-6, 2.0)
        ax[2].set_xlabel("z = |w^H y|^2 / (w^H C w)"); ax[2].set_ylabel("density (log)")
        ax[2].legend(fontsize=7)
        ax[2].set_title("radar detector statistic, per-frame MVDR filters", fontsize=9)
        fig._link_panels["histogram"] = True
    else:
        _empty(ax[2], "detector statistic")
    # 4. measured vs predicted SINR --------------------------------------------------------------------
    sm, spd = rep.get("sinr_measured_db"), rep.get("sinr_predicted_db")
    sp = arrays.get("sinr_pred")
    if sp is not None or (sm is not None and spd is not None):
        if sp is not None:
            spv = np.asarray(sp, float)
            if pres is not None and len(pres) == len(spv):
                spv = spv[np.asarray(pres, bool)]
            ax[3].hist(10 * np.log10(spv), 40, color="0.7", label=f"predicted per frame ({spv.size} frames)")
        if spd is not None and np.isfinite(spd):
            ax[3].axvline(spd, color="C0", lw=2, label=f"mean predicted {spd:.2f} dB")
        if sm is not None and np.isfinite(sm):
            ax[3].axvline(sm, color="C3", lw=2, ls="--", label=f"measured {sm:.2f} dB")
            ci = rep.get("sinr_ci_db")
            if ci:
                lo = ci[0] if np.isfinite(ci[0]) else sm - 10
                ax[3].axvspan(lo, ci[1], color="C3", alpha=0.15, label="measured 95% interval")
        ax[3].set_xlabel("radar output SINR [dB] (linear mean over target frames)")
        ax[3].set_ylabel("frames")
        ax[3].legend(fontsize=7)
        ax[3].set_title("radar SINR: measured vs predicted over varying waveforms", fontsize=9)
        fig._link_panels["sinr"] = True
    else:
        _empty(ax[3], "radar SINR")
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)
    return fig
