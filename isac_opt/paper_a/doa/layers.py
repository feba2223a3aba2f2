"""Does learning pay for DoA? Held-out CRB vs number of layers, trained vs untrained [issue 14, part 3].

``isac-testbed reproduce doa-layers --out DIR [--quick] [--set n=200 n_paper=100 ...]`` — the DoA
analogue of ``detect-layers`` (:func:`isac_opt.paper_a.detect.reproduce.layers_curve`).

For each shipped DoA network that fits the scenario (``unfolded-doa``: T, J, R = 60, 2, 5, identity steps,
all 60 layers trained; ``unfolded-doa-paper``: 60, 10, 10, compact DFP (29a), PHR, first
``layers_trained`` = 10 layers trained) the first t layers of

* the **trained** network (beyond its T layers: the last layer's step MLPs reused, as the
  ``unfolded-doa`` method does at its inference depth 200, :func:`.model.extend_layers`), and
* the **untrained** network of identical structure: the same layers at their initial parameters, i.e.
  the classical solver with the constant steps ``UnfoldedAdmm.classical_params()`` (bit-identical to the
  network at initialisation; tested),

run from the A.10 start of every held-out realisation, batched per chunk, one torch thread. After t
layers (t on a grid, :func:`record_grid`) each iterate is reported

* **raw**: the last iterate (CM/UM by construction) — CRB [rad²] and whether every CI constraint holds;
* **certified**: the method's final CI feasibility layer (:func:`isac_opt.paper_a.unfold.feasibility_layer`,
  ``FEAS_STEPS`` Newton steps on violated slots + CM projection), then the per-slot repair towards the A.10
  start (:func:`.model.repair_ci`) — CRB and the CI check of the repaired design (numpy margins, ≥ 1 − 1e-9).

Seconds per design: cumulative CPU time (``time.process_time``; the VM is shared, the solver is
single-threaded, so CPU time = idle-core wall time) of the layers divided by the chunk size, trained and
untrained layers interleaved so that both see the same machine state; wall time is kept as well. The
certification's cost (same for both) is reported separately.

Held-out realisations: realisation i uses channels ``realisation_rng(sd, i)`` and the A.10 start
``start_points(scn, [ch], "ris", spawn_seed(sd, i))`` with sd = ``spawn_seed(seed, 14, 3)`` (root
``seed`` = 2025 by default). The DoA training used root 2026 (``realisation_rng(2026, i)``, i < 128;
its recipe-selection test set ``realisation_rng(2026, 10**6 + i)``), the figures root 4242, the issue-12
held-out runs roots 7001–7020: disjoint SeedSequence entropies, hence disjoint streams.

Statistics per depth: mean CRB with a 95 % CLT interval; the paired trained/untrained ratio as the
geometric mean of per-realisation CRB ratios with a 95 % CLT interval on the mean log-ratio; equal wall
time: for each trained depth, the untrained depth of the same network whose CPU time per design is
closest, and the paired ratio there. Chunked and resumable through :mod:`isac_opt.repro`.
"""
from __future__ import annotations

import json
import math
import time
from pathlib import Path

import numpy as np

from ..channels import draw_channels, realisation_rng
from ..scenario import ScenarioA
from ...errors import IsacError, MethodError
from ...repro import Chunk, figure, run_chunked, spawn_seed, split, write_records
from ...sysinfo import machine_description

NETS = ("unfolded-doa", "unfolded-doa-paper")
DEPTHS = {"unfolded-doa": (1, 2, 4, 8, 15, 30, 60, 100, 200),
          "unfolded-doa-paper": (1, 2, 4, 8, 10, 15, 20, 30)}
QUICK_DEPTHS = {"unfolded-doa": (1, 2), "unfolded-doa-paper": (1,)}
UNTRAINED_EXTRA = 1.25      # the untrained network runs 25 % deeper (its layers are cheaper: equal-time match)
FEAS_STEPS = 20             # = multistart.FEAS_STEPS (the methods' final feasibility layer)
CI_TOL = 1e-9
OPTIONS = {"n": int, "n_paper": int, "chunk": int, "seed": int, "nets": str, "depths": str,
           "depths_paper": str, "engine": str}
ENGINES = ("auto", "jit", "torch")


def heldout_seed(seed: int = 2025) -> int:
    """Seed sd of the held-out set (channels ``realisation_rng(sd, i)``)."""
    return spawn_seed(seed, 14, 3)


def heldout_set(scn: ScenarioA, sd: int, indices):
    """(channels, A.10 starts) of held-out realisations ``indices`` (independent of chunking)."""
    from .model import start_points
    chs = [draw_channels(scn, realisation_rng(sd, i)) for i in indices]
    starts = [start_points(scn, [ch], "ris", spawn_seed(sd, i))[0] for ch, i in zip(chs, indices)]
    return chs, starts


def record_grid(d_max: int, depths=()) -> list[int]:
    """Depths at which iterates are certified and recorded: every layer to 10, every 5 to 100, every 10
    beyond, plus ``depths`` (all ≤ d_max)."""
    g = set(range(1, 11)) | set(range(15, 101, 5)) | set(range(110, d_max + 1, 10)) | set(depths) | {d_max}
    return sorted(d for d in g if 1 <= d <= d_max)


def _certify(b, scn, chs, starts, st):
    """(raw CRB list, raw CI-ok list, certified CRB list, certified CI-ok list) of state ``st``."""
    import torch
    from ...ci import ci_margins, ci_thresholds
    from ..channels import effective_user_channels
    from ..unfold import feasibility_layer
    from .model import repair_ci
    with torch.no_grad():
        raw = b.crb(st.x, st.phi)
        raw_ok = (b.ci.g(st.x, st.phi) <= 0).all(dim=2).all(dim=1)
        x = feasibility_layer(b.ci, st.x, st.phi, steps=FEAS_STEPS)
    X = [scn.amp * np.exp(1j * np.angle(v)) for v in x.numpy().astype(np.complex128)]
    P = [np.exp(1j * np.angle(p)) for p in st.phi.numpy().astype(np.complex128)]
    Xr, _ = repair_ci(scn, chs, X, P, starts)
    gam = ci_thresholds(scn.noise_comm_w, scn.gamma_db, scn.psk_order)
    ok = [bool((ci_margins(effective_user_channels(ch, p) @ xx, ch.S, scn.psk_order) / gam[:, None]).min()
               >= 1 - CI_TOL) for ch, xx, p in zip(chs, Xr, P)]
    with torch.no_grad():
        cert = b.crb(b.prob.det.u_from_numpy(Xr), b.prob.det.phi_from_numpy(P))
    return raw.tolist(), raw_ok.tolist(), cert.tolist(), ok


def layer_curves(scn: ScenarioA, chs, starts, net, d_trained: int, d_untrained: int, grid_tr, grid_un,
                 engine: str = "torch") -> dict:
    """Trained (``net``, extended past its T by :func:`extend_layers`) and untrained (its
    ``classical_params()``, same structure) networks on one batch, layer by layer, interleaved, with the
    inference ``engine`` ("torch": the step function; "jit": the compiled kernel of ``unfold.fastnet``).

    Returns {"trained"|"untrained": {str(t): {"raw", "raw_ok", "cert", "cert_ok", "cpu_s", "wall_s"}}} for t
    on ``grid_tr`` / ``grid_un``; lists over the realisations; ``cpu_s``/``wall_s`` = cumulative seconds per
    design of the t layers; plus "cert_cpu_s" (mean CPU seconds of one certification per design)."""
    import torch
    from dataclasses import replace
    from ..unfold import solve
    from .model import DoaBatch, extend_layers
    torch.set_num_threads(1)
    B = len(chs)
    b = DoaBatch(scn, chs, starts, net.cfg, "ris")
    big = extend_layers(net, max(d_trained, net.cfg.T))
    acfg = b.cfg.admm(True, max(d_trained, net.cfg.T))
    one = replace(b.cfg.admm(True), T=1)
    params = net.net.classical_params()
    out = {"trained": {}, "untrained": {}}
    cpu = {"trained": 0.0, "untrained": 0.0}
    wall = dict(cpu)
    cert_cpu, n_cert = 0.0, 0
    gsets = {"trained": set(grid_tr), "untrained": set(grid_un)}
    st = {"trained": b.state0(), "untrained": b.state0()}
    if engine == "jit":
        from ..unfold.fastnet import engine_for
        e_tr, e_un = engine_for(acfg, net=big.net), engine_for(one, params=params)
        from ..unfold.fastnet import _problem_of
        e_tr._tables(), e_un._tables(), _problem_of(b)     # built once, outside the timed layers
        if engine == "jit":                                # load the compiled kernel before timing
            from ..unfold.fastnet_jit import warm
            warm()
    with torch.no_grad():
        for t in range(max(d_trained, d_untrained)):
            for k in ("trained", "untrained"):
                if t >= (d_trained if k == "trained" else d_untrained):
                    continue
                c0, w0 = time.process_time(), time.perf_counter()
                if engine == "jit":
                    st[k] = (e_tr.forward(b, state=st[k], layers=[t]) if k == "trained"
                             else e_un.forward(b, state=st[k], layers=[0]))
                elif k == "trained":
                    st[k] = big.net(st[k], b.objective, b.constraint, layers=[t], cfg=acfg)
                else:
                    st[k], _ = solve(st[k], b.objective, b.constraint, one, params)
                cpu[k] += (time.process_time() - c0) / B
                wall[k] += (time.perf_counter() - w0) / B
                if t + 1 in gsets[k]:
                    c1 = time.process_time()
                    raw, raw_ok, cert, ok = _certify(b, scn, chs, starts, st[k])
                    cert_cpu += (time.process_time() - c1) / B
                    n_cert += 1
                    out[k][str(t + 1)] = {"raw": raw, "raw_ok": raw_ok, "cert": cert, "cert_ok": ok,
                                          "cpu_s": cpu[k], "wall_s": wall[k]}
    out["cert_cpu_s"] = cert_cpu / max(n_cert, 1)
    return out


def _chunk(task) -> dict:
    """Chunk job (picklable): (scn, sd, indices, net name, d_tr, d_un, grid_tr, grid_un[, engine]) → layer_curves."""
    scn, sd, idx, name, d_tr, d_un, g_tr, g_un = task[:8]
    engine = task[8] if len(task) > 8 else "torch"
    import torch
    torch.set_num_threads(1)
    from ...executor import cold_solves
    from .weights import load_net
    with cold_solves():
        chs, starts = heldout_set(scn, sd, idx)
    return layer_curves(scn, chs, starts, load_net(name), d_tr, d_un, g_tr, g_un, engine)


def _mean_ci(v) -> tuple:
    v = np.asarray(v, dtype=float)
    return float(v.mean()), (float(1.96 * v.std(ddof=1) / math.sqrt(len(v))) if len(v) > 1 else float("nan"))


def ratio_ci(a, b) -> tuple:
    """Geometric mean of the paired ratios a_i/b_i and its 95 % CLT interval (on the mean log-ratio)."""
    lr = np.log(np.asarray(a, dtype=float) / np.asarray(b, dtype=float))
    m = float(lr.mean())
    h = float(1.96 * lr.std(ddof=1) / math.sqrt(len(lr))) if len(lr) > 1 else float("nan")
    return math.exp(m), math.exp(m - h), math.exp(m + h)


def _depth_list(s, key: str) -> list[int]:
    try:
        d = sorted({int(v) for v in str(s).split(",") if v.strip()})
    except ValueError:
        d = []
    if not d or d[0] < 1:
        raise IsacError(f"doa-layers: {key}={s!r}: expected a comma list of positive integers, e.g. 1,2,4,8")
    return d


def _options(kw: dict, quick: bool, workers: int) -> dict:
    ex = kw.pop("executor", "local")
    if ex != "local" or kw.pop("scheduler", None) or int(workers) != 1:
        raise IsacError("doa-layers: timings must not share cores; run in one process "
                        "(--workers 1, no --executor dask)")
    bad = sorted(set(kw) - set(OPTIONS))
    if bad:
        raise IsacError(f"doa-layers: unknown option(s) {bad}; expected any of {sorted(OPTIONS)}")
    o = {"n": 3 if quick else 200, "n_paper": 2 if quick else 100, "chunk": 25, "seed": 2025,
         "nets": ",".join(NETS), "depths": None, "depths_paper": None, "engine": "auto"}
    for k, v in kw.items():
        if OPTIONS[k] is int:
            if isinstance(v, bool) or not isinstance(v, int) or (v < 1 and k != "seed"):
                raise IsacError(f"doa-layers: {k}={v!r}: expected a positive integer")
        o[k] = v
    from ..unfold.fastnet import HAVE_JIT
    if o["engine"] not in ENGINES:
        raise IsacError(f"doa-layers: engine={o['engine']!r}: expected one of {', '.join(ENGINES)}")
    if o["engine"] == "jit" and not HAVE_JIT:
        raise IsacError("doa-layers: engine='jit' needs numba (pip install -c constraints.txt numba)")
    o["engine"] = ("jit" if HAVE_JIT else "torch") if o["engine"] == "auto" else o["engine"]
    o["nets"] = [s.strip() for s in str(o["nets"]).split(",") if s.strip()]
    if not o["nets"] or any(s not in NETS for s in o["nets"]):
        raise IsacError(f"doa-layers: nets={kw.get('nets')!r}: expected a comma list of {', '.join(NETS)}")
    src = QUICK_DEPTHS if quick else DEPTHS
    o["depth_lists"] = {
        "unfolded-doa": _depth_list(o["depths"], "depths") if o["depths"] is not None else list(src["unfolded-doa"]),
        "unfolded-doa-paper": (_depth_list(o["depths_paper"], "depths_paper") if o["depths_paper"] is not None
                               else list(src["unfolded-doa-paper"]))}
    return o


def layers_curve(out_dir, quick: bool = False, workers: int = 1, **kw) -> list:
    """The ``doa-layers`` target: CSV ``layers.csv`` (one row per network and depth), ``equal_time.csv``,
    ``layers.png`` (CRB vs depth and vs CPU time per design) and ``layers.md`` (tables) in ``out_dir``.

    Options (``--set``): ``n`` (held-out realisations, cheap net; default 200, quick 3), ``n_paper``
    (paper-size net; default 100, quick 2), ``depths`` / ``depths_paper`` (comma lists), ``nets``,
    ``chunk`` (realisations per batch, 25), ``seed`` (root, 2025), ``engine`` ("auto": the compiled kernel
    when numba is installed, "jit", "torch"; part of the chunk key)."""
    from .model import WeightsError
    from .weights import load_net
    o = _options(dict(kw), quick, workers)
    scn = ScenarioA(N=16) if quick else ScenarioA()
    sd = heldout_seed(o["seed"])
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    rows, eq_rows, curves = [], [], {}
    for name in o["nets"]:
        try:
            net = load_net(name)
            net.check_fits(scn)
        except WeightsError as e:
            print(f"doa-layers: {name} skipped: {e}")
            continue
        trained = int(net.meta.get("layers_trained", net.cfg.T))
        depths = o["depth_lists"][name]
        n = o["n"] if name == "unfolded-doa" else o["n_paper"]
        d_tr = max(depths)
        d_un = max(d_tr, int(math.ceil(UNTRAINED_EXTRA * d_tr)))
        g_tr, g_un = record_grid(d_tr, depths), record_grid(d_un, depths)
        from .weights import weights_path
        wsum = _file_digest(weights_path(name))
        chunks = [Chunk(f"{name}_i{idx[0]}-{idx[-1]}", (scn, sd, idx, name, d_tr, d_un, g_tr, g_un, o["engine"]),
                        {"scenario": scn.to_dict(), "heldout_seed": sd, "indices": idx, "net": name,
                         "weights_sha256": wsum, "d_trained": d_tr, "d_untrained": d_un, "grid_trained": g_tr,
                         "grid_untrained": g_un, "feas_steps": FEAS_STEPS, "engine": o["engine"]})
                  for idx in split(n, o["chunk"])]
        res = run_chunked("doa-layers", _chunk, chunks, out / "chunks", o["seed"], desc=f"doa-layers {name}")
        cur = {k: {} for k in ("trained", "untrained")}
        for k, grid in (("trained", g_tr), ("untrained", g_un)):
            for d in grid:
                r = [c[k][str(d)] for c in res]
                cur[k][d] = {f: (np.concatenate([np.asarray(x[f], dtype=float) for x in r])
                                 if f not in ("cpu_s", "wall_s") else float(np.mean([x[f] for x in r])))
                             for f in ("raw", "raw_ok", "cert", "cert_ok", "cpu_s", "wall_s")}
        curves[name] = cur
        cert_s = float(np.mean([c["cert_cpu_s"] for c in res]))
        for d in depths:
            tr, un = cur["trained"][d], cur["untrained"][d]
            row = {"net": name, "engine": o["engine"], "layers": d, "steps": d * net.cfg.J * net.cfg.R * 2, "n": len(tr["cert"]),
                   "layers_trained": trained, "beyond_trained": "reuse-last" if d > net.cfg.T else
                   ("classical" if d > trained else "trained")}
            for tag, v in (("trained", tr), ("untrained", un)):
                row[f"{tag}_crb"], row[f"{tag}_crb_ci95"] = _mean_ci(v["cert"])
                row[f"{tag}_crb_median"] = float(np.median(v["cert"]))
                row[f"{tag}_crb_raw"], row[f"{tag}_crb_raw_ci95"] = _mean_ci(v["raw"])
                row[f"{tag}_ci_ok"] = int(np.sum(v["cert_ok"]))
                row[f"{tag}_ci_ok_raw"] = int(np.sum(v["raw_ok"]))
            row["ratio"], row["ratio_lo"], row["ratio_hi"] = ratio_ci(tr["cert"], un["cert"])
            row["ratio_raw"], row["ratio_raw_lo"], row["ratio_raw_hi"] = ratio_ci(tr["raw"], un["raw"])
            row["ratio_of_means"] = row["trained_crb"] / row["untrained_crb"]
            row["frac_trained_lower"] = float(np.mean(tr["cert"] < un["cert"]))
            row["s_per_design_trained"] = tr["cpu_s"]
            row["s_per_design_untrained"] = un["cpu_s"]
            row["wall_s_per_design_trained"] = tr["wall_s"]
            row["wall_s_per_design_untrained"] = un["wall_s"]
            row["cert_s_per_design"] = cert_s
            rows.append(row)
            # equal time: the recorded untrained depth whose CPU time per design is closest
            du = min(cur["untrained"], key=lambda e: abs(cur["untrained"][e]["cpu_s"] - tr["cpu_s"]))
            ue = cur["untrained"][du]
            q = ratio_ci(tr["cert"], ue["cert"])
            eq_rows.append({"net": name, "layers_trained_net": d, "s_trained": tr["cpu_s"],
                            "trained_crb": row["trained_crb"], "untrained_layers": du, "s_untrained": ue["cpu_s"],
                            "untrained_crb": _mean_ci(ue["cert"])[0], "untrained_ci_ok": int(np.sum(ue["cert_ok"])),
                            "trained_crb_median": row["trained_crb_median"],
                            "untrained_crb_median": float(np.median(ue["cert"])),
                            "ratio": q[0], "ratio_lo": q[1], "ratio_hi": q[2],
                            "gain_pct": 100 * (1 - q[0]), "n": len(tr["cert"])})
    if not rows:
        raise MethodError("doa-layers: no shipped DoA network fits the scenario")
    f = write_records(out / "layers.csv", rows, fieldnames=list(rows[0]))
    fe = write_records(out / "equal_time.csv", eq_rows, fieldnames=list(eq_rows[0]))
    png = _plot(out / "layers.png", rows, curves)
    md = _markdown(out / "layers.md", rows, eq_rows, o, sd, quick)
    (out / "layers.json").write_text(json.dumps({"heldout_seed": sd, "root_seed": o["seed"],
                                                 "scenario": scn.to_dict(), "machine": machine_description(),
                                                 "load_avg": _loadavg()}, indent=1))
    return [str(f), str(fe), str(png), str(md)]


def _file_digest(p) -> str:
    import hashlib
    return hashlib.sha256(Path(p).read_bytes()).hexdigest()


def _loadavg() -> str:
    try:
        return " ".join(Path("/proc/loadavg").read_text().split()[:3])
    except OSError:
        return "?"


def _equal_time(cur) -> list:
    """Per recorded trained depth: (CPU s of the trained net, paired ratio trained / untrained at the
    recorded untrained depth of closest CPU time, its 95 % CI)."""
    out = []
    for d, tr in sorted(cur["trained"].items()):
        du = min(cur["untrained"], key=lambda e: abs(cur["untrained"][e]["cpu_s"] - tr["cpu_s"]))
        out.append((tr["cpu_s"], *ratio_ci(tr["cert"], cur["untrained"][du]["cert"])))
    return out


def _plot(path, rows, curves):
    """Three panels: mean certified CRB vs t (95 % CI), mean CRB vs CPU time per design (every recorded
    depth; CIs at the table's depths), paired trained/untrained ratio at equal CPU time (95 % CI)."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    fig, axs = plt.subplots(1, 3, figsize=(15, 4.4))
    try:
        for name, mk, cols in (("unfolded-doa", "o", ("C0", "C1")), ("unfolded-doa-paper", "s", ("C2", "C3"))):
            rr = [r for r in rows if r["net"] == name]
            if not rr:
                continue
            x = [r["layers"] for r in rr]
            for (tag, ls), col in zip((("trained", "-"), ("untrained", "--")), cols):
                lab = f"{name}, {tag}" + (" (classical steps)" if tag == "untrained" else "")
                axs[0].errorbar(x, [r[f"{tag}_crb"] for r in rr], [r[f"{tag}_crb_ci95"] for r in rr],
                                fmt=mk + ls, color=col, capsize=2, ms=4, label=lab)
                c = curves[name][tag]
                ds = sorted(c)
                axs[1].plot([c[d]["cpu_s"] for d in ds], [c[d]["cert"].mean() for d in ds], ls, color=col,
                            label=lab)
                axs[1].errorbar([c[d]["cpu_s"] for d in x], [c[d]["cert"].mean() for d in x],
                                [_mean_ci(c[d]["cert"])[1] for d in x], fmt=mk, color=col, capsize=2, ms=4)
            eq = _equal_time(curves[name])
            axs[2].plot([e[0] for e in eq], [e[1] for e in eq], mk + "-", color=cols[0], ms=3, label=name)
            axs[2].fill_between([e[0] for e in eq], [e[2] for e in eq], [e[3] for e in eq], color=cols[0],
                                alpha=0.25)
        for ax, xl in ((axs[0], "layers t"), (axs[1], "CPU seconds per design (batched, 1 thread)")):
            ax.set_xscale("log")
            ax.set_yscale("log")
            ax.set_xlabel(xl)
            ax.set_ylabel("held-out mean CRB, certified [rad²] (95 % CI)")
            ax.grid(alpha=0.3, which="both")
            ax.legend(fontsize=7)
        axs[2].axhline(1.0, color="k", lw=0.8)
        axs[2].axhline(0.9, color="k", lw=0.8, ls=":", label="−10 % (issue 14 goal)")
        axs[2].set_xscale("log")
        axs[2].set_xlabel("CPU seconds per design (batched, 1 thread)")
        axs[2].set_ylabel("CRB trained / untrained at equal time\n(geometric mean of paired ratios, 95 % CI)")
        axs[2].grid(alpha=0.3, which="both")
        axs[2].legend(fontsize=7)
        n0 = {r["net"]: r["n"] for r in rows}
        fig.suptitle("DoA: CRB vs layers and vs time, trained vs untrained, held-out (n = "
                     + ", ".join(f"{k}: {v}" for k, v in n0.items()) + ")", fontsize=9)
        fig.tight_layout()
        fig.savefig(path, dpi=110)
    finally:
        plt.close(fig)
    return path


def _markdown(path, rows, eq_rows, o, sd, quick) -> Path:
    L = [f"DoA: does learning pay? (`isac-testbed reproduce doa-layers`{' --quick' if quick else ''}); "
         f"machine: {machine_description()}, load average at the end {_loadavg()}, torch 1 thread, float64; "
         f"held-out seed sd = spawn_seed({o['seed']}, 14, 3) = {sd}.\n",
         "CRB [rad²] of the certified output (feasibility layer + repair) mean ± 95 % CLT half-width (heavy-tailed: "
         "medians beside); ratio = "
         "geometric mean of paired trained/untrained CRB ratios [95 % CI]; CI ok = designs meeting every CI "
         "constraint after certification / n; tr lower = fraction of realisations with trained CRB < untrained; "
         "s = CPU seconds per design of the layers (batched, 1 thread).\n",
         "| net | t | trained CRB | untrained CRB | median tr / un | ratio [95 % CI] | raw ratio | tr lower "
         "| CI ok tr/un | s tr | s un |",
         "|---|---|---|---|---|---|---|---|---|---|---|"]
    for r in rows:
        L.append(f"| {r['net']} | {r['layers']} | {r['trained_crb']:.3e} ± {r['trained_crb_ci95']:.1e} | "
                 f"{r['untrained_crb']:.3e} ± {r['untrained_crb_ci95']:.1e} | {r['trained_crb_median']:.3e} / "
                 f"{r['untrained_crb_median']:.3e} | {r['ratio']:.3f} "
                 f"[{r['ratio_lo']:.3f}, {r['ratio_hi']:.3f}] | {r['ratio_raw']:.3f} | "
                 f"{r['frac_trained_lower']:.2f} | "
                 f"{r['trained_ci_ok']}/{r['untrained_ci_ok']} of {r['n']} | {r['s_per_design_trained']:.3g} | "
                 f"{r['s_per_design_untrained']:.3g} |")
    L += ["", "Equal CPU time: untrained depth of the same network with the closest time per design.\n",
          "| net | trained t | s | trained CRB (median) | untrained t | s | untrained CRB (median) "
          "| ratio [95 % CI] | gain |",
          "|---|---|---|---|---|---|---|---|---|"]
    for r in eq_rows:
        L.append(f"| {r['net']} | {r['layers_trained_net']} | {r['s_trained']:.3g} | {r['trained_crb']:.3e} "
                 f"({r['trained_crb_median']:.3e}) | {r['untrained_layers']} | {r['s_untrained']:.3g} | "
                 f"{r['untrained_crb']:.3e} ({r['untrained_crb_median']:.3e}) | "
                 f"{r['ratio']:.3f} [{r['ratio_lo']:.3f}, {r['ratio_hi']:.3f}] | {r['gain_pct']:+.1f} % |")
    path = Path(path)
    path.write_text("\n".join(L) + "\n")
    return path
