"""End-to-end measurement of issue 8's "Use" target on the simulated GNU Radio bench.

For each realisation seed: estimate the paper-A user channels through the simulated bench (pilots ×
Hadamard RIS sweep), design from the estimate (``design --channels``), calibrate the hidden TX/RX chains of
``--impair-seed`` (ChainCal, Zadoff-Chu preamble), then run the bench flowgraph in the TRUE channels with
the hidden chain errors, with and without the calibration files, and compare the measured radar output
SINR with the SINR of the design made from the true channels. Prints one table row per seed and writes a
CSV; every step is one of the ``isac-testbed`` commands (see ``docs/calibration.md``)::

    python benchmarks/bench_calibration_e2e.py --seeds 0 1 2 3 4 --impair-seed 7 --frames 2000 --out out/cal_e2e
"""
from __future__ import annotations

import argparse
import csv
import dataclasses
import sys
from pathlib import Path

import numpy as np


def run_one(seed: int, impair_seed: int, frames: int, out: Path, method: str = "init",
            snr_db: float = 20.0) -> dict:
    from blocks.pipeline import sim_pipeline
    from isac_opt.bench.stap import estimate_sinr
    from isac_opt.paper_a.scenario import ScenarioA
    from isac_opt.registry import get_method
    from calibration.chains import ChainCal, compare_chains
    from calibration.sim_bench import measure_chains
    from calibration.store import make_key
    from calibration.use import (bench_chain_truth, bench_key, emulator_impairments, estimate_paper_a_channels,
                      sim_sdr_id)

    out.mkdir(parents=True, exist_ok=True)
    scn = ScenarioA()
    est, truth, crep = estimate_paper_a_channels(scn, seed, snr_db=snr_db)
    m = get_method(method, "paper-a")
    d_est, d_true = m.run(scn, seed, channels=est), m.run(scn, seed)
    p_est, p_true, p_world = out / f"d_est_{seed}.npz", out / f"d_true_{seed}.npz", out / f"world_{seed}.npz"
    d_est.save(p_est)
    d_true.save(p_true)
    dataclasses.replace(d_est, channels=dataclasses.replace(truth, S=d_est.channels.S)).save(p_world)
    M = scn.M
    key = make_key(hardware_ids={"sdr": sim_sdr_id(impair_seed)}, lo_hz=5.8e9, fs_hz=2e6)
    cal_err = {}
    for side in ("tx", "rx"):
        t = bench_chain_truth(impair_seed, M, side)
        cal = ChainCal(n_chains=M, side=side)
        cal.run(measure_chains(cal, t, snr_db, np.random.default_rng([impair_seed, seed, 2])).data)
        cal.save(out / f"{side}_{impair_seed}", key=key)
        cal_err[side] = compare_chains(cal.coefs, t)
    imp = emulator_impairments(bench_chain_truth(impair_seed, M, "tx"), bench_chain_truth(impair_seed, M, "rx"))
    bkey = bench_key(sdr=sim_sdr_id(impair_seed), fs_hz=2e6, lo_hz=5.8e9)

    def bench(design, world=None, **kw):
        tb = sim_pipeline(str(design), frames, seed=seed, world=world, **kw)
        tb.run()
        r = tb.det.results()
        e = estimate_sinr(r["stat"][r["target"] == 0], r["stat"][r["target"] == 1])
        e["ser"] = float(np.mean(tb.rx.totals()["ser"]))
        return e

    runs = {"true": bench(p_true),
            "est_cal": bench(p_est, str(p_world), impairments=imp, tx_cal=str(out / f"tx_{impair_seed}"),
                             rx_cal=str(out / f"rx_{impair_seed}"), cal_key=bkey),
            "est_uncal": bench(p_est, str(p_world), impairments=imp)}
    row = {"seed": seed, "impair_seed": impair_seed, "frames": frames,
           "sinr_true_design_db": d_true.report()["sinr_db"], "sinr_est_design_db": d_est.report()["sinr_db"],
           "direct_nmse_db": crep["direct_nmse_db"], "cascade_nmse_db": crep["cascade_nmse_db"],
           "chain_phase_err_deg": max(cal_err["tx"]["phase_error_deg_max"], cal_err["rx"]["phase_error_deg_max"])}
    for k, r in runs.items():
        row[f"meas_{k}_db"] = r["sinr_db"]
        row[f"meas_{k}_lo_db"] = r["lo_db"]
        row[f"meas_{k}_hi_db"] = r["hi_db"]
        row[f"ser_{k}"] = r["ser"]
    row["gap_cal_db"] = row["sinr_true_design_db"] - row["meas_est_cal_db"]
    row["loss_uncal_db"] = row["sinr_true_design_db"] - row["meas_est_uncal_db"]
    return row


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(prog="python benchmarks/bench_calibration_e2e.py", description=__doc__.split("\n\n")[0])
    ap.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    ap.add_argument("--impair-seed", type=int, default=7)
    ap.add_argument("--frames", type=int, default=2000)
    ap.add_argument("--method", default="init")
    ap.add_argument("--out", default="out/cal_e2e")
    a = ap.parse_args(argv)
    from gnuradio import gr
    gr.logging().set_default_level(gr.log_levels.warn)
    out = Path(a.out)
    rows = []
    try:
        from tqdm import tqdm
        it = tqdm(a.seeds, desc="e2e", file=sys.stderr)
    except ImportError:  # pragma: no cover
        it = a.seeds
    for s in it:
        rows.append(run_one(s, a.impair_seed, a.frames, out, a.method))
    cols = ["seed", "sinr_true_design_db", "sinr_est_design_db", "meas_true_db", "meas_est_cal_db",
            "meas_est_cal_lo_db", "meas_est_cal_hi_db", "meas_est_uncal_db", "gap_cal_db", "loss_uncal_db", "ser_true",
            "ser_est_cal", "ser_est_uncal"]
    print(" | ".join(f"{c:>12.12}" for c in cols))
    for r in rows:
        print(" | ".join((f"{r[c]:12.2f}" if not c.startswith("ser") else f"{r[c]:12.2e}") if isinstance(r[c], float) else f"{r[c]:>12}" for c in cols))
    gaps = np.array([r["gap_cal_db"] for r in rows])
    loss = np.array([r["loss_uncal_db"] for r in rows])
    print(f"mean gap (true design - measured est+cal): {gaps.mean():.2f} dB; "
          f"mean loss without calibration: {loss.mean():.2f} dB  ({len(rows)} seeds, {a.frames} frames each)")
    out.mkdir(parents=True, exist_ok=True)
    with open(out / "e2e.csv", "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=list(rows[0]))
        w.writeheader()
        w.writerows(rows)
    print(f"csv: {out / 'e2e.csv'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
