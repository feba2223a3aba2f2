"""Constraint certificate of paper-B designs [spec B.5, B.6]: tolerances, per-family checks, report lines.

Problem (26) has three constraint families; a design satisfies them when, with the tolerances of
:data:`TOLERANCES` (stored in every design file, ``meta["tolerances"]``):

* ``cm``  - constant modulus (25): | |x_i| / sqrt(P/N_t) - 1 | <= tol_cm for every waveform entry;
* ``ci``  - constructive interference (B.5), ISAC methods only: Re{c^+-_{k,n} h~_k^H x_n} / gamma_k >= 1 - tol_ci
  for every user k, symbol n = p L + l and sign (the 2 K P_c L half-planes; m_{k,n} is the smaller pair);
* ``ris`` - active-RIS amplitude: |phi_{r,n}| <= a_max (1 + tol_ris).

:func:`constraint_status` measures all three, :func:`violation_lines` turns a status into one short line per
violated family (empty list = certified).
"""
from __future__ import annotations

import math

import numpy as np

from ..ci import ci_margins, ci_margins_pm, ci_thresholds
from .model import ChannelsB, effective_channels

#: default tolerances (relative; the CI one is on the normalised margin m / gamma, whose bound is 1)
TOLERANCES = {"ci": 1e-6, "cm": 1e-9, "ris": 1e-9}
#: largest tolerance a design file may claim (a larger one would certify a visibly infeasible design)
MAX_TOLERANCE = 1e-3


def check_tolerances(tol, where: str = "tolerances") -> dict:
    """Validated copy of a tolerance dict (keys ``ci``, ``cm``, ``ris``; each finite, 0 <= tol <= 1e-3).

    Raises ``ValueError`` naming the key otherwise.
    """
    if not isinstance(tol, dict):
        raise ValueError(f"{where}: expected a table with keys ci, cm, ris, got {type(tol).__name__}")
    out = {}
    for k in TOLERANCES:
        v = tol.get(k)
        if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v) \
                or not 0.0 <= v <= MAX_TOLERANCE:
            raise ValueError(f"{where}: '{k}' = {v!r}, expected a number in [0, {MAX_TOLERANCE:g}]")
        out[k] = float(v)
    extra = set(tol) - set(TOLERANCES)
    if extra:
        raise ValueError(f"{where}: unknown key(s) {', '.join(sorted(extra))}; expected ci, cm, ris")
    return out


def gamma(ch: ChannelsB) -> np.ndarray:
    """CI thresholds gamma_k = sigma_k sqrt(Gamma_k) sin(pi/M) [spec B.5], (K,)."""
    return ci_thresholds(ch.noise_comm_w, 10 * np.log10(ch.gamma_lin), ch.psk_order)


def normalised_margins(ch: ChannelsB, X, phi) -> np.ndarray:
    """m_{k,n} / gamma_k at (X, phi), shape (K, P_c L); >= 1 where CI holds [spec B.5]."""
    Z = effective_channels(ch, phi) @ np.asarray(X).reshape(-1, ch.Nt).T
    return ci_margins(Z, ch.S, ch.psk_order) / gamma(ch)[:, None]


def constraint_status(ch: ChannelsB, X, phi, ci: bool = True, cm: bool = True, tol=None) -> dict:
    """Measure every constraint family of problem (26) at (X (P_c, L, N_t), phi (R, N)).

    Returns a dict: ``ci_min_margin`` (min m/gamma, inf without CI), ``ci_violated`` / ``ci_total``
    (half-planes, 2 K P_c L in all), ``cm_max_dev`` (max | |x|/amp - 1 |), ``cm_violated`` / ``cm_total`` (entries),
    ``ris_max_ratio`` (max |phi|/a_max, 0 without RIS), ``ris_violated`` / ``ris_total``, and ``feasible``.
    """
    tol = TOLERANCES if tol is None else tol
    X = np.asarray(X)
    phi = np.asarray(phi)
    st = {}
    if ci:
        Z = effective_channels(ch, phi) @ X.reshape(-1, ch.Nt).T
        g = gamma(ch)[:, None]
        mp, mm = (m / g for m in ci_margins_pm(Z, ch.S, ch.psk_order))
        bad = int(np.sum(mp < 1.0 - tol["ci"]) + np.sum(mm < 1.0 - tol["ci"]))
        st.update(ci_min_margin=float(min(mp.min(), mm.min())), ci_violated=bad, ci_total=int(mp.size + mm.size))
    else:
        st.update(ci_min_margin=math.inf, ci_violated=0, ci_total=0)
    if cm:
        dev = np.abs(np.abs(X) / ch.amp - 1.0)
        st.update(cm_max_dev=float(dev.max()), cm_violated=int(np.sum(dev > tol["cm"])), cm_total=int(dev.size))
    else:      # relaxed |x_i| <= amp (V-15 tests only)
        ex = np.abs(X) / ch.amp - 1.0
        st.update(cm_max_dev=float(max(ex.max(), 0.0)), cm_violated=int(np.sum(ex > tol["cm"])),
                  cm_total=int(ex.size))
    if phi.size:
        ratio = np.abs(phi) / ch.a_max if ch.a_max > 0 else np.where(np.abs(phi) > 0, np.inf, 0.0)
        st.update(ris_max_ratio=float(ratio.max()), ris_violated=int(np.sum(ratio > 1.0 + tol["ris"])),
                  ris_total=int(ratio.size))
    else:
        st.update(ris_max_ratio=0.0, ris_violated=0, ris_total=0)
    finite = bool(np.all(np.isfinite(X)) and np.all(np.isfinite(phi)))
    st["finite"] = finite
    st["feasible"] = finite and st["ci_violated"] == 0 and st["cm_violated"] == 0 and st["ris_violated"] == 0
    return st


def violation_lines(st: dict, ci: bool = True, cm: bool = True, tol=None) -> list[str]:
    """One short human-readable line per violated constraint family of a :func:`constraint_status`."""
    tol = TOLERANCES if tol is None else tol
    out = []
    if not st.get("finite", True):
        out.append("finite: the waveform or the RIS coefficients contain NaN or Inf")
    if ci and st["ci_violated"]:
        out.append(f"CI: {st['ci_violated']} of {st['ci_total']} (k,l) constraints violated, worst margin "
                   f"{st['ci_min_margin'] - 1.0:.3g} < 0 (m/gamma = {st['ci_min_margin']:.4g}, "
                   f"tolerance {tol['ci']:g})")
    if st["cm_violated"]:
        what = "constant modulus" if cm else "modulus bound |x| <= sqrt(P/N_t)"
        out.append(f"CM: {st['cm_violated']} of {st['cm_total']} waveform entries break the {what}, worst "
                   f"| |x|/amp - 1 | = {st['cm_max_dev']:.3g} > {tol['cm']:g}")
    if st["ris_violated"]:
        out.append(f"RIS power: {st['ris_violated']} of {st['ris_total']} coefficients exceed a_max, worst "
                   f"|phi|/a_max = {st['ris_max_ratio']:.6g} > 1 + {tol['ris']:g}")
    return out
