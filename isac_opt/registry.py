"""Registries of design methods, reproduction targets and trainers — metadata only, imported lazily.

Every entry is plain data (name, summary, rank, ``"module:attr"`` entry point) declared in a paper's
catalogue (:data:`CATALOGS`: ``isac_opt.paper_a.catalog``, ``isac_opt.paper_b.catalog``). Reading the
registry imports only those small data modules, so ``isac-testbed --help`` and ``design --help`` list every
method without importing torch, cvxpy or matplotlib; an entry's module is imported when it is run.

Entry-point conventions:

* method: ``attr(name, scenario, seed, channels=None) -> design`` (one function serves a family of
  methods; ``name`` selects), the design has ``save(path)``, ``report(pfa)`` and ``violations()``;
* target: ``attr(out_dir, quick=False, workers=1, **options) -> list of written paths``;
* trainer: ``attr(out_dir, scenario="paper-a", quick=False, **options) -> list of written paths``.

A new paper or method plugs in by adding a catalogue entry; nothing here or in the CLI changes.
"""
from __future__ import annotations

import importlib
from dataclasses import dataclass
from typing import Any

from .errors import MethodError

#: modules holding ``METHODS``, ``TARGETS``, ``TRAINERS`` lists of entries (data only, no heavy imports)
CATALOGS = ("isac_opt.paper_a.catalog", "isac_opt.paper_b.catalog")


def resolve(spec: str) -> Any:
    """Import ``"package.module:attr[.attr…]"`` and return the attribute."""
    module, _, attr = spec.partition(":")
    if not module or not attr:
        raise ValueError(f"entry point {spec!r}: expected 'module:attr'")
    obj = importlib.import_module(module)
    for part in attr.split("."):
        obj = getattr(obj, part)
    return obj


@dataclass(frozen=True)
class Method:
    """A design method. The highest-ranked method of a scenario kind is the default of ``design``."""

    name: str
    scenario_kind: str            # "paper-a" | "paper-b"
    summary: str
    entry: str                    # "module:attr", attr(name, scenario, seed, channels=None)
    rank: int = 0

    def run(self, scenario, seed: int, channels=None, *, allow_infeasible: bool = False, **kw):
        """Design with this method (imports its module on first use), certified by
        :func:`isac_opt.contract.certify`: an infeasible design raises unless ``allow_infeasible``."""
        from .contract import certify
        d = resolve(self.entry)(self.name, scenario, seed, channels=channels, **kw)
        certify(d, allow_infeasible=allow_infeasible)
        return d


@dataclass(frozen=True)
class Target:
    """A reproduction target or a training task: ``run(out_dir, **options) -> list of written paths``."""

    name: str
    summary: str
    entry: str                    # "module:attr"

    def run(self, *args, **kw):
        return resolve(self.entry)(*args, **kw)


_METHODS: dict[tuple[str, str], Method] = {}
_REPRODUCE: dict[str, Target] = {}
_TRAINERS: dict[str, Target] = {}
_loaded = False


def load_catalogs() -> None:
    """Fill :data:`METHODS`, :data:`REPRODUCE`, :data:`TRAINERS` from the catalogues (cheap, idempotent)."""
    global _loaded
    if _loaded:
        return
    for mod in CATALOGS:
        cat = importlib.import_module(mod)
        for m in getattr(cat, "METHODS", ()):
            _METHODS[(m.scenario_kind, m.name)] = m     # paper A and B may both have `random-ris`
        for t in getattr(cat, "TARGETS", ()):
            _REPRODUCE[t.name] = t
        for t in getattr(cat, "TRAINERS", ()):
            _TRAINERS[t.name] = t
    _loaded = True


def methods_for(kind: str) -> list[Method]:
    load_catalogs()
    return sorted((m for m in _METHODS.values() if m.scenario_kind == kind), key=lambda m: -m.rank)


def get_method(name: str | None, kind: str) -> Method:
    ms = methods_for(kind)
    if not ms:
        raise MethodError(f"no design method is available for scenario kind {kind!r}")
    if name is None:
        return ms[0]
    by = {m.name: m for m in ms}
    if name not in by:
        other = [k for (k, n) in _METHODS if n == name]
        hint = f" ({name!r} is a {other[0]} method)" if other else ""
        raise MethodError(f"method {name!r} does not fit scenario {kind!r}{hint}; "
                          f"expected one of: {', '.join(by)}")
    return by[name]


def get_target(name: str) -> Target:
    load_catalogs()
    if name not in _REPRODUCE:
        raise MethodError(f"unknown reproduction target {name!r}; expected any of: {', '.join(sorted(_REPRODUCE))}")
    return _REPRODUCE[name]


def get_trainer(name: str) -> Target:
    load_catalogs()
    if name not in _TRAINERS:
        raise MethodError(f"unknown training task {name!r}; expected one of: {', '.join(_TRAINERS)}")
    return _TRAINERS[name]


def __getattr__(name: str):
    """``METHODS`` / ``REPRODUCE`` / ``TRAINERS``: the tables, read from the catalogues on first access."""
    tables = {"METHODS": _METHODS, "REPRODUCE": _REPRODUCE, "TRAINERS": _TRAINERS}
    if name in tables:
        load_catalogs()
        return tables[name]
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
