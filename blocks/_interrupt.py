"""Honest interruptions of a bench run: SIGINT/SIGTERM stop the flowgraph and are remembered.

GNU Radio's ``top_block.wait()`` swallows a KeyboardInterrupt (it stops the flowgraph and returns as if it
had finished), so without this a Ctrl-C'd run printed a normal report and exited 0. :class:`StopOnSignal`
installs its own handlers for the duration of a run:

* while a flowgraph is attached (``attach(tb)``), a signal stops it and records the signal; the caller
  then reports the frames actually processed, marked ``interrupted``, and exits ``128 + signum``;
* before or after that (designing, opening the RIS), a signal raises :class:`RunInterrupted` so the
  caller's ``finally`` blocks (temporary directories, device handles) still run;
* a second signal while the flowgraph is stopping raises at once (a way out of a stuck stop).
"""
from __future__ import annotations

import signal
import threading

__all__ = ["RunInterrupted", "StopOnSignal"]

SIGNALS = (signal.SIGINT, signal.SIGTERM)


class RunInterrupted(KeyboardInterrupt):
    """A run was cut short by a signal outside the flowgraph; ``signum`` says which."""

    def __init__(self, signum: int):
        super().__init__(signal.Signals(signum).name)
        self.signum = signum


class StopOnSignal:
    """Context manager; ``signum`` is the first signal received (None: none)."""

    def __init__(self):
        self.signum: int | None = None
        self._tb = None
        self._old = {}

    @property
    def name(self) -> str | None:
        return None if self.signum is None else signal.Signals(self.signum).name

    def attach(self, tb) -> None:
        """Route signals to ``tb.stop()`` (None: raise RunInterrupted again)."""
        self._tb = tb
        if tb is not None:
            tb.handle_sigint = False    # GNU Radio must not swallow our RunInterrupted (second signal)

    def _handler(self, signum, frame):  # noqa: ARG002 - signal handler signature
        first = self.signum is None
        if first:
            self.signum = signum
        if self._tb is not None and first:
            self._tb.stop()             # GNU Radio's wait() then returns; the caller sees self.signum
            return
        raise RunInterrupted(signum)

    def __enter__(self) -> "StopOnSignal":
        if threading.current_thread() is threading.main_thread():   # handlers only in the main thread
            for s in SIGNALS:
                if signal.getsignal(s) is signal.SIG_IGN:   # e.g. SIGINT of a background job, nohup:
                    continue                                # the parent asked us to ignore it
                self._old[s] = signal.signal(s, self._handler)
        return self

    def __exit__(self, *exc) -> None:
        for s, h in self._old.items():
            signal.signal(s, h)
        self._old.clear()
        self._tb = None
