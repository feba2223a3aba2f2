"""Benchmark: per-step cost of the compact low-rank DFP (29a) vs the identity step and the dense n × n DFP.

A "step" is one inner iteration of the ADMM-ALM-DFP block (spec A.6 (27)–(30)): Lagrangian value and
gradient, direction H ḡ, CM/UM projection and (for DFP) the cautious update (28)/(29a). Measured on one
ADMM layer of the paper's configuration (J, R = 8, 10, x- and φ-block) of the detection problem at batch 1
(and optionally larger batches), divided by the number of steps J·R·2; min over interleaved repeats of the process CPU time
(time.process_time: other jobs on the shared cores inflate wall time, not this process's CPU time). "algebra" rows time only the
matrix part (direction + update, R − 1 updates) on random vectors of the x-block size n = 2ML.

    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/bench_dfp.py [--Ns 64] [--dtypes float64 float32]
        [--batches 1] [--repeat 5]
"""
from __future__ import annotations

import argparse
import os

os.environ.setdefault("OMP_NUM_THREADS", "1")

import time  # noqa: E402

import torch  # noqa: E402

from isac_opt.paper_a.channels import draw_channels, realisation_rng  # noqa: E402
from isac_opt.paper_a.detect.core import make_batch, start_point  # noqa: E402
from isac_opt.paper_a.scenario import ScenarioA  # noqa: E402
from isac_opt.paper_a.unfold import AdmmConfig, ConstantParams, dfp_update  # noqa: E402
import isac_opt.paper_a.unfold.step as step  # noqa: E402
from isac_opt.paper_a.unfold.dfp import CompactDFP  # noqa: E402
from isac_opt.sysinfo import machine_description  # noqa: E402


_clock = time.process_time     # CPU time of this process: robust to other jobs on the shared cores


def dense_block(z, lagr, step_fn, R, variant, amp):
    """The same R steps with the dense n × n DFP matrix (the pre-compact implementation)."""
    B = z.shape[0]
    Lv, G = lagr(z)
    g, zr = step._rs(G), step._rs(z)
    H = torch.eye(g.shape[1], dtype=g.dtype, device=g.device).expand(B, -1, -1)
    for r in range(R):
        gn = g.norm(dim=1)
        tau = step_fn(r, gn, Lv)
        d = (H @ g[:, :, None])[:, :, 0]
        znew = step.project_modulus(step._cs(zr - tau[:, None] * d, z.shape), amp, z)
        if r == R - 1:
            return znew
        Lv1, G1 = lagr(znew)
        g1, zr1 = step._rs(G1), step._rs(znew)
        H = dfp_update(H, zr1 - zr, g1 - g, gn, variant)
        z, zr, g, Lv = znew, zr1, g1, Lv1
    return z


def _layer_times(b, params, repeat):
    """Min over ``repeat`` interleaved runs of one ADMM layer (J, R = 8, 10) per variant: identity,
    compact DFP (29a), dense DFP (29a). Interleaving + min makes the ratio robust to other jobs on the
    shared cores (the mean is reported too)."""
    cfgs = {"identity": AdmmConfig(T=1, J=8, R=10, dfp_variant="identity"),
            "compact": AdmmConfig(T=1, J=8, R=10, dfp_variant="paper"),
            "dense": AdmmConfig(T=1, J=8, R=10, dfp_variant="paper")}
    ts = {k: [] for k in cfgs}
    orig = step.quasi_newton_block
    with torch.no_grad():
        for rep in range(repeat + 1):
            for k, cfg in cfgs.items():
                step.quasi_newton_block = dense_block if k == "dense" else orig
                try:
                    t0 = _clock()
                    step.admm_layer(b.state0, 0, b.objective, b.constraint, params, cfg)
                    dt = _clock() - t0
                finally:
                    step.quasi_newton_block = orig
                if rep:                                   # rep 0 = warm-up
                    ts[k].append(dt)
    return {k: (min(v), sum(v) / len(v)) for k, v in ts.items()}


def _algebra_time(B, n, R, dtype, kind, repeat):
    g = torch.randn(B, n, dtype=dtype)
    pairs = [(torch.randn(B, n, dtype=dtype), torch.randn(B, n, dtype=dtype)) for _ in range(R)]
    for d, y in pairs:
        y.copy_(d + 0.1 * y)
    gn = torch.zeros(B, dtype=dtype)

    def run():
        if kind == "identity":
            for r in range(R):
                _ = g * 1.0
            return
        if kind == "compact":                 # as in quasi_newton_block: H y = H g1 − H g, rank-2 next direction
            C = CompactDFP(B, n, 1.0, "paper", dtype=dtype)
            d = g
            for r in range(R - 1):
                Hg1 = C.apply(g)
                C.update(pairs[r][0], pairs[r][1], gn, Hy=Hg1 - d)
                U2, s2 = C.U[:, :, -2:], C.s[:, -2:]
                d = torch.baddbmm(Hg1[:, :, None], U2, (torch.bmm(g[:, None, :], U2)[:, 0, :] * s2)[:, :, None])[:, :, 0]
            return
        H = torch.eye(n, dtype=dtype).expand(B, -1, -1)
        for r in range(R):
            _ = (H @ g[:, :, None])[:, :, 0]
            if r < R - 1:
                H = dfp_update(H, *pairs[r], gn)
    run()
    best = float("inf")
    for _ in range(5):                       # min over 5 blocks of repeat/5 runs (robust to other jobs)
        t0 = _clock()
        for _ in range(max(1, repeat // 5)):
            run()
        best = min(best, (_clock() - t0) / max(1, repeat // 5))
    return best / R


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--Ns", type=int, nargs="+", default=[64])
    ap.add_argument("--dtypes", nargs="+", default=["float64", "float32"])
    ap.add_argument("--batches", type=int, nargs="+", default=[1])
    ap.add_argument("--repeat", type=int, default=5)
    a = ap.parse_args(argv)
    torch.set_num_threads(1)
    print(f"machine: {machine_description()}; torch {torch.__version__}; torch threads "
          f"{torch.get_num_threads()}; OMP_NUM_THREADS={os.environ.get('OMP_NUM_THREADS')}")
    print("\nper step, CPU time, min over interleaved repeats (last column: ratio of the means)")
    print("| N | dtype | batch | identity µs/step | compact DFP µs/step | dense DFP µs/step | compact/identity "
          "| dense/identity | compact/identity (means) |")
    print("|---|---|---|---|---|---|---|---|---|")
    params = ConstantParams(0.1, 0.1, 0.3, 0.2)
    for N in a.Ns:
        scn = ScenarioA(N=N)
        for B in a.batches:
            starts = [start_point(scn, draw_channels(scn, realisation_rng(7, 2 * i)), "ris",
                                  realisation_rng(7, 2 * i + 1)) for i in range(B)]
            for dn in a.dtypes:
                dt = getattr(torch, dn)
                b = make_batch(scn, starts, "ris", dtype=dt)
                steps = 8 * 10 * 2
                r = _layer_times(b, params, a.repeat)
                ti, tc, td = (r[k][0] / steps for k in ("identity", "compact", "dense"))
                mi, mc = r["identity"][1] / steps, r["compact"][1] / steps
                print(f"| {N} | {dn} | {B} | {ti * 1e6:.0f} | {tc * 1e6:.0f} | {td * 1e6:.0f} | {tc / ti:.2f}x "
                      f"| {td / ti:.2f}x | {mc / mi:.2f}x |", flush=True)
    from isac_opt.paper_a.unfold.fastnet import HAVE_JIT, NumpyNet
    print("\nsame, with the inference engines of run_batch (isac_opt/paper_a/unfold/fastnet.py), float64, batch 1:")
    print("| N | engine | identity µs/step | compact DFP µs/step | compact/identity (min) | (means) |")
    print("|---|---|---|---|---|---|")
    for N in a.Ns:
        scn = ScenarioA(N=N)
        b = make_batch(scn, [start_point(scn, draw_channels(scn, realisation_rng(7, 0)), "ris",
                                         realisation_rng(7, 1))], "ris")
        for eng in (["jit"] if HAVE_JIT else []) + ["numpy"]:
            nets = {v: NumpyNet(AdmmConfig(T=1, J=8, R=10, dfp_variant=v), params=params)
                    for v in ("identity", "paper")}
            ts = {v: [] for v in nets}
            for rep in range(a.repeat + 1):
                for v, e in nets.items():
                    e.jit = eng == "jit"
                    t0 = _clock()
                    e.forward(b)
                    if rep:
                        ts[v].append(_clock() - t0)
            steps = 8 * 10 * 2
            ti, tc = min(ts["identity"]) / steps, min(ts["paper"]) / steps
            mi, mc = (sum(ts[v]) / len(ts[v]) / steps for v in ("identity", "paper"))
            print(f"| {N} | {eng} | {ti * 1e6:.1f} | {tc * 1e6:.1f} | {tc / ti:.2f}x | {mc / mi:.2f}x |", flush=True)

    print("\nDFP algebra only (direction + update, no gradient), x-block n = 2ML, R = 10:")
    print("| n | dtype | batch | identity µs | compact µs | dense µs |")
    print("|---|---|---|---|---|---|")
    scn = ScenarioA()
    for n in (2 * scn.M * scn.L, 2 * 64, 2 * 128):
        for B in a.batches:
            for dn in a.dtypes:
                dt = getattr(torch, dn)
                r = [_algebra_time(B, n, 10, dt, k, 20 * a.repeat) * 1e6 for k in ("identity", "compact", "dense")]
                print(f"| {n} | {dn} | {B} | {r[0]:.1f} | {r[1]:.1f} | {r[2]:.1f} |", flush=True)


if __name__ == "__main__":
    main()
