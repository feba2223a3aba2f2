"""Calibration accuracy on the simulated bench (issue 8): chains, cascaded channels, RIS table, clutter.

Prints a table (machine, dtype, threads) and writes CSV + PNG to ``--out`` (default ``out/bench_calibration``):

* ``chains.csv``: per-chain phase / gain / delay errors over many seeds at the default SNR (20 dB, Zadoff-Chu
  length 1021) and an SNR sweep of the RMS errors against the CRB;
* ``cascade_nmse.csv`` + ``cascade_nmse.png``: cascaded-channel NMSE vs number of RIS patterns T for the
  Hadamard (affine), ON/OFF and random 1-bit designs, measured (Monte Carlo) vs LS theory
  NMSE = σ² tr((AᴴA)⁻¹)/‖θ‖²;
* ``ris_table.csv``: per-state reflection table errors;
* ``clutter.csv``: MVDR SINR loss vs frames F (sample, loaded, low-rank) vs the RMB mean loss.
* ``e2e.csv`` (when ``isac_opt`` provides it): paper-A SINR of a design made from *estimated* channels.

Targets (issue 8): chain phase < 1°, gain < 0.1 dB, delay < 0.05 sample; NMSE on the theory curve;
RIS table < 2° / 0.2 dB. Usage: ``.venv/bin/python benchmarks/bench_calibration.py [--quick] [--out DIR]``
"""
from __future__ import annotations

import argparse
import csv
import os
import time
from pathlib import Path

os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

import numpy as np  # noqa: E402

from calibration import sim_bench as sb  # noqa: E402
from calibration.chains import ChainCal, compare_chains  # noqa: E402
from calibration.channels import RisCascadeCal  # noqa: E402
from calibration.clutter import ClutterCovCal, sinr_loss  # noqa: E402
from calibration.ris_states import RisStateCal, compare_tables  # noqa: E402
from _bench import machine_line  # noqa: E402


def write_csv(path: Path, rows: list[dict]) -> None:
    with open(path, "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=list(rows[0]))
        w.writeheader()
        w.writerows(rows)


def bench_chains(n_seeds: int):
    L, n = 1021, 4
    rows, summary = [], []
    for seed in range(n_seeds):
        _, rep, _ = sb.calibrate_sim("chains", seed=seed)
        rows.append({"seed": seed, **{k: rep[k] for k in ("phase_error_deg_max", "gain_error_db_max",
                                                            "delay_error_samples_max")}})
    for key, target in (("phase_error_deg_max", 1.0), ("gain_error_db_max", 0.1), ("delay_error_samples_max", 0.05)):
        v = np.array([r[key] for r in rows])
        summary.append((f"chains {key} (SNR 20 dB, ZC {L}, {n} chains, {n_seeds} seeds)",
                        f"median {np.median(v):.4g}, worst {v.max():.4g}", f"< {target}", bool(v.max() < target)))
    sweep = []
    for snr in (0.0, 10.0, 20.0, 30.0):
        rng = np.random.default_rng(int(snr) + 100)
        dph, dd = [], []
        for _ in range(max(n_seeds // 2, 5)):
            cal = ChainCal(n_chains=n, preamble_len=L)
            truth = sb.draw_chain_truth(rng, n)
            cal.run(sb.measure_chains(cal, truth, snr, rng).data)
            dph += list(np.angle(cal.coefs["gain"] / truth["gain"]))
            dd += list(cal.coefs["delay"] - truth["delay"])
        rho = 10 ** (snr / 10)
        sweep.append({"snr_db": snr, "phase_rms_deg": float(np.degrees(np.sqrt(np.mean(np.square(dph))))),
                      "phase_crb_deg": float(np.degrees(np.sqrt(1 / (2 * L * rho)))),
                      "delay_rms_samples": float(np.sqrt(np.mean(np.square(dd)))),
                      "delay_crb_samples": float(np.sqrt(3 / (2 * np.pi ** 2 * L * rho)))})
    return rows, sweep, summary


def bench_cascade(trials: int, snr_db: float = 10.0):
    N = 15
    designs = {"hadamard": [16, 32, 64, 128, 256], "onoff": [16, 32, 64, 128, 256], "random": [24, 32, 64, 128, 256]}
    rows = []
    rng = np.random.default_rng(8)
    for cb, Ts in designs.items():
        for T in Ts:
            cal = RisCascadeCal(n_elements=N, entry_shape=(), codebook=cb, n_slots=T, seed=T)
            meas, theo = [], []
            for _ in range(trials):
                ch = sb.draw_channels(rng, 1, 1, N)
                ch = {"direct": ch["direct"].reshape(()), "cascade": ch["cascade"].reshape(N)}
                table = sb.draw_ris_table(rng, N)
                run = sb.measure_ris_cascade(cal, ch, table, snr_db, rng)
                cal.run(run.data)
                est = np.concatenate([[cal.coefs["direct"]], cal.coefs["cascade"]])
                tru = np.concatenate([[run.truth["direct"]], run.truth["cascade"]])
                nrm = np.sum(np.abs(tru) ** 2)
                meas.append(np.sum(np.abs(est - tru) ** 2) / nrm)
                theo.append(cal.theory_mse(run.noise_var) / nrm)
            diff = np.array(meas) - np.array(theo)       # E[diff] = 0 exactly (conditional on each draw)
            rows.append({"codebook": cb, "n_patterns": T, "nmse_measured_db": float(10 * np.log10(np.mean(meas))),
                         "nmse_theory_db": float(10 * np.log10(np.mean(theo))),
                         "z_mc": float(np.mean(diff) / (np.std(diff) / np.sqrt(trials)))})
    worst = max(abs(r["nmse_measured_db"] - r["nmse_theory_db"]) for r in rows)
    zmax = max(abs(r["z_mc"]) for r in rows)
    summary = [(f"cascade NMSE vs T: measured vs σ²tr((AᴴA)⁻¹)/‖θ‖² (N={N}, {trials} trials, SNR {snr_db:g} dB)",
                f"worst gap {worst:.2f} dB = {zmax:.1f} MC sigma", "< 4 σ", bool(zmax < 4))]
    return rows, summary


def bench_ris_table(n_seeds: int):
    rows = []
    for seed in range(n_seeds):
        _, rep, _ = sb.calibrate_sim("ris", seed=seed)
        rows.append({"seed": seed, "state_phase_error_deg_max": rep["state_phase_error_deg_max"],
                     "state_gain_error_db_max": rep["state_gain_error_db_max"]})
    ph = np.array([r["state_phase_error_deg_max"] for r in rows])
    g = np.array([r["state_gain_error_db_max"] for r in rows])
    d = sb.DEFAULTS["ris"]
    lab = f"(N={d['n_elements']}, T={d['n_slots']}, K={d['n_elements']} positions, SNR {d['snr_db']:g} dB)"
    return rows, [(f"RIS table phase error {lab}", f"median {np.median(ph):.3g}, worst {ph.max():.3g} deg", "< 2°",
                   bool(ph.max() < 2)),
                  (f"RIS table gain error {lab}", f"median {np.median(g):.3g}, worst {g.max():.3g} dB", "< 0.2 dB",
                   bool(g.max() < 0.2))]


def bench_clutter(trials: int):
    dim, rows = 16, []
    rng = np.random.default_rng(21)
    d = sb.draw_clutter_cov(rng, dim)
    for F in (20, 32, 64, 128, 256):
        res = {"sample": [], "loaded": [], "lowrank": []}
        for _ in range(trials):
            frames = sb.measure_clutter(d["C"], F, rng).data
            for name, cal in (("sample", ClutterCovCal(dim=dim, loading=0.0)),
                              ("loaded", ClutterCovCal(dim=dim, loading=1e-3)),
                              ("lowrank", ClutterCovCal(dim=dim, method="lowrank", rank=3))):
                cal.run(frames)
                res[name].append(sinr_loss(cal.coefs["C"], d["C"], d["s"]))
        row = {"n_frames": F, "rmb_loss_db": float(-10 * np.log10((F + 2 - dim) / (F + 1)))}
        row.update({f"{k}_loss_db": float(-10 * np.log10(np.mean(v))) for k, v in res.items()})
        rows.append(row)
    worst = max(abs(r["sample_loss_db"] - r["rmb_loss_db"]) for r in rows)
    return rows, [(f"clutter: sample-cov SINR loss vs RMB (dim {dim}, {trials} trials)", f"worst gap {worst:.3f} dB",
                   "≈ 0", bool(worst < 0.3))]


def bench_e2e(n_real: int):
    """Paper-A design from estimated vs true channels (stretch; needs isac_opt.paper_a.starting / radar)."""
    try:
        from calibration.e2e import e2e_sinr
    except ImportError:
        return [], []
    rows = [e2e_sinr(seed) for seed in range(n_real)]
    rows = [r for r in rows if r]
    if not rows:
        return [], []
    gap = np.array([r["sinr_true_db"] - r["sinr_est_db"] for r in rows])
    gap_nocal = np.array([r["sinr_true_db"] - r["sinr_uncal_db"] for r in rows])
    return rows, [(f"e2e paper-A init design: |SINR(true chans) − SINR(estimated)| ({len(rows)} draws, 20 dB)",
                   f"median {np.median(np.abs(gap)):.2f}, worst {np.abs(gap).max():.2f} dB", "< 1 dB",
                   bool(np.abs(gap).max() < 1.0)),
                  ("e2e: SINR lost without chain calibration", f"median {np.median(gap_nocal):.1f}, "
                   f"min {gap_nocal.min():.1f} dB", "(info)", True)]


def plot(out: Path, cascade_rows, chain_sweep, clutter_rows) -> None:
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    fig, ax = plt.subplots(1, 3, figsize=(15, 4.2))
    for cb, mk in (("hadamard", "o"), ("onoff", "s"), ("random", "^")):
        r = [x for x in cascade_rows if x["codebook"] == cb]
        T = [x["n_patterns"] for x in r]
        line, = ax[0].semilogx(T, [x["nmse_theory_db"] for x in r], "-", label=f"{cb}: theory")
        ax[0].semilogx(T, [x["nmse_measured_db"] for x in r], mk, color=line.get_color(), label=f"{cb}: measured")
    ax[0].set(xlabel="number of RIS patterns T", ylabel="NMSE [dB]", title="cascaded channel (N=15)")
    ax[0].legend(fontsize=7)
    s = [x["snr_db"] for x in chain_sweep]
    ax[1].semilogy(s, [x["phase_rms_deg"] for x in chain_sweep], "o", label="phase RMS [deg]")
    ax[1].semilogy(s, [x["phase_crb_deg"] for x in chain_sweep], "-", label="phase CRB [deg]")
    ax[1].semilogy(s, [x["delay_rms_samples"] for x in chain_sweep], "s", label="delay RMS [samples]")
    ax[1].semilogy(s, [x["delay_crb_samples"] for x in chain_sweep], "--", label="delay CRB [samples]")
    ax[1].set(xlabel="SNR [dB]", title="chain calibration (ZC 1021)")
    ax[1].legend(fontsize=7)
    F = [x["n_frames"] for x in clutter_rows]
    for k in ("rmb_loss_db", "sample_loss_db", "loaded_loss_db", "lowrank_loss_db"):
        ax[2].semilogx(F, [x[k] for x in clutter_rows], "-" if k == "rmb_loss_db" else "o-", label=k)
    ax[2].set(xlabel="target-free frames F", ylabel="SINR loss [dB]", title="clutter covariance (dim 16)")
    ax[2].legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(out / "bench_calibration.png", dpi=110)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true", help="fewer seeds / trials")
    ap.add_argument("--out", default="out/bench_calibration")
    args, _ = ap.parse_known_args(argv)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    t0 = time.perf_counter()
    seeds, trials = (10, 40) if args.quick else (50, 200)
    chain_rows, chain_sweep, s1 = bench_chains(seeds)
    cas_rows, s2 = bench_cascade(trials)
    ris_rows, s3 = bench_ris_table(seeds // 2)
    clu_rows, s4 = bench_clutter(trials // 2)
    e2e_rows, s5 = bench_e2e(3 if args.quick else 20)
    for name, rows in (("chains", chain_rows), ("chains_snr_sweep", chain_sweep), ("cascade_nmse", cas_rows),
                       ("ris_table", ris_rows), ("clutter", clu_rows), ("e2e", e2e_rows)):
        if rows:
            write_csv(out / f"{name}.csv", rows)
    plot(out, cas_rows, chain_sweep, clu_rows)
    print(f"machine: {machine_line()}; "
          f"dtype complex128; threads OMP={os.environ.get('OMP_NUM_THREADS')}; wall {time.perf_counter() - t0:.1f} s")
    w = max(len(r[0]) for r in s1 + s2 + s3 + s4 + s5)
    print(f"{'quantity':<{w}}  {'measured':<52} {'target':<9} ok")
    for r in s1 + s2 + s3 + s4 + s5:
        print(f"{r[0]:<{w}}  {r[1]:<52} {r[2]:<9} {'yes' if r[3] else 'NO'}")
    print("cascade NMSE vs T:")
    for r in cas_rows:
        print(f"  {r['codebook']:<9} T={r['n_patterns']:<4} measured {r['nmse_measured_db']:7.2f} dB   "
              f"theory {r['nmse_theory_db']:7.2f} dB   (z = {r['z_mc']:+.2f} MC σ)")
    print("chain SNR sweep:")
    for r in chain_sweep:
        print(f"  SNR {r['snr_db']:4.0f} dB: phase RMS {r['phase_rms_deg']:.3f}° (CRB {r['phase_crb_deg']:.3f}°), "
              f"delay RMS {r['delay_rms_samples']:.4f} (CRB {r['delay_crb_samples']:.4f}) samples")
    print(f"wrote {out}/*.csv and {out}/bench_calibration.png")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
