"""Radar over per-frame varying waveforms: measured vs predicted SINR and (Pfa, Pd) vs the model [issue 13].

Driver around the link's own parts (the numpy loop ``isac_opt.link.loop.run_link`` reports only the mean
SINRs, not the per-frame statistics): random QPSK payload frames → :class:`isac_opt.link.LinkEngine`
(per-frame designs, chunks of ``--batch``) → the sample stream (L slots + guard per frame) →
:class:`isac_opt.bench.channel.ChannelEmulator` (target in even frames, fresh Swerling-I-like RCS α ~ CN(0, ξ0²),
fresh clutter RCS) → per-frame MVDR filter of the waveform actually sent → z_f = |w_fᴴy_f|²/(w_fᴴC_f w_f).
Analysis: :mod:`isac_opt.link.radar_stats` (measured SINR with a CLT interval vs the mean predicted per-frame
SINR; empirical (Pfa, Pd) at η = −ln Pfa with Clopper–Pearson intervals, Bonferroni over the points, vs the
varying-waveform model Pd = mean_f Pfa^{1/(1+SINR_f)}).

Held out: the link states (``--seeds``) and capture noise seeds are not used by any test.

    OMP_NUM_THREADS=1 nice .venv/bin/python benchmarks/link_radar.py --frames 4000 --seeds 101 102 \
        [--layers 2] [--out benchmarks/results/link_radar]

Writes OUT.json (everything), OUT.csv (one row per seed and Pfa) and OUT.png (ROC with intervals).
"""
from __future__ import annotations

import argparse
import csv
import json
import os
import time
from pathlib import Path

os.environ.setdefault("OMP_NUM_THREADS", "1")

import numpy as np  # noqa: E402

from isac_opt.link import offline as off  # noqa: E402
from isac_opt.link import radar_stats as rs  # noqa: E402
from isac_opt.paper_a.scenario import ScenarioA  # noqa: E402
from isac_opt.sysinfo import machine_line  # noqa: E402

PFA = (1e-1, 3e-2, 1e-2, 3e-3, 1e-3)


def run_one(scn, seed: int, frames: int, settings, capture_seed: int, mix_start: bool = False) -> dict:
    ch, phi = off.link_state(scn, seed)
    rng = np.random.default_rng([seed, 5])
    sym = rng.integers(0, scn.psk_order, size=(frames, scn.K, scn.L))        # random payload symbols
    t0 = time.perf_counter()
    eng = off.make_engine(scn, ch, phi, settings)
    des = off.design_frames(scn, ch, phi, sym, settings, engine=eng)
    t_design = time.perf_counter() - t0
    X = des.X
    if mix_start:
        # a wider SINR spread: a random half of the frames is sent with its codebook start (the A.10
        # worst-case-margin waveform, also CM and CI-feasible, ~5 dB lower SINR) instead of the polished design
        sel = np.random.default_rng([seed, 6]).random(frames) < 0.5
        X = X.copy()
        X[sel] = eng.start_waveforms(sym[sel])[0]
    gap, Fs = off.frame_len(scn)
    x = off.tx_samples(X, gap)
    users, radar, present = off.simulate_capture(scn, ch, phi, x, Fs, np.random.default_rng([capture_seed, 11]))
    # the radar uses the waveforms as transmitted (complex64 stream), as the decoder does
    X = np.transpose(x.reshape(frames, Fs, scn.M)[:, :scn.L, :].astype(np.complex128), (0, 2, 1))
    w, sinr = off.frame_mvdr(scn, ch, phi, X)
    z = off.radar_z(scn, w, sinr, radar, Fs)
    est = rs.sinr_estimate(z, present, sinr)
    roc = rs.roc_check(z, present, sinr, np.array(PFA))
    roc_w = rs.roc_check(z, present, sinr, np.array(PFA), method="wilson")
    return {"seed": seed, "capture_seed": capture_seed, "frames": frames, "design_s": t_design,
            "ci_frames_ok": float(des.ok.mean()), "sinr": est, "roc": roc, "roc_wilson_all_in_ci": roc_w["all_in_ci"],
            "z": z, "present": present, "sinr_pred": sinr}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--frames", type=int, default=4000)
    ap.add_argument("--seeds", type=int, nargs="+", default=[101, 102])
    ap.add_argument("--capture-seed", type=int, default=900)
    ap.add_argument("--layers", type=int, default=2)
    ap.add_argument("--batch", type=int, default=256)
    ap.add_argument("--dtype", default="float32")
    ap.add_argument("--out", default="benchmarks/results/link_radar")
    ap.add_argument("--mix-start", action="store_true",
                    help="send a random half of the frames with their codebook start (wider per-frame SINR spread)")
    ap.add_argument("--run-link", action="store_true",
                    help="also run isac_opt.link.loop.run_link on the same link states and frame count and print "
                         "its own (mean-only) radar SINR report next to this driver's")
    a = ap.parse_args(argv)
    scn = ScenarioA()
    settings = off.EncodeSettings(batch=a.batch, layers=a.layers, dtype=a.dtype, threads=1)
    out = Path(a.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    print(machine_line(), f"| float64 analysis, engine {a.dtype} {a.layers} layers, 1 thread")
    res = []
    for i, s in enumerate(a.seeds):
        r = run_one(scn, s, a.frames, settings, a.capture_seed + i, a.mix_start)
        res.append(r)
        e, c = r["sinr"], r["roc"]
        print(f"seed {s}: {a.frames} frames ({e['target_frames']} with target), CI ok {100 * r['ci_frames_ok']:.1f} %, "
              f"designs {r['design_s']:.1f} s; per-frame predicted SINR {e['predicted_min_db']:.2f}..{e['predicted_max_db']:.2f} dB "
              f"(std {e['predicted_std_db']:.2f} dB)")
        print(f"  SINR measured {e['measured_db']:.3f} dB [95% {e['lo_db']:.3f}, {e['hi_db']:.3f}] vs mean predicted "
              f"{e['predicted_db']:.3f} dB: diff {e['diff_db']:+.3f} dB, predicted in CI: {e['predicted_in_ci']}")
        print("  Pfa nominal | Pfa emp [CP]            | Pd emp [CP]              | Pd model (mean_f) | Pd fixed@mean | in CI")
        for j, p in enumerate(PFA):
            print(f"  {p:10.0e}  | {c['pfa_emp'][j]:.4f} [{c['pfa_lo'][j]:.4f},{c['pfa_hi'][j]:.4f}] | "
                  f"{c['pd_emp'][j]:.4f} [{c['pd_lo'][j]:.4f},{c['pd_hi'][j]:.4f}] | {c['pd_model'][j]:.4f}            | "
                  f"{c['pd_fixed_at_mean_sinr'][j]:.4f}        | {bool(c['pfa_in_ci'][j] and c['pd_in_ci'][j])}")
        print(f"  every point on the model curve within its interval (CP, Bonferroni, level {c['level']:.4f}): "
              f"{c['all_in_ci']}; Wilson: {r['roc_wilson_all_in_ci']}; the fixed formula at the mean SINR inside "
              f"the Pd intervals at {int(np.sum(c['pd_fixed_in_ci']))}/{len(PFA)} points")
        if a.run_link:
            import torch
            from isac_opt.link.loop import run_link
            ch, phi = off.link_state(scn, s)
            # random payload bytes filling the frames (64-byte chunks in 72-byte packets), so that its frames
            # carry random symbols like this driver's (idle filler packets would repeat one symbol pattern)
            n_bytes = a.frames * scn.L * 2 // 8 * 64 // 72 - 100
            pay = [np.random.default_rng([s, 7, k]).bytes(n_bytes) for k in range(scn.K)]
            lr = run_link(scn, ch, phi, pay, engine_kw={"dtype": getattr(torch, a.dtype), "layers": a.layers},
                          frames=a.frames, batch=a.batch, seed=a.capture_seed + 100 + i).report
            r["run_link"] = {k: lr[k] for k in ("frames", "target_frames", "sinr_measured_db", "sinr_predicted_db")}
            print(f"  run_link (same link state, {lr['frames']} frames, own noise seed): SINR measured "
                  f"{lr['sinr_measured_db']:.3f} dB vs predicted {lr['sinr_predicted_db']:.3f} dB "
                  f"(diff {lr['sinr_measured_db'] - lr['sinr_predicted_db']:+.3f} dB)")
    with open(str(out) + ".csv", "w", newline="") as f:
        wr = csv.writer(f)
        wr.writerow(["seed", "pfa", "pfa_emp", "pfa_lo", "pfa_hi", "pd_emp", "pd_lo", "pd_hi", "pd_model",
                     "pd_fixed_at_mean_sinr", "sinr_measured_db", "sinr_lo_db", "sinr_hi_db", "sinr_predicted_db"])
        for r in res:
            c, e = r["roc"], r["sinr"]
            for j, p in enumerate(PFA):
                wr.writerow([r["seed"], p, c["pfa_emp"][j], c["pfa_lo"][j], c["pfa_hi"][j], c["pd_emp"][j], c["pd_lo"][j],
                             c["pd_hi"][j], c["pd_model"][j], c["pd_fixed_at_mean_sinr"][j], e["measured_db"],
                             e["lo_db"], e["hi_db"], e["predicted_db"]])
    clean = lambda v: v.tolist() if isinstance(v, np.ndarray) else (bool(v) if isinstance(v, np.bool_) else v)
    js = {"machine": machine_line(), "args": vars(a), "runs": [
        {"seed": r["seed"], "capture_seed": r["capture_seed"], "frames": r["frames"], "design_s": r["design_s"],
         "ci_frames_ok": r["ci_frames_ok"], "sinr": r["sinr"], "roc": {k: clean(v) for k, v in r["roc"].items()},
         "roc_wilson_all_in_ci": r["roc_wilson_all_in_ci"], "run_link": r.get("run_link")} for r in res]}
    Path(str(out) + ".json").write_text(json.dumps(js, indent=1, default=clean))
    _png(str(out) + ".png", res)
    print(f"wrote {out}.json, {out}.csv, {out}.png")
    return 0


def _png(path, res):
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    fig, ax = plt.subplots(1, 2, figsize=(11, 4.5))
    pf = np.logspace(-4, 0, 200)
    for i, r in enumerate(res):
        c = r["roc"]
        sp = r["sinr_pred"][r["present"]]
        ax[0].semilogx(pf, rs.pd_varying(pf, sp), f"C{i}-", lw=1, label=f"seed {r['seed']}: model mean_f Pfa^(1/(1+SINR_f))")
        ax[0].semilogx(pf, rs.pd_fixed(pf, sp.mean()), f"C{i}:", lw=1, label=f"seed {r['seed']}: fixed formula at mean SINR")
        xp = np.maximum(c["pfa_emp"], 1e-4)                 # Pfa_emp = 0 drawn at 1e-4 (log axis)
        xe = np.vstack([xp - np.maximum(c["pfa_lo"], 5e-5), np.maximum(c["pfa_hi"] - xp, 0)])
        ye = np.vstack([c["pd_emp"] - c["pd_lo"], c["pd_hi"] - c["pd_emp"]])
        ax[0].errorbar(xp, c["pd_emp"], xerr=xe, yerr=ye, fmt="o", ms=3, color=f"C{i}",
                       capsize=2, label=f"seed {r['seed']}: measured (CP, Bonferroni)")
        e = r["sinr"]
        ax[1].errorbar([i], [e["measured_db"]], yerr=[[e["measured_db"] - e["lo_db"]], [e["hi_db"] - e["measured_db"]]],
                       fmt="o", color=f"C{i}", capsize=4, label=f"seed {r['seed']}: measured (95%)")
        ax[1].plot([i - 0.3, i + 0.3], [e["predicted_db"]] * 2, "k-", lw=2)
    ax[0].set_xlabel("Pfa"); ax[0].set_ylabel("Pd"); ax[0].legend(fontsize=6); ax[0].set_ylim(min(r["roc"]["pd_lo"].min() for r in res) - 0.03, 1.0)
    ax[0].set_title("ROC over per-frame varying waveforms", fontsize=9)
    ax[1].set_xticks(range(len(res)), [f"seed {r['seed']}" for r in res])
    ax[1].set_ylabel("radar SINR [dB]"); ax[1].legend(fontsize=7)
    ax[1].set_title("measured (mean z1 - mean z0) vs mean predicted (black)", fontsize=9)
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)


if __name__ == "__main__":
    raise SystemExit(main())
