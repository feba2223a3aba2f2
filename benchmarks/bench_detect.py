"""Benchmark of paper A's detection designs: unfolded network vs ADMM-MM (CPU).

Latency: wall time per design at batch 1 with ONE torch/BLAS thread (warm, A.10 start point excluded —
it is shared by both methods). Throughput: designs/s of the unfolded network at the best of a few batch
sizes. ADMM-MM runs to its stopping rule (res_th = 5e-4, n_max = 2000, Clarabel).

    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/bench_detect.py [--n 3] [--Ns 32 64 128]
        [--dtype float64|float32] [--batches 1 8 32 128] [--paper] [--no-mm]

``--paper`` also times the paper-size classical solver (T, J, R = 75, 8, 10, dense DFP (29a)) at batch 1.
"""
from __future__ import annotations

import argparse
import os

os.environ.setdefault("OMP_NUM_THREADS", "1")

import numpy as np  # noqa: E402
import torch  # noqa: E402

from isac_opt.paper_a.channels import draw_channels, realisation_rng  # noqa: E402
from isac_opt.paper_a.scenario import ScenarioA  # noqa: E402
from isac_opt.paper_a.detect.admm_mm import admm_mm  # noqa: E402
from isac_opt.paper_a.detect.core import make_batch, start_point  # noqa: E402
from isac_opt.paper_a.detect.methods import get_net  # noqa: E402
from isac_opt.paper_a.detect.unfolded import DEFAULT_INIT, LITE_CFG, PAPER_CFG, run_batch  # noqa: E402
from isac_opt.paper_a.unfold import ConstantParams  # noqa: E402
from isac_opt.sysinfo import machine_description as _machine  # noqa: E402




def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--n", type=int, default=3, help="designs per N for the latency means")
    ap.add_argument("--Ns", type=int, nargs="+", default=[32, 64, 128])
    ap.add_argument("--dtype", choices=["float64", "float32"], default="float64")
    ap.add_argument("--batches", type=int, nargs="+", default=[1, 8, 32, 128])
    ap.add_argument("--paper", action="store_true", help="also time the paper-size classical solver")
    ap.add_argument("--no-mm", action="store_true", help="skip ADMM-MM")
    a = ap.parse_args(argv)
    torch.set_num_threads(1)
    dtype = getattr(torch, a.dtype)
    print(f"machine: {_machine()}; torch {torch.__version__}; threads: torch {torch.get_num_threads()}, "
          f"OMP_NUM_THREADS={os.environ.get('OMP_NUM_THREADS')}; dtype {a.dtype}; device cpu")
    rows = []
    for N in a.Ns:
        scn = ScenarioA(N=N)
        net = get_net(scn, required=False)
        if net is not None:
            net = net.to(dtype)
            kw, eng = {"net": net}, f"unfolded (shipped: T,J,R={net.cfg.T},{net.cfg.J},{net.cfg.R}, {net.cfg.dfp_variant})"
        else:
            kw, eng = {"cfg": LITE_CFG, "params": ConstantParams(**DEFAULT_INIT)}, "classical lite"
        nb = max(max(a.batches), a.n)
        starts = [start_point(scn, draw_channels(scn, realisation_rng(7, 2 * i)), "ris", realisation_rng(7, 2 * i + 1))
                  for i in range(nb)]
        run_batch(make_batch(scn, starts[:1], "ris", dtype=dtype), "ris", **kw)       # warm-up
        lat = []
        for s in starts[:a.n]:
            b = make_batch(scn, [s], "ris", dtype=dtype)
            lat.append(run_batch(b, "ris", **kw)[3])
        thr = {}
        for bs in a.batches:
            b = make_batch(scn, starts[:bs], "ris", dtype=dtype)
            thr[bs] = bs / run_batch(b, "ris", **kw)[3]
        best = max(thr, key=thr.get)
        row = {"N": N, "engine": eng, "unf_lat": np.mean(lat), "unf_thr": thr[best], "best_batch": best, "thr": thr}
        if net is not None:
            from isac_opt.paper_a.detect.unfolded import LITE_LAYERS
            lt = [run_batch(make_batch(scn, [s], "ris", dtype=dtype), "ris", net=net, n_layers=LITE_LAYERS)[3]
                  for s in starts[:a.n]]
            row["lite_lat"] = np.mean(lt)
        if a.paper:
            b = make_batch(scn, starts[:1], "ris", dtype=dtype)
            row["paper_lat"] = run_batch(b, "ris", cfg=PAPER_CFG, params=ConstantParams(**DEFAULT_INIT))[3]
        if not a.no_mm:
            tm, it = [], []
            for s in starts[:a.n]:
                r = admm_mm(scn, s.channels, s.X0, s.phi0)
                tm.append(r.time_s)
                it.append(r.iterations)
            row["mm_lat"], row["mm_it"] = np.mean(tm), np.mean(it)
        rows.append(row)
        print(f"  N={N}: done", flush=True)
    print()
    print(f"| N | unfolded latency [s] | lite (4 layers) latency [s] | unfolded throughput [designs/s] (batch) "
          f"| ADMM-MM latency [s] (iters) | ratio ADMM-MM/unfolded | ratio ADMM-MM/lite | paper-size classical [s] |")
    print("|---|---|---|---|---|---|---|---|")
    for r in rows:
        mm = f"{r['mm_lat']:.3f} ({r['mm_it']:.0f})" if "mm_lat" in r else "–"
        ratio = f"{r['mm_lat'] / r['unf_lat']:.1f}x" if "mm_lat" in r else "–"
        pp = f"{r['paper_lat']:.2f}" if "paper_lat" in r else "–"
        lite = f"{r['lite_lat']:.3f}" if "lite_lat" in r else "–"
        rl = f"{r['mm_lat'] / r['lite_lat']:.1f}x" if ("mm_lat" in r and "lite_lat" in r) else "–"
        print(f"| {r['N']} | {r['unf_lat']:.3f} | {lite} | {r['unf_thr']:.1f} ({r['best_batch']}) | {mm} | {ratio} "
              f"| {rl} | {pp} |")
    if len(rows) > 1:
        by = {r["N"]: r["unf_lat"] for r in rows}
        if 64 in by and 128 in by:
            print(f"\nt(N=128)/t(N=64) unfolded = {by[128] / by[64]:.2f}")
    print(f"engine: {rows[0]['engine']}; throughput per batch size: "
          + "; ".join(f"N={r['N']}: " + ", ".join(f"{k}:{v:.1f}/s" for k, v in r['thr'].items()) for r in rows))


if __name__ == "__main__":
    main()
