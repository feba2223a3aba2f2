"""Is paper A's detection radar-only baseline (ADMM-MM without CI) an upper bound on SINR per realisation?

Prints, per held-out seed, the SINR [dB] of ``radar-only``, ``admm-mm`` and ``unfolded`` on the default
scenario, and the seeds where radar-only is not the highest (issue 12 review)::

    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/check_radar_only_bound.py --seeds 7001 7021
"""
import argparse
import json

from isac_opt.paper_a.scenario import ScenarioA
from isac_opt.registry import get_method

ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
ap.add_argument("--seeds", type=int, nargs=2, default=(7001, 7021), metavar=("FIRST", "END"))
a = ap.parse_args()
below = []
for seed in range(*a.seeds):
    r = {m: get_method(m, "paper-a").run(ScenarioA(), seed).metrics["sinr_db"]
         for m in ("radar-only", "admm-mm", "unfolded")}
    print(seed, json.dumps(r), flush=True)
    if r["radar-only"] < max(r["admm-mm"], r["unfolded"]):
        below.append(seed)
print(f"radar-only highest on {a.seeds[1] - a.seeds[0] - len(below)}/{a.seeds[1] - a.seeds[0]} seeds; below on {below}")
