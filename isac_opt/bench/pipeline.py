"""The whole simulated bench chain in numpy (no GNU Radio): source → channel → STAP detector + users.

It runs exactly the cores the GNU Radio blocks wrap, on arbitrary chunk boundaries, so it is both the
reference for the flowgraph tests and a GNU-Radio-free way to measure the design (``isac-testbed run``
uses the flowgraph; this is its oracle).
"""
from __future__ import annotations

import numpy as np

from .channel import ChannelEmulator, Impairments
from .demod import ReceiverCore
from .framing import DesignTrack, END_FRAME, auto_gap, design_tag, frame_samples
from .stap import DetectorCore


def source_stream(design, n_frames: int, gap: int | None = None, scale: float = 1.0, path: str = ""):
    """All samples of ``n_frames`` frames plus the end marker: (samples (n, M), frame tag offsets, values, tag)."""
    scn = design.scenario
    gap = auto_gap(scn) if gap is None else int(gap)
    one = frame_samples(design.X, gap, scale)
    F = one.shape[0]
    x = np.vstack([np.tile(one, (n_frames, 1)), np.zeros((1, scn.M), np.complex64)])
    offs = np.arange(n_frames + 1, dtype=np.int64) * F
    vals = np.r_[np.arange(n_frames), END_FRAME].astype(np.int64)
    return x, offs, vals, design_tag(design, path, 0, F)


def simulate(design, n_frames: int, rng: np.random.Generator, *, chunk: int = 4096, pfa: float = 1e-3,
             target_mode: str = "alternate", rcs: str = "fresh", user_noise_offset_db: float = 0.0,
             phi=None, impairments: Impairments | None = None, slip: tuple[int, int] | None = None):
    """Run the chain; returns (DetectorCore, ReceiverCore).

    ``phi``: RIS state applied in the channel (default: the design's). ``slip=(offset, +1|-1)`` inserts
    (+1) or drops (−1) one received sample at ``offset`` (robustness tests).
    """
    x, offs, vals, tag = source_stream(design, n_frames)
    track = DesignTrack()
    track._cache[tag["id"]] = design
    track.add(tag)
    scn = design.scenario
    ch = ChannelEmulator(scn, design.channels, design.phi if phi is None else phi, rng,
                         target_mode=target_mode, rcs=rcs, user_noise_offset_db=user_noise_offset_db,
                         impairments=impairments)
    det = DetectorCore(pfa, scn.M, track)
    rx = ReceiverCore(scn.K, track)
    users_all, radar_all, toffs, tvals = [], [], [], []
    for s in range(0, x.shape[0], chunk):
        e = min(s + chunk, x.shape[0])
        sel = (offs >= s) & (offs < e)
        u, r, present = ch.process(x[s:e], offs[sel] - s, vals[sel])
        users_all.append(u); radar_all.append(r)
        toffs.append(offs[sel][: present.size]); tvals.append(present)
    users, radar = np.vstack(users_all), np.vstack(radar_all)
    toffs, tvals = np.concatenate(toffs), np.concatenate(tvals)
    if slip is not None:
        at, kind = slip
        if kind < 0:
            users, radar = np.delete(users, at, 0), np.delete(radar, at, 0)
            shift = np.where(offs > at, -1, 0)
        else:
            users, radar = np.insert(users, at, 0, 0), np.insert(radar, at, 0, 0)
            shift = np.where(offs >= at, 1, 0)
        offs = offs + shift
        toffs = toffs + shift[: toffs.size]
    for s in range(0, users.shape[0], chunk):
        e = min(s + chunk, users.shape[0])
        sel = (offs >= s) & (offs < e)
        tsel = (toffs >= s) & (toffs < e)
        det.process(radar[s:e], s, offs[sel], vals[sel], toffs[tsel], tvals[tsel])
        rx.process(users[s:e], s, offs[sel], vals[sel])
    return det, rx
