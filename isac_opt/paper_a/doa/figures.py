"""Paper A's DoA figures and Table II [spec A.13: Figs. 8–10, Table II]; PNG + CSV per target.

Every curve point averages over the same test realisations (``realisation_rng(seed, 10**6 + i)``): CRB in
rad² (linear mean), the CI satisfaction rate (fraction of designs whose every CI constraint holds,
min_{k,l} m/γ ≥ 1 − 1e-9), and the analytic SER (V-7). Curves [RECON where the paper is silent]:

* ``prop``        the ``unfolded-doa`` method: shipped weights trained with K = 3 (T_e = 60 trained layers),
                  run at its inference depth (200 layers, the last trained layer's steps reused), from the
                  A.10 start and the detection design, best feasible candidate; fig9's T_e = 40 / 80
                  curves run 40 / 80 layers;
* ``prop-alm``    the ALM ablation (shipped ALM weights; classical steps if absent);
* ``prop-rand``   random fixed RIS, x-block only, same network;
* ``radar-only``  same network with the CI constraints removed and the radar-only x⁰;
* ``unsup``       the unsupervised MLP (shipped, K = 3, zero-padded to K_max = 4);
* ``prop-K*`` / ``unsup-K*``  networks trained with K* users (the reference of the transfer test).

Figs. 8–10 run through the shared harness (:mod:`isac_opt.repro`): one chunk per (P, K, curve) of Fig. 8
and per Γ of Figs. 9–10, computed batched in this process and stored under ``DIR/<fig>/chunks/`` with a key
of (target, seed, parameters, software), so an interrupted run resumes; Table II is a timing and always
runs afresh.
"""
from __future__ import annotations

import math
import sys
import time
from pathlib import Path

import numpy as np
import torch

from ..channels import draw_channels, realisation_rng
from ..scenario import ScenarioA
from ..design import evaluate_a
from ...repro import Chunk, figure, line_plot, run_chunked, write_records
from .methods import load_net
from .model import DoaBatch, DoaConfig, DoaNet, WeightsError, extend_layers, repair_ci, start_points
from .train import _with_K

SEED = 4242


def _dbm_to_w(p_dbm):
    return 10 ** ((p_dbm - 30) / 10)


def test_set(scn: ScenarioA, n: int, seed: int = SEED):
    return [draw_channels(scn, realisation_rng(seed, 10 ** 6 + i)) for i in range(n)]


def designs(curve: str, scn: ScenarioA, chs, T: int | None = None, seed: int = SEED, repair: bool = True,
            extra_starts=None):
    """(X list, φ list, X before the CI repair or None) of one curve on realisations ``chs``.

    ``prop*`` curves are the certified multi-start methods (:func:`isac_opt.paper_a.doa.methods.design_many`:
    A.10 start and the detection design of realisation i with seed ``seed + i``, best feasible candidate);
    ``prop-rand`` runs the network on a random fixed RIS and keeps the better feasible of its repaired
    output and its start; ``radar-only`` (no CI) runs the network from the radar-only start and from every
    design of ``extra_starts`` (lists of (X list, φ list), e.g. the CI-constrained curves of the same
    point) and keeps the smallest CRB over all iterates and starts — a design with fewer constraints,
    hence ≤ every CI-constrained design on each realisation.
    """
    from .methods import design_many
    from .multistart import certify_single
    if curve.startswith("unsup"):
        K = int(curve.split("-K")[1]) if "-K" in curve else 3
        X, P = design_many("unsupervised-doa", scn, chs, seed, K_train=K, repair=repair)
        return X, P, None
    K = int(curve.split("-K")[1]) if "-K" in curve else 3
    base = curve.split("-K")[0]
    if base in ("prop", "prop-alm"):
        method = "unfolded-doa-alm" if base == "prop-alm" else "unfolded-doa"
        X, P = design_many(method, scn, chs, seed, K_train=K, T=T, repair=repair)
        return X, P, None
    net = load_net("unfolded-doa", K)
    net.check_fits(scn)
    variant = {"prop-rand": "random-ris", "radar-only": "radar-only"}[base]
    starts = start_points(scn, chs, variant, seed)
    T = T or net.cfg.T
    net = extend_layers(net, T)
    if variant == "radar-only":
        return _radar_multistart(scn, chs, starts, net, T, extra_starts or [])
    b = DoaBatch(scn, chs, starts, net.cfg, variant)
    with torch.no_grad():
        st = net.forward(b, T)
        from ..unfold import feasibility_layer
        x = feasibility_layer(b.ci, st.x, st.phi)
    X, P = b.designs(st)
    X = list((x.numpy() * scn.amp).astype(np.complex128))
    if repair:
        Xr, _ = repair_ci(scn, chs, X, P, starts)
        Xr, P = certify_single(scn, chs, Xr, P, starts)
        return Xr, P, X
    return X, P, X


def _radar_multistart(scn, chs, starts, net, T, extra_starts):
    """Radar-only DoA (no CI): the network from the radar-only start and from each extra design; smallest
    CRB over every start and every layer's (CM/UM) iterate, per realisation."""
    from ..crb import crb_doa
    from .model import DoaStart
    n = len(chs)
    sets = [list(starts)] + [[DoaStart(x, p, float("nan")) for x, p in zip(*e)] for e in extra_starts]
    flat = [s for ss in sets for s in ss]
    b = DoaBatch(scn, list(chs) * len(sets), flat, net.cfg, "radar-only")
    best = torch.full((b.batch,), float("inf"), dtype=b.u0.real.dtype)
    bu, bp = b.u0.clone(), b.phi0.clone()

    def trace(st):
        c = b.crb(st.x, st.phi)
        w = (c < best) & torch.isfinite(c)
        best.copy_(torch.where(w, c, best))
        bu.copy_(torch.where(w[:, None, None], st.x, bu))
        bp.copy_(torch.where(w[:, None], st.phi, bp))

    with torch.no_grad():
        trace(b.state0())
        net.net(b.state0(), b.objective, None, cfg=net.cfg.admm(True, T), trace=trace)
    Xs = (bu.numpy() * scn.amp).astype(np.complex128)
    Ps = bp.numpy().astype(np.complex128)
    X, P = [], []
    for i, ch in enumerate(chs):
        cands = []
        for k in range(len(sets)):
            for x, p in ((Xs[k * n + i], Ps[k * n + i]), (flat[k * n + i].X0, flat[k * n + i].phi0)):
                x, p = scn.amp * np.exp(1j * np.angle(x)), np.exp(1j * np.angle(p))
                cands.append((crb_doa(scn, ch, x, p), x, p))
        c = min(cands, key=lambda t: t[0])
        X.append(c[1])
        P.append(c[2])
    return X, P, X


def evaluate(scn, chs, X, P, X_raw=None) -> dict:
    """Means over the realisations; ``*_raw`` columns: the network output before the CI repair."""
    def one(Xs):
        ms = [evaluate_a(scn, c, x, p) for c, x, p in zip(chs, Xs, P)]
        crb = np.array([m["crb"] for m in ms])
        return {"crb": float(np.mean(crb)), "crb_median": float(np.median(crb)), "_crbs": crb,
                "ci_rate": float(np.mean([m["ci_min_margin"] >= 1 - 1e-9 for m in ms])),
                "ci_frac": float(np.mean([m["ci_satisfied_frac"] for m in ms])),
                "ser": float(np.mean([m["ser"] for m in ms])), "n": len(ms)}
    r = one(X)
    if X_raw is not None:
        raw = one(X_raw) if any(a is not b for a, b in zip(X, X_raw)) else r
        r.update({"crb_raw": raw["crb"], "ci_rate_raw": raw["ci_rate"], "ci_frac_raw": raw["ci_frac"]})
    return r


def ratio_ci(num, den, n_boot: int = 2000, seed: int = SEED):
    """mean(num)/mean(den) over paired realisations and its 95 % bootstrap interval (resampling the
    realisations, ``np.random.default_rng(seed)``). num, den (n,) per-realisation values."""
    num, den = np.asarray(num, float), np.asarray(den, float)
    if num.shape != den.shape or num.size == 0:
        raise ValueError(f"ratio_ci: expected two equal-length non-empty arrays, got {num.shape} and {den.shape}")
    rng = np.random.default_rng(seed)
    idx = rng.integers(0, num.size, size=(n_boot, num.size))
    boot = num[idx].mean(1) / den[idx].mean(1)
    lo, hi = np.percentile(boot, [2.5, 97.5])
    return float(num.mean() / den.mean()), float(lo), float(hi)


def _targets(rows) -> list:
    """Issue-4 target ratios per P from fig8's per-realisation CRBs (paired: same realisations)."""
    by = {(r["K"], r["P_dBm"], r["curve"]): r["_crbs"] for r in rows}
    out = []
    for (K, p, c), v in by.items():
        pairs = []
        if K == 3 and c == "Prop. (trained K=3)":
            pairs = [("prop / radar-only (target <= 1.5)", v, by.get((3, p, "radar-only"))),
                     ("prop / unsup (target < 1)", v, by.get((3, p, "Unsup. (trained K=3)"))),
                     ("prop / random RIS (target < 1)", v, by.get((3, p, "prop-rand")))]
        elif K != 3 and c == "Prop. (trained K=3)":
            pairs = [(f"prop transfer K3->K{K} / prop-K{K} (target <= 1.2)", v, by.get((K, p, f"prop-K{K}")))]
        elif K != 3 and c == "Unsup. (trained K=3)":
            pairs = [(f"unsup transfer K3->K{K} / unsup-K{K} (target > prop's)", v, by.get((K, p, f"unsup-K{K}")))]
        for name, a, b in pairs:
            if b is not None:
                m, lo, hi = ratio_ci(a, b)
                out.append({"K": K, "P_dBm": p, "ratio": name, "value": m, "ci95_lo": lo, "ci95_hi": hi,
                            "n": len(a)})
    return out


def _write_csv(path, rows):
    """Rows → CSV; keys starting with "_" (per-realisation arrays such as ``_crbs``) are not written."""
    write_records(path, rows)


def _plot(path, rows, x, y, group, xlabel, ylabel, logy=True, title=""):
    series = []
    for g in dict.fromkeys(r[group] for r in rows):
        pts = [(r[x], r[y]) for r in rows if r[group] == g and r[y] is not None and np.isfinite(r[y])]
        if pts:
            series.append((g, *zip(*pts), "-", {"marker": "o"}))
    line_plot(path, series, xlabel, ylabel, title, figsize=(6.4, 4.4), logy=logy, grid={"which": "both", "alpha": 0.3})


def _chunked(name, out_dir, fn, chunks):
    """Run ``fn`` over the chunks in this process (batched torch per chunk), stored under ``out_dir/chunks``."""
    return run_chunked(name, fn, chunks, Path(out_dir) / "chunks", SEED, workers=1, desc=name)


def _sizes(quick, kw, full_n, quick_n):
    n = int(kw.get("n", quick_n if quick else full_n))
    T = kw.get("T")
    return n, (int(T) if T is not None else (4 if quick else None))


# ------------------------------------------------------------------------------------------------
def _fig8_chunk(task) -> list:
    """Every curve of one (P, K) point of Fig. 8: evaluation dicts, or ``{"skipped": why}`` without weights.

    One chunk holds the whole point because the radar-only reference (no CI constraint) is multi-started
    from the constrained designs of the same point, so that it lower-bounds them on every realisation."""
    p, K, curves, n, T = task
    scn = _with_K(ScenarioA(), K).replace(power_w=_dbm_to_w(p))
    chs = test_set(scn, n)
    done, out = [], []
    for c in curves:
        try:
            X, P, Xraw = designs(c, scn, chs, T, extra_starts=list(done) if c == "radar-only" else None)
            done.append((X, P))
            out.append(evaluate(scn, chs, X, P, Xraw))
        except WeightsError as e:
            out.append({"skipped": str(e)})
    return out


def fig8(out_dir, quick=False, workers=1, **kw):
    """CRB vs P (dBm) at K = 3, and the K→K* transfer test at K* ∈ {2, 4} [spec A.13 Fig. 8, A.11.6]."""
    torch.set_num_threads(1)
    n, T = _sizes(quick, kw, 20, 2)
    powers = [30, 40, 50] if quick else [30, 35, 40, 45, 50]
    if "powers" in kw:      # e.g. --set powers=30,40,50 (a reduced sweep)
        pw = kw["powers"]
        try:
            powers = [float(p) for p in (pw.split(",") if isinstance(pw, str)
                                         else (pw if isinstance(pw, (list, tuple)) else [pw]))]
        except (TypeError, ValueError):
            from ...errors import IsacError
            raise IsacError(f"fig8 powers: expected comma-separated numbers in dBm, got {pw!r}") from None
    plan = [(3, ["prop", "unsup", "prop-rand", "radar-only"])]
    for Ks in ((2, 4) if not quick else (2,)):
        plan.append((Ks, ["prop", f"prop-K{Ks}", "unsup", f"unsup-K{Ks}"]))
    points = [(p, K, cs) for p in powers for K, cs in plan]
    chunks = [Chunk(f"P{p}_K{K}", (p, K, cs, n, T), {"P_dBm": p, "K": K, "curves": cs, "n": n, "T": T})
              for p, K, cs in points]
    results = []
    for (p, K, cs), res in zip(points, _chunked("fig8", out_dir, _fig8_chunk, chunks)):
        results += [(p, K, c, r) for c, r in zip(cs, res)]
    rows = []
    for p, K, c, r in results:
        if "skipped" in r:
            print(f"fig8: {c} at K={K} skipped: {r['skipped']}", file=sys.stderr)
            continue
        label = {"prop": "Prop. (trained K=3)", "unsup": "Unsup. (trained K=3)"}.get(c, c)
        if c == "radar-only":   # realisations where the radar-only reference is above a CI design's CRB
            others = [np.asarray(q["_crbs"]) for q in rows if (q["K"], q["P_dBm"]) == (K, p)]
            mine = np.asarray(r["_crbs"])
            r["radar_above_ci_design"] = int(sum(np.any([mine > o * (1 + 1e-9) for o in others], axis=0))) \
                if others else 0
        rows.append({"K": K, "P_dBm": p, "curve": label, **r})
    out = Path(out_dir)
    tg = _targets(rows)
    _write_csv(out / "fig8.csv", rows)
    paths = [str(out / "fig8.csv")]
    if tg:
        _write_csv(out / "fig8_targets.csv", tg)
        paths.append(str(out / "fig8_targets.csv"))
        for t in tg:
            print(f"fig8 K={t['K']} P={t['P_dBm']} dBm: {t['ratio']}: {t['value']:.3f} "
                  f"[{t['ci95_lo']:.3f}, {t['ci95_hi']:.3f}] (n = {t['n']})", file=sys.stderr)
    for K in dict.fromkeys(r["K"] for r in rows):
        png = out / f"fig8_K{K}.png"
        _plot(png, [r for r in rows if r["K"] == K], "P_dBm", "crb", "curve", "P (dBm)", "CRB (rad²)",
              title=f"Fig. 8 analogue, test K = {K} (n = {n})")
        paths.append(str(png))
    return paths


def _fig9_chunk(task) -> list:
    """The rows of one Γ of Fig. 9. The radar-only reference (no CI constraint) is designed at this Γ from
    its own start and from this Γ's constrained designs, so that it lower-bounds them on every realisation."""
    g, n, curves = task
    scn = ScenarioA(power_w=_dbm_to_w(40), gamma_db=(float(g),) * 3)
    chs = test_set(scn, n)
    rows, done = [], []
    for c, T, lab in curves:
        X, P, Xraw = designs(c, scn, chs, T, extra_starts=list(done) if c == "radar-only" else None)
        done.append((X, P))
        rows.append({"gamma_dB": g, "curve": lab, "T_e": T or 60, **evaluate(scn, chs, X, P, Xraw)})
    return rows


def fig9(out_dir, quick=False, workers=1, **kw):
    """CRB vs Γ at P = 40 dBm: T_e = 40/60/80, ALM vs PHR-ALM, baselines [spec A.13 Fig. 9]."""
    torch.set_num_threads(1)
    n, Tq = _sizes(quick, kw, 20, 2)
    gammas = [10, 25] if quick else [10, 15, 20, 25, 30, 35]
    curves = [("prop", 60, "Prop. w/ RIS (PHR, T_e=60)"), ("prop-alm", None, "Prop. w/ RIS (ALM, T_e=60)"),
              ("prop", 40, "Prop. w/ RIS (T_e=40)"), ("prop", 80, "Prop. w/ RIS (T_e=80)"),
              ("unsup", None, "Unsuper. w/ RIS"), ("prop-rand", None, "Prop. rand. RIS"),
              ("radar-only", None, "Radar only")]
    if quick:
        curves = [(c, (Tq if T in (None, 60) else max(1, Tq * T // 60)), lab) for c, T, lab in curves]
    chunks = [Chunk(f"gamma{g}", (g, n, curves), {"gamma_dB": g, "n": n, "curves": curves}) for g in gammas]
    rows = [row for part in _chunked("fig9", out_dir, _fig9_chunk, chunks) for row in part]
    out = Path(out_dir)
    _write_csv(out / "fig9.csv", rows)
    _plot(out / "fig9.png", rows, "gamma_dB", "crb", "curve", "Γ (dB)", "CRB (rad²)", logy=True,
          title=f"Fig. 9 analogue, P = 40 dBm (n = {n})")
    return [str(out / "fig9.csv"), str(out / "fig9.png")]


def _fig10_chunk(task) -> dict:
    """The rows (and notes on absent methods) of one Γ of Fig. 10."""
    from ..channels import effective_user_channels
    from ...ci import ser_analytic, ser_monte_carlo
    from ...errors import IsacError, MethodError
    from ...registry import get_method
    g, n, T, draws = task
    rows, notes = [], []
    scn = ScenarioA(gamma_db=(float(g),) * 3)
    chs = test_set(scn, n)
    sets = {}
    for name, lab in (("unfolded", "Detection: Prop."), ("admm-mm", "Detection: ADMM-MM")):
        try:
            m = get_method(name, "paper-a")
        except MethodError as e:
            notes.append(f"{name}: not registered ({e})")
            continue
        try:
            ds = [m.run(scn, SEED + i, channels=c) for i, c in enumerate(chs)]
        except IsacError as e:
            notes.append(f"{name}: not available ({e})")
            continue
        sets[lab] = ([d.X for d in ds], [d.phi for d in ds])
    sets["DoA: Prop."] = designs("prop", scn, chs, T)[:2]
    sets["DoA: Unsuper."] = designs("unsup", scn, chs, T)[:2]
    rng = np.random.default_rng(SEED + g)
    for lab, (X, P) in sets.items():
        ser_a, ser_m, var_m = [], [], []
        for c, x, p in zip(chs, X, P):
            Z = effective_user_channels(c, p) @ x
            ser_a.append(float(ser_analytic(Z, c.S, np.asarray(scn.noise_comm_w), scn.psk_order).mean()))
            pm, sm = ser_monte_carlo(Z, c.S, np.asarray(scn.noise_comm_w), scn.psk_order, draws, rng)
            ser_m.append(pm)
            var_m.append(sm ** 2)
        rows.append({"gamma_dB": g, "curve": lab, "ser_analytic": float(np.mean(ser_a)),
                     "ser_mc": float(np.mean(ser_m)), "ser_mc_sigma": float(math.sqrt(sum(var_m)) / len(var_m)),
                     "n": n, "mc_draws_per_sample": draws})
    return {"rows": rows, "notes": notes}


def fig10(out_dir, quick=False, workers=1, **kw):
    """SER vs Γ of the detection designs and the DoA designs: analytic (V-7) and Monte Carlo [Fig. 10]."""
    torch.set_num_threads(1)
    n, T = _sizes(quick, kw, 10, 2)
    draws = int(kw.get("draws", 200 if quick else 2000))
    gammas = [10, 20] if quick else [10, 15, 20, 25, 30]
    chunks = [Chunk(f"gamma{g}", (g, n, T, draws), {"gamma_dB": g, "n": n, "T": T, "draws": draws}) for g in gammas]
    parts = _chunked("fig10", out_dir, _fig10_chunk, chunks)
    rows = [r for part in parts for r in part["rows"]]
    notes = [t for part in parts for t in part["notes"]]
    out = Path(out_dir)
    _write_csv(out / "fig10.csv", rows)
    mc = [dict(r, curve=r["curve"] + " (MC)", ser_analytic=r["ser_mc"]) for r in rows]
    _plot(out / "fig10.png", rows + mc, "gamma_dB", "ser_analytic", "curve", "Γ (dB)", "average SER",
          title=f"Fig. 10 analogue (n = {n}; MC {draws} draws/sample)")
    paths = [str(out / "fig10.csv"), str(out / "fig10.png")]
    if notes:
        (out / "fig10_notes.txt").write_text("\n".join(dict.fromkeys(notes)) + "\n")
        paths.append(str(out / "fig10_notes.txt"))
    return paths


PAPER_TABLE2 = {32: 0.296, 64: 1.468, 128: 7.991}    # A's Table II, "Proposed" [s]


def table2(out_dir, quick=False, workers=1, **kw):
    """Time per design at N = 32/64/128: unfolded DoA network and unsupervised MLP [Table II].

    One sample at a time, after one warm-up design, 1 torch thread, float64, CPU, with the default inference
    engine (``DoaNet.infer``: the numba kernel of :mod:`isac_opt.paper_a.unfold.fastnet` when installed);
    the paper-size network also with the torch engine on ``n_paper_torch`` designs (default 1; 0: none),
    the baseline in the same run. ``t_start`` = A.10
    start (Riemannian φ⁰ + SOCP x⁰), ``t_net`` = network forward + per-slot CI repair, ``t_total`` = their sum. The
    unsupervised MLP's input size depends on N, so N ≠ 64 is timed with a freshly initialised MLP of the
    same architecture (identical cost); the unfolded network is N-agnostic (shipped weights).
    The detection network (``unfolded``) is timed the same way when registered.
    """
    from ...errors import MethodError
    from ...registry import get_method
    from .unsupervised import UnsupervisedDoa
    torch.set_num_threads(1)
    n = int(kw.get("n", 2 if quick else 5))
    T = int(kw["T"]) if "T" in kw else (4 if quick else None)
    Ns = [32, 64] if quick else [32, 64, 128]
    rows = []
    import platform
    mach = f"{platform.processor() or platform.machine()}, torch {torch.__version__}, threads 1, float64"
    for N in Ns:
        scn = ScenarioA(N=N)
        chs = test_set(scn, n + 1)
        nets = [("Proposed (unfolded DoA)", load_net("unfolded-doa"), T)]
        # the paper-size network (60/10/10, compact DFP (29a), PHR): shipped weights, or the same-size
        # classical solver (network at its initial parameters: identical cost) when none are shipped
        try:
            pnet = load_net("unfolded-doa-paper")
            plab = "Proposed, paper size (unfolded-doa-paper 60/10/10 DFP)"
        except WeightsError:
            pnet = DoaNet(DoaConfig(T=60, J=10, R=10, dfp_variant="paper"), scn)
            plab = "Proposed, paper size (untrained 60/10/10 DFP, no weights shipped)"
        nets.append((plab, pnet, 2 if quick else None))
        if not T:
            try:   # the trained 20-layer network: the same depth as the detection network
                nets.append(("Proposed lite (unfolded-doa-lite)", load_net("unfolded-doa-lite"), None))
            except WeightsError as e:
                print(f"table2: unfolded-doa-lite not timed: {e}", file=sys.stderr)
        n_paper = int(kw.get("n_paper", 1 if quick else 2))
        n_paper_torch = int(kw.get("n_paper_torch", 1))
        if n_paper_torch > 0:     # the previous engine (torch step function) as the baseline, same run
            nets.append((plab + ", torch engine (baseline)", pnet, 2 if quick else None))
        for lab, net, TT in nets:
            t_s, t_n = [], []
            eng = "torch" if "torch engine" in lab else "auto"
            npt = n_paper_torch if eng == "torch" else n_paper
            for i, c in enumerate(chs[:npt + 1] if "paper size" in lab else chs):
                t0 = time.perf_counter()
                st = start_points(scn, [c], "ris", SEED)
                t1 = time.perf_counter()
                b = DoaBatch(scn, [c], st, net.cfg, "ris")
                s_ = net.infer(b, TT, engine=eng)
                repair_ci(scn, [c], *b.designs(s_), st)
                t2 = time.perf_counter()
                if i:
                    t_s.append(t1 - t0)
                    t_n.append(t2 - t1)
            rows.append({"N": N, "method": lab, "engine": eng, "t_start_s": np.mean(t_s), "t_net_s": np.mean(t_n),
                         "t_total_s": np.mean(t_s) + np.mean(t_n), "t_total_std_s": float(np.std(np.add(t_s, t_n))),
                         "n": len(t_n), "T_J_R": f"{TT or net.cfg.T}/{net.cfg.J}/{net.cfg.R}", "machine": mach,
                         "A_proposed_s": PAPER_TABLE2.get(N, float("nan"))})
        if not T:   # the design method as users call it: 2 starts, 200 layers, certified (issue 12)
            from ...registry import get_method as _gm
            m_doa = _gm("unfolded-doa", "paper-a")
            t_m = []
            for i, c in enumerate(chs[:2]):
                t0 = time.perf_counter()
                m_doa.run(scn, SEED + i, channels=c)
                if i:
                    t_m.append(time.perf_counter() - t0)
            rows.append({"N": N, "method": "unfolded-doa method (2 starts, 200 layers, certified)",
                         "t_start_s": float("nan"), "t_net_s": float("nan"), "t_total_s": np.mean(t_m),
                         "t_total_std_s": float(np.std(t_m)), "n": len(t_m), "T_J_R": "200/2/5", "machine": mach})
        try:
            un64 = load_net("unsupervised-doa")
        except WeightsError:
            un64 = None
        un = un64 if (N == 64 and un64 is not None) else \
            UnsupervisedDoa(scn, 4, residual=bool(un64 is not None and un64.residual)).eval()
        t_u = []
        for i, c in enumerate(chs):
            t0 = time.perf_counter()
            un.design(scn, [c])
            if i:
                t_u.append(time.perf_counter() - t0)
        rows.append({"N": N, "method": "Unsupervised learning", "t_start_s": 0.0, "t_net_s": np.mean(t_u),
                     "t_total_s": np.mean(t_u), "t_total_std_s": float(np.std(t_u)), "n": n, "T_J_R": "",
                     "machine": mach})
        try:
            m = get_method("unfolded", "paper-a")
            t_d = []
            for i, c in enumerate(chs):
                t0 = time.perf_counter()
                m.run(scn, SEED + i, channels=c)
                if i:
                    t_d.append(time.perf_counter() - t0)
            rows.append({"N": N, "method": "Detection unfolded (for comparison)", "t_start_s": float("nan"),
                         "t_net_s": float("nan"), "t_total_s": np.mean(t_d), "t_total_std_s": float(np.std(t_d)),
                         "n": n, "T_J_R": "", "machine": mach})
        except (MethodError, Exception) as e:  # noqa: BLE001 - the detection method may be absent or refuse N
            print(f"table2: detection 'unfolded' not timed at N={N}: {e}", file=sys.stderr)
    for r in rows:      # time relative to the detection network at the same N (issue 4's speed target)
        det = [d["t_total_s"] for d in rows if d["N"] == r["N"] and d["method"].startswith("Detection")]
        r["ratio_vs_detection"] = float(r["t_total_s"] / det[0]) if det else float("nan")
    out = Path(out_dir)
    _write_csv(out / "table2.csv", rows)
    with figure(out / "table2.png", figsize=(6, 4)) as (fig, ax):
        for meth in dict.fromkeys(r["method"] for r in rows):
            pts = [(r["N"], r["t_total_s"]) for r in rows if r["method"] == meth]
            ax.plot(*zip(*pts), marker="o", label=meth)
        ax.set_xscale("log", base=2)
        ax.set_yscale("log")
        ax.set_xlabel("N")
        ax.set_ylabel("time per design (s)")
        ax.set_title(f"Table II analogue ({mach})", fontsize=7)
        ax.legend(fontsize=7)
        ax.grid(True, which="both", alpha=0.3)
    for r in rows:
        print(f"N={r['N']:4d} {r['method']:38s} {r['t_total_s']:.3f} s ± {r['t_total_std_s']:.3f}"
              f"  ({r['ratio_vs_detection']:.2f}× detection)", file=sys.stderr)
    return [str(out / "table2.csv"), str(out / "table2.png")]


def _target(name):
    """Registry entry point of a DoA target: batched torch per point in one process (no chunks to ship)."""
    def run(out_dir, quick=False, workers=1, **kw):
        from ...errors import IsacError
        if kw.pop("executor", "local") != "local" or kw.pop("scheduler", None):
            raise IsacError(f"reproduce {name}: runs batched in one process; --executor dask is "
                            f"supported by fig4-fig7 and b-fig4..b-fig10 only")
        return globals()[name](out_dir, quick=quick, workers=workers, **kw)
    run.__name__ = f"target_{name}"
    return run


target_fig8, target_fig9, target_fig10, target_table2 = (_target(n) for n in ("fig8", "fig9", "fig10", "table2"))
