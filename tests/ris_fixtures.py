"""Shared helpers of the ris_driver tests: simulators on real ptys, ZMQ servers on loopback, deadlines."""
from __future__ import annotations

import contextlib
import itertools
import os
import socket
import time

import pytest

from ris_driver import BoardSpec, open_ris
from ris_driver.firmware import Faults
from ris_driver.sim import PtySimulator, create_simulator, remove_simulator

_names = itertools.count()


def unique_name(prefix: str = "t") -> str:
    return f"{prefix}{os.getpid()}_{next(_names)}"


def free_tcp_port() -> int:
    """A free TCP port on 127.0.0.1 (bind to port 0, read it, close)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_until(pred, timeout_s: float = 2.0, what: str = "condition"):
    """Poll ``pred()`` until truthy or fail the test at the deadline (no bare sleeps)."""
    deadline = time.monotonic() + timeout_s
    while True:
        v = pred()
        if v:
            return v
        if time.monotonic() > deadline:
            pytest.fail(f"timed out after {timeout_s} s waiting for {what}")
        time.sleep(0.005)


@contextlib.contextmanager
def simulated_board(board: BoardSpec | None = None, protocol: str = "ris1", faults: Faults | None = None,
                    seed: int = 0):
    """A registered SimulatedBoard, removed afterwards; yields (name, board)."""
    name = unique_name()
    sb = create_simulator(name, board, protocol=protocol, faults=faults, seed=seed)
    try:
        yield name, sb
    finally:
        remove_simulator(name)


@contextlib.contextmanager
def pty_device(board: BoardSpec | None = None, protocol: str = "ris1", faults: Faults | None = None,
               query: str = "timeout_ms=200&retries=2", seed: int = 0):
    """(device, SimulatedBoard, PtySimulator) with the driver on a real pty; everything closed after."""
    with simulated_board(board, protocol, faults, seed) as (name, sb):
        with PtySimulator(sb) as ps:
            scheme = "osris+serial" if protocol == "osris" else "serial"
            dev = open_ris(f"{scheme}://{ps.path}?{query}")
            try:
                yield dev, sb, ps
            finally:
                dev.close()


_OUR_THREADS = ("pty-sim-", "tcp-sim-", "ris-server-")


@pytest.fixture
def no_leaked_threads():
    """Fail a test that leaves a simulator or server thread running (threads must be joined)."""
    import threading
    before = {t for t in threading.enumerate() if t.name.startswith(_OUR_THREADS)}
    yield
    left = [t.name for t in threading.enumerate() if t.name.startswith(_OUR_THREADS) and t not in before]
    assert not left, f"threads left running: {left}"
