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
