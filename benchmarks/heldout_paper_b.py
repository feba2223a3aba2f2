"""Held-out evaluation of every paper-B method (issue 12): feasibility, SCNR with 95 % intervals, ordering.

Seeds 9001-9020 by default: no test, benchmark or tuning run uses them. For each seed the realisation is
drawn once (``np.random.default_rng(seed)``) and every registered paper-B method designs on it. A design
counts as feasible when :meth:`DesignB.violations` is empty (CM, CI per (k, l) half-plane at the stored
tolerance, |phi| <= a_max). Printed: per method the feasibility rate, mean SCNR [dB] with a 95 % t-interval
and a percentile-bootstrap interval, how often the output was not the algorithm's final point (restored /
earlier iterate / fallback), and the paired differences of the ordering proposed > spatial-only > random
RIS >= no RIS (mean difference with 95 % t-interval, and the fraction of seeds where it holds). One CSV row
per (seed, method) goes to ``--csv``.

Exit status 1 (and a FAIL line per design) if any design violates a constraint of its problem or any
method ends below its own feasible start; so the script is a loud check, not only a table.

    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/heldout_paper_b.py --csv heldout_paper_b.csv --jobs 2
"""
from __future__ import annotations

import argparse
import csv
import math
import os
import platform
import sys
import time

import numpy as np

ISAC = ("stap-fp-mm-admm", "spatial-only", "random-ris", "no-ris")
RADAR = ("radar-only", "spatial-only-radar", "random-ris-radar", "no-ris-radar")
ORDER = (("stap-fp-mm-admm", "spatial-only", ">"), ("spatial-only", "random-ris", ">"),
         ("random-ris", "no-ris", ">="))


def _seeds(text: str) -> list[int]:
    out = []
    for part in text.split(","):
        a, _, b = part.partition("-")
        out += list(range(int(a), int(b) + 1)) if b else [int(a)]
    return out


def one_seed(scenario: str, seed: int, methods) -> list[dict]:
    """Design every method on the realisation of ``seed``; one dict per method."""
    from isac_opt.scenario import load_scenario
    from isac_opt.paper_b.methods import run_method
    from isac_opt.paper_b.model import draw_channels
    scn = load_scenario(scenario)
    ch = draw_channels(scn, np.random.default_rng(seed))
    rows = []
    for m in methods:
        t0 = time.perf_counter()
        d = run_method(m, scn, ch, seed)
        el = time.perf_counter() - t0
        viol = d.violations()
        r = d.report()
        h0 = d.extra.get("history_out", [float("nan")])[0]
        rows.append({"seed": seed, "method": m, "scnr_db": r["scnr_db"], "feasible": not viol,
                     "violations": " | ".join(viol), "ci_min_margin": r["ci_min_margin"],
                     "start_scnr_db": 10 * math.log10(h0) if h0 > 0 else float("nan"),
                     "output": d.extra.get("output", ""), "fallback": bool(d.extra.get("fallback", False)),
                     "restore": d.extra.get("restore", "none"), "start_restore": d.extra.get("start_restore", ""),
                     "iterations": d.extra.get("iterations"), "time_s": el,
                     "init_margin": d.extra.get("init_margin")})
    return rows


def t_interval(x) -> tuple[float, float, float]:
    from scipy.stats import t as student
    x = np.asarray(x, float)
    m = float(x.mean())
    if x.size < 2:
        return m, float("nan"), float("nan")
    h = float(student.ppf(0.975, x.size - 1) * x.std(ddof=1) / math.sqrt(x.size))
    return m, m - h, m + h


def boot_interval(x, n: int = 10000, seed: int = 0) -> tuple[float, float]:
    x = np.asarray(x, float)
    rng = np.random.default_rng(seed)
    means = x[rng.integers(0, x.size, size=(n, x.size))].mean(axis=1)
    return float(np.quantile(means, 0.025)), float(np.quantile(means, 0.975))


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--scenario", default="paper-b")
    ap.add_argument("--seeds", default="9001-9020", help="e.g. 9001-9020 or 9001,9005")
    ap.add_argument("--methods", default="all", help="comma list, 'isac' or 'all' [all]")
    ap.add_argument("--csv", default="heldout_paper_b.csv")
    ap.add_argument("--jobs", type=int, default=1, help="worker processes (one seed each)")
    args = ap.parse_args(argv)
    methods = ISAC + RADAR if args.methods == "all" else ISAC if args.methods == "isac" else \
        tuple(args.methods.split(","))
    seeds = _seeds(args.seeds)
    t0 = time.perf_counter()
    if args.jobs > 1:
        from concurrent.futures import ProcessPoolExecutor
        with ProcessPoolExecutor(args.jobs) as ex:
            parts = list(ex.map(one_seed, [args.scenario] * len(seeds), seeds, [methods] * len(seeds)))
    else:
        parts = [one_seed(args.scenario, s, methods) for s in seeds]
    rows = [r for p in parts for r in p]
    wall = time.perf_counter() - t0
    with open(args.csv, "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=list(rows[0]))
        w.writeheader()
        w.writerows(rows)

    print(f"paper-B held-out evaluation | machine: {platform.node()} {platform.machine()} ({os.cpu_count()} cpus) | "
          f"dtype: complex128/float64 | threads: OMP_NUM_THREADS={os.environ.get('OMP_NUM_THREADS', 'unset')} | "
          f"jobs: {args.jobs} | seeds {seeds[0]}..{seeds[-1]} ({len(seeds)}) | wall {wall:.0f} s")
    print(f"{'method':<20} {'feasible':>9} {'SCNR mean [dB]':>15} {'95% t-interval':>20} {'95% bootstrap':>20} "
          f"{'not final':>9} {'fallback':>8} {'time [s]':>9}")
    by = {m: [r for r in rows if r["method"] == m] for m in methods}
    fails = []
    for m in methods:
        rs = by[m]
        x = [r["scnr_db"] for r in rs]
        mean, lo, hi = t_interval(x)
        blo, bhi = boot_interval(x)
        nf = sum(r["feasible"] for r in rs)
        notfinal = sum(r["output"] != "final" for r in rs)
        fb = sum(r["fallback"] for r in rs)
        print(f"{m:<20} {nf:>4}/{len(rs):<4} {mean:>15.3f} {f'[{lo:.3f}, {hi:.3f}]':>20} "
              f"{f'[{blo:.3f}, {bhi:.3f}]':>20} {notfinal:>9} {fb:>8} {np.mean([r['time_s'] for r in rs]):>9.2f}")
        for r in rs:
            if not r["feasible"]:
                fails.append(f"FAIL: {m} seed {r['seed']}: {r['violations']}")
            if r["scnr_db"] < r["start_scnr_db"] - 1e-9:
                fails.append(f"FAIL: {m} seed {r['seed']}: SCNR {r['scnr_db']:.3f} dB below its start "
                             f"{r['start_scnr_db']:.3f} dB")
    print("\nordering (paired per seed, difference in dB):")
    for a, b, op in ORDER:
        if a not in by or b not in by:
            continue
        da = {r["seed"]: r["scnr_db"] for r in by[a]}
        diff = np.array([da[r["seed"]] - r["scnr_db"] for r in by[b]])
        mean, lo, hi = t_interval(diff)
        held = np.mean(diff > 0) if op == ">" else np.mean(diff >= -1e-9)
        ok = lo > 0 if op == ">" else mean >= 0
        print(f"  {a} {op} {b}: mean {mean:+.3f} dB, 95% [{lo:+.3f}, {hi:+.3f}], holds on {held:.0%} of seeds "
              f"-> {'OK' if ok else 'NOT SHOWN'}")
    for m in ISAC:
        rm = m.replace("stap-fp-mm-admm", "radar-only") if m == "stap-fp-mm-admm" else m + "-radar"
        if m in by and rm in by:
            dr = {r["seed"]: r["scnr_db"] for r in by[rm]}
            diff = np.array([dr[r["seed"]] - r["scnr_db"] for r in by[m]])
            print(f"  {rm} >= {m}: mean {diff.mean():+.3f} dB, holds on {np.mean(diff >= -1e-9):.0%} of seeds")
    print(f"\nCSV: {args.csv}")
    for line in fails:
        print(line)
    if fails:
        print(f"FAILED: {len(fails)} design(s) break the contract", file=sys.stderr)
        return 1
    print("all designs satisfy every constraint of their problem")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
