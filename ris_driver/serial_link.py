"""Byte transports and the two line-protocol clients: :class:`SerialRis` (``ris1``) and :class:`OsrisRis`.

Reliability rules (bench notes 4.3), implemented once in :meth:`_LinkClient._exchange` (both clients) and :meth:`SerialRis._transact`:

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

OSRIS_SERIAL = b"?SerialNo\n"               # OpenSourceRIS: answered with "#SerNo: " + 3 characters

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


_NEXT, _RESEND = object(), object()


class _LinkClient:
    """What both serial clients share: the bounded retry loop (:meth:`_exchange`), the wait for the boot
    banner after a reset (:meth:`_await_ready`), idempotent ``close``, context manager, ``__repr__``.

    Subclasses set ``transport``, ``url``, ``timeout_s``, ``retries``, ``stats``, ``_lock``, ``_closed`` and
    may override :meth:`_before_attempt` (default: flush the input) and :meth:`_on_timeout`.
    """

    protocol = ""

    def _before_attempt(self) -> None:
        self.transport.reset_input()

    def _on_timeout(self) -> None:
        pass

    def _exchange(self, build, handle, timeout_s=None, what: str = "request"):
        """Send ``build()`` and read lines until ``handle(line, ctx)`` returns a value; up to ``retries`` resends.

        ``build()`` returns (bytes, ctx) for one attempt (ctx: e.g. the attempt's sequence number).
        ``handle`` returns the result, ``_NEXT`` (ignore the line, keep reading) or ``_RESEND`` (resend now)
        and may raise. A deadline passing without a result is a timeout (``_on_timeout``, then resend).
        Raises :class:`RisTimeout` after ``retries + 1`` attempts.
        """
        if self._closed:
            raise RisError(f"{self.url or 'device'}: client is closed")
        timeout = self.timeout_s if timeout_s is None else timeout_s
        with self._lock:
            self.stats.transactions += 1
            for attempt in range(self.retries + 1):
                if attempt:
                    self.stats.retries += 1
                self._before_attempt()
                data, ctx = build()
                self.transport.write(data)
                deadline = time.monotonic() + timeout
                while True:
                    line = self.transport.readline(deadline)
                    if line is None:
                        self.stats.timeouts += 1
                        self._on_timeout()
                        break
                    v = handle(line, ctx)
                    if v is _RESEND:
                        break
                    if v is not _NEXT:
                        return v
            raise RisTimeout(f"{self.url or 'device'}: no valid reply to {what} after {self.retries + 1} "
                             f"attempt(s) of {timeout:.3f} s")

    def _await_ready(self, is_ready, what: str) -> None:
        """Read lines until ``is_ready(line)`` is true; :class:`RisTimeout` after ``ready_timeout_s``."""
        deadline = time.monotonic() + self.ready_timeout_s
        while True:
            line = self.transport.readline(deadline)
            if line is None:
                raise RisTimeout(f"{self.url}: no {what} within {self.ready_timeout_s} s after reset")
            if is_ready(line):
                return

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
        def build():
            seq = self._next_seq()                              # a new number per attempt
            return fr.encode_request(name, seq, **args), seq

        def handle(line, seq):
            try:
                frame = fr.decode(line)
            except fr.FrameError:
                self.stats.bad_frames += 1                      # garbled reply: resend at once
                return _RESEND
            if isinstance(frame, fr.Event):
                self._on_event(frame)
                return _NEXT
            if isinstance(frame, fr.Request):
                return _NEXT                                    # our own bytes echoed back (loop://)
            if frame.seq is None:                               # device saw a CRC error
                self.stats.nacks += 1
                return _RESEND
            if frame.seq != seq:
                self.stats.stale_replies += 1                   # late ack of an earlier attempt
                return _NEXT
            if not frame.ok:
                self.stats.nacks += 1
                if frame.code == 4:                             # busy: back off, resend
                    time.sleep(min(self.timeout_s if timeout_s is None else timeout_s, 0.01))
                    return _RESEND
                if frame.code == 1:
                    return _RESEND
                raise RisNack(f"{name}: device answered error {frame.code} "
                              f"({fr.ERROR_CODES.get(frame.code, '?')}) {frame.fields.get('M', '')}", frame.code)
            try:
                return fr.parse_reply(name, frame)
            except fr.FrameError:
                self.stats.bad_frames += 1
                return _RESEND

        return self._exchange(build, handle, timeout_s, name)

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

            def ready(line):
                try:
                    frame = fr.decode(line)
                except fr.FrameError:
                    return False
                if isinstance(frame, fr.Event):
                    self._on_event(frame)
                    return frame.name == "READY"
                return False

            self._await_ready(ready, "@READY")


class OsrisRis(_LinkClient):
    """Client of the OpenSourceRIS command set (``!0x<hex>`` -> ``#OK``, ``?Pattern`` -> ``#0X<hex>``).

    The firmware has no sequence numbers, no CRC, and stays silent on bad input, so a timeout is the only
    error signal and a late reply cannot be told from a fresh one by its content. Rules that keep a late
    reply from ever being taken for the current one (a serial line keeps the order of replies):

    * every request that timed out leaves its reply *outstanding* for ``stale_horizon_s``; before the
      next command the input is drained until each outstanding reply has arrived (and is discarded) or
      its horizon has passed, then flushed, so each command starts on a quiet line;
    * :meth:`apply` sends ``?Pattern`` only after the ``#OK`` of the current ``!0x`` and takes the first
      ``#0X`` after it; if that read-back times out, the whole cycle (drain, set, ``#OK``, read back) is
      repeated - a ``?Pattern`` is never re-sent alone, whose answer could be an older one's;
    * lines ahead of the expected reply (a late ``#0X`` while waiting for ``#OK``) are counted as stale.

    Commands are sent one at a time and never before the previous reply (the firmware drops a command
    that arrives while it is still answering the previous one, and with it the previous one if not yet
    dequeued). A reply later than ``timeout_s + stale_horizon_s`` is presumed lost.
    """

    protocol = "osris"

    def __init__(self, transport: Transport, *, board: BoardSpec | None = None, timeout_s: float = 0.25,
                 retries: int = 5, verify_cycles: int = 3, url: str = "", ready_timeout_s: float = 3.0,
                 stale_horizon_s: float | None = None):
        self.transport = transport
        self.url = url
        self.board = board if board is not None else BoardSpec.open_source_ris()
        if self.board.bits != 1 or self.board.amp_len:
            raise ValueError("board: the OpenSourceRIS protocol needs a 1-bit board without amplifier field")
        self.timeout_s, self.retries, self.verify_cycles = float(timeout_s), int(retries), int(verify_cycles)
        self.stale_horizon_s = 4.0 * self.timeout_s if stale_horizon_s is None else float(stale_horizon_s)
        self.ready_timeout_s = ready_timeout_s
        self.stats = LinkStats()
        self.last: Ack | None = None
        self.firmware, self.serial = "unknown", "unknown"
        self._outstanding: list[float] = []        # expiry times of replies that may still arrive
        self._lock = threading.RLock()
        self._closed = False

    # -- link hygiene ------------------------------------------------------------------------------
    def _on_timeout(self) -> None:
        self._outstanding.append(time.monotonic() + self.stale_horizon_s)

    def _before_attempt(self) -> None:
        """Drain every reply that may still be on its way, then flush: the next line answers the next command."""
        while self._outstanding:
            line = self.transport.readline(max(self._outstanding))
            if line is None:
                self._outstanding.clear()          # horizon passed: presumed lost
                break
            self.stats.stale_replies += 1
            self._outstanding.pop(0)
        self.transport.reset_input()

    def _request(self, data: bytes, accept, timeout_s=None, what: str = ""):
        def handle(line, _):
            v = accept(line)
            if v is not None:
                return v
            self.stats.bad_frames += 1
            return _NEXT
        return self._exchange(lambda: (data, None), handle, timeout_s, what or repr(data[:12]) + "...")

    def _read_back(self, timeout_s=None) -> Pattern:
        hx = self._request(fr.OSRIS_GET, fr.osris_parse_pattern, timeout_s, "?Pattern")
        return self._pattern(hx)

    def _pattern(self, hx: str) -> Pattern:
        try:
            return Pattern.from_hex(self.board, hx)
        except ValueError as e:
            raise RisProtocolError(f"?Pattern reply does not fit the board: {e}") from None

    def _read_back_once(self, timeout_s=None) -> Pattern | None:
        """One ``?Pattern`` right after the current ``#OK``: its first ``#0X`` reply, or None on timeout."""
        timeout = self.timeout_s if timeout_s is None else timeout_s
        self._before_attempt()
        self.transport.write(fr.OSRIS_GET)
        deadline = time.monotonic() + timeout
        while True:
            line = self.transport.readline(deadline)
            if line is None:
                self.stats.timeouts += 1
                self._on_timeout()
                return None
            hx = fr.osris_parse_pattern(line)
            if hx is not None:
                return self._pattern(hx)
            self.stats.bad_frames += 1

    def apply(self, pattern: Pattern, *, timeout_s: float | None = None) -> Ack:
        pattern.validate(self.board)
        ph, _ = pattern.to_hex(self.board)
        frame = fr.osris_set_frame(ph)

        def ok(line):
            if line == fr.OSRIS_OK:
                return True
            if fr.osris_parse_pattern(line) is not None:
                self.stats.stale_replies += 1             # a read-back that belongs to an earlier request
            return None

        with self._lock:
            r0, got = self.stats.retries, None
            for cycle in range(1, self.verify_cycles + 1):
                self._request(frame, ok, timeout_s, "!0x... (set pattern)")
                t_ack = time.monotonic()
                got = self._read_back_once(timeout_s)
                if got == pattern:
                    self.stats.applies += 1
                    self.last = Ack(pattern, t_ack, 1 + self.stats.retries - r0, cycle, None)
                    return self.last
                if got is not None:
                    self.stats.verify_mismatches += 1
            raise RisVerifyError(f"{self.url or 'device'}: no matching ?Pattern read-back after "
                                 f"{self.verify_cycles} cycle(s): got {got.short() if got else 'no reply'}, "
                                 f"want {pattern.short()}")

    def read_back(self) -> Pattern:
        return self._read_back()

    def info(self) -> RisInfo:
        return RisInfo(self.board, self.firmware, self.serial, self.protocol, self.last)

    def health(self) -> Health:
        v = self._request(fr.OSRIS_VEXT, fr.osris_parse_vext, what="?Vext")
        return Health(supply_v=v)

    def read_serial(self) -> str:
        """``?SerialNo`` -> ``#SerNo: xyz``: the board's 3-character serial number (also kept in ``serial``)."""
        def parse(line):
            return line[8:].decode("ascii", "replace").strip() if line.startswith(b"#SerNo:") else None
        self.serial = self._request(OSRIS_SERIAL, parse, what="?SerialNo")
        return self.serial

    def reset(self) -> None:
        """``!Reset``, then parse the boot banner up to ``#READY!``."""
        with self._lock:
            self._before_attempt()
            self.transport.write(fr.OSRIS_RESET)
            self.last = None

            def ready(line):
                text = line.decode("ascii", "replace").strip()
                if text.startswith("Firmware version:"):
                    self.firmware = text.split(":", 1)[1].strip()
                elif text.startswith("Serial no.:"):
                    self.serial = text.split(":", 1)[1].strip()
                return text == "#READY!"

            self._await_ready(ready, "#READY!")
