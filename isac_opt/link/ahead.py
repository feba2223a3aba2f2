"""Design-ahead queue: a worker thread that keeps a transmitter fed with per-frame designs [issue 13].

The worker takes symbol frames (K, L) from a source iterator, designs them with a
:class:`~isac_opt.link.engine.LinkEngine` in batches of ``batch`` frames and puts one
:class:`DesignedFrame` per frame into a bounded queue (``depth`` frames): when the transmitter is slow the
worker blocks (back-pressure), when the engine is slow :meth:`DesignAhead.get` waits up to its deadline and
then raises :class:`LinkStarved` — it never blocks forever. Frames come out in source order with their
frame ids. An engine failure on a batch is delivered as a :class:`DesignedFrame` with ``error`` set (one per
frame of that batch) and the worker goes on with the next batch: the link keeps running.
"""
from __future__ import annotations

import queue
import threading
import time
from dataclasses import dataclass

import numpy as np

from ..errors import IsacError

__all__ = ["DesignAhead", "DesignedFrame", "LinkStarved"]

_END = object()


class LinkStarved(IsacError):
    """The engine did not deliver the next frame before the deadline."""


@dataclass
class DesignedFrame:
    """One frame: id (position in the source), X (M, L) complex128, S (K, L) symbols, radar SINR (linear)
    of X and of its codebook start, min normalised CI margin, certified flag; ``error`` (str) when the
    engine failed on the frame's batch (then X is None)."""

    frame_id: int
    S: np.ndarray
    X: np.ndarray | None = None
    sinr: float = float("nan")
    sinr_start: float = float("nan")
    min_margin: float = float("nan")
    ok: bool = False
    error: str | None = None


class DesignAhead:
    """Bounded design-ahead queue (see the module docstring). Use as a context manager or call close().

    Parameters: engine (``design(S (B, K, L)) -> FrameDesigns``), source (iterable of (K, L) symbol frames,
    complex or indices), batch (frames per engine call), depth (queue capacity in frames, ≥ batch).
    """

    def __init__(self, engine, source, *, batch: int = 64, depth: int | None = None):
        if int(batch) < 1:
            raise IsacError(f"batch: expected an integer >= 1, got {batch}")
        self.engine = engine
        self.batch = int(batch)
        self.depth = max(int(depth or 2 * self.batch), self.batch)
        self._q: queue.Queue = queue.Queue(maxsize=self.depth)
        self._stop = threading.Event()
        self._src = iter(source)
        self.designed = 0
        self.failed_batches = 0
        self.busy_s = 0.0
        self._th = threading.Thread(target=self._work, name="design-ahead", daemon=True)
        self._th.start()

    # -- worker ---------------------------------------------------------------------------------
    def _put(self, item) -> bool:
        while not self._stop.is_set():
            try:
                self._q.put(item, timeout=0.05)
                return True
            except queue.Full:
                continue
        return False

    def _work(self) -> None:
        fid = 0
        try:
            while not self._stop.is_set():
                frames = []
                for S in self._src:
                    frames.append(np.asarray(S))
                    if len(frames) == self.batch:
                        break
                if not frames:
                    break
                ids = range(fid, fid + len(frames))
                fid += len(frames)
                t0 = time.perf_counter()
                try:
                    d = self.engine.design(np.stack(frames))
                    items = [DesignedFrame(i, d.S[j], d.X[j], float(d.sinr[j]), float(d.sinr_start[j]),
                                           float(d.min_margin[j]), bool(d.ok[j])) for j, i in enumerate(ids)]
                    self.designed += len(frames)
                except Exception as e:     # surfaced as a message per frame; the link keeps running
                    self.failed_batches += 1
                    items = [DesignedFrame(i, frames[j], error=f"{type(e).__name__}: {e}")
                             for j, i in enumerate(ids)]
                self.busy_s += time.perf_counter() - t0
                for it in items:
                    if not self._put(it):
                        return
        finally:
            self._put(_END)

    # -- consumer -------------------------------------------------------------------------------
    def get(self, timeout: float = 10.0) -> DesignedFrame | None:
        """The next frame in order; None when the source is exhausted; LinkStarved after ``timeout`` s."""
        try:
            it = self._q.get(timeout=timeout)
        except queue.Empty:
            raise LinkStarved(f"design engine starved the transmitter: no frame within {timeout:g} s "
                              f"({self.designed} frames designed so far)") from None
        if it is _END:
            self._q.put(_END)          # later get() calls also see the end
            return None
        return it

    def __iter__(self):
        while True:
            it = self.get()
            if it is None:
                return
            yield it

    def close(self, timeout: float = 5.0) -> None:
        self._stop.set()
        self._th.join(timeout)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
