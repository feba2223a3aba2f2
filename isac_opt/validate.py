"""Field validators shared by the scenario dataclasses (paper A and paper B).

Each check raises :class:`isac_opt.errors.ScenarioError` naming the field and the expected form,
never a numpy traceback.
"""
from __future__ import annotations

import math
from numbers import Integral, Real

from .errors import IsacError, ScenarioError


def _is_real(v) -> bool:
    return isinstance(v, Real) and not isinstance(v, bool)


def check_int(name: str, v, lo: int | None = None, hi: int | None = None) -> int:
    if isinstance(v, bool) or not isinstance(v, Integral):
        raise ScenarioError(name, "an integer", v)
    if lo is not None and v < lo:
        raise ScenarioError(name, f"an integer >= {lo}", v)
    if hi is not None and v > hi:
        raise ScenarioError(name, f"an integer <= {hi}", v)
    return int(v)


def check_real(name: str, v, lo: float | None = None, hi: float | None = None,
               lo_open: bool = False) -> float:
    if not _is_real(v) or not math.isfinite(float(v)):
        raise ScenarioError(name, "a finite real number", v)
    v = float(v)
    if lo is not None and (v < lo or (lo_open and v == lo)):
        raise ScenarioError(name, f"a number {'>' if lo_open else '>='} {lo}", v)
    if hi is not None and v > hi:
        raise ScenarioError(name, f"a number <= {hi}", v)
    return v


def check_choice(name: str, v, choices) -> str:
    if v not in choices:
        raise ScenarioError(name, "one of " + ", ".join(repr(c) for c in choices), v)
    return v


def check_real_list(name: str, v, length: int | None = None, lo: float | None = None,
                    lo_open: bool = False) -> tuple[float, ...]:
    if isinstance(v, (str, bytes)) or not hasattr(v, "__iter__"):
        raise ScenarioError(name, "a list of numbers", v)
    v = tuple(v)
    if length is not None and len(v) != length:
        raise ScenarioError(name, f"a list of {length} numbers", list(v))
    return tuple(check_real(f"{name}[{i}]", x, lo=lo, lo_open=lo_open) for i, x in enumerate(v))


def check_int_list(name: str, v, length: int | None = None, lo: int | None = None,
                   hi: int | None = None) -> tuple[int, ...]:
    if isinstance(v, (str, bytes)) or not hasattr(v, "__iter__"):
        raise ScenarioError(name, "a list of integers", v)
    v = tuple(v)
    if length is not None and len(v) != length:
        raise ScenarioError(name, f"a list of {length} integers", list(v))
    return tuple(check_int(f"{name}[{i}]", x, lo=lo, hi=hi) for i, x in enumerate(v))


def db2lin(db: float) -> float:
    return 10.0 ** (db / 10.0)


def lin2db(x: float) -> float:
    return 10.0 * math.log10(x)


class InputError(IsacError, ValueError):
    """A command-line value or input file field is out of its valid range (one line, names the option)."""


def check_pfa(v, name: str = "--pfa") -> float:
    """A false-alarm probability: a finite real 0 < pfa < 1 (Pd = Pfa^{1/(1+SINR)} [spec A.4 (16)])."""
    if not _is_real(v) or not math.isfinite(float(v)) or not 0.0 < float(v) < 1.0:
        raise InputError(f"{name}: expected a false-alarm probability 0 < pfa < 1, got {v!r}")
    return float(v)
