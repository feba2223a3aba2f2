"""Reproduction targets of paper B's figures 4-10 [spec B.10]: ``b-fig4`` ... ``b-fig10``.

Each target is ``run(out_dir, quick=False, workers=1) -> list of written paths`` and writes a CSV and a
PNG (matplotlib, Agg) through the shared harness (:mod:`isac_opt.repro`). Monte-Carlo realisations are
split into chunks; each chunk has its own ``np.random.SeedSequence`` (entropy ``BASE_SEED``, spawn key
(figure, point, chunk)), is computed by :mod:`isac_opt.executor` (joblib loky by default; a Dask cluster
with ``--set executor=dask scheduler=tcp://host:8786``) and stored by the calling process as
``<out_dir>/<target>_chunks/p<point>_c<chunk>_<key digest>.json``, keyed by target, seed, scenario,
methods and software. A stored chunk with that key is reused, so an interrupted run resumes where it
stopped and a changed setting recomputes. Every method sees the same realisations (channels, jitter,
symbols).

``quick=True`` uses a reduced scenario (:data:`QUICK`) with 2 realisations and 3 sweep points so that each
figure runs in well under a minute on one core; the full run uses the scenario's defaults
(``n_realisations`` = 100 per point).
"""
from __future__ import annotations

import json
import math
import os
from pathlib import Path

import numpy as np

from ..repro import Chunk, atomic_write_text, figure, line_plot, run_chunked, write_table
from .model import draw_channels
from .scenario import ScenarioB

BASE_SEED = 20250106
CHUNK = 5
QUICK = dict(Nt=4, Nr=4, K=2, N=8, Pc=4, L=4, max_outer=8, noise_comm_w=(1e-11, 1e-11), gamma_db=(10.0, 10.0))
LABELS = {
    "stap-fp-mm-admm": "multi-RIS, prop., ISAC", "spatial-only": "multi-RIS, [22], ISAC",
    "random-ris": "random RIS, ISAC", "no-ris": "w/o RIS, ISAC",
    "radar-only": "multi-RIS, prop., radar", "spatial-only-radar": "multi-RIS, [22], radar",
    "random-ris-radar": "random RIS, radar", "no-ris-radar": "w/o RIS, radar",
}
ISAC4 = ["stap-fp-mm-admm", "spatial-only", "random-ris", "no-ris"]


_OVERRIDES: dict = {}
_EXEC: dict = {}          # executor options of the running target (isac_opt.executor.run_chunks)


def _base(quick: bool, **kw) -> ScenarioB:
    d = dict(QUICK) if quick else {}
    d.update(_OVERRIDES)
    d.update(kw)
    if "R" in d and "ris_x" not in d:
        from .scenario import default_ris_positions
        d["ris_x"], d["ris_y"] = default_ris_positions(d["R"])
    return ScenarioB(**d)


def _chunk_job(path: str, scn_dict: dict, methods: list, seed_key: tuple, n: int, want_history: bool):
    """Compute one chunk (n realisations x methods) and write its rows as JSON (atomically) to ``path``."""
    atomic_write_text(path, json.dumps(_chunk_rows((scn_dict, methods, seed_key, n, want_history))))
    return path


def _chunk_rows(task) -> list:
    """One chunk's rows; ``task = (scn_dict, methods, seed_key, n, want_history)`` (runs on any executor's
    worker; the caller writes the file, so remote workers need no shared disk)."""
    from ..executor import cold_solves
    with cold_solves():
        return _chunk_rows_(*task)


def _chunk_rows_(scn_dict: dict, methods: list, seed_key: tuple, n: int, want_history: bool) -> list:
    from .methods import ISAC_OF, run_method
    scn = ScenarioB.from_dict(scn_dict)
    ss = np.random.SeedSequence(BASE_SEED, spawn_key=seed_key)
    out = []
    for k, child in enumerate(ss.spawn(n)):
        ch = draw_channels(scn, np.random.default_rng(child))
        seed = int(child.generate_state(1)[0])
        row, done = {}, {}
        for m in sorted(methods, key=lambda m: m in ISAC_OF):     # radar variants after their ISAC designs
            d = done[m] = run_method(m, scn, ch, seed=seed, isac=done.get(ISAC_OF.get(m)))
            r = d.report()
            row[m] = {"scnr_db": r["scnr_db"], "ber": r.get("ber", r["ser"]), "ser": r["ser"],
                      "ci_min_margin": r["ci_min_margin"],
                      "feasible": bool(d.extra.get("ci_feasible_instance", True))}
            if want_history:
                row[m]["history_db"] = [10 * math.log10(max(v, 1e-300)) for v in d.history]
        out.append(row)
    return out


def _run_sweep(name: str, out_dir, points: list, methods: list, quick: bool, workers: int,
               want_history: bool = False) -> list:
    """points: list of (label, ScenarioB). Returns per point the list of realisation rows."""
    out_dir = Path(out_dir)
    fig_id = int(name.split("fig")[-1])
    chunks, owner = [], []
    for i, (_, scn) in enumerate(points):
        n_real = 2 if quick else scn.n_realisations
        for c in range(math.ceil(n_real / CHUNK)):
            n = min(CHUNK, n_real - c * CHUNK)
            task = (scn.to_dict(), methods, (fig_id, i, c), n, want_history)
            chunks.append(Chunk(f"p{i}_c{c}", task, {"scenario": task[0], "methods": methods, "seed_key": task[2],
                                                     "n": n, "want_history": want_history}))
            owner.append(i)
    res = run_chunked(name, _chunk_rows, chunks, out_dir / f"{name}_chunks", BASE_SEED,
                      executor=_EXEC.get("executor", "local"), workers=workers, scheduler=_EXEC.get("scheduler"),
                      desc=name)
    results = [[] for _ in points]
    for i, rows in zip(owner, res):
        results[i] += rows
    return results


def _mean_db(rows, m, key="scnr_db"):
    """Mean over realisations in linear scale, reported in dB (SCNR); mean of the value otherwise."""
    v = np.array([r[m][key] for r in rows], dtype=float)
    if key == "scnr_db":
        return float(10 * np.log10(np.mean(10 ** (v / 10))))
    return float(np.mean(v))


def _write_csv(path: Path, header: list, rows: list) -> Path:
    return write_table(path, header, rows)


def _plot(path: Path, x, series: dict, xlabel: str, ylabel: str, title: str, styles=None) -> Path:
    return line_plot(path, [(lab, x, y, (styles or {}).get(lab, "-"), {"marker": "o", "ms": 3})
                            for lab, y in series.items()], xlabel, ylabel, title)


def _sweep_figure(name, out_dir, quick, workers, xs, make_scn, methods, xlabel, title) -> list:
    points = [(x, make_scn(x)) for x in xs]
    res = _run_sweep(name, out_dir, points, methods, quick, workers)
    out_dir = Path(out_dir)
    table = [[x] + [_mean_db(rows, m) for m in methods] for x, rows in zip(xs, res)]
    csv_p = _write_csv(out_dir / f"{name}.csv", [xlabel] + [f"{m}_scnr_db" for m in methods], table)
    series = {LABELS[m]: [row[1 + j] for row in table] for j, m in enumerate(methods)}
    styles = {LABELS[m]: ("--" if m.endswith("radar") else "-") for m in methods}
    png = _plot(out_dir / f"{name}.png", xs, series, xlabel, "SCNR (dB)", title, styles)
    return [str(csv_p), str(png)]


# --------------------------------------------------------------------------------------------------
def fig4(out_dir, quick=False, workers=1) -> list:
    """Convergence: SCNR vs iteration for a_max in {3, 5, 8} x P in {1, 10} W [spec B.10 Fig. 4]."""
    combos = [(a, p) for a in (3.0, 5.0, 8.0) for p in (1.0, 10.0)]
    if quick:
        combos = [(3.0, 10.0), (8.0, 10.0)]
    points = [(f"a_max={a:g}, P={p:g} W", _base(quick, a_max=a, power_w=p)) for a, p in combos]
    res = _run_sweep("b-fig4", out_dir, points, ["stap-fp-mm-admm"], quick, workers, want_history=True)
    out_dir = Path(out_dir)
    n_it = max(len(r["stap-fp-mm-admm"]["history_db"]) for rows in res for r in rows)
    series, table = {}, []
    for (lab, _), rows in zip(points, res):
        H = np.array([np.pad(h, (0, n_it - len(h)), mode="edge") for h in
                      (np.array(r["stap-fp-mm-admm"]["history_db"]) for r in rows)])
        mean = 10 * np.log10(np.mean(10 ** (H / 10), axis=0))
        series[lab] = mean
        table += [[lab, i + 1, float(v)] for i, v in enumerate(mean)]
    csv_p = _write_csv(out_dir / "b-fig4.csv", ["setting", "iteration", "scnr_db"], table)
    png = _plot(out_dir / "b-fig4.png", np.arange(1, n_it + 1), series, "iteration", "SCNR (dB)",
                "Fig. 4: convergence of the proposed algorithm")
    return [str(csv_p), str(png)]


def fig5(out_dir, quick=False, workers=1) -> list:
    """SCNR vs BS power P (0..20 dBW), 4 schemes x {ISAC, radar-only} [spec B.10 Fig. 5]."""
    xs = [0, 10, 20] if quick else list(range(0, 21, 2))
    methods = ISAC4 + ["radar-only", "spatial-only-radar", "random-ris-radar", "no-ris-radar"]
    return _sweep_figure("b-fig5", out_dir, quick, workers, xs,
                         lambda x: _base(quick, power_w=10 ** (x / 10)), methods, "P (dBW)",
                         "Fig. 5: SCNR vs transmit power")


def fig6(out_dir, quick=False, workers=1) -> list:
    """SCNR vs the RISs' vertical coordinate (20..80 m) [spec B.10 Fig. 6]."""
    xs = [30, 50, 70] if quick else list(range(20, 81, 5))
    return _sweep_figure("b-fig6", out_dir, quick, workers, xs,
                         lambda y: _base(quick, ris_y=(float(y), float(y))),
                         ["stap-fp-mm-admm", "spatial-only", "no-ris"], "RIS y coordinate (m)",
                         "Fig. 6: SCNR vs RIS position")


def fig7(out_dir, quick=False, workers=1) -> list:
    """SCNR vs number of RISs R = 1..4 [spec B.10 Fig. 7]."""
    xs = [1, 2] if quick else [1, 2, 3, 4]
    return _sweep_figure("b-fig7", out_dir, quick, workers, xs, lambda r: _base(quick, R=int(r)), ISAC4,
                         "number of RISs R", "Fig. 7: SCNR vs number of RISs")


def fig8(out_dir, quick=False, workers=1) -> list:
    """(a) SCNR vs LoS speed 0..60 m/s; (b) vs velocity direction at 30 m/s [spec B.10 Fig. 8]."""
    xs = [0, 30, 60] if quick else list(range(0, 61, 10))
    a = _sweep_figure("b-fig8", out_dir, quick, workers, xs, lambda v: _base(quick, target_vel=(0.0, float(v))),
                      ISAC4, "target speed along the LoS (m/s)", "Fig. 8(a): SCNR vs LoS speed")
    ds = [0, 90, 180] if quick else list(range(0, 181, 15))
    mk = lambda psi: _base(quick, target_vel=(30 * math.cos(math.radians(psi)), 30 * math.sin(math.radians(psi))))
    b = _sweep_figure("b-fig88", Path(out_dir), quick, workers, ds, mk, ISAC4,
                      "velocity direction (deg from +x)", "Fig. 8(b): SCNR vs velocity direction")
    # rename the (b) outputs for clarity
    out = []
    for p in b:
        q = p.replace("b-fig88", "b-fig8b")
        os.replace(p, q)
        out.append(q)
    return a + out


def fig9(out_dir, quick=False, workers=1) -> list:
    """ROC Pd vs Pfa (Pd = Pfa^{1/(1+SCNR)}, averaged) at 60/30/0 m/s [spec B.10 Fig. 9, B.4]."""
    speeds = [60.0, 30.0, 0.0]
    methods = ["stap-fp-mm-admm", "no-ris", "spatial-only"]
    points = [(v, _base(quick, target_vel=(0.0, v))) for v in speeds]
    res = _run_sweep("b-fig9", out_dir, points, methods, quick, workers)
    pfa = np.logspace(-6, 0, 61)
    out_dir = Path(out_dir)
    table, series, styles = [], {}, {}
    for v, rows in zip(speeds, res):
        for m in methods:
            s = np.array([10 ** (r[m]["scnr_db"] / 10) for r in rows])
            pd = np.mean(pfa[None, :] ** (1 / (1 + s[:, None])), axis=0)
            lab = f"{LABELS[m]}, v={v:g} m/s"
            series[lab] = pd
            styles[lab] = {60.0: "-", 30.0: "--", 0.0: ":"}[v]
            table += [[m, v, float(a), float(b)] for a, b in zip(pfa, pd)]
    csv_p = _write_csv(out_dir / "b-fig9.csv", ["method", "speed_mps", "pfa", "pd"], table)
    png = line_plot(out_dir / "b-fig9.png", [(lab, pfa, y, styles[lab]) for lab, y in series.items()], "Pfa", "Pd",
                    "Fig. 9: ROC", logx=True, legend_size=6)
    return [str(csv_p), str(png)]


def fig10(out_dir, quick=False, workers=1) -> list:
    """SCNR (left) and BER (right) vs the communication requirement Gamma (0..20 dB) [spec B.10 Fig. 10]."""
    xs = [0, 10, 20] if quick else list(range(0, 21, 2))
    methods = ISAC4
    K = QUICK["K"] if quick else ScenarioB().K
    points = [(g, _base(quick, gamma_db=(float(g),) * K)) for g in xs]
    res = _run_sweep("b-fig10", out_dir, points, methods, quick, workers)
    out_dir = Path(out_dir)
    table = [[g] + [_mean_db(rows, m) for m in methods] + [_mean_db(rows, m, "ber") for m in methods]
             for g, rows in zip(xs, res)]
    csv_p = _write_csv(out_dir / "b-fig10.csv", ["gamma_db"] + [f"{m}_scnr_db" for m in methods]
                       + [f"{m}_ber" for m in methods], table)
    png = out_dir / "b-fig10.png"
    with figure(png) as (fig, ax):
        ax2 = ax.twinx()
        for j, m in enumerate(methods):
            ax.plot(xs, [row[1 + j] for row in table], "-o", ms=3, label=LABELS[m], color=f"C{j}")
            ax2.semilogy(xs, [max(row[1 + len(methods) + j], 1e-12) for row in table], "--", color=f"C{j}")
        ax.set_xlabel("Gamma (dB)")
        ax.set_ylabel("SCNR (dB), solid")
        ax2.set_ylabel("BER, dashed")
        ax.set_title("Fig. 10: radar-communication trade-off", fontsize=9)
        ax.legend(fontsize=7)
    return [str(csv_p), str(png)]


def _with_overrides(fn):
    """Target entry point: ``run(out_dir, quick=False, workers=1, executor="local", scheduler=None,
    **scenario_overrides)`` (executor options: :func:`isac_opt.executor.run_chunks`)."""
    def run(out_dir, quick=False, workers=1, executor="local", scheduler=None, **overrides):
        global _OVERRIDES, _EXEC
        old, _OVERRIDES = _OVERRIDES, dict(overrides)
        old_exec, _EXEC = _EXEC, {"executor": executor, "scheduler": scheduler}
        try:
            return fn(out_dir, quick=quick, workers=int(workers))
        finally:
            _OVERRIDES, _EXEC = old, old_exec
    run.__name__, run.__doc__ = fn.__name__, fn.__doc__
    return run


b_fig4, b_fig5, b_fig6, b_fig7, b_fig8, b_fig9, b_fig10 = (
    _with_overrides(f) for f in (fig4, fig5, fig6, fig7, fig8, fig9, fig10))

TARGETS = {
    "b-fig4": ("paper B Fig. 4: convergence for a_max x P", b_fig4),
    "b-fig5": ("paper B Fig. 5: SCNR vs transmit power, 4 schemes x ISAC/radar", b_fig5),
    "b-fig6": ("paper B Fig. 6: SCNR vs RIS position", b_fig6),
    "b-fig7": ("paper B Fig. 7: SCNR vs number of RISs", b_fig7),
    "b-fig8": ("paper B Fig. 8: SCNR vs target speed and velocity direction", b_fig8),
    "b-fig9": ("paper B Fig. 9: ROC at 60/30/0 m/s", b_fig9),
    "b-fig10": ("paper B Fig. 10: SCNR and BER vs communication requirement", b_fig10),
}
