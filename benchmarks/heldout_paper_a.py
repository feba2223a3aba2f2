"""Held-out evaluation of every paper-A design method (issue 12): feasibility, ordering, DoA optimality.

Seeds 7001–7020 by default — used by no test and by no tuning (``grep -rn 70[0-9][0-9] tests`` finds none).
Per seed s the realisation is ``draw_channels(ScenarioA(), realisation_rng(s, 0))`` (what
``isac-testbed design --scenario paper-a --seed s`` designs for), and every method runs through the registry
exactly as the CLI runs it. Printed (and written as CSV under ``--out``):

* per method: n, share of designs meeting their constraints (CM/UM to 1e-9 and every CI margin ≥ 1; no CI
  for radar-only), mean SINR [dB] and mean CRB [rad²] with bootstrap 95 % intervals, fallbacks to the start;
* detection: unfolded − ADMM-MM and unfolded − no-RIS [dB] (paired, bootstrap), the network's violated
  (k, l) / slots after the ADMM layers ("raw") and after the final feasibility layer ("pre-repair"), the
  SINR cost of the per-slot repair;
* DoA: a reference optimum per realisation: the best of (i) the classical ADMM-PHR solver with ``--ref-T``
  layers (default 300) from three starts — A.10, the detection design, the radar-only design pulled into
  CI — best feasible iterate, and (ii) every certified design of the run; ratios are given against the
  best-known value and against (i) alone; the share of seeds where ``unfolded-doa`` /
  ``classical-doa`` ≤ the detection design's CRB, and mean CRB / mean reference (bootstrap).

    OMP_NUM_THREADS=1 nice .venv/bin/python benchmarks/heldout_paper_a.py --out out/heldout_a [--seeds 7001-7020]
"""
from __future__ import annotations

import argparse
import csv
import platform
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

DETECT = ["unfolded", "unfolded-lite", "admm-mm", "radar-only", "random-ris", "no-ris"]
DOA = ["unfolded-doa", "unfolded-doa-lite", "unfolded-doa-alm", "classical-doa", "unsupervised-doa"]
INIT = ["init", "init-radar-only", "init-random-ris", "init-no-ris"]
NO_CI = {"radar-only", "init-radar-only"}


def boot_mean(v, n_boot=2000, seed=0):
    v = np.asarray(v, float)
    rng = np.random.default_rng(seed)
    b = v[rng.integers(0, v.size, size=(n_boot, v.size))].mean(1)
    lo, hi = np.percentile(b, [2.5, 97.5])
    return float(v.mean()), float(lo), float(hi)


def boot_ratio(a, b, n_boot=2000, seed=0):
    a, b = np.asarray(a, float), np.asarray(b, float)
    rng = np.random.default_rng(seed)
    idx = rng.integers(0, a.size, size=(n_boot, a.size))
    r = a[idx].mean(1) / b[idx].mean(1)
    lo, hi = np.percentile(r, [2.5, 97.5])
    return float(a.mean() / b.mean()), float(lo), float(hi)


def feasible(d, tol=1e-9) -> tuple[bool, str]:
    scn = d.scenario
    cm = float(np.max(np.abs(np.abs(d.X) - scn.amp))) / scn.amp
    um = float(np.max(np.abs(np.abs(d.phi) - 1.0)))
    why = []
    if cm > tol:
        why.append(f"CM {cm:.1e}")
    if um > tol:
        why.append(f"UM {um:.1e}")
    if d.method not in NO_CI and d.metrics["ci_min_margin"] < 1.0 - tol:
        why.append(f"CI margin {d.metrics['ci_min_margin']:.4f}")
    return (not why), "; ".join(why)


def parse_seeds(s):
    out = []
    for part in s.split(","):
        if "-" in part:
            a, b = part.split("-")
            out += list(range(int(a), int(b) + 1))
        else:
            out.append(int(part))
    return out


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seeds", default="7001-7020")
    ap.add_argument("--out", default="out/heldout_paper_a")
    ap.add_argument("--methods", default=",".join(DETECT + DOA + INIT))
    ap.add_argument("--ref-T", type=int, default=300, help="layers of the reference classical DoA solver")
    ap.add_argument("--no-ref", action="store_true", help="skip the reference DoA optimum")
    ap.add_argument("--from-csv", nargs="*", default=None,
                    help="only summarise these designs.csv files (merged; e.g. runs over disjoint seed ranges)")
    a = ap.parse_args(argv)
    import torch
    torch.set_num_threads(1)
    from isac_opt.paper_a.channels import draw_channels, realisation_rng
    from isac_opt.paper_a.scenario import ScenarioA
    from isac_opt.paper_a.crb import crb_doa
    from isac_opt.registry import get_method
    import isac_opt.paper_a.detect.methods  # noqa: F401
    import isac_opt.paper_a.doa.methods as dm
    seeds = parse_seeds(a.seeds)
    methods = [m for m in a.methods.split(",") if m]
    scn = ScenarioA()
    out = Path(a.out)
    out.mkdir(parents=True, exist_ok=True)
    if a.from_csv is not None:
        return report(read_rows(a.from_csv), seeds, methods, scn, out, a.seeds)
    rows = []
    for s in seeds:
        ch = draw_channels(scn, realisation_rng(s, 0))
        for m in methods:
            t0 = time.perf_counter()
            d = get_method(m, "paper-a").run(scn, s)
            dt = time.perf_counter() - t0
            ok, why = feasible(d)
            e = d.extra
            rows.append({"seed": s, "method": m, "feasible": ok, "why": why, "sinr_db": d.metrics["sinr_db"],
                         "crb": d.metrics["crb"], "ci_min_margin": d.metrics["ci_min_margin"], "time_s": dt,
                         "viol_raw": np.sum(e.get("viol_raw", np.nan)),
                         "viol_pre_repair": np.sum(e.get("viol_pre_repair", e.get("ci_violations_before_repair", np.nan))),
                         "slots_pre_repair": e.get("slots_pre_repair", np.nan),
                         "viol_after_projection": e.get("ci_violations_after_projection", np.nan),
                         "sinr_pre_repair_db": e.get("sinr_pre_repair_db", np.nan),
                         "fallback": bool(e.get("fallback", e.get("fallback_to_start", False))),
                         "candidate": e.get("candidate", "")})
            print(f"seed {s} {m:18s} ok={ok} sinr {d.metrics['sinr_db']:6.2f} crb {d.metrics['crb']:.3e} "
                  f"{dt:5.1f}s {why}", file=sys.stderr, flush=True)
        write_rows(out / "designs.csv", rows)          # after every seed: an interrupted run keeps its rows
    if not a.no_ref:      # one batch over all seeds and the three starts (throughput)
        t0 = time.perf_counter()
        chs = [draw_channels(scn, realisation_rng(s, 0)) for s in seeds]
        X, P = dm.design_many("classical-doa", scn, chs, 0, T=a.ref_T,
                              start_kinds=("a10", "detection", "radar"), seeds=seeds)
        dt = (time.perf_counter() - t0) / len(seeds)
        for s, ch, x, p in zip(seeds, chs, X, P):
            rows.append({"seed": s, "method": "reference-doa", "feasible": True, "crb": crb_doa(scn, ch, x, p),
                         "sinr_db": np.nan, "time_s": dt})
            print(f"seed {s} reference-doa crb {rows[-1]['crb']:.3e}", file=sys.stderr, flush=True)
    write_rows(out / "designs.csv", rows)
    report(rows, seeds, methods, scn, out, a.seeds)


def write_rows(path, rows):
    keys = list(dict.fromkeys(k for r in rows for k in r))
    with open(path, "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=keys)
        w.writeheader()
        w.writerows(rows)


def read_rows(paths):
    rows = []
    for p in paths:
        for r in csv.DictReader(open(p)):
            q = {}
            for k, v in r.items():
                if k in ("method", "why", "candidate"):
                    q[k] = v
                elif k in ("feasible", "fallback"):
                    q[k] = v == "True"
                elif k == "seed":
                    q[k] = int(v)
                else:
                    q[k] = float(v) if v not in ("", None) else float("nan")
            rows.append(q)
    return rows


def report(rows, seeds, methods, scn, out, seeds_text):
    methods = methods or list(dict.fromkeys(r["method"] for r in rows if r["method"] != "reference-doa"))
    summary = summarise(rows, seeds, methods, scn.K, scn.L)
    with open(out / "summary.csv", "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["quantity", "value", "ci95_lo", "ci95_hi", "n"])
        w.writerows(summary)
    print(f"\nheld-out paper A, seeds {seeds_text} (n = {len(seeds)}), {platform.processor() or platform.machine()}, "
          f"float64, 1 thread; CSV: {out}/summary.csv")
    for q, v, lo, hi, n in summary:
        iv = f"[{lo:.4g}, {hi:.4g}]" if np.isfinite(lo) else ""
        print(f"{q:62s} {v:12.5g} {iv:26s} n={n}")


def summarise(rows, seeds, methods, K, L):
    by = {(r["seed"], r["method"]): r for r in rows}
    S = []
    nan = float("nan")
    for m in methods:
        rs = [by[(s, m)] for s in seeds if (s, m) in by]
        if not rs:
            continue
        S.append((f"{m}: designs meeting constraints", float(np.mean([r["feasible"] for r in rs])), nan, nan, len(rs)))
        S.append((f"{m}: mean SINR [dB]", *boot_mean([r["sinr_db"] for r in rs]), len(rs)))
        S.append((f"{m}: mean CRB [rad^2]", *boot_mean([r["crb"] for r in rs]), len(rs)))
        S.append((f"{m}: fallbacks to the start", float(np.sum([r.get("fallback", False) for r in rs])), nan, nan, len(rs)))
    def pair(a, b, key):
        return [(by[(s, a)][key], by[(s, b)][key]) for s in seeds if (s, a) in by and (s, b) in by]
    for a_, b_ in (("unfolded", "admm-mm"), ("unfolded", "no-ris"), ("unfolded-lite", "admm-mm")):
        p = pair(a_, b_, "sinr_db")
        if p:
            S.append((f"SINR {a_} - {b_} [dB]", *boot_mean([x - y for x, y in p]), len(p)))
    for m in ("unfolded", "unfolded-lite", "random-ris", "no-ris"):
        rs = [by[(s, m)] for s in seeds if (s, m) in by]
        if rs:
            kl = K * L
            S.append((f"{m}: violated (k,l) after ADMM layers (raw) [%]", *boot_mean([100 * r.get("viol_raw", np.nan) / kl for r in rs]), len(rs)))
            S.append((f"{m}: violated (k,l) pre-repair [%]", *boot_mean([100 * r.get("viol_pre_repair", np.nan) / kl for r in rs]), len(rs)))
            S.append((f"{m}: violated slots pre-repair [%]", *boot_mean([100 * r.get("slots_pre_repair", np.nan) / L for r in rs]), len(rs)))
            S.append((f"{m}: SINR cost of the repair [dB]",
                      *boot_mean([r.get("sinr_pre_repair_db", np.nan) - r["sinr_db"] if r.get("viol_pre_repair", np.nan) != 0 else 0.0 for r in rs]), len(rs)))
    rs = [by[(s, "admm-mm")] for s in seeds if (s, "admm-mm") in by]
    if rs:
        S.append(("admm-mm: violated (k,l) after final projection [%]", *boot_mean([100 * r["viol_after_projection"] / (K * L) for r in rs]), len(rs)))
        S.append(("admm-mm: violated (k,l) pre-repair [%]", *boot_mean([100 * r["viol_pre_repair"] / (K * L) for r in rs]), len(rs)))
    # DoA
    doa_ms = [m for m in DOA if any((s, m) in by for s in seeds)]
    if any((s, "reference-doa") in by for s in seeds):
        ref = {}
        for s in seeds:
            c = [by[(s, m)]["crb"] for m in doa_ms + ["unfolded", "admm-mm", "reference-doa"]
                 if (s, m) in by and by[(s, m)]["feasible"]]
            ref[s] = min(c)
        S.append(("reference DoA optimum: mean CRB [rad^2]", *boot_mean([ref[s] for s in seeds]), len(seeds)))
        S.append(("reference solver alone: mean CRB [rad^2]",
                  *boot_mean([by[(s, "reference-doa")]["crb"] for s in seeds]), len(seeds)))
    else:
        ref = None
    for m in doa_ms:
        p = pair(m, "unfolded", "crb")
        if p:
            S.append((f"{m}: share of seeds with CRB <= detection design's", float(np.mean([x <= y * (1 + 1e-9) for x, y in p])), nan, nan, len(p)))
            S.append((f"{m}: mean CRB / detection design's mean CRB", *boot_ratio([x for x, _ in p], [y for _, y in p]), len(p)))
        if ref is not None:
            v = [by[(s, m)]["crb"] for s in seeds if (s, m) in by]
            r = [ref[s] for s in seeds if (s, m) in by]
            S.append((f"{m}: mean CRB / mean reference optimum", *boot_ratio(v, r), len(v)))
            S.append((f"{m}: mean of per-seed CRB / reference", *boot_mean(np.divide(v, r)), len(v)))
            rs_ = [by[(s, "reference-doa")]["crb"] for s in seeds if (s, m) in by]
            S.append((f"{m}: mean CRB / mean reference solver alone", *boot_ratio(v, rs_), len(v)))
    return S


if __name__ == "__main__":
    main()
