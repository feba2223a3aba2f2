"""Foundation micro-benchmarks: paper-A SINR objective (structured vs dense), gradients, CRB, init.

Prints a table with machine, dtype and thread count. Goal (performance_notes §4.6): structured SINR
objective ≤ 60 µs per call in numpy on one core, and agreement with the dense form to ≤ 1e-12.
Usage: ``.venv/bin/python benchmarks/bench_foundation.py [--repeat N]``
"""
import argparse
import os
import platform

os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

import numpy as np  # noqa: E402

from isac_opt.paper_a import radar  # noqa: E402
from isac_opt.paper_a.channels import draw_channels, legs, cascaded_matrix  # noqa: E402
from isac_opt.paper_a.scenario import ScenarioA  # noqa: E402
from isac_opt.paper_a.crb import crb_doa  # noqa: E402
from isac_opt.paper_a.starting import init_phi, init_x  # noqa: E402
from _bench import machine_line, timeit  # noqa: E402


def dense_sinr(scn, ch, X, phi):
    a, b = legs(ch, phi, scn.ris_leg_model)
    x = radar.vec(X)
    n = scn.M * scn.L
    def J(d):
        Jm = np.zeros((n, n))
        for j in range(n - scn.M * d):
            Jm[j + scn.M * d, j] = 1
        return Jm
    bins = (scn.target_bin,) + tuple(scn.clutter_bins)
    Ht = [np.kron(np.eye(scn.L), cascaded_matrix(a[i], b[i])) @ J(bins[i]) for i in range(scn.Q + 1)]
    s = Ht[0] @ x
    C = scn.noise_radar_w * np.eye(n, dtype=complex)
    for q in range(scn.Q):
        c = Ht[q + 1] @ x
        C += scn.xi_q_sq[q] * np.outer(c, c.conj())
    return scn.xi0_sq * np.real(np.vdot(s, np.linalg.solve(C, s)))


def main():
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--repeat", type=int, default=200)
    args = ap.parse_args()
    scn = ScenarioA()
    rng = np.random.default_rng(0)
    ch = draw_channels(scn, rng)
    phi = init_phi(scn, ch, rng)
    X, _ = init_x(scn, ch, phi)
    rows = []
    t = timeit(lambda: radar.sinr_mvdr(radar.echo(scn, ch, X, phi)), args.repeat)
    rows.append(("SINR*, structured + Woodbury", t))
    t = timeit(lambda: dense_sinr(scn, ch, X, phi), max(3, args.repeat // 50))
    rows.append(("SINR*, dense Kronecker + solve", t))
    t = timeit(lambda: radar.objective_gradients(scn, ch, X, phi), args.repeat)
    rows.append(("F and closed-form grads (X, phi)", t))
    t = timeit(lambda: crb_doa(scn, ch, X, phi), args.repeat)
    rows.append(("CRB (closed form, Woodbury)", t))
    t = timeit(lambda: init_x(scn, ch, phi), 5)
    rows.append(("x0 worst-case-margin SOCP (cvxpy re-solve)", t))
    err = abs(radar.sinr_mvdr(radar.echo(scn, ch, X, phi)) / dense_sinr(scn, ch, X, phi) - 1)
    print(f"machine: {machine_line()}  "
          f"python {platform.python_version()}  numpy {np.__version__}  dtype complex128  "
          f"threads OMP={os.environ['OMP_NUM_THREADS']}")
    print(f"scenario paper-a default (M={scn.M}, N={scn.N}, L={scn.L}, Q={scn.Q})")
    print(f"{'operation':<45} {'time per call':>14}")
    for name, t in rows:
        print(f"{name:<45} {t * 1e6:>11.1f} µs")
    print(f"structured vs dense SINR relative difference: {err:.2e}")


if __name__ == "__main__":
    main()
