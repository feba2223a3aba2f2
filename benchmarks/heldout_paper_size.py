"""Held-out SINR of the paper-size detection network (`unfolded-paper`, all 75 layers, certified path:
feasibility layer + repair + start guard) vs `unfolded` on n realisations, and vs ADMM-MM on the first
n_mm of them (paired), at the default scenario (the Fig. 4 P = 20 dBW seeds of ``reproduce detect-layers``,
never used in training). Batched network inference (chunks), one thread; prints a JSON summary with 95 %
CLT half-widths and writes per-realisation rows to OUT/heldout_paper_size.csv.

    OMP_NUM_THREADS=1 nice .venv/bin/python benchmarks/heldout_paper_size.py --out DIR [--n 200] [--n-mm 20]
        [--engine auto|torch|numpy] [--baseline CSV]

``--engine`` picks the inference engine of the networks (run_batch; "auto" = the numpy engine on CPU
float64). ``--baseline`` is the per-realisation CSV of an earlier run on the same realisations (e.g. the torch
engine's, benchmarks/results/heldout_paper_size/heldout_paper_size.csv): the summary then adds the paired
difference of each network to its baseline value, and to the baseline's ADMM-MM column where this run
has none.
"""
from __future__ import annotations

import argparse
import json
import math
import os
import time

os.environ.setdefault("OMP_NUM_THREADS", "1")

import numpy as np  # noqa: E402
import torch  # noqa: E402

from isac_opt.paper_a.channels import draw_channels, realisation_rng  # noqa: E402
from isac_opt.paper_a.design import evaluate_a  # noqa: E402
from isac_opt.paper_a.detect.admm_mm import admm_mm  # noqa: E402
from isac_opt.paper_a.detect.core import start_point  # noqa: E402
from isac_opt.paper_a.detect.methods import get_net  # noqa: E402
from isac_opt.paper_a.detect.reproduce import point_seed  # noqa: E402
from isac_opt.paper_a.detect.unfolded import design_starts  # noqa: E402
from isac_opt.paper_a.scenario import ScenarioA  # noqa: E402
from isac_opt.repro import write_records  # noqa: E402


def _ci(v):
    v = np.asarray(v, float)
    return [float(v.mean()), float(1.96 * v.std(ddof=1) / math.sqrt(len(v)))]


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", required=True)
    ap.add_argument("--n", type=int, default=200)
    ap.add_argument("--n-mm", type=int, default=20)
    ap.add_argument("--chunk", type=int, default=25)
    ap.add_argument("--engine", default="auto", choices=("auto", "torch", "numpy"))
    ap.add_argument("--baseline", default=None)
    a = ap.parse_args(argv)
    torch.set_num_threads(1)
    scn = ScenarioA()
    sd = point_seed(2025, "fig4", 2)
    nets = {"unfolded": get_net(scn, kind="paper-a"), "unfolded-paper": get_net(scn, kind="paper-a_paper")}
    rows = []
    t_net = {k: 0.0 for k in nets}
    for c0 in range(0, a.n, a.chunk):
        idx = list(range(c0, min(c0 + a.chunk, a.n)))
        chs = [draw_channels(scn, realisation_rng(sd, 2 * i)) for i in idx]
        starts = [start_point(scn, ch, "ris", realisation_rng(sd, 2 * i + 1)) for ch, i in zip(chs, idx)]
        res = {}
        for k, net in nets.items():
            t0 = time.process_time()
            res[k] = design_starts(scn, starts, "ris", net=net, engine=a.engine)[0]
            t_net[k] += time.process_time() - t0
        for j, (i, ch, s) in enumerate(zip(idx, chs, starts)):
            row = {"i": i}
            for k in nets:
                m = evaluate_a(scn, s.channels, *res[k][j])
                row[f"{k}_db"] = m["sinr_db"]
                row[f"{k}_ci_ok"] = bool(m["ci_min_margin"] >= 1 - 1e-9)
            if i < a.n_mm:
                r = admm_mm(scn, ch, s.X0, s.phi0, n_max=2000)
                m = evaluate_a(scn, s.channels, r.X, r.phi)
                row["admm_mm_db"] = m["sinr_db"]
                row["admm_mm_ci_ok"] = bool(m["ci_min_margin"] >= 1 - 1e-9)
            rows.append(row)
        print(f"{len(rows)}/{a.n} done", flush=True)
    os.makedirs(a.out, exist_ok=True)
    write_records(os.path.join(a.out, "heldout_paper_size.csv"), rows)
    summ = {"n": len(rows), "n_mm": a.n_mm, "engine": a.engine,
            "cpu_s_per_design_batched": {k: v / len(rows) for k, v in t_net.items()}}
    for k in nets:
        summ[k] = _ci([r[f"{k}_db"] for r in rows])
        summ[f"{k}_ci_ok_frac"] = float(np.mean([r[f"{k}_ci_ok"] for r in rows]))
    mm = [r for r in rows if "admm_mm_db" in r]
    if mm:
        summ["admm_mm_first_n_mm"] = _ci([r["admm_mm_db"] for r in mm])
        for k in nets:
            summ[f"{k}_minus_admm_mm_paired"] = _ci([r[f"{k}_db"] - r["admm_mm_db"] for r in mm])
    summ["paper_minus_unfolded_paired"] = _ci([r["unfolded-paper_db"] - r["unfolded_db"] for r in rows])
    if a.baseline:
        import csv
        with open(a.baseline) as f:
            base = {int(r["i"]): r for r in csv.DictReader(f)}
        both = [r for r in rows if r["i"] in base]
        summ["baseline"] = {"file": a.baseline, "n_paired": len(both)}
        for k in nets:
            summ["baseline"][f"{k}_minus_baseline_paired"] = _ci(
                [r[f"{k}_db"] - float(base[r["i"]][f"{k}_db"]) for r in both])
            bm = [r for r in both if base[r["i"]].get("admm_mm_db") not in (None, "")]
            if bm and not mm:
                summ["baseline"][f"{k}_minus_baseline_admm_mm_paired"] = _ci(
                    [r[f"{k}_db"] - float(base[r["i"]]["admm_mm_db"]) for r in bm])
                summ["baseline"]["n_admm_mm"] = len(bm)
    print(json.dumps(summ, indent=1))
    with open(os.path.join(a.out, "summary.json"), "w") as f:
        json.dump(summ, f, indent=1)


if __name__ == "__main__":
    main()
