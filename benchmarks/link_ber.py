"""Raw SER/BER of the live link vs the analytic SER/BER of each frame's margins, at noisier operating points
[issue 13: "raw BER ... agreement with the analytic SER within Monte-Carlo error at a noisier operating point"].

Runs the numpy link :func:`isac_opt.link.loop.run_link` (per-frame designs, paper A's channel, user receivers
that decide by angle sector without the symbols) at ``--user-noise-db`` offsets (extra user noise over σ_k²)
and compares, per user, the measured SER and BER with the analytic values (mean over frames of
``ci.ser_analytic`` / ``ci.ber_analytic_qpsk`` of the frame's noise-free points, at the same noise).

Monte-Carlo intervals: given the waveforms, symbol errors are independent Bernoulli(p_{k,l}) — a
Poisson-binomial count with variance ≤ n·p̄(1−p̄), so the binomial Wilson interval on the SER is
conservative. The two bits of a Gray QPSK symbol are dependent: per symbol the bit-error count e ∈ {0,1,2}
has Var e ≤ E e² ≤ 2 E e = 4·BER, so se(BER) ≤ sqrt(BER/n_symbols) (used for a 95 % normal interval).

Held out: the link state seeds (``--seed``) and noise seeds are not used by any test.

    OMP_NUM_THREADS=1 nice .venv/bin/python benchmarks/link_ber.py --noise-db 0 3 6 --frames 2000 --seed 103 \
        [--layers 2] [--out benchmarks/results/link_ber]
"""
from __future__ import annotations

import argparse
import csv
import json
import math
import os
from pathlib import Path

os.environ.setdefault("OMP_NUM_THREADS", "1")

import numpy as np  # noqa: E402
import torch  # noqa: E402

from isac_opt.link import offline as off  # noqa: E402
from isac_opt.link.loop import run_link  # noqa: E402
from isac_opt.link.radar_stats import wilson, z_quantile  # noqa: E402
from isac_opt.paper_a.scenario import ScenarioA  # noqa: E402
from isac_opt.sysinfo import machine_line  # noqa: E402


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--noise-db", type=float, nargs="+", default=[0.0, 3.0, 6.0])
    ap.add_argument("--frames", type=int, default=2000)
    ap.add_argument("--seed", type=int, default=103)
    ap.add_argument("--layers", type=int, default=2)
    ap.add_argument("--out", default="benchmarks/results/link_ber")
    a = ap.parse_args(argv)
    torch.set_num_threads(1)
    scn = ScenarioA()
    ch, phi = off.link_state(scn, a.seed)
    # payload sized to the frames: every symbol carries data (idle packets only fill the last frame)
    n_bytes = a.frames * scn.L * 2 // 8 - 200
    pay = [np.random.default_rng([a.seed, 7, k]).bytes(n_bytes) for k in range(scn.K)]
    q = z_quantile(0.95)
    rows = []
    print(machine_line(), f"| engine float32 {a.layers} layers, 1 thread | seed {a.seed}")
    print("noise dB | user | SER meas [95% Wilson]          | SER analytic | BER meas [95%]                 | BER analytic | in CI (SER, BER)")
    for i, nd in enumerate(a.noise_db):
        res = run_link(scn, ch, phi, pay, engine_kw={"dtype": torch.float32, "layers": a.layers}, frames=a.frames,
                       batch=256, user_noise_db=nd, seed=1000 + 17 * a.seed + i)
        F = res.report["frames"]
        n_sym = F * scn.L
        for k, u in enumerate(res.users):
            s_lo, s_hi = (float(v) for v in wilson(u["ser"] * n_sym, n_sym, 0.95))
            be, ba = u["ber"], u["ber_analytic"]
            se_b = math.sqrt(max(be, ba) / n_sym)
            b_lo, b_hi = max(be - q * se_b, 0.0), be + q * se_b
            row = {"user_noise_db": nd, "user": k, "frames": F, "symbols": n_sym, "ser": u["ser"], "ser_lo": s_lo,
                   "ser_hi": s_hi, "ser_analytic": u["ser_analytic"], "ber": be, "ber_lo": b_lo, "ber_hi": b_hi,
                   "ber_analytic": ba, "per": u["per"], "ser_in_ci": s_lo <= u["ser_analytic"] <= s_hi,
                   "ber_in_ci": b_lo <= ba <= b_hi, "ci_frames_ok": res.report["ci_frames_ok"],
                   "payload_match": u["payload_match"]}
            rows.append(row)
            print(f"{nd:8.1f} | {k:4d} | {u['ser']:.3e} [{s_lo:.3e}, {s_hi:.3e}] | {u['ser_analytic']:.3e}    | "
                  f"{be:.3e} [{b_lo:.3e}, {b_hi:.3e}] | {ba:.3e}    | {row['ser_in_ci']}, {row['ber_in_ci']}")
        print(f"         frames {F}, CI ok {100 * res.report['ci_frames_ok']:.1f} %, PER "
              + ", ".join(f"{u['per']:.3f}" for u in res.users))
    out = Path(a.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    with open(str(out) + ".csv", "w", newline="") as f:
        wr = csv.DictWriter(f, fieldnames=list(rows[0]))
        wr.writeheader()
        wr.writerows(rows)
    Path(str(out) + ".json").write_text(json.dumps({"machine": machine_line(), "args": vars(a), "rows": rows}, indent=1, default=lambda o: o.item() if hasattr(o, "item") else str(o)))
    n_in = sum(r["ser_in_ci"] for r in rows), sum(r["ber_in_ci"] for r in rows)
    print(f"SER analytic inside the 95% interval: {n_in[0]}/{len(rows)}; BER: {n_in[1]}/{len(rows)}")
    print(f"wrote {out}.csv, {out}.json")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
