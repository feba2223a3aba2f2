"""Device simulators: in-process (``sim://NAME``) and on a real pty (``PtySimulator``).

Both run the byte-exact firmware model :class:`ris_driver.firmware.SimulatedBoard` (``ris1`` or
``osris`` protocol), so the client code path (codec, sequence numbers, CRC, retries, read-back) is the
same as against hardware.

Shared-instance API (for the GNU Radio bench and the simulated channel)
-----------------------------------------------------------------------
``open_ris("sim://NAME?...")`` creates (first call) or reuses (later calls) the board registered under
``NAME``. Code that needs to know what the RIS *really* shows, independent of any client, asks the
registry::

    from ris_driver.sim import get_simulator
    board = get_simulator("bench")          # SimulatedBoard registered as sim://bench
    board.applied_pattern()                 # Pattern committed by the last successful APPLY
    board.applied_coefficients()            # complex128 (N,): board.gamma[n, s_n, a_n] of that pattern
    board.add_listener(fn)                  # fn(pattern) called after every commit
    board.faults.drop_ack = 0.01            # fault switches (ris_driver.firmware.Faults)

``get_simulator`` raises ``KeyError`` for a name nobody created yet; ``ris_driver.url.simulator_from_url("sim://NAME?n=64")``
creates (or reuses) the board without keeping a client open. ``create_simulator(name, board_spec, ...)``
registers one explicitly (e.g. with a calibrated
``BoardSpec``), ``remove_simulator(name)`` drops it. :class:`PtySimulator` serves a ``SimulatedBoard``
on ``os.openpty()``; its ``path`` is opened by ``open_ris("serial://<path>")``; with ``name=`` it is
registered too. :class:`TcpSimulator` serves one on a TCP port (like a ser2net bridge), opened by
``open_ris("serial://socket://127.0.0.1:<port>")``.

URL parameters of ``sim://NAME``: ``n`` (elements; a 1 x n row unless ``rows``/``cols``), ``rows``,
``cols``, ``bits``, ``amps`` (number of amplifier states), ``amp_scope`` (none/array/element),
``protocol`` (ris1/osris), ``cal`` (calibration file), ``drop``, ``corrupt``, ``silent`` (silent-apply
probability), ``latency_ms``, ``seed``, ``timeout_ms``, ``retries``, ``verify``.
"""
from __future__ import annotations

import errno
import os
import select
import socket
import threading
import time
import tty
from collections import deque

import numpy as np

from . import frames as fr
from .device import BoardSpec
from .firmware import Faults, SimulatedBoard
from .serial_link import Transport

__all__ = ["get_simulator", "create_simulator", "remove_simulator", "list_simulators", "InProcTransport",
           "PtySimulator", "TcpSimulator", "SimulatedBoard", "Faults"]

_REGISTRY: dict[str, SimulatedBoard] = {}
_REG_LOCK = threading.Lock()


def create_simulator(name: str, board: BoardSpec | None = None, *, protocol: str = "ris1",
                     faults: Faults | None = None, seed: int = 0, replace: bool = False,
                     **kw) -> SimulatedBoard:
    """Register a new simulated board under ``name`` (``replace=True`` overwrites an existing one)."""
    if not name or not isinstance(name, str):
        raise ValueError(f"name: expected a non-empty string, got {name!r}")
    with _REG_LOCK:
        if name in _REGISTRY and not replace:
            raise ValueError(f"simulator {name!r} already exists; use get_simulator or replace=True")
        if board is None:
            board = BoardSpec.open_source_ris() if protocol == "osris" else BoardSpec(rows=8, cols=8)
        sb = SimulatedBoard(board, protocol, faults=faults, rng=np.random.default_rng(seed), name=name, **kw)
        _REGISTRY[name] = sb
        return sb


def get_simulator(name: str) -> SimulatedBoard:
    """The shared :class:`SimulatedBoard` behind ``sim://NAME`` (or a named :class:`PtySimulator`)."""
    with _REG_LOCK:
        try:
            return _REGISTRY[name]
        except KeyError:
            raise KeyError(f"no simulator named {name!r}; known: {sorted(_REGISTRY)}") from None


def remove_simulator(name: str) -> None:
    with _REG_LOCK:
        _REGISTRY.pop(name, None)


def list_simulators() -> list[str]:
    with _REG_LOCK:
        return sorted(_REGISTRY)


def get_or_create(name: str, board: BoardSpec, protocol: str, seed: int) -> SimulatedBoard:
    """Reuse ``name`` if its geometry and protocol match ``board``/``protocol``; else create it."""
    with _REG_LOCK:
        sb = _REGISTRY.get(name)
    if sb is None:
        try:
            return create_simulator(name, board, protocol=protocol, seed=seed)
        except ValueError:                      # created concurrently
            sb = get_simulator(name)
    if (sb.board.rows, sb.board.cols, sb.board.bits, sb.board.n_amp, sb.protocol) != \
            (board.rows, board.cols, board.bits, board.n_amp, protocol):
        raise ValueError(f"sim://{name}: exists as {sb.board.describe()} ({sb.protocol}); the URL asks for "
                         f"{board.describe()} ({protocol})")
    return sb


class InProcTransport(Transport):
    """Transport straight into a :class:`SimulatedBoard` (no thread, no OS I/O).

    A reply the board drops is a *virtual* timeout: ``readline`` returns None at once instead of
    sleeping to the deadline, unless output (a delayed reply, boot events) is due before the deadline,
    in which case it waits for it in real time.
    """

    def __init__(self, board: SimulatedBoard):
        self.board = board
        self._split = fr.LineSplitter()
        self._lines: deque[bytes] = deque()
        self._closed = False

    def write(self, data: bytes) -> None:
        self.board.receive(data)

    def readline(self, deadline: float) -> bytes | None:
        while not self._lines:
            now = time.monotonic()
            out = self.board.poll_output(now)
            if out:
                self._lines.extend(self._split.feed(out))
                continue
            nr = self.board.next_release()
            if nr is not None and nr <= deadline:
                time.sleep(max(0.0, nr - now))
                continue
            busy = self.board.busy_until
            if busy > now and now < deadline:
                time.sleep(max(0.0, min(deadline, busy) - now))
                continue
            return None
        return self._lines.popleft()

    def reset_input(self) -> None:
        self.board.poll_output()             # discard what is already due (like a tcflush)
        self._split.clear()
        self._lines.clear()

    def close(self) -> None:
        self._closed = True


class PtySimulator:
    """Serve a :class:`SimulatedBoard` on a pseudo-terminal; a thread owns the master side.

    ``path`` is the slave device (``/dev/pts/N``) to give to the driver. Use as a context manager, or call
    :meth:`close` (idempotent: stops and joins the thread, closes both fds).
    """

    def __init__(self, board: SimulatedBoard, *, name: str | None = None):
        self.board = board
        self.name = name
        self._master, self._slave = os.openpty()
        tty.setraw(self._slave)
        os.set_blocking(self._master, False)
        self.path = os.ttyname(self._slave)
        self._wake_r, self._wake_w = os.pipe()
        self._stop = threading.Event()
        self.bytes_in = 0
        self.bytes_out = 0
        self.overruns = 0
        if name:
            with _REG_LOCK:
                _REGISTRY[name] = board
        self._thread = threading.Thread(target=self._run, name=f"pty-sim-{self.path}", daemon=True)
        self._thread.start()
        self._closed = False

    def _run(self) -> None:
        master = self._master
        pending = b""
        while not self._stop.is_set():
            now = time.monotonic()
            nr = self.board.next_release()
            wait = 0.05 if nr is None else min(0.05, max(0.0, nr - now))
            wlist = [master] if pending else []
            try:
                r, w, _ = select.select([master, self._wake_r], wlist, [], wait)
            except (OSError, ValueError):
                break
            if master in r:
                try:
                    data = os.read(master, 65536)
                except OSError as e:
                    if e.errno in (errno.EAGAIN, errno.EWOULDBLOCK):
                        data = b""
                    else:                       # EIO: slave side gone
                        break
                if data:
                    self.bytes_in += len(data)
                    self.board.receive(data)
            pending += self.board.poll_output()
            if pending:
                try:
                    k = os.write(master, pending)
                    self.bytes_out += k
                    pending = pending[k:]
                except OSError as e:
                    if e.errno not in (errno.EAGAIN, errno.EWOULDBLOCK):
                        break
                if len(pending) > 65536:        # host not reading: drop like a UART overrun
                    self.overruns += 1
                    pending = b""

    def close(self) -> None:
        if getattr(self, "_closed", True):
            return
        self._closed = True
        self._stop.set()
        try:
            os.write(self._wake_w, b"x")
        except OSError:
            pass
        self._thread.join(timeout=5.0)
        for fd in (self._master, self._slave, self._wake_r, self._wake_w):
            try:
                os.close(fd)
            except OSError:
                pass
        if self.name:
            with _REG_LOCK:
                if _REGISTRY.get(self.name) is self.board:
                    del _REGISTRY[self.name]

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def __repr__(self):
        return f"PtySimulator({self.path!r}, {self.board!r})"


class TcpSimulator:
    """Serve a :class:`SimulatedBoard` on a TCP port, one client at a time (a ser2net-like bridge).

    ``port`` is the bound port on ``host``; the driver opens ``serial://socket://host:port``.
    :meth:`close` (idempotent) stops and joins the thread and closes every socket.
    """

    def __init__(self, board: SimulatedBoard, host: str = "127.0.0.1", port: int = 0):
        self.board = board
        self._srv = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self._srv.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self._srv.bind((host, port))
        self._srv.listen(1)
        self.host, self.port = self._srv.getsockname()[:2]
        self._wake_r, self._wake_w = os.pipe()
        self._stop = threading.Event()
        self._closed = False
        self._thread = threading.Thread(target=self._run, name=f"tcp-sim-{self.port}", daemon=True)
        self._thread.start()

    def _serve(self, conn: socket.socket) -> None:
        conn.setblocking(False)
        pending = b""
        while not self._stop.is_set():
            nr = self.board.next_release()
            wait = 0.05 if nr is None else min(0.05, max(0.0, nr - time.monotonic()))
            r, w, _ = select.select([conn, self._wake_r], [conn] if pending else [], [], wait)
            if conn in r:
                try:
                    data = conn.recv(65536)
                except BlockingIOError:
                    data = None
                except OSError:
                    return
                if data == b"":
                    return                          # client closed
                if data:
                    self.board.receive(data)
            pending += self.board.poll_output()
            if pending:
                try:
                    pending = pending[conn.send(pending):]
                except BlockingIOError:
                    pass
                except OSError:
                    return
                if len(pending) > 65536:
                    pending = b""

    def _run(self) -> None:
        while not self._stop.is_set():
            r, _, _ = select.select([self._srv, self._wake_r], [], [], 0.1)
            if self._srv in r:
                try:
                    conn, _ = self._srv.accept()
                except OSError:
                    continue
                with conn:
                    self._serve(conn)

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        self._stop.set()
        os.write(self._wake_w, b"x")
        self._thread.join(timeout=5.0)
        self._srv.close()
        for fd in (self._wake_r, self._wake_w):
            os.close(fd)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
