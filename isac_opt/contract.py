"""The certified-design contract: a design a method returns satisfies every constraint of its problem.

Every design object has ``violations() -> list[str]`` — one short line per violated constraint family
(CM / unit modulus, CI per (k, l) at :data:`CI_TOL`, active-RIS amplitude), empty when certified.
:func:`certify` runs it on every design a registered method returns (:meth:`isac_opt.registry.Method.run`):
an infeasible design raises :class:`~isac_opt.errors.InfeasibleDesignError` (one line, exit 2 at the CLI)
unless the caller asked to keep it (``--allow-infeasible``), in which case it is marked
``extra["certified"] = False`` with the violations, and that mark travels in the design file.

Tolerances (recorded in each design's ``extra["contract"]``): a CI constraint m_{k,l}/γ_k ≥ 1 holds when
m/γ ≥ 1 − CI_TOL; constant modulus holds when every | |x_i| − a | ≤ CM_TOL·a; unit modulus likewise for φ.
"""
from __future__ import annotations

import numpy as np

from .errors import InfeasibleDesignError

CI_TOL = 1e-6     # relative, on the normalised CI margin m_{k,l}/γ_k
CM_TOL = 1e-6     # relative, on |x_i| (CM) and |φ_n| (unit modulus)


def modulus_violation(z, target, what: str, tol: float = CM_TOL) -> list[str]:
    """``[line]`` if some |z_i| differs from ``target`` (scalar or array) by more than ``tol``·target."""
    z = np.asarray(z)
    if z.size == 0:
        return []
    dev = np.abs(np.abs(z) - target) / np.maximum(target, 1e-300)
    bad = dev > tol
    if not np.any(bad):
        return []
    return [f"{what}: {int(bad.sum())} of {z.size} entries off modulus, worst relative deviation "
            f"{float(dev.max()):.3g} > {tol:g}"]


def ci_violation(mnorm, tol: float = CI_TOL) -> list[str]:
    """``[line]`` if some normalised CI margin m_{k,l}/γ_k (array (K, L)) is below 1 − tol."""
    mnorm = np.asarray(mnorm, dtype=np.float64)
    bad = mnorm < 1.0 - tol
    if not np.any(bad):
        return []
    slots = int(np.any(bad, axis=0).sum()) if mnorm.ndim == 2 else int(bad.sum())
    return [f"CI: {int(bad.sum())} of {mnorm.size} (k, l) constraints violated in {slots} slot(s), "
            f"worst normalised margin {float(mnorm.min()):.4g} < 1"]


def certify(design, *, allow_infeasible: bool = False) -> list[str]:
    """Check ``design`` against its problem; mark it; raise unless certified or ``allow_infeasible``."""
    v = list(design.violations())
    design.extra["certified"] = not v
    design.extra["contract"] = {"ci_tol": CI_TOL, "cm_tol": CM_TOL}
    if v:
        design.extra["violations"] = v
        if not allow_infeasible:
            raise InfeasibleDesignError(
                f"method {design.method!r} (seed {design.seed}) returned a design that violates its "
                f"constraints: {'; '.join(v)} (--allow-infeasible keeps it, marked uncertified)")
    return v


def has_ci(method: str) -> bool:
    """Whether a method's problem has CI constraints (the radar-only variants have none) [A.11.2, B.8]."""
    base = method.split("+", 1)[0]
    return not (base in ("radar-only", "init-radar-only") or base.endswith("-radar"))
