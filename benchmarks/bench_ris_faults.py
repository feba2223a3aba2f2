"""RIS driver fault campaign: >= 10,000 set/apply/verify cycles against the ris1 firmware simulator on a pty.

Faults (defaults): 1 % corrupted bytes in both directions, 1 % dropped acks, 0.5 % silent applies
(ack without applying), and a board reboot every 1,000 cycles landing mid-cycle. Ground truth is the
simulator's committed state; the campaign counts ok / recovered / failed (typed RisError) / silent
mismatches (must be 0) / untyped errors (must be 0). Prints a table with the machine and writes JSON.

Usage::

    .venv/bin/python benchmarks/bench_ris_faults.py [--cycles 10000] [--n 64] [--timeout-ms 20]
        [--json-out out/bench_ris_faults.json] [--quick]
"""
from __future__ import annotations

import argparse
import json
import logging
import os
import sys
import time
from pathlib import Path

import numpy as np

from ris_driver import BoardSpec, open_ris
from ris_driver.campaign import run_campaign
from ris_driver.firmware import Faults
from ris_driver.sim import PtySimulator, create_simulator, remove_simulator
from _bench import machine_line as machine


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--cycles", type=int, default=10_000)
    ap.add_argument("--n", type=int, default=64, help="elements (square board if n is a square) [64]")
    ap.add_argument("--bits", type=int, default=1)
    ap.add_argument("--corrupt", type=float, default=0.01)
    ap.add_argument("--drop", type=float, default=0.01)
    ap.add_argument("--silent", type=float, default=0.005)
    ap.add_argument("--reboot-every", type=int, default=1000, help="cycles between reboots (0: never)")
    ap.add_argument("--timeout-ms", type=float, default=20.0, help="per-attempt reply deadline")
    ap.add_argument("--retries", type=int, default=10)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--quick", action="store_true", help="1,000 cycles (smoke run)")
    ap.add_argument("--json-out", default=str(Path(__file__).resolve().parents[1] / "out" / "bench_ris_faults.json"),
                    help="JSON result file [out/bench_ris_faults.json]; '' for none")
    args, _unknown = ap.parse_known_args(argv)     # run_all.py passes its own flags through
    logging.basicConfig(level=logging.ERROR)       # per-cycle link warnings are counted, not printed
    cycles = 1000 if args.quick else args.cycles
    side = int(round(np.sqrt(args.n)))
    rows, cols = (side, side) if side * side == args.n else (1, args.n)
    board = BoardSpec(rows=rows, cols=cols, bits=args.bits)
    faults = Faults(corrupt=args.corrupt, drop_ack=args.drop, silent_apply=args.silent)
    name = f"bench{os.getpid()}"
    sb = create_simulator(name, board, faults=faults, seed=args.seed)
    try:
        from tqdm import tqdm
        bar = tqdm(total=cycles, unit="cycle", mininterval=1.0, file=sys.stderr)
    except ImportError:
        bar = None
    try:
        with PtySimulator(sb) as ps:
            dev = open_ris(f"serial://{ps.path}?timeout_ms={args.timeout_ms:g}&retries={args.retries}")
            try:
                res = run_campaign(dev, sb, cycles, np.random.default_rng(args.seed + 1),
                                   reboot_every=args.reboot_every, progress=bar.update if bar else None)
                stats = dev.stats.to_dict()
            finally:
                dev.close()
    finally:
        if bar:
            bar.close()
        remove_simulator(name)
    s = res.summary()
    out = dict(benchmark="ris_faults", machine=machine(), transport="pty (os.openpty) + pyserial",
               protocol="ris1", board=board.describe(), faults=dict(corrupt=args.corrupt, drop_ack=args.drop,
               silent_apply=args.silent, reboot_every_cycles=args.reboot_every),
               timeout_ms=args.timeout_ms, retries=args.retries, summary=s, link_stats=stats,
               sim=dict(replies_dropped=sb.replies_dropped, silent_applies=sb.silent_applies,
                        crc_errors_seen_by_device=sb.crc_errors, boots=sb.boots),
               created_utc=time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()))
    rows_ = [
        ("machine", out["machine"]),
        ("transport / protocol", f"{out['transport']} / ris1"),
        ("board", board.describe()),
        ("faults", f"corrupt {args.corrupt:.1%} bytes, drop {args.drop:.1%} acks, silent apply {args.silent:.1%}, "
                   f"reboot every {args.reboot_every} cycles"),
        ("timeout / retries", f"{args.timeout_ms:g} ms / {args.retries}"),
        ("cycles", f"{s['cycles']}"),
        ("ok (of which recovered)", f"{s['ok']} ({s['recovered']})"),
        ("failed (typed RisError)", f"{s['failed']} {s['errors'] or ''}"),
        ("SILENT MISMATCHES", f"{s['silent_mismatches']}"),
        ("untyped errors", f"{s['untyped_errors']}"),
        ("reboots", f"{s['reboots']}"),
        ("configs/s", f"{s['configs_per_s']:.1f}"),
        ("latency p50 / p99 / max", f"{s['p50_ms']:.2f} / {s['p99_ms']:.2f} / {s['max_ms']:.1f} ms"),
        ("link", f"retries {stats['retries']}, timeouts {stats['timeouts']}, bad frames {stats['bad_frames']}, "
                 f"stale {stats['stale_replies']}, nacks {stats['nacks']}, verify mismatches {stats['verify_mismatches']}"),
        ("device saw", f"{sb.crc_errors} CRC errors, {sb.replies_dropped} dropped replies, {sb.silent_applies} silent applies"),
    ]
    w = max(len(k) for k, _ in rows_)
    print("\n".join(f"{k:<{w}} | {v}" for k, v in rows_))
    if args.json_out:
        Path(args.json_out).parent.mkdir(parents=True, exist_ok=True)
        Path(args.json_out).write_text(json.dumps(out, indent=1))
        print(f"wrote {args.json_out}")
    return 0 if s["silent_mismatches"] == 0 and s["untyped_errors"] == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
