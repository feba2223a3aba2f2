"""Reproduction of paper A's detection results: Figs. 4–7 and Table I [spec A.13].

``isac-testbed reproduce fig4 fig5 fig6 fig7 table1 --out DIR [--quick] [--workers W]``

Curves (A's legends): ``Prop. w/ RIS`` (shipped unfolded network), ``Prop. rand. RIS`` and ``Prop. w/o RIS``
(the same network on the A.11.3/4 variants, x-block only), ``ADMM-MM`` (A.11.1) and ``Radar-only``
(ADMM-MM without CI, A.11.2). Without fitting weights the ``Prop.`` curves use the classical solver
(same step function, constant steps) and the CSV says so in its ``engine`` column.

Monte Carlo: realisation i of sweep point p uses ``realisation_rng(seed_p, i)`` with
seed_p = SeedSequence(root_seed, spawn_key=(figure id, p)) → results do not depend on chunking or the
number of workers. Work is split in chunks (≤ ``chunk`` realisations of one point) run by
:mod:`isac_opt.executor`: joblib's loky processes (``workers``; 1 = in-process) by default, or a Dask
cluster (``--set executor=dask scheduler=tcp://host:8786``), through the shared harness
(:mod:`isac_opt.repro`): each chunk's result is saved by the calling process to ``DIR/<fig>/chunks/*.json``
under a key of (target, seed, parameters, software, chunk), so an interrupted run resumes and a changed
setting never reuses another run's chunks.
Averages: SINR in dB over realisations (R25 convention); Pd averaged.
Outputs per figure: one CSV per curve, a combined CSV and a PNG.
"""
from __future__ import annotations

import json
import math
import time
from pathlib import Path

import numpy as np

from ..channels import draw_channels, realisation_rng
from ..scenario import ScenarioA
from ...errors import MethodError
from ...executor import cold_solves
from ...repro import Chunk, figure, run_chunked, spawn_seed, split, write_records, write_table
from ...sysinfo import machine_description as _machine

CURVES = ("Prop. w/ RIS", "Prop. rand. RIS", "Prop. w/o RIS", "ADMM-MM", "Radar-only")
_UNF = {"Prop. w/ RIS": "ris", "Prop. rand. RIS": "random-ris", "Prop. w/o RIS": "no-ris"}
_MM = {"ADMM-MM": "ris", "Radar-only": "radar-only"}
_SAME_CHANNELS = ("Prop. w/ RIS", "Prop. rand. RIS", "ADMM-MM")   # CI designs on the unmodified channels
FIG_IDS = {"fig4": 4, "fig5": 5, "fig6": 6, "fig7": 7, "table1": 1}

SWEEPS = {  # name -> (x label, field, full points, quick points)
    "fig4": ("P [dBW]", "power_dbw", [16, 18, 20, 22, 24], [16, 24]),
    "fig5": ("N", "N", [16, 32, 64, 96, 128], [16, 64]),
    "fig6": ("Γ [dB]", "gamma_db", [10, 15, 20, 25, 30, 35], [10, 35]),
    "fig7": ("Pfa", None, [0], [0]),
}


def _scenario_at(base: ScenarioA, field: str | None, val):
    if field is None:
        return base
    if field == "power_dbw":
        return base.replace(power_w=10 ** (val / 10))
    if field == "gamma_db":
        return base.replace(gamma_db=(float(val),) * base.K)
    return base.replace(**{field: int(val)})


def point_seed(root: int, fig: str, p: int) -> int:
    return spawn_seed(root, FIG_IDS[fig], p)


def run_chunk(scn: ScenarioA, seed: int, indices, curves, mm_kw: dict, pfa_grid) -> dict:
    """All curves on realisations ``indices`` of one sweep point (runs in a worker process); each
    realisation's numbers depend only on (scn, seed, index) — see :func:`cold_solves`."""
    with cold_solves():
        return _run_chunk(scn, seed, indices, curves, mm_kw, pfa_grid)


def _run_chunk(scn: ScenarioA, seed: int, indices, curves, mm_kw: dict, pfa_grid) -> dict:
    import torch
    torch.set_num_threads(1)
    from .admm_mm import admm_mm
    from .core import start_point
    from .methods import get_net
    from .unfolded import DEFAULT_INIT, LITE_CFG, design_starts
    from ..design import evaluate_a
    from ...radar import pd_from_pfa
    from ..unfold import ConstantParams
    out = {}
    chans = [draw_channels(scn, realisation_rng(seed, 2 * i)) for i in indices]
    net = get_net(scn, required=False)
    designs_of = {}        # curve -> rows (channels, X, φ, seconds) per realisation of this chunk
    for c in sorted(curves, key=lambda c: c == "Radar-only"):      # the reference last: it starts from the others
        rows = []
        if c in _UNF:
            var = _UNF[c]
            starts = [start_point(scn, ch, var, realisation_rng(seed, 2 * i + 1)) for ch, i in zip(chans, indices)]
            kw = {"net": net} if net is not None else {"cfg": LITE_CFG, "params": ConstantParams(**DEFAULT_INIT)}
            designs, _, dt = design_starts(scn, starts, var, **kw)
            for s, (X, phi) in zip(starts, designs):
                rows.append((s.channels, X, phi, dt / len(starts)))
            engine = "unfolded" if net is not None else "classical"
        else:
            var = _MM[c]
            for j, (ch, i) in enumerate(zip(chans, indices)):
                s = start_point(scn, ch, var, realisation_rng(seed, 2 * i + 1))
                r = admm_mm(scn, s.channels, s.X0, s.phi0, ci=(var != "radar-only"), **mm_kw)
                row = (s.channels, r.X, r.phi, r.time_s)
                warm = [designs_of[w][j] for w in _SAME_CHANNELS if w in designs_of]
                if var == "radar-only" and warm:
                    # the upper-bound reference is also started from the best CI design of this
                    # realisation (feasible for its problem; ADMM-MM never returns below its start)
                    _, Xw, phiw, _ = max(warm, key=lambda d: evaluate_a(scn, ch, d[1], d[2])["sinr_db"])
                    r2 = admm_mm(scn, ch, Xw, phiw, ci=False, **mm_kw)
                    if evaluate_a(scn, ch, r2.X, r2.phi)["sinr_db"] > evaluate_a(scn, ch, r.X, r.phi)["sinr_db"]:
                        row = (ch, r2.X, r2.phi, r.time_s + r2.time_s)
                    else:
                        row = (s.channels, r.X, r.phi, r.time_s + r2.time_s)
                rows.append(row)
            engine = "admm-mm"
        designs_of[c] = rows
        res = []
        for ch, X, phi, t in rows:
            m = evaluate_a(scn, ch, X, phi)
            sinr = 10 ** (m["sinr_db"] / 10)
            res.append({"sinr_db": m["sinr_db"], "ci_violation": m["ci_violation_max"] if c != "Radar-only" else 0.0,
                        "ci_ok": bool(m["ci_min_margin"] >= 1 - 1e-9) if c != "Radar-only" else True,
                        "time_s": t, "pd": [float(pd_from_pfa(p, sinr)) for p in pfa_grid]})
        out[c] = {"engine": engine, "rows": res}
    return out


class _ChunkJob:
    """Picklable ``(scn, seed, indices) -> run_chunk(...)`` for :func:`isac_opt.executor.run_chunks`."""

    def __init__(self, curves, mm_kw, pfa_grid):
        self.curves, self.mm_kw, self.pfa_grid = list(curves), dict(mm_kw), list(pfa_grid)

    def __call__(self, task):
        scn, sd, idx = task
        return run_chunk(scn, sd, idx, self.curves, self.mm_kw, self.pfa_grid)


def run_sweep(name: str, out_dir, quick: bool = False, workers: int = 1, n: int | None = None,
              chunk: int = 10, seed: int = 2025, curves=CURVES, base: ScenarioA | None = None,
              mm_n_max: int | None = None, executor: str = "local", scheduler: str | None = None) -> list:
    """Run figure ``name`` (fig4..fig7); returns written paths.

    ``executor``/``scheduler``: see :func:`isac_opt.executor.run_chunks` ("local" = joblib loky with
    ``workers`` processes; "dask" = the Dask scheduler at ``scheduler``, or a loopback LocalCluster of
    ``workers`` processes when it is None). Results are identical for every executor."""
    xlabel, field, full_pts, quick_pts = SWEEPS[name]
    pts = quick_pts if quick else full_pts
    n = n if n is not None else (2 if quick else 50)
    base = base or ScenarioA()
    mm_kw = {"n_max": mm_n_max if mm_n_max is not None else (15 if quick else 2000)}
    pfa_grid = list(np.logspace(-6, 0, 13)) if name == "fig7" else [1e-3]
    out = Path(out_dir)               # the CLI already gives each target its own directory
    out.mkdir(parents=True, exist_ok=True)
    tasks = []                        # (point index, Chunk)
    for p, val in enumerate(pts):
        scn = _scenario_at(base, field, val)
        sd = point_seed(seed, name, p)
        for idx in split(n, chunk):
            params = {"scenario": scn.to_dict(), "point": p, "x": val, "point_seed": sd, "indices": idx,
                      "curves": list(curves), "mm_kw": mm_kw, "pfa_grid": pfa_grid}
            tasks.append((p, Chunk(f"p{p}_i{idx[0]}-{idx[-1]}", (scn, sd, idx), params)))
    results = run_chunked(name, _ChunkJob(curves, mm_kw, pfa_grid), [t[1] for t in tasks], out / "chunks", seed,
                          executor=executor, workers=workers, scheduler=scheduler, desc=name)
    # aggregate
    agg = {c: [] for c in curves}
    for p, val in enumerate(pts):
        per = {c: [] for c in curves}
        eng = {}
        for (tp, _), r in zip(tasks, results):
            if tp != p:
                continue
            for c in curves:
                per[c] += r[c]["rows"]
                eng[c] = r[c]["engine"]
        for c in curves:
            rows = per[c]
            s = np.array([r["sinr_db"] for r in rows])
            agg[c].append({"x": val, "sinr_db_mean": float(s.mean()), "sinr_db_std": float(s.std()),
                           "n": len(rows), "ci_ok_frac": float(np.mean([r["ci_ok"] for r in rows])),
                           "time_s_mean": float(np.mean([r["time_s"] for r in rows])),
                           "pd": list(np.mean([r["pd"] for r in rows], axis=0)), "engine": eng[c]})
    return _write(name, out, xlabel, agg, pfa_grid)


def _slug(c: str) -> str:
    return c.lower().replace(".", "").replace("/", "").replace(" ", "_").replace("-", "_")


def _write(name, out, xlabel, agg, pfa_grid) -> list:
    """One CSV per curve, the combined CSV and the PNG of a sweep figure."""
    if name == "fig7":
        head = ["pfa", "pd_mean", "sinr_db_mean", "n", "engine"]
        per = {c: [[pf, pd, pts[0]["sinr_db_mean"], pts[0]["n"], pts[0]["engine"]]
                   for pf, pd in zip(pfa_grid, pts[0]["pd"])] for c, pts in agg.items()}
        series = [(c, pfa_grid, pts[0]["pd"], "o-") for c, pts in agg.items()]
    else:
        head = ["x", "sinr_db_mean", "sinr_db_std", "n", "ci_ok_frac", "time_s_mean", "engine"]
        per = {c: [[r["x"], r["sinr_db_mean"], r["sinr_db_std"], r["n"], r["ci_ok_frac"], r["time_s_mean"],
                    r["engine"]] for r in pts] for c, pts in agg.items()}
        series = [(c, [r["x"] for r in pts], [r["sinr_db_mean"] for r in pts], "o-") for c, pts in agg.items()]
    comb = write_table(out / f"{name}.csv", ["curve"] + head, [[c] + row for c, rows in per.items() for row in rows])
    paths = [write_table(out / f"{name}_{_slug(c)}.csv", head, rows) for c, rows in per.items()]
    png = out / f"{name}.png"
    with figure(png, figsize=(5.5, 4), dpi=110) as (fig, ax):
        for c, x, y, fmt in series:
            (ax.semilogx if name == "fig7" else ax.plot)(x, y, fmt, label=c)
        ax.set_xlabel("Pfa" if name == "fig7" else xlabel)
        ax.set_ylabel("Pd" if name == "fig7" else "radar SINR [dB]")
        n0 = next(iter(agg.values()))[0]["n"]
        ax.set_title(f"paper A {name} (n = {n0} realisations per point)", fontsize=9)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
    return [comb, png] + paths


PAPER_TABLE1 = {32: (0.414, 0.168), 64: (3.490, 0.976), 128: (22.136, 6.734)}   # A's Table I: ADMM-MM, Proposed [s]


def table1(out_dir, quick: bool = False, workers: int = 1, n: int | None = None, seed: int = 2025,
           Ns=(32, 64, 128), mm_n_max: int | None = None, executor: str = "local",
           scheduler: str | None = None, n_paper: int | None = None, clock: str = "wall",
           n_paper_torch: int | None = None) -> list:
    """Table I as the paper states it: mean wall time per design (batch 1, one thread, this machine) at
    N = 32/64/128 of ADMM-MM (full run to its stopping rule) and of the paper-size network
    (``unfolded-paper``: T, J, R = 75, 8, 10, compact DFP (29a); the classical solver of that size when no
    weights are shipped — same cost), plus our defaults (``unfolded`` 20/2/5 and its 4-layer lite cut) as
    extra rows; speed-up ratios beside the paper's. Inference includes the feasibility layer and the CI
    repair; the A.10 start point is excluded from every method (shared). ``n_paper`` (default ``n``)
    designs time the paper-size network with the default (:mod:`isac_opt.paper_a.unfold.fastnet`) inference engine and
    ``n_paper_torch`` (default 1; 0: none) with the torch step function, the baseline in the same run.
    ``clock="cpu"`` times every design with this process's CPU time
    (``time.process_time``; on a VM shared with other jobs, wall time measures the other jobs too; the
    solvers here are single-threaded, so CPU time = wall time on an idle core). Measured in one process (``workers``/``executor``/``scheduler``
    are accepted and ignored: timings must not share cores)."""

    import torch
    torch.set_num_threads(1)
    from .admm_mm import admm_mm
    from .core import start_point
    from .methods import get_net
    from .unfolded import DEFAULT_INIT, LITE_CFG, LITE_LAYERS, PAPER_CFG, design_starts
    from ..unfold import ConstantParams
    n = n if n is not None else (1 if quick else 10)
    n_paper = n_paper if n_paper is not None else n
    n_paper_torch = n_paper_torch if n_paper_torch is not None else 1
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    rows = []
    for N in Ns:
        scn = ScenarioA(N=N)
        net = get_net(scn, required=False)
        pnet = get_net(scn, required=False, kind="paper-a_paper")
        kw = {"net": net} if net is not None else {"cfg": LITE_CFG, "params": ConstantParams(**DEFAULT_INIT)}
        cfg_p = PAPER_CFG if not quick else __import__("dataclasses").replace(PAPER_CFG, T=2)
        kwp = {"net": pnet} if pnet is not None and not quick else {"cfg": cfg_p, "params": ConstantParams(**DEFAULT_INIT)}
        sd = point_seed(seed, "table1", N)
        t_mm, t_un, t_lite, t_pap, t_pt = [], [], [], [], []

        def timed(fn, wall_of=lambda r: r[2]):
            c0 = time.process_time()
            r = fn()
            return (time.process_time() - c0) if clock == "cpu" else wall_of(r)
        for i in range(n):
            ch = draw_channels(scn, realisation_rng(sd, 2 * i))
            s = start_point(scn, ch, "ris", realisation_rng(sd, 2 * i + 1))
            if i == 0:
                design_starts(scn, [s], "ris", **kw)          # warm-up
            t_un.append(timed(lambda: design_starts(scn, [s], "ris", **kw)))
            if net is not None:
                t_lite.append(timed(lambda: design_starts(scn, [s], "ris", n_layers=LITE_LAYERS, **kw)))
            if i < n_paper:
                t_pap.append(timed(lambda: design_starts(scn, [s], "ris", **kwp)))
            if i < n_paper_torch:
                t_pt.append(timed(lambda: design_starts(scn, [s], "ris", engine="torch", **kwp)))
            t_mm.append(timed(lambda: admm_mm(scn, ch, s.X0, s.phi0, n_max=mm_n_max if mm_n_max is not None
                                              else (15 if quick else 2000)), lambda r: r.time_s))
        mm = float(np.mean(t_mm))
        pm, pp = PAPER_TABLE1.get(N, (float("nan"), float("nan")))
        rows.append({"N": N, "admm_mm_s": mm, "admm_mm_std": float(np.std(t_mm)),
                     "paper_net_s": float(np.mean(t_pap)), "paper_net_std": float(np.std(t_pap)),
                     "ratio_paper_net": mm / float(np.mean(t_pap)), "n_paper_net": len(t_pap),
                     "paper_net_engine": "unfolded-paper" if (pnet is not None and not quick) else "classical 75/8/10",
                     "paper_net_torch_s": float(np.mean(t_pt)) if t_pt else float("nan"),
                     "n_paper_net_torch": len(t_pt),
                     "unfolded_s": float(np.mean(t_un)), "unfolded_std": float(np.std(t_un)),
                     "ratio": mm / float(np.mean(t_un)),
                     "lite_s": float(np.mean(t_lite)) if t_lite else float("nan"),
                     "ratio_lite": mm / float(np.mean(t_lite)) if t_lite else float("nan"), "n": n,
                     "engine": "unfolded" if net is not None else "classical",
                     "A_admm_mm_s": pm, "A_proposed_s": pp, "A_ratio": pm / pp})
    f = write_records(out / "table1.csv", rows, fieldnames=list(rows[0]))
    md = out / "table1.md"
    lines = [f"Table I (detection), mean s per design (batch 1, {clock} clock); machine: {_machine()}, torch threads 1, float64, "
             f"n = {n} per N (paper-size network: {n_paper}; torch engine: {n_paper_torch})\n", "| N | " + " | ".join(str(r["N"]) for r in rows) + " |",
             "|---|" + "---|" * len(rows),
             "| ADMM-MM | " + " | ".join(f"{r['admm_mm_s']:.3f}" for r in rows) + " |",
             "| Proposed, paper size (75/8/10, DFP) | " + " | ".join(f"{r['paper_net_s']:.3f}" for r in rows) + " |",
             "| ratio ADMM-MM / paper size | " + " | ".join(f"{r['ratio_paper_net']:.2f}x" for r in rows) + " |",
             "| paper size, torch engine (baseline) | " + " | ".join(f"{r['paper_net_torch_s']:.3f}" for r in rows) + " |",
             "| paper A: ADMM-MM | " + " | ".join(f"{r['A_admm_mm_s']:.3f}" for r in rows) + " |",
             "| paper A: Proposed | " + " | ".join(f"{r['A_proposed_s']:.3f}" for r in rows) + " |",
             "| paper A: ratio | " + " | ".join(f"{r['A_ratio']:.1f}x" for r in rows) + " |",
             "| ours: unfolded (20/2/5) | " + " | ".join(f"{r['unfolded_s']:.3f}" for r in rows) + " |",
             "| ratio (unfolded) | " + " | ".join(f"{r['ratio']:.1f}x" for r in rows) + " |",
             "| ours: unfolded-lite (4 layers) | " + " | ".join(f"{r['lite_s']:.3f}" for r in rows) + " |",
             "| ratio (lite) | " + " | ".join(f"{r['ratio_lite']:.1f}x" for r in rows) + " |",
             "| t(128)/t(64), paper size | " + (f"{rows[-1]['paper_net_s'] / rows[-2]['paper_net_s']:.2f} (paper A: 6.9)"
                                                if len(rows) >= 2 else "") + " |"]
    md.write_text("\n".join(lines) + "\n")
    return [f, md]


def _target(name):
    def run(out_dir, quick: bool = False, workers: int = 1, **kw):
        return run_sweep(name, out_dir, quick=quick, workers=workers, **kw)
    return run


fig4, fig5, fig6, fig7 = (_target(n) for n in ("fig4", "fig5", "fig6", "fig7"))


class _SummaryJob:
    def __init__(self, scn, sd, jobs):
        self.scn, self.sd, self.jobs = scn, sd, jobs

    def __call__(self, task):
        idx, curves = task
        return self.jobs[curves]((self.scn, self.sd, idx))


def summary(out_dir, n: int = 200, n_mm: int = 50, workers: int = 1, seed: int = 2025, chunk: int = 25,
            executor: str = "local", scheduler: str | None = None) -> dict:
    """Default-scenario comparison used for the acceptance numbers (docs/detection.md):
    the three ``Prop.`` curves on ``n`` realisations, ADMM-MM and Radar-only on the first ``n_mm`` of them
    (same realisations, so the ADMM-MM gap is also reported paired). Resumable per chunk."""
    scn = ScenarioA()
    out = Path(out_dir) / "summary"
    out.mkdir(parents=True, exist_ok=True)
    sd = point_seed(seed, "fig4", 2)          # the same realisations as Fig. 4's P = 20 dBW point
    tasks = [(idx, list(_UNF), "unf") for idx in split(n, chunk)] + [(idx, list(_MM), "mm") for idx in split(n_mm, 5)]
    mm_kw = {"n_max": 2000}
    jobs = {tuple(c): _ChunkJob(c, mm_kw, [1e-3]) for c in (list(_UNF), list(_MM))}
    chunks = [Chunk(f"{tag}_{idx[0]}-{idx[-1]}", (idx, tuple(curves)),
                    {"scenario": scn.to_dict(), "point_seed": sd, "indices": idx, "curves": curves, "mm_kw": mm_kw,
                     "pfa_grid": [1e-3]}) for idx, curves, tag in tasks]
    results = run_chunked("summary", _SummaryJob(scn, sd, jobs), chunks, out / "chunks", seed, executor=executor,
                          workers=workers, scheduler=scheduler, desc="summary")
    rows = {}
    for (idx, curves, _), r in zip(tasks, results):
        for c in curves:
            rows.setdefault(c, []).extend(zip(idx, r[c]["rows"]))
    res = {}
    for c, lst in rows.items():
        lst.sort(key=lambda z: z[0])
        s = np.array([z[1]["sinr_db"] for z in lst])
        res[c] = {"n": len(lst), "sinr_db_mean": float(s.mean()), "sinr_db_sem": float(s.std() / math.sqrt(len(s))),
                  "ci_ok_frac": float(np.mean([z[1]["ci_ok"] for z in lst])),
                  "time_s_mean": float(np.mean([z[1]["time_s"] for z in lst]))}
        if c == "Prop. w/ RIS":
            res[c]["sinr_db_mean_first_n_mm"] = float(s[:n_mm].mean())
    (out / "summary.json").write_text(json.dumps(res, indent=1))
    return res


_DEPTHS = (1, 2, 3, 4, 6, 8, 10, 12, 16, 20)


def _layers_chunk(task) -> dict:
    """Per-realisation SINR (dB, before/after the CI repair) of one network, trained and untrained (its
    classical constant steps, same structure), at every depth in ``depths``; plus seconds per layer."""
    scn, sd, idx, kind, depths = task[:5]
    engine = task[5] if len(task) > 5 else "torch"
    import torch
    torch.set_num_threads(1)
    from .core import make_batch, start_point
    from .methods import get_net
    from ..unfold import repair_ci, solve
    from dataclasses import replace as _rep
    with cold_solves():
        starts = [start_point(scn, draw_channels(scn, realisation_rng(sd, 2 * i)), "ris",
                              realisation_rng(sd, 2 * i + 1)) for i in idx]
    b = make_batch(scn, starts, "ris")
    net = get_net(scn, required=True, kind=kind)
    params = net.classical_params()
    one = _rep(net.cfg, T=1)
    if engine != "torch":                      # the inference engine of run_batch (fastnet), layer by layer
        from ..unfold.fastnet import NumpyNet
        e_n, e_c = NumpyNet(net.cfg, net=net), NumpyNet(one, params=params)
        e_n.jit = e_c.jit = engine == "jit"
        from ..unfold.fastnet import _problem_of
        e_n._tables(), e_c._tables(), _problem_of(b)       # built once, outside the timed layers
        if engine == "jit":                                # load the compiled kernel before timing
            from ..unfold.fastnet_jit import warm
            warm()

        def run_n(st, t):
            return e_n.forward(b, state=st, layers=[t])

        def run_c(st):
            return e_c.forward(b, state=st, layers=[0])
    else:
        def run_n(st, t):
            return net(st, b.objective, b.constraint, layers=[t])

        def run_c(st):
            return solve(st, b.objective, b.constraint, one, params)[0]

    def db(st):
        xr, _ = repair_ci(b.constraint, st.x, st.phi, b.state0.x)
        return ((10 * torch.log10(b.problem.sinr(st.x, st.phi))).tolist(),
                (10 * torch.log10(b.problem.sinr(xr, st.phi))).tolist())

    out = {"trained": {}, "untrained": {}, "sec_per_layer": {"trained": 0.0, "untrained": 0.0}}
    with torch.no_grad():
        st_n, st_c = b.state0, b.state0
        for t in range(max(depths)):
            t0 = time.perf_counter()
            st_n = run_n(st_n, t)
            t1 = time.perf_counter()
            st_c = run_c(st_c) if t < net.cfg.T else st_c
            t2 = time.perf_counter()
            out["sec_per_layer"]["trained"] += (t1 - t0) / len(idx)
            out["sec_per_layer"]["untrained"] += (t2 - t1) / len(idx)
            if t + 1 in depths:
                out["trained"][str(t + 1)] = db(st_n)
                out["untrained"][str(t + 1)] = db(st_c)
    for k in out["sec_per_layer"]:
        out["sec_per_layer"][k] /= max(depths)
    return out


def _ci(v) -> tuple:
    """Mean and 95 % CLT half-width of a sample."""
    v = np.asarray(v, dtype=float)
    return float(v.mean()), float(1.96 * v.std(ddof=1) / math.sqrt(len(v))) if len(v) > 1 else float("nan")


def layers_curve(out_dir, quick: bool = False, workers: int = 1, n: int | None = None, seed: int = 2025,
                 nets: str = "unfolded,unfolded-paper", chunk: int = 25, executor: str = "local",
                 scheduler: str | None = None, engine: str = "auto") -> list:
    """Beyond the paper — does learning pay? Held-out SINR vs number of layers t for each shipped network
    (``nets``: ``unfolded`` = the default 20/2/5 network, ``unfolded-paper`` = the paper-size 75/8/10 DFP
    network, trained for its first ``layers_trained`` layers) truncated at t, and for the *untrained*
    network of the same structure and depth (its classical constant steps). Realisations: the Fig. 4
    P = 20 dBW point's seeds (never used in training); per depth the mean with its 95 % CLT interval and
    the paired difference trained − untrained with its interval, before and after the CI repair; seconds
    per layer per design (one thread) with inference ``engine``: "auto" = what ``run_batch`` uses (the numba
    kernel per sample when numba is installed, else numpy batched), "jit", "numpy" or "torch" (batched step
    function). Chunked and resumable through :mod:`isac_opt.repro` (the engine is part of the chunk key).
    """
    from .unfolded import KINDS
    from ..unfold.fastnet import HAVE_JIT
    if engine not in ("auto", "jit", "numpy", "torch"):
        raise MethodError(f"engine: expected one of auto, jit, numpy, torch, got {engine!r}")
    if engine == "auto":
        engine = "jit" if HAVE_JIT else "numpy"
    if engine == "jit" and not HAVE_JIT:
        raise MethodError("engine: 'jit' needs numba (pip install -c constraints.txt numba)")
    n = n if n is not None else (4 if quick else 200)
    scn = ScenarioA(N=16) if quick else ScenarioA()
    sd = point_seed(seed, "fig4", 2)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    rows, paths = [], []
    for name in [s for s in nets.split(",") if s]:
        from .methods import get_net
        kind = KINDS[name]
        net = get_net(scn, required=False, kind=kind)
        if net is None:
            print(f"detect-layers: no weights for {name}; skipped")
            continue
        import json as _json
        from .unfolded import default_weights_path, load_net
        meta = load_net(default_weights_path(kind), scn, kind)[1]
        trained = int(meta.get("info", {}).get("layers_trained", net.cfg.T))
        depths = [d for d in _DEPTHS if d <= max(trained, 1) and d <= net.cfg.T]
        if quick:
            depths = depths[:2]
        chunks = [Chunk(f"{name}_i{idx[0]}-{idx[-1]}", (scn, sd, idx, kind, depths, engine),
                        {"scenario": scn.to_dict(), "point_seed": sd, "indices": idx, "net": name,
                         "weights_meta": _json.dumps(meta, sort_keys=True), "depths": depths, "engine": engine})
                  for idx in split(n, chunk)]
        res = run_chunked("detect-layers", _layers_chunk, chunks, out / "chunks", seed, executor=executor,
                          workers=workers, scheduler=scheduler, desc=f"detect-layers {name}")
        spl = {k: float(np.mean([r["sec_per_layer"][k] for r in res])) for k in ("trained", "untrained")}
        for d in depths:
            tr = [np.concatenate([r["trained"][str(d)][j] for r in res]) for j in (0, 1)]
            un = [np.concatenate([r["untrained"][str(d)][j] for r in res]) for j in (0, 1)]
            row = {"net": name, "engine": engine, "layers": d, "steps": d * net.cfg.J * net.cfg.R * 2, "n": len(tr[0]),
                   "layers_trained": trained, "s_per_design_trained": spl["trained"] * d,
                   "s_per_design_untrained": spl["untrained"] * d}
            for j, tag in ((0, ""), (1, "_repaired")):
                row[f"trained{tag}_db"], row[f"trained{tag}_ci95"] = _ci(tr[j])
                row[f"untrained{tag}_db"], row[f"untrained{tag}_ci95"] = _ci(un[j])
                row[f"gain{tag}_db"], row[f"gain{tag}_ci95"] = _ci(tr[j] - un[j])
            rows.append(row)
    if not rows:
        raise MethodError("detect-layers: no shipped detection network fits the scenario")
    f = write_records(out / "layers.csv", rows, fieldnames=list(rows[0]))
    png = out / "layers.png"
    with figure(png, figsize=(6, 4.2), dpi=110) as (fig, ax):
        for name, mk in (("unfolded", "o"), ("unfolded-paper", "s")):
            rr = [r for r in rows if r["net"] == name]
            if not rr:
                continue
            x = [r["layers"] for r in rr]
            ax.errorbar(x, [r["trained_repaired_db"] for r in rr], [r["trained_repaired_ci95"] for r in rr],
                        fmt=mk + "-", capsize=2, label=f"{name}, trained")
            ax.errorbar(x, [r["untrained_repaired_db"] for r in rr], [r["untrained_repaired_ci95"] for r in rr],
                        fmt=mk + "--", capsize=2, label=f"{name}, untrained (classical steps)")
        ax.set_xlabel("layers t")
        ax.set_ylabel("held-out SINR after CI repair [dB] (95 % CI)")
        ax.set_title(f"SINR vs layers, trained vs untrained (n = {n})", fontsize=9)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7)
    paths += [f, png]
    return paths


if __name__ == "__main__":
    import argparse
    ap = argparse.ArgumentParser(description="default-scenario detection summary")
    ap.add_argument("--out", default="out/reproduce")
    ap.add_argument("--n", type=int, default=200)
    ap.add_argument("--n-mm", type=int, default=50)
    ap.add_argument("--workers", type=int, default=1)
    ap.add_argument("--executor", default="local", choices=["local", "dask"])
    ap.add_argument("--scheduler", default=None, help="Dask scheduler address tcp://host:port")
    a = ap.parse_args()
    res = summary(a.out, a.n, a.n_mm, a.workers, executor=a.executor, scheduler=a.scheduler)
    print(json.dumps(res, indent=1))
