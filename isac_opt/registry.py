"""Registries that tie the pieces together without import cycles.

* ``METHODS``: design methods (``isac-testbed design --method NAME``).
* ``REPRODUCE``: figure/table targets (``isac-testbed reproduce NAME``).
* ``TRAINERS``: training tasks (``isac-testbed train NAME``).
* ``COMMANDS``: extra CLI sub-commands that live in other packages (ris, run, calibrate).

Modules named in ``EXTENSION_MODULES`` register themselves on import; a module that does not exist
in this checkout is skipped, any other import error propagates (no silent failure).
"""
from __future__ import annotations

import importlib
import importlib.util
from dataclasses import dataclass, field
from typing import Any, Callable

from .errors import MethodError

# Modules that register methods / reproduce targets / trainers when imported.
EXTENSION_MODULES = (
    "isac_opt.starting",          # foundation: starting designs (A.10, B.7 init), random-ris / no-ris
    "isac_opt.detect.methods",    # paper A detection: admm-mm, radar-only, unfolded, ...
    "isac_opt.doa.methods",       # paper A DoA: unfolded-doa, unfolded-doa-alm, unsupervised-doa
    "isac_opt.paper_b.methods",   # paper B: stap-fp-mm-admm and baselines
)

# Sub-commands provided by the other import packages: name -> module defining
# ``add_parser(subparsers)``, which adds ONE sub-parser named like the key and sets
# ``set_defaults(func=handler)`` with ``handler(args) -> int`` (the exit code).
COMMAND_MODULES = {
    "ris": "ris_driver.cli",
    "run": "blocks.cli",
    "calibrate": "calibration.cli",
}


@dataclass(frozen=True)
class Method:
    """A design method.

    ``run(scenario, seed, channels=None) -> design`` returns a design object with ``save(path)`` and
    ``report(pfa=1e-3) -> dict``. ``rank``: the highest-ranked method available for a scenario kind is
    the default of ``design``.
    """

    name: str
    scenario_kind: str            # "paper-a" | "paper-b"
    summary: str
    run: Callable[..., Any]
    rank: int = 0


@dataclass(frozen=True)
class Target:
    """A reproduction target: ``run(out_dir, quick=False, workers=1, **kw) -> list of written paths``."""

    name: str
    summary: str
    run: Callable[..., Any]


METHODS: dict[tuple[str, str], Method] = {}
REPRODUCE: dict[str, Target] = {}
TRAINERS: dict[str, Target] = {}
_loaded = False


def register_method(m: Method) -> Method:
    """Register ``m`` under (scenario kind, name): paper A and paper B may both have ``random-ris``."""
    METHODS[(m.scenario_kind, m.name)] = m
    return m


def register_target(t: Target) -> Target:
    REPRODUCE[t.name] = t
    return t


def register_trainer(t: Target) -> Target:
    TRAINERS[t.name] = t
    return t


def _module_exists(name: str) -> bool:
    try:
        return importlib.util.find_spec(name) is not None
    except ModuleNotFoundError:   # a parent package is missing
        return False


def load_extensions() -> None:
    global _loaded
    if _loaded:
        return
    for mod in EXTENSION_MODULES:
        if _module_exists(mod):
            importlib.import_module(mod)
    _loaded = True


def methods_for(kind: str) -> list[Method]:
    load_extensions()
    return sorted((m for m in METHODS.values() if m.scenario_kind == kind), key=lambda m: -m.rank)


def get_method(name: str | None, kind: str) -> Method:
    ms = methods_for(kind)
    if not ms:
        raise MethodError(f"no design method is available for scenario kind {kind!r}")
    if name is None:
        return ms[0]
    by = {m.name: m for m in ms}
    if name not in by:
        other = [k for (k, n) in METHODS if n == name]
        hint = f" ({name!r} is a {other[0]} method)" if other else ""
        raise MethodError(f"method {name!r} does not fit scenario {kind!r}{hint}; "
                          f"expected one of: {', '.join(by)}")
    return by[name]
