"""Paper-B design objects: waveform, RIS coefficients, STAP filter, realisation and metrics [spec B.4, B.5].

:class:`DesignB` is what every paper-B method returns (``run(scenario, seed, channels=None)``); it is
saved with :meth:`DesignB.save` in the layout documented in :mod:`isac_opt.paper_b.designfile` and
``docs/paper_b.md``.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from ..ci import ber_analytic_qpsk, ci_margins, ser_analytic
from ..radar import pd_from_pfa
from . import designfile
from .algorithm import gamma_ci
from .certify import TOLERANCES, constraint_status, violation_lines
from .model import ChannelsB, Model, effective_channels, user_noise
from .scenario import ScenarioB

#: methods of problem (26) without CI constraints (radar-only variants) [spec B.8]
RADAR_ONLY_SUFFIX = "-radar"


def default_problem(method: str) -> dict:
    """Constraint families of a method's problem: CI for the ISAC methods, CM for all [spec B.6, B.8]."""
    radar = method == "radar-only" or method.endswith(RADAR_ONLY_SUFFIX)
    return {"ci": not radar, "cm": True}


def evaluate_b(ch: ChannelsB, X, phi, W=None, pfa: float = 1e-3) -> dict:
    """Metrics of a paper-B design [spec B.4, B.5, V-7, V-9].

    ``scnr_db`` is the SCNR of the design's own filter ``W`` (the MVDR one when ``W`` is None);
    ``scnr_mvdr_db`` the MVDR optimum at (X, phi); ``ci_min_margin`` = min m_{k,n}/gamma_k (>= 1: CI holds);
    ``ser`` the mean analytic SER (user noise includes the RIS noise when enabled); ``pd`` = Pfa^{1/(1+SCNR)}.
    """
    model = Model(ch)
    _, scnr_mvdr = model.mvdr(X, phi)
    scnr = model.scnr(W, X, phi) if W is not None else scnr_mvdr
    Z = effective_channels(ch, phi) @ X.reshape(-1, ch.Nt).T
    m = ci_margins(Z, ch.S, ch.psk_order) / gamma_ci(ch)[:, None]
    nu = user_noise(ch, phi)
    ser = ser_analytic(Z, ch.S, nu, ch.psk_order)
    out = {
        "scnr_db": float(10 * np.log10(scnr)),
        "scnr_mvdr_db": float(10 * np.log10(scnr_mvdr)),
        "crb": None,
        "ci_min_margin": float(m.min()),
        "ci_violation_max": float(max(0.0, 1.0 - m.min())),
        "ci_satisfied_frac": float(np.mean(m >= 1.0 - 1e-6)),
        "ser": float(ser.mean()),
        "ser_per_user": [float(v) for v in ser.mean(axis=1)],
        "pfa": float(pfa),
        "pd": float(pd_from_pfa(pfa, scnr)),
    }
    if ch.psk_order == 4:
        out["ber"] = float(ber_analytic_qpsk(Z, ch.S, nu).mean())
    return out


@dataclass
class DesignB:
    """A paper-B design.

    X (P_c, L, N_t) complex waveform, phi (R, N) RIS coefficients, W (P_c, L_r, N_r) STAP filter
    (w^H t = 1), ``history`` SCNR (linear) per outer iteration, ``timings`` seconds per sub-step.
    """

    scenario: ScenarioB
    channels: ChannelsB
    X: np.ndarray
    phi: np.ndarray
    W: np.ndarray
    method: str
    seed: int
    history: np.ndarray = field(default_factory=lambda: np.zeros(0))
    metrics: dict = field(default_factory=dict)
    extra: dict = field(default_factory=dict)
    problem: dict | None = None         # {"ci": bool, "cm": bool}; None = from the method name
    tolerances: dict = field(default_factory=lambda: dict(TOLERANCES))

    kind = "paper-b"

    def __post_init__(self):
        if self.problem is None:
            self.problem = default_problem(self.method)

    @classmethod
    def build(cls, scn, ch, X, phi, W, method: str, seed: int, history=(), extra=None,
              problem: dict | None = None) -> "DesignB":
        d = cls(scn, ch, np.asarray(X, np.complex128), np.asarray(phi, np.complex128),
                np.asarray(W, np.complex128), method, int(seed), np.asarray(history, np.float64),
                {}, dict(extra or {}), problem)
        d.metrics = evaluate_b(ch, d.X, d.phi, d.W)
        return d

    def constraint_status(self) -> dict:
        """Every constraint family of the design's problem measured at (X, phi) (:mod:`.certify`)."""
        return constraint_status(self.channels, self.X, self.phi, ci=bool(self.problem["ci"]),
                                 cm=bool(self.problem["cm"]), tol=self.tolerances)

    def violations(self) -> list[str]:
        """One short line per violated constraint family of problem (26) [spec B.6]; [] = certified.

        Families: CI per (k, n, +-) half-plane (ISAC methods), constant modulus of X, |phi| <= a_max;
        tolerances are the design's own (``self.tolerances``, stored in the file).
        """
        lines = violation_lines(self.constraint_status(), ci=bool(self.problem["ci"]),
                                cm=bool(self.problem["cm"]), tol=self.tolerances)
        t0 = self.extra.get("init_margin")
        if lines and isinstance(t0, (int, float)) and t0 < 1.0:
            lines = [ln + f" (the instance itself is CI-infeasible: t* = {t0:.3g} < 1)" if ln.startswith("CI")
                     else ln for ln in lines]
        return lines

    @property
    def scnr_db(self) -> float:
        return float(self.metrics.get("scnr_db", self.report()["scnr_db"]))

    def report(self, pfa: float = 1e-3) -> dict:
        """Re-evaluate the metrics from the stored arrays (never trusts saved numbers)."""
        r = {"scenario": self.kind, "method": self.method, "seed": self.seed}
        r.update(evaluate_b(self.channels, self.X, self.phi, self.W, pfa))
        r["iterations"] = int(len(self.history))
        r["constraints_ok"] = not self.violations()
        return r

    def save(self, path) -> None:
        """Write the ``.npz`` design file (format ``ris-isac-testbed/paper-b-design``, version 1)."""
        designfile.save(self, path)


def load_parsed(path, meta: dict, arrays: dict) -> DesignB:
    """Design-file loader entry (:data:`isac_opt.designfile.FORMATS`): the checked fields as a DesignB."""
    return DesignB(*designfile.parse(path, meta, arrays))


def load(path) -> DesignB:
    """Read a paper-B design file; :class:`~isac_opt.errors.DesignFileError` on damage."""
    from ..designfile import read_meta
    meta, arrays = read_meta(path)
    return load_parsed(path, meta, arrays)
