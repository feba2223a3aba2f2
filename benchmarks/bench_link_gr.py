"""Benchmark of the live link end to end [issue 13]: the GNU Radio flowgraph (blocks/link_pipeline.py: ARQ
source, GNU Radio CRC/PDU/repack/map blocks, per-frame designer, simulated channel, per-frame STAP,
receivers, CRC check, deframer) against the numpy reference model (isac_opt/link/loop.py), same link state
(default paper-A scenario, channels/φ of ``--seed``), random payload per user, ARQ on.

Reported per (backend, layers): frames, samples/s sustained end to end (all blocks, wall clock from start
until every block has finished), real-time factor at ``--rate``, samples per CPU-second of the whole process
(all threads: the sustained rate on a dedicated core, robust to other jobs on a shared machine), engine
designs/s while the link runs, raw PER and retransmissions, payload delivered byte-exact.
``--cpu N`` pins the whole process (GNU Radio's block threads, the design-ahead worker) to core N.

    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/bench_link_gr.py --cpu 0 [--bytes 100000] [--layers 0 2]
        [--backends sim numpy] [--rate 50e3]
"""
from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path

os.environ.setdefault("OMP_NUM_THREADS", "1")

import numpy as np  # noqa: E402
import torch  # noqa: E402

from isac_opt.sysinfo import machine_line  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--bytes", type=int, default=100_000, help="random payload bytes per user [1e5]")
    ap.add_argument("--layers", type=int, nargs="+", default=[0, 2], help="engine polish layers [0 2]")
    ap.add_argument("--backends", nargs="+", default=["sim", "numpy"], choices=("sim", "numpy"))
    ap.add_argument("--rate", type=float, default=50e3, help="sample rate asked [S/s] for the real-time factor [5e4]")
    ap.add_argument("--batch", type=int, default=64)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--cpu", type=int, default=None, help="pin the process to this core")
    a = ap.parse_args()
    if a.cpu is not None:
        os.sched_setaffinity(0, {a.cpu})
    torch.set_num_threads(1)
    from gnuradio import gr
    gr.logging().set_default_level(gr.log_levels.warn)
    from blocks.link_pipeline import link_pipeline
    from isac_opt.link.loop import run_link
    from isac_opt.scenario import load_scenario
    from isac_testbed.link import link_state
    scn = load_scenario("paper-a")
    state = link_state(scn, a.seed)
    pay = [np.random.default_rng([a.seed, 7, k]).bytes(a.bytes) for k in range(scn.K)]
    cores = sorted(os.sched_getaffinity(0))
    print(machine_line())
    print(f"cores used: {cores}; torch threads 1; float32; batch {a.batch}; {a.bytes} B per user; "
          f"rate asked {a.rate:g} S/s")
    print("| backend | layers | frames | samples/s (wall) | real-time factor | samples per CPU-s | designs/s (engine) "
          "| raw PER (per user) | retransmissions | byte-exact | wall s |")
    print("|---|---|---|---|---|---|---|---|---|---|---|")
    with tempfile.TemporaryDirectory() as tmp:
        sp = Path(tmp) / "state.npz"
        state.save(sp)
        files = []
        for k, p in enumerate(pay):
            f = Path(tmp) / f"p{k}.bin"
            f.write_bytes(p)
            files.append(str(f))
        for layers in a.layers:
            for b in a.backends:
                t0 = time.perf_counter()
                if b == "sim":
                    tb = link_pipeline(str(sp), payload=",".join(files), seed=a.seed, layers=layers, batch=a.batch,
                                       rate=a.rate)
                    wall = tb.run_link()
                    rep, got = tb.report(wall)
                else:
                    res = run_link(scn, state.channels, state.phi, pay, batch=a.batch, rate=a.rate, seed=a.seed,
                                   engine_kw={"dtype": torch.float32, "layers": layers})
                    rep, got = res.report, res.received
                print(f"| {b} | {layers} | {rep['frames']} | {rep['samples_per_s']:,.0f} | {rep['realtime_factor']:.2f} "
                      f"| {rep['samples_per_cpu_s']:,.0f} | {rep['designs_per_s']:,.0f} "
                      f"| {' / '.join(f'{p:.3f}' for p in rep['per'])} | {sum(rep['retransmissions'])} "
                      f"| {rep['payload_match']} | {rep['wall_s']:.1f} (total {time.perf_counter() - t0:.1f}) |",
                      flush=True)


if __name__ == "__main__":
    main()
