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
from .validate import check_int

LEG_MODELS = ("literal", "reciprocal")
USER_FADING = ("rayleigh", "r25_uniform")
PSK_ORDERS = (2, 4, 8, 16)
DFP_VARIANTS = ("paper", "standard")

# Upper size limits, checked before anything is allocated (a TOML with N = 1e7 must fail in one line, not
# after GBs of allocation). [RECON: generous margins over the papers' sweeps (A: N <= 128, M = 6, L = 20;
# B: N = 32, Pc = 8, L = 16); the products bound the largest dense matrices: paper A's (ML)x(ML) echo
# covariance and paper B's space-time blocks of Pc*L*Nt / Pc*L*Nr entries, to <= 64 MB each.]
SIZE_LIMITS = {
    "paper-a": {"M": 256, "N": 4096, "K": 64, "L": 1024, "Q": 64},
    "paper-b": {"Nt": 256, "Nr": 256, "K": 64, "R": 16, "N": 4096, "Q": 64, "Pc": 1024, "L": 1024,
                "n_realisations": 1_000_000, "max_outer": 100_000, "phi_inner": 1000, "x_passes": 1000},
}
PRODUCT_LIMITS = {
    "paper-a": ((("M", "L"), 2048),),
    "paper-b": ((("Pc", "L", "Nt"), 2048), (("Pc", "L", "Nr"), 2048)),
}


def check_sizes(kind: str, d: dict) -> None:
    """Check the size fields of a scenario dict of ``kind`` against SIZE_LIMITS / PRODUCT_LIMITS.

    Raises :class:`ScenarioError` naming the field; fields absent from ``d`` take their (small) defaults.
    """
    for name, hi in SIZE_LIMITS.get(kind, {}).items():
        if name in d:
            check_int(name, d[name], hi=hi)
    for names, hi in PRODUCT_LIMITS.get(kind, ()):
        if all(n in d for n in names):
            prod = math.prod(int(d[n]) for n in names)
            if prod > hi:
                raise ScenarioError("*".join(names), f"a product <= {hi} (dense matrices of that size are "
                                    f"allocated)", prod)



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
        defaults = {f.name: f.default for f in dataclasses.fields(cls) if f.name in SIZE_LIMITS.get(cls.kind, {})}
        check_sizes(cls.kind, {**defaults, **d})
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


MAX_TOML_BYTES = 1 << 20    # a scenario is a few hundred bytes; bound what we parse


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
    if not p.is_file():
        raise ScenarioError("scenario", "a .toml file (not a directory)", spec)
    if p.stat().st_size > MAX_TOML_BYTES:
        raise ScenarioError("scenario", f"a TOML file of at most {MAX_TOML_BYTES} bytes", f"{p.stat().st_size} bytes")
    try:
        d = tomllib.loads(p.read_text())
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as e:
        raise ScenarioError("scenario", f"a valid TOML file ({e})", str(p)) from None
    except OSError as e:
        raise ScenarioError("scenario", f"a readable TOML file ({e.strerror})", str(p)) from None
    if not d:
        # an empty file is almost always a mistake (truncated, wrong file): say so instead of silently
        # running the defaults; the defaults have a name
        raise ScenarioError("scenario", "at least one field (the file is empty; for the defaults pass the "
                            "built-in name 'paper-a' or 'paper-b', or write kind = \"paper-a\")", str(p))
    kind = d.get("kind", "paper-a")
    classes = scenario_classes()
    if kind not in classes:
        raise ScenarioError("kind", "one of " + ", ".join(classes), kind)
    return classes[kind].from_dict(d)
