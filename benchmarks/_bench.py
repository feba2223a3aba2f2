"""Helpers shared by the benchmark scripts: the machine line of every table and a warm-started timer."""
from __future__ import annotations

import time

from isac_opt.sysinfo import machine_description, machine_line  # noqa: F401  (re-exported)


def timeit(fn, repeat: int) -> float:
    """Mean wall time [s] of ``fn()`` over ``repeat`` calls, after one warm-up call."""
    fn()
    t0 = time.perf_counter()
    for _ in range(repeat):
        fn()
    return (time.perf_counter() - t0) / repeat


def refit_frames(scn, ch, phi, S_idx):
    """Today's per-frame path on each frame of ``S_idx`` (F, K, L) QPSK indices: ``refit_waveform`` (A.10
    cvxpy start + the network's x-block, φ fixed), one frame at a time, float64. Returns the designs' X (F, M, L),
    their MVDR SINR (linear, (F,)) and the wall time of each call [s]."""
    import dataclasses

    import numpy as np

    from isac_opt.ci import psk_constellation
    from isac_opt.paper_a.design import DesignA
    from isac_opt.paper_a.detect.methods import refit_waveform
    const = psk_constellation(scn.psk_order)
    X, sinr, secs = [], [], []
    for i, Si in enumerate(S_idx):
        chS = dataclasses.replace(ch, S=const[Si])
        d0 = DesignA.build(scn, chS, np.full((scn.M, scn.L), scn.amp, complex), phi, method="frame", seed=i)
        t0 = time.perf_counter()
        r = refit_waveform(d0, phi)
        secs.append(time.perf_counter() - t0)
        X.append(r.X)
        sinr.append(10 ** (r.metrics["sinr_db"] / 10))
    return np.array(X), np.array(sinr), np.array(secs)
