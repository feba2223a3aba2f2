"""Byte transports and the two line-protocol clients: :class:`SerialRis` (``ris1``) and :class:`OsrisRis`.

Reliability rules (bench notes 4.3), implemented in :meth:`SerialRis._transact`:

* every attempt gets a **new sequence number**; a reply with another number (a late ack of an earlier
  attempt) is counted as stale and ignored, never taken for the current attempt;
* the input buffer is flushed before each attempt; each attempt waits at most ``timeout_s``;
* a garbled line or a ``#-;ER;E=1`` (the device saw a CRC error) triggers an immediate resend;
  ``E=4`` (busy) a short back-off; other error codes raise :class:`RisNack` at once;
* after ``retries`` resends the call raises :class:`RisTimeout`;
* :meth:`SerialRis.apply` = stage (``SETP``/``SETA``) + commit (``APPLY``) + read back (``GET``); a read-back
  that differs from the command repeats the cycle, up to ``verify_cycles``, then :class:`RisVerifyError`.
  So ``apply`` either returns an :class:`Ack` whose pattern was read back from the device, or raises.
* one lock per client: whole ``apply`` cycles and single transactions are atomic across threads.
"""
from __future__ import annotations

import logging
import threading
import time
from collections import deque


from . import frames as fr
from .device import Ack, BoardSpec, Health, LinkStats, Pattern, RisInfo, status_table
from .patterndiff import pattern_diff
from .errors import RisError, RisNack, RisProtocolError, RisTimeout, RisVerifyError

log = logging.getLogger(__name__)

__all__ = ["Transport", "SerialTransport", "SerialRis", "OsrisRis"]


class Transport:
    """Byte stream with line reads against a deadline (base class; see :class:`SerialTransport`)."""

    def write(self, data: bytes) -> None:
        raise NotImplementedError

    def readline(self, deadline: float) -> bytes | None:
        """One line (LF removed) or None when ``time.monotonic()`` passes ``deadline``."""
        raise NotImplementedError

    def reset_input(self) -> None:
        raise NotImplementedError

    def close(self) -> None:
        raise NotImplementedError


class SerialTransport(Transport):
    """A pyserial port opened with ``serial.serial_for_url`` (``/dev/tty*``, pty paths, ``loop://``,
    ``socket://host:port``, ``spy://...``). The port is opened in raw mode by pyserial."""

    POLL_S = 0.005

    def __init__(self, url: str, baudrate: int = 115200):
        import serial  # local import: only the serial transport needs pyserial

        self.url = url
        try:
            # a fixed short read timeout: readline loops to its deadline. Changing ``timeout`` per call
            # would re-run tcsetattr on every read of a real port.
            self._ser = serial.serial_for_url(url, baudrate=baudrate, timeout=self.POLL_S, write_timeout=1.0)
        except (serial.SerialException, ValueError) as e:
            raise RisError(f"cannot open serial port {url!r}: {e}") from e
        self._split = fr.LineSplitter()
        self._lines: deque[bytes] = deque()
        self._closed = False

    def write(self, data: bytes) -> None:
        import serial

        try:
            self._ser.write(data)
            self._ser.flush()
        except serial.SerialTimeoutException as e:
            raise RisTimeout(f"write to {self.url!r} timed out") from e
        except (serial.SerialException, OSError) as e:
            raise RisError(f"write to {self.url!r} failed: {e}") from e

    def readline(self, deadline: float) -> bytes | None:
        import serial

        while not self._lines:
            left = deadline - time.monotonic()
            if left <= 0:
                return None
            try:
                data = self._ser.read(max(1, self._ser.in_waiting))
            except (serial.SerialException, OSError) as e:
                raise RisError(f"read from {self.url!r} failed: {e}") from e
            if data:
                self._lines.extend(self._split.feed(data))
        return self._lines.popleft()

    def reset_input(self) -> None:
        self._ser.reset_input_buffer()
        self._split.clear()
        self._lines.clear()

    def close(self) -> None:
        if not self._closed:
            self._closed = True
            self._ser.close()


def _board_from_idn(f: dict, board: BoardSpec | None) -> BoardSpec:
    scope = {"N": "none", "A": "array", "E": "element"}[f["ASC"]]
    geo = BoardSpec(rows=f["ROWS"], cols=f["COLS"], bits=f["BITS"],
                    amp_states=tuple(f"a{i}" for i in range(f["AMPS"])) if f["AMPS"] > 1 else ("passive",),
                    amp_scope=scope, wire_order={"R": "row", "C": "col"}[f["ORD"]],
                    bit_order={"M": "msb", "L": "lsb"}[f["BO"]],
                    spacing_m=(f["DX"] * 1e-3, f["DY"] * 1e-3), name=f["SN"])
    if board is None:
        return geo
    same = (board.rows, board.cols, board.bits, board.n_amp, board.amp_scope, board.wire_order, board.bit_order) == \
           (geo.rows, geo.cols, geo.bits, geo.n_amp, geo.amp_scope, geo.wire_order, geo.bit_order)
    if not same:
        raise RisProtocolError(f"board description {board.describe()} does not match the device ({geo.describe()})")
    return board


class _LinkClient:
    """Lifecycle shared by the serial clients: idempotent ``close``, context manager, status ``__repr__``."""

    protocol = ""

    def close(self) -> None:
        if not self._closed:
            self._closed = True
            self.transport.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def __repr__(self):
        return status_table(f"{type(self).__name__}({self.url!r}, {self.protocol})", self.board,
                            self.firmware, self.serial, self.last, self.stats)


class SerialRis(_LinkClient):
    """Client of the ``ris1`` protocol over any :class:`Transport`.

    Parameters
    ----------
    transport : Transport
    board : BoardSpec, optional
        Calibrated board description (reflection table); must match the geometry the device reports.
    timeout_s : float
        Per-attempt reply deadline [s].
    retries : int
        Resends per transaction before :class:`RisTimeout`.
    verify_cycles : int
        Set/apply/verify cycles per :meth:`apply` before :class:`RisVerifyError`.
    """

    protocol = "ris1"

    def __init__(self, transport: Transport, *, board: BoardSpec | None = None, timeout_s: float = 0.25,
                 retries: int = 5, verify_cycles: int = 3, url: str = "", ready_timeout_s: float = 2.0):
        if timeout_s <= 0 or retries < 0 or verify_cycles < 1:
            raise ValueError("timeout_s > 0, retries >= 0 and verify_cycles >= 1 expected, got "
                             f"{timeout_s!r}, {retries!r}, {verify_cycles!r}")
        self.transport = transport
        self.url = url
        self.timeout_s = float(timeout_s)
        self.retries = int(retries)
        self.verify_cycles = int(verify_cycles)
        self.ready_timeout_s = ready_timeout_s
        self.stats = LinkStats()
        self.last: Ack | None = None
        self.boots_seen = 0
        self._lock = threading.RLock()
        self._seq = int(time.monotonic_ns() % 50000) + 1
        self._closed = False
        try:
            idn = self._transact("identify")
        except Exception:
            self.transport.close()
            raise
        self.firmware, self.serial = idn["FW"], idn["SN"]
        self.board = _board_from_idn(idn, board)

    # -- transactions ------------------------------------------------------------------------------
    def _next_seq(self) -> int:
        self._seq = self._seq + 1 if self._seq < 0xFFFF else 1
        return self._seq

    def _on_event(self, ev: fr.Event) -> None:
        self.stats.events += 1
        if ev.name == "BOOT":
            self.boots_seen += 1
            if self.last is not None:
                log.warning("%s: device rebooted (%s): the last confirmed state is lost", self.url, ev.fields)
            self.last = None                     # power-on state now; nothing is confirmed any more

    def _transact(self, name: str, timeout_s: float | None = None, **args) -> dict:
        """One request/reply exchange with bounded retries; returns the typed reply fields."""
        if self._closed:
            raise RisError(f"{self.url or 'device'}: client is closed")
        timeout = self.timeout_s if timeout_s is None else timeout_s
        with self._lock:
            self.stats.transactions += 1
            for attempt in range(self.retries + 1):
                if attempt:
                    self.stats.retries += 1
                seq = self._next_seq()
                self.transport.reset_input()
                self.transport.write(fr.encode_request(name, seq, **args))
                deadline = time.monotonic() + timeout
                while True:
                    line = self.transport.readline(deadline)
                    if line is None:
                        self.stats.timeouts += 1
                        break                                  # resend
                    try:
                        frame = fr.decode(line)
                    except fr.FrameError:
                        self.stats.bad_frames += 1              # garbled reply: resend at once
                        break
                    if isinstance(frame, fr.Event):
                        self._on_event(frame)
                        continue
                    if isinstance(frame, fr.Request):
                        continue                               # our own bytes echoed back (loop://)
                    if frame.seq is None:                       # device saw a CRC error
                        self.stats.nacks += 1
                        break
                    if frame.seq != seq:
                        self.stats.stale_replies += 1           # late ack of an earlier attempt
                        continue
                    if not frame.ok:
                        self.stats.nacks += 1
                        if frame.code == 4:                    # busy: back off, resend
                            time.sleep(min(timeout, 0.01))
                            break
                        if frame.code == 1:
                            break
                        raise RisNack(f"{name}: device answered error {frame.code} "
                                      f"({fr.ERROR_CODES.get(frame.code, '?')}) {frame.fields.get('M', '')}",
                                      frame.code)
                    try:
                        return fr.parse_reply(name, frame)
                    except fr.FrameError:
                        self.stats.bad_frames += 1
                        break
            raise RisTimeout(f"{self.url or 'device'}: no valid reply to {name} after {self.retries + 1} "
                             f"attempt(s) of {timeout:.3f} s")

    # -- RisDevice API -----------------------------------------------------------------------------
    def apply(self, pattern: Pattern, *, timeout_s: float | None = None) -> Ack:
        """Stage, commit and read back ``pattern``; return the confirmed :class:`Ack` or raise."""
        pattern.validate(self.board)
        ph, am = pattern.to_hex(self.board)
        with self._lock:
            r0 = self.stats.retries
            for cycle in range(1, self.verify_cycles + 1):
                self._transact("set_phase", timeout_s, P=ph)
                if self.board.amp_len and self.board.amp_bits:
                    self._transact("set_amp", timeout_s, A=am)
                k = self._transact("apply", timeout_s)["K"]
                t_ack = time.monotonic()
                got = self._read_back(timeout_s)
                if got == pattern:
                    self.stats.applies += 1
                    self.last = Ack(pattern, t_ack, 1 + self.stats.retries - r0, cycle, k)
                    return self.last
                self.stats.verify_mismatches += 1
                log.warning("%s: read-back mismatch on cycle %d: %s", self.url, cycle, pattern_diff(got, pattern))
            raise RisVerifyError(f"{self.url or 'device'}: read-back differs from the command after "
                                 f"{self.verify_cycles} cycle(s): {pattern_diff(got, pattern)}")

    def _read_back(self, timeout_s=None) -> Pattern:
        f = self._transact("read_back", timeout_s)
        try:
            return Pattern.from_hex(self.board, f["P"], f["A"])
        except ValueError as e:
            raise RisProtocolError(f"read-back does not fit the board: {e}") from None

    def read_back(self) -> Pattern:
        """The device's active (committed) pattern."""
        return self._read_back()

    def info(self) -> RisInfo:
        return RisInfo(self.board, self.firmware, self.serial, self.protocol, self.last)

    def health(self) -> Health:
        f = self._transact("health")
        return Health(f["V"], f["T"], f["UP"], f["B"], f["CE"])

    def reset(self) -> None:
        """Reboot the device and wait for its ``@READY`` event (or ``ready_timeout_s``)."""
        with self._lock:
            self._transact("reset")
            self.last = None
            deadline = time.monotonic() + self.ready_timeout_s
            while True:
                line = self.transport.readline(deadline)
                if line is None:
                    raise RisTimeout(f"{self.url}: no @READY within {self.ready_timeout_s} s after reset")
                try:
                    frame = fr.decode(line)
                except fr.FrameError:
                    continue
                if isinstance(frame, fr.Event):
                    self._on_event(frame)
                    if frame.name == "READY":
                        return



class OsrisRis(_LinkClient):
    """Client of the OpenSourceRIS command set (``!0x<hex>`` -> ``#OK``, ``?Pattern`` -> ``#0X<hex>``).

    The firmware has no sequence numbers, no CRC, and stays silent on bad input, so a timeout is the only
    error signal and a late ``#OK`` of a timed-out attempt cannot be told from the ack of the retry.
    The read-back after every set is therefore what guarantees correctness here.
    """

    protocol = "osris"

    def __init__(self, transport: Transport, *, board: BoardSpec | None = None, timeout_s: float = 0.25,
                 retries: int = 5, verify_cycles: int = 3, url: str = "", ready_timeout_s: float = 3.0):
        self.transport = transport
        self.url = url
        self.board = board if board is not None else BoardSpec.open_source_ris()
        if self.board.bits != 1 or self.board.amp_len:
            raise ValueError("board: the OpenSourceRIS protocol needs a 1-bit board without amplifier field")
        self.timeout_s, self.retries, self.verify_cycles = float(timeout_s), int(retries), int(verify_cycles)
        self.ready_timeout_s = ready_timeout_s
        self.stats = LinkStats()
        self.last: Ack | None = None
        self.firmware, self.serial = "unknown", "unknown"
        self._lock = threading.RLock()
        self._closed = False

    def _request(self, data: bytes, accept, timeout_s=None):
        if self._closed:
            raise RisError(f"{self.url or 'device'}: client is closed")
        timeout = self.timeout_s if timeout_s is None else timeout_s
        with self._lock:
            self.stats.transactions += 1
            for attempt in range(self.retries + 1):
                if attempt:
                    self.stats.retries += 1
                self.transport.reset_input()
                self.transport.write(data)
                deadline = time.monotonic() + timeout
                while True:
                    line = self.transport.readline(deadline)
                    if line is None:
                        self.stats.timeouts += 1
                        break
                    v = accept(line)
                    if v is not None:
                        return v
                    self.stats.bad_frames += 1
            raise RisTimeout(f"{self.url or 'device'}: no reply to {data[:12]!r}... after {self.retries + 1} "
                             f"attempt(s) of {timeout:.3f} s (the firmware is silent on bad input)")

    def _read_back(self, timeout_s=None) -> Pattern:
        hx = self._request(fr.OSRIS_GET, fr.osris_parse_pattern, timeout_s)
        try:
            return Pattern.from_hex(self.board, hx)
        except ValueError as e:
            raise RisProtocolError(f"?Pattern reply does not fit the board: {e}") from None

    def apply(self, pattern: Pattern, *, timeout_s: float | None = None) -> Ack:
        pattern.validate(self.board)
        ph, _ = pattern.to_hex(self.board)
        frame = fr.osris_set_frame(ph)
        with self._lock:
            r0 = self.stats.retries
            for cycle in range(1, self.verify_cycles + 1):
                self._request(frame, lambda l: True if l.rstrip(b"\r") == fr.OSRIS_OK else None, timeout_s)
                t_ack = time.monotonic()
                got = self._read_back(timeout_s)
                if got == pattern:
                    self.stats.applies += 1
                    self.last = Ack(pattern, t_ack, 1 + self.stats.retries - r0, cycle, None)
                    return self.last
                self.stats.verify_mismatches += 1
            raise RisVerifyError(f"{self.url or 'device'}: ?Pattern differs from the command after "
                                 f"{self.verify_cycles} cycle(s): got {got.short()}, want {pattern.short()}")

    def read_back(self) -> Pattern:
        return self._read_back()

    def info(self) -> RisInfo:
        return RisInfo(self.board, self.firmware, self.serial, self.protocol, self.last)

    def health(self) -> Health:
        v = self._request(fr.OSRIS_VEXT, fr.osris_parse_vext)
        return Health(supply_v=v)

    def reset(self) -> None:
        """``!Reset``, then parse the boot banner up to ``#READY!``."""
        with self._lock:
            self.transport.reset_input()
            self.transport.write(fr.OSRIS_RESET)
            self.last = None
            deadline = time.monotonic() + self.ready_timeout_s
            while True:
                line = self.transport.readline(deadline)
                if line is None:
                    raise RisTimeout(f"{self.url}: no #READY! within {self.ready_timeout_s} s after !Reset")
                text = line.decode("ascii", "replace").strip()
                if text.startswith("Firmware version:"):
                    self.firmware = text.split(":", 1)[1].strip()
                elif text.startswith("Serial no.:"):
                    self.serial = text.split(":", 1)[1].strip()
                elif text == "#READY!":
                    return

