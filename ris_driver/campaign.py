"""Fault-injection campaign: many set/apply/verify cycles against a simulated board with ground truth.

Every cycle draws a random pattern, calls ``device.apply`` and then compares with the *simulator's*
committed state (``SimulatedBoard.applied_pattern()``, which no client can fake):

* ``ok``        apply returned an Ack and the board shows exactly that pattern (``recovered`` if the
                link needed a retry or a second verify cycle);
* ``failed``    apply raised a typed ``RisError`` (timeout, nack, protocol, verify) -- allowed;
* ``silent``    apply returned an Ack but the board shows something else -- must never happen;
* ``untyped``   apply raised anything else -- must never happen.

Used by ``tests/test_ris_faults.py`` (short) and ``benchmarks/bench_ris_faults.py`` (>= 10,000 cycles).
"""
from __future__ import annotations

import time
from collections import Counter
from dataclasses import dataclass, field

import numpy as np

from .device import Pattern
from .errors import RisError

__all__ = ["CampaignResult", "run_campaign"]


@dataclass
class CampaignResult:
    cycles: int = 0
    ok: int = 0
    recovered: int = 0
    failed: int = 0
    silent: int = 0
    untyped: int = 0
    errors: Counter = field(default_factory=Counter)
    latencies_s: list = field(default_factory=list)
    wall_s: float = 0.0
    reboots: int = 0

    def summary(self) -> dict:
        lat = np.asarray(self.latencies_s) if self.latencies_s else np.array([np.nan])
        return dict(cycles=self.cycles, ok=self.ok, recovered=self.recovered, failed=self.failed,
                    silent_mismatches=self.silent, untyped_errors=self.untyped, errors=dict(self.errors),
                    reboots=self.reboots, wall_s=self.wall_s,
                    configs_per_s=self.cycles / self.wall_s if self.wall_s else float("nan"),
                    p50_ms=float(np.percentile(lat, 50) * 1e3), p99_ms=float(np.percentile(lat, 99) * 1e3),
                    max_ms=float(np.max(lat) * 1e3))


def run_campaign(device, sim, cycles: int, rng: np.random.Generator, *, reboot_every: int = 0,
                 progress=None) -> CampaignResult:
    """Run ``cycles`` apply cycles on ``device`` whose ground truth is ``sim`` (a ``SimulatedBoard``).

    ``reboot_every`` > 0 schedules a board reboot once every that many cycles, at a random frame
    (0..3) inside the next cycle, so it lands mid-transaction. ``progress``: optional callable(n).
    """
    res = CampaignResult()
    boots0 = sim.boots
    t_start = time.perf_counter()
    for k in range(cycles):
        if reboot_every and k and k % reboot_every == 0:
            sim.faults.reboot_after = int(rng.integers(0, 4))
        p = Pattern.random(device.board, rng)
        t0 = time.perf_counter()
        try:
            ack = device.apply(p)
        except RisError as e:
            res.failed += 1
            res.errors[type(e).__name__] += 1
        except Exception as e:          # counted, never hidden: the campaign asserts untyped == 0
            res.untyped += 1
            res.errors[type(e).__name__] += 1
        else:
            res.latencies_s.append(time.perf_counter() - t0)
            truth = sim.applied_pattern()
            if ack.pattern != p or truth != p:
                res.silent += 1
            else:
                res.ok += 1
                if ack.attempts > 1 or ack.cycles > 1:
                    res.recovered += 1
        res.cycles += 1
        if progress is not None:
            progress(1)
    res.wall_s = time.perf_counter() - t_start
    res.reboots = sim.boots - boots0
    return res
