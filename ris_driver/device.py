"""Device model: board description, pattern value object, acks, and the ``RisDevice`` protocol.

Conventions
-----------
* **Logical element index** ``n = r * cols + c`` (row-major, row ``r`` in ``0..rows-1``, column ``c``),
  the order in which ``isac_opt`` designs the RIS coefficients ``phi`` (shape ``(N,)``).
* **Wire order** (``BoardSpec.wire_order``): the order in which a board's firmware expects the elements
  in its hex string: ``"row"`` (same as logical) or ``"col"`` (column-major, ``c * rows + r``).
* **Bit order** (``BoardSpec.bit_order``): the element bit stream (each element's ``b`` bits written
  most-significant first) fills each byte from its MSB (``"msb"``) or from its LSB (``"lsb"``,
  i.e. every byte bit-reversed, as the OpenSourceRIS firmware does internally).
  All of this lives in one tested pair of functions: :func:`pack_states` / :func:`unpack_states`.
* **Reflection table** ``BoardSpec.gamma``: complex128, shape ``(N, 2**bits, n_amp)``;
  ``gamma[n, s, a]`` is the measured (or ideal) reflection coefficient of element ``n`` in phase state
  ``s`` with amplifier state ``a``. For passive boards ``n_amp == 1``.
* **Amplifier scope** ``amp_scope``: ``"none"`` (no amplifier field), ``"array"`` (one state for the whole
  array, e.g. a centralized amplifier) or ``"element"`` (one state per element, e.g. FET bias states).
"""
from __future__ import annotations

import json
import math
import operator
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol, runtime_checkable

import numpy as np

__all__ = [
    "BoardSpec", "Pattern", "RisConfig", "Ack", "RisInfo", "Health", "RisDevice",
    "pack_states", "unpack_states", "wire_permutation",
]

_AMP_SCOPES = ("none", "array", "element")


# ---------------------------------------------------------------------------------------------------
# Board description
# ---------------------------------------------------------------------------------------------------
@dataclass(frozen=True, eq=False)
class BoardSpec:
    """Static description of one RIS board.

    Parameters
    ----------
    rows, cols : int
        Element grid; ``N = rows * cols``.
    bits : int
        Phase-state bits per element (1..4); ``2**bits`` phase states.
    amp_states : tuple of str
        Names of the amplifier states, e.g. ``("passive",)`` or ``("off", "passive", "active")``.
    amp_scope : {"none", "array", "element"}
        Whether the amplifier state is absent, one per array, or one per element.
    wire_order : {"row", "col"}
        Element order in the firmware's hex string (see module docstring).
    bit_order : {"msb", "lsb"}
        Which end of each byte the element bit stream fills first.
    spacing_m : tuple of float
        Element spacing ``(dx, dy)`` [m].
    gamma : complex128 array, shape (N, 2**bits, n_amp), optional
        Reflection table; default: ideal ``exp(j 2 pi s / 2**bits)`` with unit gain for every amp state.
    name : str
        Free-text board name (logged).
    """

    rows: int
    cols: int
    bits: int = 1
    amp_states: tuple = ("passive",)
    amp_scope: str = "none"
    wire_order: str = "row"
    bit_order: str = "msb"
    spacing_m: tuple = (0.025, 0.025)
    gamma: np.ndarray | None = None
    name: str = "ris"

    def __post_init__(self):
        for f in ("rows", "cols", "bits"):
            v = getattr(self, f)
            if not isinstance(v, (int, np.integer)) or isinstance(v, bool) or v < 1:
                raise ValueError(f"BoardSpec.{f}: expected a positive integer, got {v!r}")
        if self.bits > 4:
            raise ValueError(f"BoardSpec.bits: expected 1..4 phase bits per element, got {self.bits}")
        if self.rows * self.cols > 4096:
            raise ValueError(f"BoardSpec rows*cols: expected at most 4096 elements, got {self.rows * self.cols}")
        amps = tuple(str(a) for a in self.amp_states)
        if not amps or len(amps) > 16:
            raise ValueError(f"BoardSpec.amp_states: expected 1..16 state names, got {self.amp_states!r}")
        object.__setattr__(self, "amp_states", amps)
        if self.amp_scope not in _AMP_SCOPES:
            raise ValueError(f"BoardSpec.amp_scope: expected one of {_AMP_SCOPES}, got {self.amp_scope!r}")
        if self.amp_scope == "none" and len(amps) != 1:
            raise ValueError("BoardSpec.amp_states: amp_scope 'none' needs exactly one amplifier state")
        if self.wire_order not in ("row", "col"):
            raise ValueError(f"BoardSpec.wire_order: expected 'row' or 'col', got {self.wire_order!r}")
        if self.bit_order not in ("msb", "lsb"):
            raise ValueError(f"BoardSpec.bit_order: expected 'msb' or 'lsb', got {self.bit_order!r}")
        sp = tuple(float(x) for x in self.spacing_m)
        if len(sp) != 2 or not all(math.isfinite(x) and x > 0 for x in sp):
            raise ValueError(f"BoardSpec.spacing_m: expected two positive spacings [m], got {self.spacing_m!r}")
        object.__setattr__(self, "spacing_m", sp)
        shape = (self.n, self.n_phase, self.n_amp)
        if self.gamma is None:
            s = np.arange(self.n_phase)
            g = np.exp(2j * np.pi * s / self.n_phase)[None, :, None] * np.ones(shape)
        else:
            g = np.asarray(self.gamma)
            if g.ndim == 2 and self.n_amp == 1:
                g = g[:, :, None]
            if g.shape != shape:
                raise ValueError(f"BoardSpec.gamma: expected shape {shape} (N, 2**bits, n_amp), got {g.shape}")
            if not np.all(np.isfinite(g)):
                raise ValueError("BoardSpec.gamma: expected finite complex reflection coefficients")
        g = np.array(g, dtype=np.complex128)
        g.setflags(write=False)
        object.__setattr__(self, "gamma", g)

    # -- derived sizes ------------------------------------------------------------------------------
    @property
    def n(self) -> int:
        """Number of elements ``N = rows * cols``."""
        return self.rows * self.cols

    @property
    def n_phase(self) -> int:
        """Number of phase states ``2**bits``."""
        return 1 << self.bits

    @property
    def n_amp(self) -> int:
        """Number of amplifier states."""
        return len(self.amp_states)

    @property
    def amp_bits(self) -> int:
        """Bits per amplifier field on the wire (0 when there is a single amplifier state)."""
        return max(0, (self.n_amp - 1).bit_length())

    @property
    def amp_len(self) -> int:
        """Length of ``Pattern.amp``: 0 (scope none), 1 (array) or N (element)."""
        return {"none": 0, "array": 1, "element": self.n}[self.amp_scope]

    def positions_m(self) -> np.ndarray:
        """Element centre positions [m], shape (N, 2) as ``(x, y)`` in logical order, centred on 0."""
        r, c = np.divmod(np.arange(self.n), self.cols)
        x = (c - (self.cols - 1) / 2) * self.spacing_m[0]
        y = (r - (self.rows - 1) / 2) * self.spacing_m[1]
        return np.stack([x, y], axis=1)

    # -- constructors -------------------------------------------------------------------------------
    @classmethod
    def open_source_ris(cls, gamma: np.ndarray | None = None) -> "BoardSpec":
        """The mheinri/OpenSourceRIS board: 16x16, 1 bit, row-major, MSB-first hex string.

        The default table is ideal (+1, -1); the measured ON/OFF difference is only ~92 deg at 5.875 GHz
        (bench notes 4.1), so load a measured table for real work.
        """
        return cls(rows=16, cols=16, bits=1, wire_order="row", bit_order="msb",
                   spacing_m=(0.0264, 0.0264), gamma=gamma, name="OpenSourceRIS")

    def replace_gamma(self, gamma: np.ndarray) -> "BoardSpec":
        """Return a copy of the board with another reflection table."""
        d = self.to_dict()
        d.pop("gamma", None)
        return BoardSpec(**d, gamma=gamma)

    # -- (de)serialisation --------------------------------------------------------------------------
    def to_dict(self, with_gamma: bool = True) -> dict:
        """JSON-ready dict (``gamma`` as ``[[re, im], ...]`` nested lists when ``with_gamma``)."""
        d = dict(rows=self.rows, cols=self.cols, bits=self.bits, amp_states=list(self.amp_states),
                 amp_scope=self.amp_scope, wire_order=self.wire_order, bit_order=self.bit_order,
                 spacing_m=list(self.spacing_m), name=self.name)
        if with_gamma:
            d["gamma"] = np.stack([self.gamma.real, self.gamma.imag], axis=-1).tolist()
        return d

    @classmethod
    def from_dict(cls, d: dict) -> "BoardSpec":
        """Inverse of :meth:`to_dict` (``gamma`` optional, as ``[..., 2]`` re/im lists)."""
        known = {"rows", "cols", "bits", "amp_states", "amp_scope", "wire_order", "bit_order",
                 "spacing_m", "name", "gamma"}
        extra = set(d) - known - {"format", "version", "gamma_file"}
        if extra:
            raise ValueError(f"board description: unknown field(s) {sorted(extra)}; expected {sorted(known)}")
        kw = {k: d[k] for k in known if k in d}
        if "amp_states" in kw:
            kw["amp_states"] = tuple(kw["amp_states"])
        if "spacing_m" in kw:
            kw["spacing_m"] = tuple(kw["spacing_m"])
        if kw.get("gamma") is not None:
            g = np.asarray(kw["gamma"], dtype=float)
            if g.shape[-1] != 2:
                raise ValueError("board description field 'gamma': expected [..., 2] (re, im) pairs")
            kw["gamma"] = g[..., 0] + 1j * g[..., 1]
        return cls(**kw)

    def save(self, path: str | Path) -> Path:
        """Write a calibration file ``path`` (JSON).

        Tables of up to 64 elements are stored inline in the JSON as ``[re, im]`` pairs; larger ones in
        a ``.npz`` twin next to it (field ``gamma_file`` names it, relative to the JSON).
        """
        path = Path(path)
        d = self.to_dict(with_gamma=self.n <= 64)
        d["format"] = "ris_driver.board"
        d["version"] = 1
        if self.n > 64:
            npz = path.with_suffix(".npz")
            np.savez(npz, gamma=self.gamma)
            d["gamma_file"] = npz.name
        path.write_text(json.dumps(d, indent=1))
        return path

    @classmethod
    def load(cls, path: str | Path) -> "BoardSpec":
        """Load a calibration file written by :meth:`save` (JSON, optionally with its ``.npz`` twin)."""
        path = Path(path)
        try:
            d = json.loads(path.read_text())
        except json.JSONDecodeError as e:
            raise ValueError(f"board file {path}: not valid JSON ({e})") from None
        if d.get("format") != "ris_driver.board":
            raise ValueError(f"board file {path}: field 'format' expected 'ris_driver.board', got {d.get('format')!r}")
        gf = d.get("gamma_file")
        if gf:
            with np.load(path.parent / gf) as z:
                g = z["gamma"]
            d = dict(d, gamma=np.stack([g.real, g.imag], axis=-1))
        return cls.from_dict(d)

    def describe(self) -> str:
        amp = "none" if self.amp_scope == "none" else f"{self.amp_scope}:{'/'.join(self.amp_states)}"
        return f"{self.rows}x{self.cols} ({self.n} el), {self.bits} bit, amp {amp}, {self.wire_order}/{self.bit_order}"

    def __repr__(self):
        return f"BoardSpec({self.name!r}, {self.describe()})"


# ---------------------------------------------------------------------------------------------------
# Pattern value object
# ---------------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Pattern:
    """An RIS configuration: integer phase state per element, amplifier state(s).

    Parameters
    ----------
    phase : tuple of int, length N
        Phase state ``0 .. 2**bits - 1`` per element, logical (row-major) order.
    amp : tuple of int
        Amplifier state index(es): empty (scope none), one (array) or N (element).
    """

    phase: tuple
    amp: tuple = ()

    def __post_init__(self):
        for f in ("phase", "amp"):
            try:
                object.__setattr__(self, f, tuple(operator.index(x) for x in getattr(self, f)))
            except TypeError:
                raise TypeError(f"Pattern.{f}: expected a sequence of integer states, "
                                f"got {getattr(self, f)!r:.60}") from None

    @classmethod
    def from_arrays(cls, phase, amp=()) -> "Pattern":
        p = np.asarray(phase)
        if p.ndim != 1 or (p.size and not np.issubdtype(p.dtype, np.integer)):
            raise ValueError(f"Pattern.phase: expected a 1-D integer array, got dtype {p.dtype} shape {p.shape}")
        a = np.atleast_1d(np.asarray(amp, dtype=np.int64)) if np.size(amp) else ()
        return cls(tuple(p.tolist()), tuple(np.asarray(a).tolist()))

    @classmethod
    def zeros(cls, board: BoardSpec) -> "Pattern":
        """The power-on state: every phase state 0, amplifier state 0."""
        return cls((0,) * board.n, (0,) * board.amp_len)

    @classmethod
    def random(cls, board: BoardSpec, rng: np.random.Generator) -> "Pattern":
        """A uniformly random pattern for ``board`` drawn from ``rng``."""
        ph = rng.integers(0, board.n_phase, board.n)
        am = rng.integers(0, board.n_amp, board.amp_len)
        return cls.from_arrays(ph, am)

    @property
    def phase_array(self) -> np.ndarray:
        return np.asarray(self.phase, dtype=np.int64)

    @property
    def amp_array(self) -> np.ndarray:
        return np.asarray(self.amp, dtype=np.int64)

    def validate(self, board: BoardSpec) -> "Pattern":
        """Raise ``ValueError`` naming the field unless this pattern fits ``board``; return self."""
        if len(self.phase) != board.n:
            raise ValueError(f"Pattern.phase: expected {board.n} elements for board {board.name!r}, got {len(self.phase)}")
        if self.phase and (min(self.phase) < 0 or max(self.phase) >= board.n_phase):
            raise ValueError(f"Pattern.phase: expected states in 0..{board.n_phase - 1} ({board.bits} bit), "
                             f"got range {min(self.phase)}..{max(self.phase)}")
        if len(self.amp) != board.amp_len:
            raise ValueError(f"Pattern.amp: expected {board.amp_len} amplifier state(s) "
                             f"(scope {board.amp_scope!r}), got {len(self.amp)}")
        if self.amp and (min(self.amp) < 0 or max(self.amp) >= board.n_amp):
            raise ValueError(f"Pattern.amp: expected states in 0..{board.n_amp - 1} {board.amp_states}, "
                             f"got range {min(self.amp)}..{max(self.amp)}")
        return self

    def to_hex(self, board: BoardSpec) -> tuple[str, str]:
        """Wire hex strings ``(phase_hex, amp_hex)`` for ``board`` (``amp_hex`` is "" without amp field)."""
        self.validate(board)
        ph = pack_states(self.phase_array, board.bits, board)
        am = pack_amp(self.amp_array, board)
        return ph, am

    @classmethod
    def from_hex(cls, board: BoardSpec, phase_hex: str, amp_hex: str = "") -> "Pattern":
        """Inverse of :meth:`to_hex`; raises ``ValueError`` on a wrong length or bad digit."""
        ph = unpack_states(phase_hex, board.bits, board)
        am = unpack_amp(amp_hex, board)
        return cls.from_arrays(ph, am).validate(board)

    def short(self, maxlen: int = 24) -> str:
        s = "".join("0123456789ABCDEF"[x] if x < 16 else "?" for x in self.phase)
        s = s if len(s) <= maxlen else s[:maxlen] + f"...({len(self.phase)})"
        return s + (f" amp={list(self.amp)}" if self.amp else "")

    def __repr__(self):
        return f"Pattern({self.short()})"


#: Alias: a pattern is the RIS configuration value object.
RisConfig = Pattern


# ---------------------------------------------------------------------------------------------------
# Element ordering and bit packing (the one place that knows about it)
# ---------------------------------------------------------------------------------------------------
def wire_permutation(board: BoardSpec) -> np.ndarray:
    """Index array ``perm`` with ``wire_values = logical_values[perm]`` (shape (N,))."""
    idx = np.arange(board.n).reshape(board.rows, board.cols)
    return (idx if board.wire_order == "row" else idx.T).ravel()


def _pack_stream(values: np.ndarray, width: int, bit_order: str) -> str:
    if width == 0:
        return ""
    bits = ((values[:, None] >> np.arange(width - 1, -1, -1)) & 1).astype(np.uint8).ravel()
    pad = (-bits.size) % 8
    bits = np.concatenate([bits, np.zeros(pad, np.uint8)])
    byts = np.packbits(bits, bitorder="big" if bit_order == "msb" else "little")
    return byts.tobytes().hex().upper()


def _unpack_stream(hexstr: str, count: int, width: int, bit_order: str, what: str) -> np.ndarray:
    if width == 0:
        if hexstr not in ("", None):
            raise ValueError(f"{what}: expected an empty field, got {hexstr!r}")
        return np.zeros(count, np.int64)
    nbytes = (count * width + 7) // 8
    if not isinstance(hexstr, str) or len(hexstr) != 2 * nbytes:
        raise ValueError(f"{what}: expected {2 * nbytes} hex digits, got {len(hexstr) if isinstance(hexstr, str) else hexstr!r}")
    try:
        raw = bytes.fromhex(hexstr)
    except ValueError:
        raise ValueError(f"{what}: expected hex digits 0-9A-F, got {hexstr!r}") from None
    bits = np.unpackbits(np.frombuffer(raw, np.uint8), bitorder="big" if bit_order == "msb" else "little")
    bits = bits[: count * width].reshape(count, width).astype(np.int64)
    return (bits << np.arange(width - 1, -1, -1)).sum(axis=1)


def pack_states(states: np.ndarray, width: int, board: BoardSpec) -> str:
    """Pack per-element states (logical order, shape (N,)) into the board's upper-case hex string.

    Each element contributes ``width`` bits, most significant first, in wire order; the bit stream is
    padded with zeros to whole bytes; ``bit_order`` picks which end of a byte is filled first.
    """
    v = np.asarray(states, dtype=np.int64)
    return _pack_stream(v[wire_permutation(board)], width, board.bit_order)


def unpack_states(hexstr: str, width: int, board: BoardSpec) -> np.ndarray:
    """Inverse of :func:`pack_states`: hex string -> states in logical order, shape (N,)."""
    wire = _unpack_stream(hexstr, board.n, width, board.bit_order, "phase hex")
    out = np.empty(board.n, np.int64)
    out[wire_permutation(board)] = wire
    return out


def pack_amp(amp: np.ndarray, board: BoardSpec) -> str:
    """Hex string of the amplifier field ("" for scope none or a single amplifier state)."""
    if board.amp_len == 0 or board.amp_bits == 0:
        return ""
    a = np.asarray(amp, dtype=np.int64)
    if board.amp_scope == "element":
        return pack_states(a, board.amp_bits, board)
    return _pack_stream(a, board.amp_bits, board.bit_order)


def unpack_amp(hexstr: str, board: BoardSpec) -> np.ndarray:
    if board.amp_len == 0:
        if hexstr:
            raise ValueError(f"amp hex: board has no amplifier field, got {hexstr!r}")
        return np.zeros(0, np.int64)
    if board.amp_bits == 0:
        if hexstr:
            raise ValueError(f"amp hex: board has a single amplifier state, expected an empty field, got {hexstr!r}")
        return np.zeros(board.amp_len, np.int64)
    if board.amp_scope == "element":
        return unpack_states(hexstr, board.amp_bits, board)
    return _unpack_stream(hexstr, 1, board.amp_bits, board.bit_order, "amp hex")


# ---------------------------------------------------------------------------------------------------
# Acks, info, health
# ---------------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Ack:
    """A confirmed (applied and read back) state.

    ``t_ack`` is the host ``time.monotonic()`` [s] when the commit ack arrived; ``attempts`` is
    1 + the number of retransmissions needed over all transactions of this apply; ``cycles`` the
    number of set/apply/verify cycles (> 1 when a read-back mismatch forced a repeat).
    """

    pattern: Pattern
    t_ack: float
    attempts: int = 1
    cycles: int = 1
    commit_count: int | None = None

    def to_dict(self) -> dict:
        return dict(phase=list(self.pattern.phase), amp=list(self.pattern.amp), t_ack=self.t_ack,
                    attempts=self.attempts, cycles=self.cycles, commit_count=self.commit_count)

    @classmethod
    def from_dict(cls, d: dict) -> "Ack":
        return cls(Pattern(tuple(d["phase"]), tuple(d["amp"])), float(d["t_ack"]), int(d["attempts"]),
                   int(d.get("cycles", 1)), d.get("commit_count"))


@dataclass(frozen=True)
class RisInfo:
    """Identity of a device: board geometry, firmware, serial number, plus the last confirmed state."""

    board: BoardSpec
    firmware: str = "unknown"
    serial: str = "unknown"
    protocol: str = "ris1"
    last: Ack | None = None

    def to_dict(self) -> dict:
        return dict(board=self.board.to_dict(with_gamma=False), firmware=self.firmware, serial=self.serial,
                    protocol=self.protocol, last=self.last.to_dict() if self.last else None)


@dataclass(frozen=True)
class Health:
    """Health report: supply voltage [V], temperature [degC] (nan if unknown), uptime [s], boot count."""

    supply_v: float = float("nan")
    temp_c: float = float("nan")
    uptime_s: float = float("nan")
    boots: int = -1
    crc_errors: int = -1

    def to_dict(self) -> dict:
        return dict(supply_v=self.supply_v, temp_c=self.temp_c, uptime_s=self.uptime_s,
                    boots=self.boots, crc_errors=self.crc_errors)


@dataclass
class LinkStats:
    """Counters kept by every client (shown in ``__repr__``)."""

    transactions: int = 0
    retries: int = 0
    timeouts: int = 0
    bad_frames: int = 0
    stale_replies: int = 0
    nacks: int = 0
    verify_mismatches: int = 0
    events: int = 0
    applies: int = 0

    def to_dict(self) -> dict:
        return dict(self.__dict__)


@runtime_checkable
class RisDevice(Protocol):
    """What every RIS client provides (simulator, serial, OpenSourceRIS, ZMQ)."""

    board: BoardSpec

    def apply(self, pattern: Pattern, *, timeout_s: float | None = None) -> Ack: ...
    def read_back(self) -> Pattern: ...
    def info(self) -> RisInfo: ...
    def health(self) -> Health: ...
    def reset(self) -> None: ...
    def close(self) -> None: ...


def status_table(title: str, board: BoardSpec, firmware: str, serial: str, last: Ack | None,
                 stats: LinkStats) -> str:
    """A one-screen status table for lab logs (``__repr__`` of every client)."""
    now = time.monotonic()
    rows = [("board", board.describe()), ("firmware", f"{firmware}   serial {serial}")]
    if last is None:
        rows.append(("last state", "none confirmed"))
    else:
        rows.append(("last state", last.pattern.short(32)))
        rows.append(("t_ack", f"{last.t_ack:.6f} s monotonic ({now - last.t_ack:.3f} s ago)"))
        rows.append(("attempts", f"{last.attempts} (cycles {last.cycles})"))
    s = stats
    rows.append(("link", f"tx {s.transactions}  retries {s.retries}  timeouts {s.timeouts}  bad frames "
                         f"{s.bad_frames}  stale {s.stale_replies}  nacks {s.nacks}  verify-mismatch "
                         f"{s.verify_mismatches}  events {s.events}  applies {s.applies}"))
    w = max(len(k) for k, _ in rows)
    return title + "\n" + "\n".join(f"  {k:<{w}} : {v}" for k, v in rows)
