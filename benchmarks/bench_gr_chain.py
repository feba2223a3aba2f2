"""Throughput of the simulated headless bench chain (GNU Radio, M = 6, one CPU core).

Prints samples/s (aggregate over the M antenna streams, i.e. items/s × M) for: the SLP source alone,
source → channel, source → channel → detector + user receivers (end to end), and the per-block cost
derived from the differences. Goal: ≥ 2 MS/s aggregate end to end.

    .venv/bin/python benchmarks/bench_gr_chain.py [--frames 40000] [--cores 1]
"""
from __future__ import annotations

import argparse
import os
import tempfile
import time

import numpy as np
from _bench import machine_line  # noqa: E402


def _design(path):
    from isac_opt.paper_a import starting  # noqa: F401
    from isac_opt.paper_a.scenario import ScenarioA
    from isac_opt.registry import get_method
    d = get_method("init", "paper-a").run(ScenarioA(), 0)
    d.save(path)
    return d


def _time(tb):
    t = time.perf_counter()
    tb.run()
    return time.perf_counter() - t


def main():
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--frames", type=int, default=40000)
    ap.add_argument("--cores", type=int, default=1, help="CPU cores to pin the process to [1]")
    ap.add_argument("--quick", action="store_true", help="4000 frames (smoke run)")
    a, _ = ap.parse_known_args()        # run_all.py passes its own arguments to every benchmark
    if a.quick:
        a.frames = min(a.frames, 4000)
    if hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(0, set(sorted(os.sched_getaffinity(0))[: a.cores]))
    from gnuradio import blocks as grblocks
    from gnuradio import gr
    from blocks.pipeline import sim_pipeline
    from blocks.ris_isac_channel import ris_isac_channel
    from blocks.slp_source import slp_source

    path = os.path.join(tempfile.mkdtemp(prefix="bench_gr_"), "design.npz")
    d = _design(path)
    M, K = d.scenario.M, d.scenario.K
    rows = []

    tb = gr.top_block()
    src = slp_source(design=path, frames=a.frames)
    src.set_min_output_buffer(16384)
    tb.connect(src, grblocks.null_sink(gr.sizeof_gr_complex * M))
    t_src = _time(tb)
    n_items = a.frames * src.F + 1

    tb = gr.top_block()
    src = slp_source(design=path, frames=a.frames)
    src.set_min_output_buffer(16384)
    ch = ris_isac_channel(design=path)
    ch.set_min_output_buffer(16384)
    tb.connect(src, ch)
    tb.connect((ch, 0), grblocks.null_sink(gr.sizeof_gr_complex * K))
    tb.connect((ch, 1), grblocks.null_sink(gr.sizeof_gr_complex * M))
    t_ch = _time(tb)

    tb = sim_pipeline(path, a.frames)
    t_all = _time(tb)
    assert tb.det.results()["frame"].size == a.frames

    rate = lambda t: n_items * M / t
    rows.append(("slp_source -> null", t_src, rate(t_src)))
    rows.append(("source -> ris_isac_channel -> null", t_ch, rate(t_ch)))
    rows.append(("end to end (+ stap_detector + user_receiver)", t_all, rate(t_all)))
    rows.append(("  ris_isac_channel alone (difference)", t_ch - t_src, n_items * M / max(t_ch - t_src, 1e-9)))
    rows.append(("  detector + receivers alone (difference)", t_all - t_ch, n_items * M / max(t_all - t_ch, 1e-9)))
    print(f"machine: {machine_line()}, "
          f"cores used: {len(os.sched_getaffinity(0)) if hasattr(os, 'sched_getaffinity') else '?'}, "
          f"dtype: complex64 ports / complex128 inside, threads: GNU Radio thread-per-block, "
          f"GNU Radio {gr.version()}, numpy {np.__version__}")
    print(f"M = {M}, K = {K}, L = {d.scenario.L}, frame = {n_items // a.frames} samples, frames = {a.frames}")
    print(f"{'chain':48s} {'time [s]':>9s} {'aggregate MS/s':>15s}")
    for name, t, r in rows:
        print(f"{name:48s} {t:9.2f} {r / 1e6:15.2f}")


if __name__ == "__main__":
    main()
