"""Scenario machinery shared by both papers: frozen, validated dataclasses with TOML I/O.

The papers' scenarios live with their papers — ``ScenarioA`` [spec A.12] in
:mod:`isac_opt.paper_a.scenario`, ``ScenarioB`` [spec B.9] in :mod:`isac_opt.paper_b.scenario` — and
share the base class, TOML writer and loader here. Every [RECON] choice of the spec is a
named field. Invalid values raise :class:`~isac_opt.errors.ScenarioError` naming the field.

Units: powers in W, angles in rad, distances in m. ``*_db`` fields are in dB.
"""
from __future__ import annotations

import dataclasses
import math
import tomllib
from pathlib import Path

from .errors import ScenarioError

LEG_MODELS = ("literal", "reciprocal")
USER_FADING = ("rayleigh", "r25_uniform")
PSK_ORDERS = (2, 4, 8, 16)
DFP_VARIANTS = ("paper", "standard")


class ScenarioBase:
    """Shared behaviour: dict/TOML round trip, ``replace`` with re-validation."""

    kind: str = ""

    def to_dict(self) -> dict:
        d = {"kind": self.kind}
        for f in dataclasses.fields(self):
            v = getattr(self, f.name)
            d[f.name] = list(v) if isinstance(v, tuple) else v
        return d

    @classmethod
    def from_dict(cls, d: dict):
        d = dict(d)
        kind = d.pop("kind", cls.kind)
        if kind != cls.kind:
            raise ScenarioError("kind", repr(cls.kind), kind)
        names = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(d) - names)
        if unknown:
            raise ScenarioError(unknown[0], "a known field of " + cls.kind + " (unknown field)", d[unknown[0]])
        for k, v in list(d.items()):
            if isinstance(v, list):
                d[k] = tuple(v)
        return cls(**d)

    def replace(self, **kw):
        return dataclasses.replace(self, **kw)

    def to_toml(self) -> str:
        return dumps_toml(self.to_dict())

    def save_toml(self, path) -> None:
        Path(path).write_text(self.to_toml())


def _toml_value(v) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, int):
        return str(v)
    if isinstance(v, float):
        if math.isnan(v) or math.isinf(v):
            raise ScenarioError("<toml>", "finite numbers only", v)
        return repr(v)
    if isinstance(v, str):
        return '"' + v.replace("\\", "\\\\").replace('"', '\\"') + '"'
    if isinstance(v, (list, tuple)):
        return "[" + ", ".join(_toml_value(x) for x in v) + "]"
    if v is None:
        raise ScenarioError("<toml>", "no None values (omit the field instead)", v)
    raise ScenarioError("<toml>", "bool, int, float, str or list", type(v).__name__)


def dumps_toml(d: dict) -> str:
    """Write a flat dict (scalars and lists) as TOML; ``None`` values are omitted."""
    return "".join(f"{k} = {_toml_value(v)}\n" for k, v in d.items() if v is not None)


# Scenario kinds: kind -> "module:attr" of its frozen dataclass. Looked up lazily so that this generic
# module imports no paper's code (no import cycle); a new kind plugs in here.
SCENARIO_KINDS = {
    "paper-a": "isac_opt.paper_a.scenario:ScenarioA",
    "paper-b": "isac_opt.paper_b.scenario:ScenarioB",
}


def scenario_classes() -> dict:
    """Kind -> scenario class (imports each paper's scenario module on first use)."""
    from .registry import resolve
    return {k: resolve(v) for k, v in SCENARIO_KINDS.items()}


def builtin_scenarios() -> dict:
    """Name -> scenario factory of the built-in defaults (the kinds' default points)."""
    return scenario_classes()


def load_scenario(spec) -> ScenarioBase:
    """Load a scenario from a built-in name (``paper-a``, ``paper-b``), a TOML path, or pass one through."""
    if isinstance(spec, ScenarioBase):
        return spec
    spec = str(spec)
    b = builtin_scenarios()
    if spec in b:
        return b[spec]()
    p = Path(spec)
    if not p.exists():
        raise ScenarioError("scenario", "a built-in name (" + ", ".join(b) + ") or an existing .toml file", spec)
    try:
        d = tomllib.loads(p.read_text())
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as e:
        raise ScenarioError("scenario", f"a valid TOML file ({e})", str(p)) from None
    kind = d.get("kind", "paper-a")
    classes = scenario_classes()
    if kind not in classes:
        raise ScenarioError("kind", "one of " + ", ".join(classes), kind)
    return classes[kind].from_dict(d)
