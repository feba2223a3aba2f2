"""DoA benchmarks: structured torch CRB (value, value+gradient) vs the numpy reference, one ADMM-PHR layer,
and the time per design of the unfolded DoA network at N = 32/64/128.

Goals (issue 4): time per design within 1.5x of the detection network's at the same N (the detection
network is timed here too when ``isac_opt.registry`` has the ``unfolded`` method); ``unfolded-doa`` (60 layers)
and ``unfolded-doa-lite`` (20 layers) are both timed, with the split start / network / CI repair at N = 64.
Prints a table with machine, dtype, threads. Usage: ``.venv/bin/python benchmarks/bench_doa.py [--repeat N]``
(``--repeat 1`` for a quick run).
"""
import argparse
import os

os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

import numpy as np  # noqa: E402
import torch  # noqa: E402

from isac_opt.paper_a.channels import draw_channels, realisation_rng  # noqa: E402
from isac_opt.paper_a.scenario import ScenarioA  # noqa: E402
from isac_opt.paper_a.crb import crb_doa  # noqa: E402
from isac_opt.paper_a.doa.crb_torch import DoaProblem, crb_torch  # noqa: E402
from isac_opt.paper_a.doa.model import DoaBatch, DoaConfig, run_classical, start_points  # noqa: E402
from _bench import machine_line, timeit  # noqa: E402


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--repeat", type=int, default=20)
    a = ap.parse_args()
    torch.set_num_threads(1)
    rep = a.repeat
    print(f"machine: {machine_line()}, torch {torch.__version__}, "
          f"threads {torch.get_num_threads()}, dtype float64/complex128")
    scn = ScenarioA()
    rng = np.random.default_rng(0)
    ch = draw_channels(scn, rng)
    X = scn.amp * np.exp(2j * np.pi * rng.uniform(size=(scn.M, scn.L)))
    phi = np.exp(2j * np.pi * rng.uniform(size=scn.N))
    pr = DoaProblem.from_channels(scn, [ch])
    u, p = pr.det.u_from_numpy([X]), pr.det.phi_from_numpy([phi])
    rows = [("numpy crb_doa (reference), B=1", timeit(lambda: crb_doa(scn, ch, X, phi), rep * 5))]
    with torch.no_grad():
        rows.append(("torch CRB value, B=1", timeit(lambda: crb_torch(pr, u, p), rep * 5)))

    def vg():
        uu, pp = u.clone().requires_grad_(True), p.clone().requires_grad_(True)
        torch.autograd.grad(crb_torch(pr, uu, pp).sum(), [uu, pp])
    rows.append(("torch CRB value+grad (x, φ) autograd, B=1", timeit(vg, rep * 5)))
    from isac_opt.paper_a.doa.crb_torch import crb_value_grad
    with torch.no_grad():
        rows.append(("torch CRB value+grad (x, φ) closed form, B=1",
                     timeit(lambda: crb_value_grad(pr, u, p, ("x", "phi")), rep * 5)))
    chs = [draw_channels(scn, realisation_rng(1, i)) for i in range(32)]
    pr32 = DoaProblem.from_channels(scn, chs)
    u32 = u.expand(32, -1, -1).clone()
    p32 = p.expand(32, -1).clone()

    def vg32():
        uu, pp = u32.clone().requires_grad_(True), p32.clone().requires_grad_(True)
        torch.autograd.grad(crb_torch(pr32, uu, pp).sum(), [uu, pp])
    rows.append(("torch CRB value+grad, B=32 (per item)", timeit(vg32, rep) / 32))
    for var, J, R in (("identity", 2, 5), ("identity", 10, 10), ("paper", 10, 10)):
        cfg = DoaConfig(T=1, J=J, R=R, dfp_variant=var)
        st = start_points(scn, [ch], "ris", 0)
        b = DoaBatch(scn, [ch], st, cfg)
        rows.append((f"one ADMM-PHR layer J={J} R={R} DFP={var}, B=1", timeit(lambda: run_classical(b), max(1, rep // 10))))
    print(f"{'operation':52s} {'time':>12s}")
    for name, t in rows:
        print(f"{name:52s} {t * 1e3:10.3f} ms")
    # time per design
    from isac_opt.paper_a.doa.methods import WEIGHTS, WEIGHTS_DIR, load_net
    from isac_opt.paper_a.doa.model import repair_ci
    from isac_opt.registry import get_method

    def per_design(name, s, c):
        if name.startswith("unfolded-doa") and not (WEIGHTS_DIR / WEIGHTS[name]).is_file():
            return float("nan")
        try:
            m = get_method(name, "paper-a")
            m.run(s, 1, channels=c)
        except Exception as e:  # noqa: BLE001
            print(f"  ({name} not timed: {e})")
            return float("nan")
        return timeit(lambda: m.run(s, 1, channels=c), max(1, rep // 10))

    # where the time of one unfolded-doa design goes (N = 64)
    if (WEIGHTS_DIR / WEIGHTS["unfolded-doa"]).is_file():
        s = ScenarioA(N=64)
        c = draw_channels(s, realisation_rng(2, 64))
        for name in ("unfolded-doa", "unfolded-doa-lite"):
            if not (WEIGHTS_DIR / WEIGHTS[name]).is_file():
                continue
            net = load_net(name)
            st = start_points(s, [c], "ris", 1)
            b = DoaBatch(s, [c], st, net.cfg, "ris")
            t_s = timeit(lambda: start_points(s, [c], "ris", 1), max(1, rep // 5))
            t_n = timeit(lambda: net.infer(DoaBatch(s, [c], st, net.cfg, "ris")), max(1, rep // 10))
            X, P = b.designs(net.infer(b))
            t_r = timeit(lambda: repair_ci(s, [c], X, P, st), max(1, rep // 5))
            print(f"{name} (T={net.cfg.T}) at N=64: start {t_s * 1e3:.1f} ms, network {t_n * 1e3:.1f} ms, "
                  f"CI repair {t_r * 1e3:.1f} ms")
    print(f"\n{'N':>4s} {'unfolded-doa (s)':>17s} {'unfolded-doa-lite (s)':>22s} {'detection unfolded (s)':>23s} "
          f"{'ratio':>6s} {'ratio lite':>10s}")
    for N in (32, 64, 128):
        s = ScenarioA(N=N)
        c = draw_channels(s, realisation_rng(2, N))
        t_doa = per_design("unfolded-doa", s, c)
        t_lite = per_design("unfolded-doa-lite", s, c)
        t_det = per_design("unfolded", s, c)
        print(f"{N:4d} {t_doa:17.3f} {t_lite:22.3f} {t_det:23.3f} {t_doa / t_det:6.2f} {t_lite / t_det:10.2f}")

if __name__ == "__main__":
    main()
