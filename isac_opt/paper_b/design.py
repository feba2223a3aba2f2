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
from .model import ChannelsB, Model, effective_channels, user_noise
from .scenario import ScenarioB


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

    kind = "paper-b"

    @classmethod
    def build(cls, scn, ch, X, phi, W, method: str, seed: int, history=(), extra=None) -> "DesignB":
        d = cls(scn, ch, np.asarray(X, np.complex128), np.asarray(phi, np.complex128),
                np.asarray(W, np.complex128), method, int(seed), np.asarray(history, np.float64),
                {}, dict(extra or {}))
        d.metrics = evaluate_b(ch, d.X, d.phi, d.W)
        return d

    @property
    def scnr_db(self) -> float:
        return float(self.metrics.get("scnr_db", self.report()["scnr_db"]))

    def report(self, pfa: float = 1e-3) -> dict:
        """Re-evaluate the metrics from the stored arrays (never trusts saved numbers)."""
        r = {"scenario": self.kind, "method": self.method, "seed": self.seed}
        r.update(evaluate_b(self.channels, self.X, self.phi, self.W, pfa))
        r["iterations"] = int(len(self.history))
        return r

    def violations(self) -> list[str]:
        """Violated constraints of the design's problem [spec B.6]: CM |x_i| = √(P/N_t), active-RIS
        amplitude |φ_n| ≤ a_max, and CI m_{k,n}/γ_k ≥ 1 unless the method is a radar-only variant."""
        from ..contract import CM_TOL, ci_violation, has_ci, modulus_violation
        ch = self.channels
        v = modulus_violation(self.X, ch.amp, "CM (|x| = sqrt(P/Nt))")
        over = np.abs(self.phi) > ch.a_max * (1 + CM_TOL)
        if np.any(over):
            v.append(f"active-RIS amplitude: {int(over.sum())} of {self.phi.size} elements above a_max = "
                     f"{ch.a_max:g} (max {float(np.abs(self.phi).max()):.4g})")
        if has_ci(self.method):
            Z = effective_channels(ch, self.phi) @ self.X.reshape(-1, ch.Nt).T
            v += ci_violation(ci_margins(Z, ch.S, ch.psk_order) / gamma_ci(ch)[:, None])
        return v

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
