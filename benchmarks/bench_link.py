"""Benchmark of the live link's per-frame design engine (isac_opt.link.LinkEngine) against today's
per-frame path (``refit_waveform``: A.10 cvxpy start + the network's x-block, one frame at a time) [issue 13].

One link state (default paper-A scenario, channels of ``--seed``, RIS φ of the A.10 start), random QPSK
frames. Reported per (threads, dtype, batch): designs/s of ``LinkEngine.design`` (warm, per-block codebook
excluded and reported separately), batch latency, mean SINR gain over the codebook start, CI violations
(independent recomputation with ci_margins), and, on the frames also given to ``refit_waveform``, the
engine's mean SINR minus refit's (dB of the linear means).

    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/bench_link.py [--batches 1 16 64 256] [--threads 1 2]
        [--dtypes float32 float64] [--layers 0 2 20] [--n-refit 5] [--min-time 2] [--device cpu|cuda]
"""
from __future__ import annotations

import argparse
import os
import time

os.environ.setdefault("OMP_NUM_THREADS", "1")

import numpy as np  # noqa: E402
import torch  # noqa: E402

from isac_opt.ci import ci_margins, ci_thresholds, psk_constellation  # noqa: E402
from isac_opt.link import LinkEngine  # noqa: E402
from isac_opt.paper_a.channels import draw_channels, effective_user_channels, realisation_rng  # noqa: E402
from isac_opt.paper_a.scenario import ScenarioA  # noqa: E402
from isac_opt.paper_a.starting import init_phi  # noqa: E402
from isac_opt.sysinfo import machine_line  # noqa: E402
from _bench import refit_frames  # noqa: E402


def ci_violations(scn, ch, phi, X, S) -> int:
    gam = ci_thresholds(scn.noise_comm_w, scn.gamma_db, scn.psk_order)
    Z = np.einsum("km,bml->bkl", effective_user_channels(ch, phi), X)
    return int(np.count_nonzero(ci_margins(Z, S, scn.psk_order) / gam[None, :, None] < 1.0 - 1e-6))


def db_of_mean(v) -> float:
    return float(10 * np.log10(np.mean(v)))


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--batches", type=int, nargs="+", default=[1, 16, 64, 256])
    ap.add_argument("--threads", type=int, nargs="+", default=[1, 2])
    ap.add_argument("--dtypes", nargs="+", choices=["float32", "float64"], default=["float32", "float64"])
    ap.add_argument("--layers", type=int, nargs="+", default=[0, 2, 20],
                    help="x-block layers of the polish, one table block each (0: radar-aware codebook lookup only; "
                         "20: all of the shipped network's layers, refit's depth) [0 2 20]")
    ap.add_argument("--n-refit", type=int, default=5, help="frames designed by refit_waveform (the baseline)")
    ap.add_argument("--min-time", type=float, default=2.0, help="seconds of timed engine calls per row")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--device", default="cpu")
    a = ap.parse_args(argv)
    scn = ScenarioA()
    ch = draw_channels(scn, realisation_rng(a.seed, 0))
    phi = init_phi(scn, ch, realisation_rng(a.seed, 1))
    rng = np.random.default_rng(a.seed + 100)
    S_ref = rng.integers(0, scn.psk_order, size=(a.n_refit, scn.K, scn.L))
    const = psk_constellation(scn.psk_order)
    print(f"machine: {machine_line()}")
    print(f"torch {torch.__version__}; OMP_NUM_THREADS={os.environ.get('OMP_NUM_THREADS')}; device {a.device}; "
          f"scenario paper-a default (M={scn.M}, N={scn.N}, K={scn.K}, L={scn.L}, Q={scn.Q}, QPSK)")

    # baseline: today's per-frame path, one frame at a time (float64, 1 thread)
    torch.set_num_threads(1)
    ref_X, ref_sinr, ref_t = refit_frames(scn, ch, phi, S_ref)
    ref_viol = ci_violations(scn, ch, phi, ref_X, const[S_ref])
    ref_t = ref_t[1:] if len(ref_t) > 1 else ref_t               # first call builds the cvxpy problem
    print(f"\nbaseline refit_waveform (float64, 1 thread, batch 1): {ref_t.mean() * 1e3:.0f} ms/design "
          f"= {1 / ref_t.mean():.1f} designs/s over {len(ref_t)} frames; mean SINR {db_of_mean(ref_sinr):.2f} dB; "
          f"CI violations {ref_viol}")

    rows = []
    for th in a.threads:
        torch.set_num_threads(th)
        for dts in a.dtypes:
            dt = getattr(torch, dts)
            eng = LinkEngine(scn, ch, phi, dtype=dt, device=a.device)
            for lay in a.layers:
                eng.layers = min(int(lay), eng.cfg.T) if eng.net is not None else int(lay)
                dref = eng.design(S_ref)
                dsinr = db_of_mean(dref.sinr) - db_of_mean(ref_sinr)
                for B in a.batches:
                    S = rng.integers(0, scn.psk_order, size=(B, scn.K, scn.L))
                    eng.design(S)                                             # warm-up
                    n, t_tot, viol, gain = 0, 0.0, 0, []
                    while t_tot < a.min_time or n == 0:
                        S = rng.integers(0, scn.psk_order, size=(B, scn.K, scn.L))
                        t0 = time.perf_counter()
                        d = eng.design(S)
                        t_tot += time.perf_counter() - t0
                        n += B
                        viol += ci_violations(scn, ch, phi, d.X, d.S)
                        gain.append(d.sinr_db - 10 * np.log10(d.sinr_start))
                    rows.append((th, dts, eng.layers, B, n / t_tot, t_tot / (n / B) * 1e3,
                                 float(np.mean(np.concatenate(gain))), viol, n, dsinr, eng.codebook_seconds))
                    print(f"  threads {th} {dts} layers {eng.layers} batch {B}: {n / t_tot:.1f} designs/s", flush=True)
    print(f"\nengine: {eng.engine_name} (check every {eng.check_every} layers); codebook {eng.n_tuples} "
          f"tuples per coherence block (build time in the table: plain + radar-aware, incl. cvxpy's first compile)")
    print("SINR gain: over the worst-case-margin codebook start (= refit's A.10 start); engine − refit: mean "
          f"SINR on the {a.n_refit} baseline frames")
    print("| threads | dtype | layers | batch | designs/s | batch latency [ms] | SINR gain over start [dB] "
          "| CI violations | frames | engine − refit mean SINR [dB] | codebook build [s] | speed-up vs refit |")
    print("|---|---|---|---|---|---|---|---|---|---|---|---|")
    for th, dts, lay, B, rate, lat, g, v, n, ds, cb in rows:
        print(f"| {th} | {dts} | {lay} | {B} | {rate:.1f} | {lat:.1f} | {g:.2f} | {v} | {n} | {ds:+.3f} | {cb:.2f} "
              f"| {rate * ref_t.mean():.1f}x |")


if __name__ == "__main__":
    main()
