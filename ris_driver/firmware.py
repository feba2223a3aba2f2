"""Byte-level model of an RIS controller's firmware, with fault switches (no I/O, no threads).

:class:`SimulatedBoard` speaks either our ``ris1`` protocol (``frames.py``, double-buffered:
``SETP``/``SETA`` stage, ``APPLY`` commits atomically) or the OpenSourceRIS command set (``osris``:
``!0x<hex>`` sets and latches at once, ``?Pattern`` reads back, malformed input gets no reply).

The ``osris`` model follows the OpenSourceRIS firmware 1.1 (``Software/uC Firmware/main.c``) character by
character, at the UART's 115200 baud (one byte every ``osris_char_s`` after the write time): the receive
ISR upper-cases, starts a command on ``!`` / a request on ``?`` only while every flag is clear, queues
``0-9 A-Z - =`` (commands) or letters (requests), completes on LF, and on ANY other byte (a CR, a
``!``/``?`` while a line is pending or being answered, punctuation) empties the FIFO and clears the flags:
so a CRLF line is lost, and a start character that arrives before the main loop has cleared the flags of
the previous line (after sending its reply) is lost with it - and the previous line too if the main loop
had not yet dequeued it (``osris_pickup_s`` after its LF). The main loop dispatches on the FIFO length
(67 pattern, 14 ``BT-KEY=dddddd``, 6 ``RESET``; requests 5 ``VEXT``, 8 ``PATTERN``, 9 ``SERIALNO``).
Replies: ``#OK``, ``#0X<hex>``, ``#dd.dd V``, ``#SerNo: xyz`` (3 characters), ``!BT-Key`` answers
``#OK``/``#ERROR`` after ``bt_key_s`` (the firmware talks to the BT module with 200 ms / 1 s UART
timeouts; the README: "may take several seconds"), ``!Reset`` reboots silently and prints the banner
(``Firmware version: 1.1`` ... ``#READY!``).
Transports drive it: :meth:`SimulatedBoard.receive` takes host bytes, :meth:`SimulatedBoard.poll_output`
returns the bytes due for the host at a given (monotonic) time. The pty simulator and the in-process
``sim://`` transport in ``sim.py`` are thin loops around these two calls.

Faults (:class:`Faults`, mutable, shared by the board and the transports):

* ``corrupt``: per-byte probability of a flipped byte, both directions;
* ``drop_ack``: probability that a reply is not sent (the command is still executed);
* ``silent_apply``: probability that a commit is acknowledged but not applied;
* ``latency_s``: delay of every reply; ``reboot_every``: reboot on every k-th received frame;
* one-shot switches ``drop_next``, ``silent_next_apply``, ``delay_next_s``, ``reboot_after``;
* ``dead``: receive everything, answer nothing.
"""
from __future__ import annotations

import threading
import time
from dataclasses import dataclass

import numpy as np

from . import frames as fr
from .device import BoardSpec, Pattern, pack_amp, pack_states
from .quantize import coefficients

__all__ = ["Faults", "SimulatedBoard"]


@dataclass
class Faults:
    """Fault-injection switches of a simulated board (see module docstring)."""

    corrupt: float = 0.0
    drop_ack: float = 0.0
    silent_apply: float = 0.0
    latency_s: float = 0.0
    reboot_every: int = 0
    reboot_s: float = 0.02
    dead: bool = False
    drop_next: int = 0
    silent_next_apply: int = 0
    delay_next_s: float = 0.0
    reboot_after: int = -1

    def __post_init__(self):
        for f in ("corrupt", "drop_ack", "silent_apply"):
            v = getattr(self, f)
            if not 0.0 <= float(v) <= 1.0:
                raise ValueError(f"Faults.{f}: expected a probability in [0, 1], got {v!r}")
        if self.latency_s < 0 or self.reboot_s < 0:
            raise ValueError("Faults.latency_s / reboot_s: expected non-negative seconds")

    def clear(self) -> None:
        """Switch every fault off."""
        self.__init__()


_ORD = {"row": "R", "col": "C"}
_BO = {"msb": "M", "lsb": "L"}
_ASC = {"none": "N", "array": "A", "element": "E"}


class SimulatedBoard:
    """A simulated RIS controller (firmware state machine + fault switches). Thread-safe.

    Parameters
    ----------
    board : BoardSpec
        Geometry and reflection table (``applied_coefficients`` uses ``board.gamma``).
    protocol : {"ris1", "osris"}
        Our framed protocol or the OpenSourceRIS command set.
    faults : Faults, optional
    rng : numpy.random.Generator, optional
        Source of every random fault decision (default ``np.random.default_rng(0)``).
    """

    OSRIS_FIFO = 128                     # uartRxFifo_USB->maxLength

    def __init__(self, board: BoardSpec, protocol: str = "ris1", *, firmware: str | None = None,
                 serial: str = "SIM-0001", faults: Faults | None = None,
                 rng: np.random.Generator | None = None, name: str = "sim"):
        if protocol not in ("ris1", "osris"):
            raise ValueError(f"protocol: expected 'ris1' or 'osris', got {protocol!r}")
        if protocol == "osris" and (board.amp_len or board.bits != 1):
            raise ValueError("protocol 'osris': expected a 1-bit board without amplifier field")
        self.board = board
        self.protocol = protocol
        self.firmware = firmware or ("1.1" if protocol == "osris" else "1.0.0")
        self.serial = serial
        # OpenSourceRIS firmware timing (see module docstring)
        self.osris_char_s = 10.0 / 115200          # one UART byte (8N1)
        self.osris_pickup_s = 10e-6                # LF received -> main loop dequeues the FIFO
        self.osris_proc_s = 200e-6                 # parse + shift 256 bits + latch
        self.bt_key_s = 1.6                        # !BT-Key: BT module command mode, 200 ms/1 s UART timeouts
        self.bt_key_ok = True                      # False: the BT module does not confirm -> #ERROR
        self.osris_lost = 0                        # lines the ISR threw away (CR, back-to-back, bad bytes)
        self._o_fifo = bytearray()
        self._o_start = None                       # b"!" / b"?" while a line is being received or answered
        self._o_done = False
        self._o_exec: float | None = None          # main loop dequeues at this time
        self._o_clear: float | None = None         # main loop clears the flags (after its reply) at this time
        self.name = name
        self.faults = faults if faults is not None else Faults()
        self.rng = rng if rng is not None else np.random.default_rng(0)
        self._lock = threading.RLock()
        self._splitter = fr.LineSplitter(max(fr.MAX_LINE, 2 * board.n + 64))
        self._out: list[tuple[float, bytes, bool]] = []     # (release time, data, corruptible)
        self.boots = 0
        self.crc_errors = 0
        self.frames_in = 0
        self.replies_dropped = 0
        self.silent_applies = 0
        self.listeners: list = []                          # callables(pattern) on every commit
        self._power_on(time.monotonic(), announce=False)

    # -- state -------------------------------------------------------------------------------------
    def _power_on(self, now: float, announce: bool) -> None:
        z = Pattern.zeros(self.board)
        self._staged_phase = z.phase
        self._staged_amp = z.amp
        self._active = z
        self.commits = 0
        self.t_boot = now
        self.busy_until = now
        if announce:
            self.busy_until = now + self.faults.reboot_s
            if self.protocol == "ris1":
                ev = fr.encode_event("BOOT", FW=self.firmware, SN=self.serial, B=self.boots) + fr.encode_event("READY")
            else:
                b = self.board
                self._o_reset()
                self._o_clear = None
                ev = (f"\nOpen Source RIS\nFirmware version: {self.firmware}\nSerial no.: {self.osris_serial}\n"
                      f"Row count: {b.rows}\nColumn count: {b.cols}\n\n#READY!\n").encode("ascii")
            self._out.append((self.busy_until, ev, True))

    @property
    def osris_serial(self) -> str:
        """The OpenSourceRIS serial number: exactly 3 characters, leading spaces (``char serialNumber``)."""
        return self.serial[-3:].rjust(3)

    def reboot(self, now: float | None = None) -> None:
        """Reboot now: state lost (power-on pattern), silent for ``faults.reboot_s``, then boot events."""
        with self._lock:
            now = time.monotonic() if now is None else now
            self.boots += 1
            self._splitter.clear()
            self._out.clear()                    # a reset loses the UART transmit buffer too
            self._power_on(now, announce=True)

    def applied_pattern(self) -> Pattern:
        """The committed (active) pattern; what the RF hardware would show now."""
        with self._lock:
            return self._active

    def staged_pattern(self) -> Pattern:
        with self._lock:
            return Pattern(self._staged_phase, self._staged_amp)

    def applied_coefficients(self) -> np.ndarray:
        """Effective complex coefficients of the applied pattern via ``board.gamma``, complex128 (N,)."""
        return coefficients(self.applied_pattern(), self.board)

    def add_listener(self, fn) -> None:
        """Call ``fn(pattern)`` after every commit (used by a simulated channel to follow the board)."""
        self.listeners.append(fn)

    # -- byte interface ----------------------------------------------------------------------------
    def _corrupt(self, data: bytes) -> bytes:
        p = self.faults.corrupt
        if p <= 0 or not data:
            return data
        arr = np.frombuffer(data, np.uint8).copy()
        hit = self.rng.random(arr.size) < p
        if hit.any():
            arr[hit] ^= self.rng.integers(1, 256, int(hit.sum())).astype(np.uint8)
        return arr.tobytes()

    def receive(self, data: bytes, now: float | None = None) -> None:
        """Host -> device bytes (corrupted per ``faults.corrupt``); complete lines are executed."""
        with self._lock:
            now = time.monotonic() if now is None else now
            if self.protocol == "osris":
                self._o_receive(self._corrupt(bytes(data)), now)
                return
            for line in self._splitter.feed(self._corrupt(bytes(data))):
                self._on_line(line, now)

    def poll_output(self, now: float | None = None) -> bytes:
        """Device -> host bytes released by time ``now`` (corrupted per ``faults.corrupt``)."""
        with self._lock:
            now = time.monotonic() if now is None else now
            if self.protocol == "osris":
                self._o_advance(now)
            due = [o for o in self._out if o[0] <= now]
            if not due:
                return b""
            self._out = [o for o in self._out if o[0] > now]
            due.sort(key=lambda o: o[0])
            return b"".join(self._corrupt(d) if c else d for _, d, c in due)

    def next_release(self) -> float | None:
        """Monotonic time of the next pending output, or None."""
        with self._lock:
            ts = [o[0] for o in self._out]
            if self.protocol == "osris" and self._o_exec is not None:
                ts.append(self._o_exec)                 # the main loop's next step must be run then
            return min(ts, default=None)

    def _reply(self, data: bytes, now: float) -> None:
        f = self.faults
        if f.drop_next > 0:
            f.drop_next -= 1
            self.replies_dropped += 1
            return
        if f.drop_ack > 0 and self.rng.random() < f.drop_ack:
            self.replies_dropped += 1
            return
        delay = f.latency_s + f.delay_next_s
        f.delay_next_s = 0.0
        self._out.append((now + delay, data, True))

    def _on_line(self, line: bytes, now: float) -> None:
        f = self.faults
        if now < self.busy_until or f.dead:
            return                                   # rebooting or dead: input is lost
        self.frames_in += 1
        if f.reboot_after >= 0:
            if f.reboot_after == 0:
                f.reboot_after = -1
                self.reboot(now)
                return
            f.reboot_after -= 1
        if f.reboot_every and self.frames_in % f.reboot_every == 0:
            self.reboot(now)
            return
        if self.protocol == "ris1":
            self._on_ris1(line, now)
        else:
            self._on_osris(line, now)

    def _commit(self, pattern: Pattern) -> bool:
        f = self.faults
        if f.silent_next_apply > 0:
            f.silent_next_apply -= 1
            self.silent_applies += 1
            return False
        if f.silent_apply > 0 and self.rng.random() < f.silent_apply:
            self.silent_applies += 1
            return False
        self._active = pattern
        for fn in list(self.listeners):
            fn(pattern)
        return True

    # -- ris1 firmware -----------------------------------------------------------------------------
    def _on_ris1(self, line: bytes, now: float) -> None:
        if not line.startswith(b"!"):
            return                                   # noise, or our own replies echoed: ignore
        try:
            req = fr.decode(line)
            if not isinstance(req, fr.Request):
                return
            name, args = fr.parse_request(req)
        except fr.FrameError as e:
            if e.code == 1:
                self.crc_errors += 1
            self._reply(fr.encode_error(None if e.code == 1 else e.seq, e.code, fr.ERROR_CODES[e.code]), now)
            return
        b = self.board
        seq = req.seq
        if name == "identify":
            out = fr.encode_reply(name, seq, ROWS=b.rows, COLS=b.cols, BITS=b.bits, AMPS=b.n_amp,
                                  ASC=_ASC[b.amp_scope], ORD=_ORD[b.wire_order], BO=_BO[b.bit_order],
                                  DX=b.spacing_m[0] * 1e3, DY=b.spacing_m[1] * 1e3, FW=self.firmware, SN=self.serial)
        elif name == "set_phase":
            try:
                p = Pattern.from_hex(b, args["P"], pack_amp(np.asarray(self._staged_amp), b))
            except ValueError:
                self._reply(fr.encode_error(seq, 3, "P_LENGTH"), now)
                return
            self._staged_phase = p.phase
            out = fr.encode_reply(name, seq)
        elif name == "set_amp":
            try:
                p = Pattern.from_hex(b, pack_states(np.asarray(self._staged_phase), b.bits, b), args["A"])
            except ValueError:
                self._reply(fr.encode_error(seq, 3, "A_LENGTH"), now)
                return
            self._staged_amp = p.amp
            out = fr.encode_reply(name, seq)
        elif name == "apply":
            self.commits += 1
            self._commit(Pattern(self._staged_phase, self._staged_amp))
            out = fr.encode_reply(name, seq, K=self.commits)
        elif name == "read_back":
            ph, am = self._active.to_hex(b)
            out = fr.encode_reply(name, seq, P=ph, A=am, K=self.commits, B=self.boots)
        elif name == "health":
            out = fr.encode_reply(name, seq, V=5.02, T=31.5, UP=round(now - self.t_boot, 3), B=self.boots,
                                  CE=self.crc_errors)
        else:   # reset
            self._reply(fr.encode_reply(name, seq), now)       # the OK leaves before the reboot starts
            self.boots += 1
            self._splitter.clear()
            self._power_on(now + self.faults.latency_s, announce=True)
            return
        self._reply(out, now)

    # -- OpenSourceRIS firmware ------------------------------------------------------------------------
    def _o_reset(self) -> None:
        """``resetCommandsAndFIFO_USB``: empty the FIFO, clear the flags (a pending line is lost)."""
        if self._o_start is not None or self._o_fifo:
            self.osris_lost += 1
        self._o_fifo.clear()
        self._o_start, self._o_done, self._o_exec = None, False, None

    def _o_receive(self, data: bytes, now: float) -> None:
        for i, c in enumerate(data):
            t = now + i * self.osris_char_s
            self._o_advance(t)
            if t < self.busy_until or self.faults.dead:
                continue                                 # booting (UART not yet listening) or dead
            self._o_isr(c, t)

    def _o_isr(self, c: int, t: float) -> None:
        """``HAL_UART_RxCpltCallback`` for the USB UART."""
        if 97 <= c <= 122:
            c -= 32
        if len(self._o_fifo) >= self.OSRIS_FIFO:
            self._o_reset()
            return
        clear = self._o_start is None and not self._o_done
        if c == 0x21 and clear:                                   # '!'
            self._o_start = b"!"
        elif c == 0x3F and clear:                                 # '?'
            self._o_start = b"?"
        elif c == 0x0A:                                           # LF
            if self._o_start is None:
                self._o_reset()
                return
            self._o_fifo.append(c)
            if not self._o_done:
                self._o_done = True
                self._o_exec = t + self.osris_pickup_s
        elif self._o_start == b"!" and (48 <= c <= 57 or 65 <= c <= 90 or c in (0x2D, 0x3D)):
            self._o_fifo.append(c)
        elif self._o_start == b"?" and 65 <= c <= 90:
            self._o_fifo.append(c)
        else:                                                     # CR, stray '!'/'?', anything else
            self._o_reset()

    def _o_advance(self, t: float) -> None:
        """Run the main loop up to time ``t`` (dequeue/execute a complete line; clear flags after a reply)."""
        if self._o_exec is not None and t >= self._o_exec:
            te, self._o_exec = self._o_exec, None
            self._o_main(te)
        if self._o_clear is not None and t >= self._o_clear:
            self._o_clear = None
            self._o_start, self._o_done = None, False

    def _o_finish(self, reply: bytes | None, t: float, busy_s: float) -> None:
        """The main loop sends ``reply`` (blocking UART transmit), then clears the flags."""
        n = len(reply) if reply else 0
        t_end = t + self.osris_proc_s + busy_s + n * self.osris_char_s
        if reply:
            self._reply(reply, t_end)
        self._o_clear = t_end

    def _o_main(self, t: float) -> None:
        f = self.faults
        if t < self.busy_until or f.dead:
            return
        self.frames_in += 1
        if f.reboot_after >= 0:
            if f.reboot_after == 0:
                f.reboot_after = -1
                self.reboot(t)
                return
            f.reboot_after -= 1
        if f.reboot_every and self.frames_in % f.reboot_every == 0:
            self.reboot(t)
            return
        fifo, b = self._o_fifo, self.board
        n = len(fifo)
        if self._o_start == b"!":
            plen = 3 + 2 * ((b.n + 7) // 8)             # "0X" + hex + LF: 67 on the 16x16 board
            if n >= plen:
                body = bytes(fifo[:plen])
                del fifo[:plen]
                hx = body[2:-1].decode("ascii")
                ok = body[:2] == b"0X" and body[-1:] == b"\n" and all(ch in "0123456789ABCDEF" for ch in hx)
                try:
                    p = Pattern.from_hex(b, hx) if ok else None
                except ValueError:
                    p = None
                if p is None:
                    self._o_reset()
                    return
                self.commits += 1
                self._commit(p)
                self._o_finish(b"#OK\n", t, 0.0)
            elif n == 14:
                cmd = bytes(fifo)
                fifo.clear()
                if cmd[:7] == b"BT-KEY=" and cmd[13:] == b"\n" and cmd[7:13].isdigit():
                    self._o_finish(b"#OK\n" if self.bt_key_ok else b"#ERROR\n", t, self.bt_key_s)
                else:
                    self._o_reset()
            elif n == 6:
                cmd = bytes(fifo)
                fifo.clear()
                if cmd == b"RESET\n":
                    self.boots += 1
                    self._power_on(t, announce=True)         # NVIC_SystemReset: no reply, then the banner
                else:
                    self._o_reset()
            else:
                self._o_reset()
            return
        req = bytes(fifo)
        fifo.clear()
        if req == b"VEXT\n":
            self._o_finish(b"#05.02 V\n", t, 0.0)
        elif req == b"PATTERN\n":
            ph, _ = self._active.to_hex(b)
            self._o_finish(b"#0X" + ph.upper().encode("ascii") + b"\n", t, 0.0)
        elif req == b"SERIALNO\n":
            self._o_finish(b"#SerNo: " + self.osris_serial.encode("ascii") + b"\n", t, 0.0)
        else:
            self._o_reset()

    def __repr__(self):
        return (f"SimulatedBoard({self.name!r}, {self.protocol}, {self.board.describe()}, boots={self.boots}, "
                f"commits={self.commits}, applied={self._active.short()})")

