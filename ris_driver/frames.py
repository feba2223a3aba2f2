"""Pure, table-driven codec of the ``ris1`` wire protocol (and the OpenSourceRIS command set). No I/O.

Frame grammar (see ``ris_driver/PROTOCOL.md`` for byte-exact examples)::

    request = "!" SEQ ";" CMD *( ";" KEY "=" VALUE ) "*" CRC LF
    reply   = "#" SEQ ";" ("OK" | "ER") *( ";" KEY "=" VALUE ) "*" CRC LF
    event   = "@" NAME *( ";" KEY "=" VALUE ) "*" CRC LF
    SEQ     = decimal 0..65535 without leading zeros ("-" in a reply to a frame whose CRC failed)
    KEY     = 1..8 upper-case letters;  VALUE = 0..4096 chars of [0-9A-Za-z._+-]
    CRC     = 4 upper-case hex digits: CRC-16/CCITT-FALSE (poly 0x1021, init 0xFFFF, no reflection,
              xorout 0; check value 0x29B1 for b"123456789") over every byte from the start
              character up to, not including, "*".

The command table :data:`COMMANDS` names, for each operation, the wire mnemonic, the request fields and
the reply fields with their validators; :func:`encode_request` / :func:`decode` /
:func:`parse_reply` / :func:`parse_request` are driven by it.
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Callable

from .errors import RisProtocolError

__all__ = [
    "crc16_ccitt_false", "COMMANDS", "ERROR_CODES", "Request", "Reply", "Event", "FrameError",
    "encode_request", "encode_reply", "encode_event", "encode_error", "decode", "parse_reply",
    "parse_request", "LineSplitter", "MAX_LINE",
    "osris_set_frame", "osris_parse_pattern", "OSRIS_GET", "OSRIS_VEXT", "OSRIS_RESET",
]

MAX_LINE = 4200        # bytes per line without LF; longer lines are discarded by LineSplitter

# ---------------------------------------------------------------------------------------------------
# CRC-16/CCITT-FALSE (table driven)
# ---------------------------------------------------------------------------------------------------
def _make_table() -> tuple:
    t = []
    for b in range(256):
        c = b << 8
        for _ in range(8):
            c = ((c << 1) ^ 0x1021) if c & 0x8000 else (c << 1)
        t.append(c & 0xFFFF)
    return tuple(t)


_CRC_TABLE = _make_table()


def crc16_ccitt_false(data: bytes, crc: int = 0xFFFF) -> int:
    """CRC-16/CCITT-FALSE of ``data`` (poly 0x1021, init 0xFFFF, MSB first, no final XOR)."""
    t = _CRC_TABLE
    for b in data:
        crc = ((crc << 8) & 0xFF00) ^ t[((crc >> 8) ^ b) & 0xFF]
    return crc


# ---------------------------------------------------------------------------------------------------
# Field validators and the command table
# ---------------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Field:
    """A field type: regex the wire text must match, text -> value, value -> text."""

    name: str
    pattern: str
    parse: Callable
    fmt: Callable

    def to_wire(self, key: str, value) -> str:
        text = self.fmt(value)
        if not re.fullmatch(self.pattern, text):
            raise ValueError(f"field {key}: expected {self.name} matching {self.pattern!r}, got {value!r}")
        return text

    def from_wire(self, key: str, text: str):
        if not re.fullmatch(self.pattern, text):
            raise FrameError(f"field {key}: expected {self.name}, got {text[:40]!r}", code=3)
        return self.parse(text)


def _fmt_float(x) -> str:
    return f"{float(x):.3f}".rstrip("0").rstrip(".") if x == x else "NAN"


HEX = Field("upper-case hex", r"[0-9A-F]{0,4096}", str, lambda v: str(v))
INT = Field("unsigned integer", r"0|[1-9][0-9]{0,9}", int, lambda v: str(int(v)))
FLOAT = Field("decimal number", r"-?[0-9]{1,9}(\.[0-9]{1,6})?|NAN", lambda t: float("nan") if t == "NAN" else float(t), _fmt_float)
TEXT = Field("word", r"[0-9A-Za-z._+-]{0,32}", str, lambda v: str(v))


def ENUM(*vals: str) -> Field:
    return Field("one of " + "/".join(vals), "|".join(vals), str, str)


@dataclass(frozen=True)
class Command:
    """One operation: wire mnemonic, request fields, reply fields (ordered as on the wire)."""

    mnemonic: str
    request: dict = field(default_factory=dict)
    reply: dict = field(default_factory=dict)
    doc: str = ""


COMMANDS: dict[str, Command] = {
    "identify": Command("IDN", {}, {"ROWS": INT, "COLS": INT, "BITS": INT, "AMPS": INT,
                                    "ASC": ENUM("N", "A", "E"), "ORD": ENUM("R", "C"), "BO": ENUM("M", "L"),
                                    "DX": FLOAT, "DY": FLOAT, "FW": TEXT, "SN": TEXT},
                        "geometry, amplifier scope, element/bit order, spacing [mm], firmware, serial"),
    "set_phase": Command("SETP", {"P": HEX}, {}, "stage phase states (hex, board wire order)"),
    "set_amp": Command("SETA", {"A": HEX}, {}, "stage amplifier states (hex)"),
    "apply": Command("APPLY", {}, {"K": INT}, "commit staged buffer to the active one atomically; K = commit count"),
    "read_back": Command("GET", {}, {"P": HEX, "A": HEX, "K": INT, "B": INT},
                         "active phase/amp hex, commit count K, boot count B"),
    "health": Command("HLTH", {}, {"V": FLOAT, "T": FLOAT, "UP": FLOAT, "B": INT, "CE": INT},
                      "supply [V], temperature [degC], uptime [s], boot count, CRC errors seen"),
    "reset": Command("RST", {}, {}, "reply OK, then reboot: silent, then events @BOOT and @READY"),
}
BY_MNEMONIC = {c.mnemonic: name for name, c in COMMANDS.items()}

ERROR_CODES = {1: "CRC", 2: "SYNTAX", 3: "RANGE", 4: "BUSY", 5: "STATE"}
EVENTS = {"BOOT": {"FW": TEXT, "SN": TEXT, "B": INT}, "READY": {}}


# ---------------------------------------------------------------------------------------------------
# Frames
# ---------------------------------------------------------------------------------------------------
class FrameError(RisProtocolError):
    """A malformed frame; ``code`` is the error code a device answers with (1 CRC, 2 syntax, 3 range)."""

    def __init__(self, message: str, code: int = 2, seq: int | None = None):
        super().__init__(message)
        self.code = code
        self.seq = seq


@dataclass(frozen=True)
class Request:
    seq: int
    cmd: str                     # wire mnemonic, e.g. "SETP"
    args: dict


@dataclass(frozen=True)
class Reply:
    seq: int | None              # None: the device could not read the request's sequence number
    ok: bool
    fields: dict                 # raw text values; see parse_reply for typed values

    @property
    def code(self) -> int:
        return 0 if self.ok else int(self.fields.get("E", "0") or 0)


@dataclass(frozen=True)
class Event:
    name: str
    fields: dict


_KEY = re.compile(r"[A-Z]{1,8}")
_VAL = re.compile(r"[0-9A-Za-z._+-]{0,4096}")
_SEQ = re.compile(r"0|[1-9][0-9]{0,4}")
_WORD = re.compile(r"[A-Z]{1,8}")


def _frame(start: str, parts: list[str]) -> bytes:
    body = (start + ";".join(parts)).encode("ascii")
    return body + b"*%04X\n" % crc16_ccitt_false(body)


def _check_seq(seq) -> int:
    if isinstance(seq, bool) or not isinstance(seq, int) or not 0 <= seq <= 0xFFFF:
        raise ValueError(f"seq: expected an integer 0..65535, got {seq!r}")
    return seq


def encode_request(name: str, seq: int, **args) -> bytes:
    """Bytes of a request frame for operation ``name`` (a key of :data:`COMMANDS`)."""
    if name not in COMMANDS:
        raise ValueError(f"command: expected one of {sorted(COMMANDS)}, got {name!r}")
    cmd = COMMANDS[name]
    if set(args) != set(cmd.request):
        raise ValueError(f"command {name}: expected fields {sorted(cmd.request)}, got {sorted(args)}")
    parts = [str(_check_seq(seq)), cmd.mnemonic]
    parts += [f"{k}={f.to_wire(k, args[k])}" for k, f in cmd.request.items()]
    return _frame("!", parts)


def encode_reply(name: str, seq: int | None, **fields) -> bytes:
    """Bytes of an OK reply to operation ``name`` with its reply fields."""
    cmd = COMMANDS[name]
    if set(fields) != set(cmd.reply):
        raise ValueError(f"reply to {name}: expected fields {sorted(cmd.reply)}, got {sorted(fields)}")
    parts = ["-" if seq is None else str(_check_seq(seq)), "OK"]
    parts += [f"{k}={f.to_wire(k, fields[k])}" for k, f in cmd.reply.items()]
    return _frame("#", parts)


def encode_error(seq: int | None, code: int, msg: str = "") -> bytes:
    """Bytes of an error reply ``ER;E=<code>[;M=<word>]``."""
    if code not in ERROR_CODES:
        raise ValueError(f"code: expected one of {sorted(ERROR_CODES)}, got {code!r}")
    parts = ["-" if seq is None else str(_check_seq(seq)), "ER", f"E={code}"]
    if msg:
        parts.append("M=" + TEXT.to_wire("M", re.sub(r"[^0-9A-Za-z._+-]", "_", msg)[:32]))
    return _frame("#", parts)


def encode_event(name: str, **fields) -> bytes:
    """Bytes of an unsolicited event ``@NAME;...`` (``BOOT`` or ``READY``)."""
    spec = EVENTS[name]
    if set(fields) != set(spec):
        raise ValueError(f"event {name}: expected fields {sorted(spec)}, got {sorted(fields)}")
    return _frame("@", [name] + [f"{k}={f.to_wire(k, fields[k])}" for k, f in spec.items()])


def _kv(parts: list[str]) -> dict:
    out = {}
    for p in parts:
        k, eq, v = p.partition("=")
        if not eq or not _KEY.fullmatch(k) or not _VAL.fullmatch(v):
            raise FrameError(f"bad field {p[:40]!r}: expected KEY=VALUE", code=2)
        if k in out:
            raise FrameError(f"duplicate field {k}", code=2)
        out[k] = v
    return out


def decode(line: bytes) -> Request | Reply | Event:
    """Parse one line (with or without the trailing LF) into a frame; raise :class:`FrameError`.

    Structure and CRC are checked here; command-specific fields by :func:`parse_request` /
    :func:`parse_reply`. Never raises anything but ``FrameError`` (a ``RisProtocolError``).
    """
    if not isinstance(line, (bytes, bytearray, memoryview)):
        raise FrameError(f"expected bytes, got {type(line).__name__}")
    line = bytes(line)
    if line.endswith(b"\n"):
        line = line[:-1]
    if len(line) > MAX_LINE:
        raise FrameError(f"line of {len(line)} bytes exceeds {MAX_LINE}", code=3)
    if len(line) < 7 or line[:1] not in (b"!", b"#", b"@") or line[-5:-4] != b"*":
        raise FrameError(f"not a frame: {line[:40]!r}", code=2)
    body, crc_txt = line[:-5], line[-4:]
    if not re.fullmatch(rb"[0-9A-F]{4}", crc_txt):
        raise FrameError(f"bad CRC field {crc_txt!r}", code=1)
    try:
        text = body.decode("ascii")
    except UnicodeDecodeError:
        raise FrameError("non-ASCII byte in frame", code=1) from None
    if crc16_ccitt_false(body) != int(crc_txt, 16):
        raise FrameError(f"CRC mismatch in {line[:40]!r}", code=1)
    start, parts = text[0], text[1:].split(";")
    if start == "@":
        if not _WORD.fullmatch(parts[0]):
            raise FrameError(f"bad event name {parts[0][:20]!r}", code=2)
        return Event(parts[0], _kv(parts[1:]))
    if len(parts) < 2:
        raise FrameError("frame needs a sequence number and a command/status", code=2)
    seq_txt = parts[0]
    if start == "#" and seq_txt == "-":
        seq = None
    elif _SEQ.fullmatch(seq_txt) and int(seq_txt) <= 0xFFFF:
        seq = int(seq_txt)
    else:
        raise FrameError(f"bad sequence number {seq_txt[:20]!r}", code=2)
    if start == "!":
        if not _WORD.fullmatch(parts[1]):
            raise FrameError(f"bad command {parts[1][:20]!r}", code=2, seq=seq)
        return Request(seq, parts[1], _kv(parts[2:]))
    if parts[1] not in ("OK", "ER"):
        raise FrameError(f"bad status {parts[1][:20]!r}: expected OK or ER", code=2)
    fields = _kv(parts[2:])
    if parts[1] == "ER" and not re.fullmatch(r"[1-9][0-9]{0,2}", fields.get("E", "")):
        raise FrameError("error reply without a numeric E field", code=2)
    return Reply(seq, parts[1] == "OK", fields)


def parse_request(req: Request) -> tuple[str, dict]:
    """Map a request frame to ``(operation name, typed args)``; ``FrameError`` code 2 (unknown
    command / fields) or 3 (bad value)."""
    name = BY_MNEMONIC.get(req.cmd)
    if name is None:
        raise FrameError(f"unknown command {req.cmd!r}", code=2, seq=req.seq)
    spec = COMMANDS[name].request
    if set(req.args) != set(spec):
        raise FrameError(f"{req.cmd}: expected fields {sorted(spec)}, got {sorted(req.args)}", code=2, seq=req.seq)
    try:
        return name, {k: f.from_wire(k, req.args[k]) for k, f in spec.items()}
    except FrameError as e:
        raise FrameError(str(e), code=3, seq=req.seq) from None


def parse_reply(name: str, rep: Reply) -> dict:
    """Typed fields of an OK reply to operation ``name``; ``FrameError`` if they do not match the table."""
    spec = COMMANDS[name].reply
    if not rep.ok:
        raise FrameError(f"parse_reply called on an error reply (E={rep.code})", code=2)
    if set(rep.fields) != set(spec):
        raise FrameError(f"reply to {name}: expected fields {sorted(spec)}, got {sorted(rep.fields)}")
    return {k: f.from_wire(k, rep.fields[k]) for k, f in spec.items()}


def parse_event(ev: Event) -> dict:
    spec = EVENTS.get(ev.name)
    if spec is None or set(ev.fields) != set(spec):
        raise FrameError(f"unknown event {ev.name!r} or fields {sorted(ev.fields)}")
    return {k: f.from_wire(k, ev.fields[k]) for k, f in spec.items()}


class LineSplitter:
    """Incremental LF line splitter with a length bound (no I/O).

    ``feed(data)`` returns the complete lines (without LF, CR stripped). A line longer than ``max_line``
    is discarded up to its LF and counted in ``overflows``, so arbitrary input never grows the buffer
    beyond ``max_line`` bytes.
    """

    def __init__(self, max_line: int = MAX_LINE):
        self.max_line = max_line
        self._buf = bytearray()
        self._skipping = False
        self.overflows = 0

    def feed(self, data: bytes) -> list[bytes]:
        out = []
        start = 0
        data = bytes(data)
        while True:
            i = data.find(b"\n", start)
            piece = data[start:] if i < 0 else data[start:i]
            if not self._skipping:
                if len(self._buf) + len(piece) > self.max_line:
                    self._buf.clear()
                    self._skipping = True
                    self.overflows += 1
                else:
                    self._buf += piece
            if i < 0:
                break
            if not self._skipping:
                out.append(bytes(self._buf).rstrip(b"\r"))
            self._buf.clear()
            self._skipping = False
            start = i + 1
        return out

    def clear(self) -> None:
        self._buf.clear()
        self._skipping = False


# ---------------------------------------------------------------------------------------------------
# OpenSourceRIS command set (mheinri/OpenSourceRIS, bench notes 4.1): no sequence, no CRC
# ---------------------------------------------------------------------------------------------------
OSRIS_GET = b"?Pattern\n"
OSRIS_VEXT = b"?Vext\n"
OSRIS_RESET = b"!Reset\n"
OSRIS_OK = b"#OK"
OSRIS_READY = b"#READY!"
_OSRIS_PAT = re.compile(rb"#0X([0-9A-F]+)")
_OSRIS_VEXT = re.compile(rb"#([0-9]{1,2}\.[0-9]{2}) V")


def osris_set_frame(phase_hex: str) -> bytes:
    """``!0x<HEX>\\n`` (the firmware upper-cases everything it receives)."""
    if not re.fullmatch(r"[0-9A-Fa-f]+", phase_hex or "") or len(phase_hex) % 2:
        raise ValueError(f"phase_hex: expected an even number of hex digits, got {phase_hex!r}")
    return b"!0x" + phase_hex.upper().encode("ascii") + b"\n"


def osris_parse_pattern(line: bytes) -> str | None:
    """Hex digits of a ``#0X<HEX>`` read-back line, or None when the line is something else."""
    m = _OSRIS_PAT.fullmatch(line.rstrip(b"\r\n"))
    return m.group(1).decode("ascii") if m else None


def osris_parse_vext(line: bytes) -> float | None:
    """Volts of a ``#dd.dd V`` line, or None."""
    m = _OSRIS_VEXT.fullmatch(line.rstrip(b"\r\n"))
    return float(m.group(1)) if m else None
