"""Benchmark of paper B's design (spec B.7, B.9; performance_notes section 5).

Measures, on the default scenario (or ``--scenario`` TOML) and one realisation:

1. one full design (``stap-fp-mm-admm``) with the first-order x-step: total time, split by sub-step
   (init, w-step, x-step, phi-step), outer iterations, final SCNR, CI margin;
2. the relaxed (no constant-modulus split) design: monotonicity of SCNR_i (V-15 (i));
3. x-step solvers on identical sub-problems: first-order ADMM vs cvxpy + Clarabel (objective gap and time),
   and ``--compare-iters`` outer iterations of the whole design with each x-solver (SCNR gap in dB).

4. ``--before REV`` (e.g. ``0d11eab``, the pre-issue-12 code): the same design with the code of git revision
   REV (``git archive`` into a temporary directory, run in a subprocess) and with the current code, both
   variants of the phi-projection, interleaved ``--repeats`` times on the same realisation (medians), so the
   before/after comparison shares the machine's load.

Prints a table with machine, dtype and threads. Run single-threaded for comparable numbers:

    OMP_NUM_THREADS=1 OPENBLAS_NUM_THREADS=1 MKL_NUM_THREADS=1 .venv/bin/python benchmarks/bench_paper_b.py
    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/bench_paper_b.py --before 0d11eab --repeats 3 --seed 901
"""
from __future__ import annotations

import argparse
import json
import os
import time

import numpy as np

from _bench import machine_line


def _threads() -> str:
    keys = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS")
    return ", ".join(f"{k}={os.environ.get(k, 'unset')}" for k in keys)


_ONE = """
import json, sys, numpy as np
try:                                   # a revision before the paper_a/ layout (--before), or this tree
    from isac_opt.config import load_scenario
except ImportError:
    from isac_opt.scenario import load_scenario
from isac_opt.paper_b.algorithm import Options, design, init_phi_aligned, init_x_ci, ci_min_margin
from isac_opt.paper_b.model import draw_channels
scn = load_scenario(sys.argv[1]); ch = draw_channels(scn, np.random.default_rng(int(sys.argv[2])))
init_x_ci(ch, init_phi_aligned(ch))                      # compile the cached init problem outside the timing
kw = json.loads(sys.argv[3])
r = design(ch, Options.from_scenario(scn, **kw))
print(json.dumps({"t": r.timings, "scnr_db": float(10 * np.log10(r.scnr)), "it": r.iterations,
                  "margin": float(ci_min_margin(ch, r.X, r.phi)), "rho_final": r.info.get("rho_final")}))
"""


def before_after(scenario: str, seed: int, rev: str, repeats: int) -> list[dict]:
    """Time the default design with the code of git ``rev`` and the current code, interleaved."""
    import statistics
    import subprocess
    import sys
    import tempfile
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    variants = [("before " + rev, None, {}), ("after (exact phi-projection)", root, {}),
                ("after, phi_proj=frozen", root, {"phi_proj": "frozen", "phi_exact_every": 0})]
    with tempfile.TemporaryDirectory() as tmp:
        arch = subprocess.run(["git", "-C", root, "archive", rev, "isac_opt"], check=True, capture_output=True)
        subprocess.run(["tar", "-x", "-C", tmp], input=arch.stdout, check=True)
        res = {v[0]: [] for v in variants}
        for _ in range(repeats):
            for name, path, kw in variants:
                env = dict(os.environ, PYTHONPATH=path or tmp)
                out = subprocess.run([sys.executable, "-c", _ONE, scenario, str(seed), json.dumps(kw)], env=env,
                                     check=True, capture_output=True, text=True, cwd=path or tmp)
                res[name].append(json.loads(out.stdout.strip().splitlines()[-1]))
    rows = []
    for name, _p, _kw in variants:
        rs = res[name]
        med = lambda f: statistics.median(f(r) for r in rs)
        rows.append({"variant": name, "total_s": med(lambda r: r["t"]["total"]),
                     "phi_s": med(lambda r: r["t"]["phi_step"]), "x_s": med(lambda r: r["t"]["x_step"]),
                     "scnr_db": rs[0]["scnr_db"], "ci_min_margin": rs[0]["margin"], "iterations": rs[0]["it"],
                     "rho_final": rs[0]["rho_final"], "repeats": len(rs)})
    return rows


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--scenario", default="paper-b")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--compare-iters", type=int, default=5, help="outer iterations for the x-solver comparison")
    ap.add_argument("--json-out", default=None)
    ap.add_argument("--before", default=None, metavar="REV", help="also time the design of git revision REV")
    ap.add_argument("--repeats", type=int, default=3, help="interleaved repeats for --before [3]")
    ap.add_argument("--only-before-after", action="store_true", help="skip sections 1-3")
    args = ap.parse_args(argv)
    if args.before:
        ba = before_after(args.scenario, args.seed, args.before, args.repeats)
        print(f"paper-B design before/after | machine: {machine_line()} "
              f"| dtype: complex128/float64 | threads: {_threads()} | scenario {args.scenario}, seed {args.seed}, "
              f"medians of {args.repeats} interleaved runs")
        print(f"{'variant':<32} {'total [s]':>9} {'phi [s]':>8} {'x [s]':>7} {'SCNR [dB]':>10} {'CI min m/g':>11} "
              f"{'iters':>6} {'rho_final':>10}")
        for r in ba:
            print(f"{r['variant']:<32} {r['total_s']:>9.2f} {r['phi_s']:>8.2f} {r['x_s']:>7.2f} {r['scnr_db']:>10.3f} "
                  f"{r['ci_min_margin']:>11.4f} {r['iterations']:>6} {r['rho_final']:>10.3g}")
        if args.only_before_after:
            return 0

    from isac_opt.scenario import load_scenario
    from isac_opt.paper_b.algorithm import (Options, _ci_rows_x, build_x_qp, design, gamma_ci, init_phi_aligned,
                                            init_x_ci)
    from isac_opt.paper_b.model import Model, draw_channels
    from isac_opt.paper_b.qp import CvxQP, admm_qp

    scn = load_scenario(args.scenario)
    ch = draw_channels(scn, np.random.default_rng(args.seed))
    init_x_ci(ch, init_phi_aligned(ch))          # warm the cached cvxpy init problem (compile once)
    out = {"machine": machine_line(),
           "cpus": os.cpu_count(), "threads": _threads(), "dtype": "complex128/float64",
           "sizes": dict(Nt=scn.Nt, Nr=scn.Nr, K=scn.K, R=scn.R, N=scn.N, Q=scn.Q, Pc=scn.Pc, L=scn.L, Lr=ch.Lr)}

    # 1. full design (default options)
    res = design(ch, Options.from_scenario(scn))
    out["design"] = {"total_s": res.timings["total"], **{k: v for k, v in res.timings.items() if k != "total"},
                     "iterations": res.iterations, "scnr_db": 10 * np.log10(res.scnr),
                     "ci_min_margin": res.ci_min_margin, "init_margin": res.init_margin}

    # 2. relaxed monotonicity
    rr = design(ch, Options.from_scenario(scn, cm=False))
    h = np.asarray(rr.history)
    out["relaxed"] = {"iterations": rr.iterations, "scnr_db": 10 * np.log10(rr.scnr), "total_s": rr.timings["total"],
                      "min_rel_step": float(np.min(np.diff(h) / h[:-1])) if len(h) > 1 else 0.0}

    # 3a. identical x-sub-problems: ADMM vs Clarabel
    m = Model(ch)
    phi = init_phi_aligned(ch)
    X, _ = init_x_ci(ch, phi)
    W, _ = m.mvdr(X, phi)
    num, den = m.scnr_parts(W, X, phi)
    W, lam = W / np.sqrt(den), num / den
    rows = _ci_rows_x(ch, phi, gamma_ci(ch))
    qp, _ = build_x_qp(m, W, phi, X, lam, rows)
    t0 = time.perf_counter()
    u_f, _, info = admm_qp(qp, eps_abs=1e-7, eps_rel=1e-7)
    t_f = time.perf_counter() - t0
    cvx = CvxQP(ch.Pc * ch.L, ch.Nt, 2 * ch.K, qp.F.shape[1])
    t0 = time.perf_counter()
    u_c = cvx.solve(qp)
    t_c_first = time.perf_counter() - t0
    t0 = time.perf_counter()
    u_c = cvx.solve(qp)
    t_c = time.perf_counter() - t0
    f_f, f_c = qp.objective(u_f), qp.objective(u_c)
    out["x_step"] = {"admm_s": t_f, "admm_iters": info["iters"], "cvxpy_first_s": t_c_first, "cvxpy_resolve_s": t_c,
                     "speedup_vs_resolve": t_c / t_f, "rel_objective_gap": abs(f_f - f_c) / abs(f_c),
                     "violation_admm": qp.violation(u_f), "violation_cvxpy": qp.violation(u_c)}

    # 3b. whole design, a few outer iterations, each x-solver
    k = args.compare_iters
    r_a = design(ch, Options.from_scenario(scn, max_outer=k, tol=0.0, x_solver="admm"))
    r_c = design(ch, Options.from_scenario(scn, max_outer=k, tol=0.0, x_solver="cvxpy"))
    ta, tc = np.array(r_a.info["x_solve_times"]), np.array(r_c.info["x_solve_times"])
    out["compare"] = {"outer_iters": k, "admm_x_solve_median_s": float(np.median(ta)),
                      "cvxpy_first_solve_s": float(tc[0]), "cvxpy_resolve_median_s": float(np.median(tc[1:])),
                      "x_solve_speedup_resolve": float(np.median(tc[1:]) / np.median(ta)),
                      "x_solve_speedup_with_compile": float(tc.sum() / ta.sum()),
                      "scnr_gap_db": float(10 * np.log10(r_a.scnr / r_c.scnr))}

    d, x, c, rl = out["design"], out["x_step"], out["compare"], out["relaxed"]
    print(f"paper-B design benchmark  | machine: {out['machine']} ({out['cpus']} cpus) | dtype: {out['dtype']} "
          f"| threads: {out['threads']}")
    print(f"sizes: {out['sizes']}")
    print(f"{'quantity':<44} {'value':>12}")
    rows_ = [
        ("one design, total [s]", d["total_s"]), ("  init (66)/(67) [s]", d["init"]),
        ("  w-step (MVDR, Woodbury) [s]", d["w_step"]), ("  x-step (MM + ADMM, first-order) [s]", d["x_step"]),
        ("  phi-step (prox-linear + SOCP projection) [s]", d["phi_step"]),
        ("outer iterations to stop", d["iterations"]), ("final SCNR [dB]", d["scnr_db"]),
        ("CI min margin at CM output (>=1 ok)", d["ci_min_margin"]),
        ("relaxed: iterations", rl["iterations"]), ("relaxed: SCNR [dB]", rl["scnr_db"]),
        ("relaxed: min relative SCNR step (>=-1e-6)", rl["min_rel_step"]),
        ("x-QP ADMM [s]", x["admm_s"]), ("x-QP ADMM iterations", x["admm_iters"]),
        ("x-QP cvxpy+Clarabel first solve [s]", x["cvxpy_first_s"]), ("x-QP cvxpy re-solve [s]", x["cvxpy_resolve_s"]),
        ("x-QP speed-up (re-solve / ADMM)", x["speedup_vs_resolve"]),
        ("x-QP rel. objective gap", x["rel_objective_gap"]),
        (f"in-loop x-QP: ADMM median [s]", c["admm_x_solve_median_s"]),
        (f"in-loop x-QP: cvxpy first (compile) [s]", c["cvxpy_first_solve_s"]),
        (f"in-loop x-QP: cvxpy re-solve median [s]", c["cvxpy_resolve_median_s"]),
        (f"in-loop x-QP speed-up, re-solves", c["x_solve_speedup_resolve"]),
        (f"in-loop x-QP speed-up, incl. compile", c["x_solve_speedup_with_compile"]),
        (f"design {c['outer_iters']} it: SCNR gap admm-cvxpy [dB]", c["scnr_gap_db"]),
    ]
    for name, v in rows_:
        print(f"{name:<44} {v:>12.4g}")
    if args.json_out:
        with open(args.json_out, "w") as f:
            json.dump(out, f, indent=1, default=float)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
