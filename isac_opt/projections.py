"""Modulus projections used by ADMM and the final designs [spec A.6 (30), (31), (35), (36); B.7 (40)].

All are elementwise, idempotent, and keep the phase of a zero entry from ``ref`` when given.
"""
from __future__ import annotations

import numpy as np


def project_cm(z, amp: float, ref=None) -> np.ndarray:
    """Constant-modulus projection: amp · z/|z| elementwise (30); |out| = amp exactly.

    Where z = 0 the phase of ``ref`` is kept (or 0 when ``ref`` is None).
    """
    z = np.asarray(z, dtype=np.complex128)
    mag = np.abs(z)
    ph = np.where(mag > 0, z / np.where(mag > 0, mag, 1.0), 1.0 + 0j)
    if ref is not None:
        r = np.asarray(ref, dtype=np.complex128)
        rm = np.abs(r)
        ph = np.where(mag > 0, ph, np.where(rm > 0, r / np.where(rm > 0, rm, 1.0), 1.0))
    return amp * ph


def project_um(z, ref=None) -> np.ndarray:
    """Unit-modulus projection φ_n ← φ_n/|φ_n| (35)."""
    return project_cm(z, 1.0, ref)


def project_ball(z, amax: float) -> np.ndarray:
    """Clip the modulus elementwise to ``amax`` (active RIS |φ| ≤ a_max, relaxed CM |x| ≤ amp)."""
    z = np.asarray(z, dtype=np.complex128)
    mag = np.abs(z)
    scale = np.where(mag > amax, amax / np.where(mag > 0, mag, 1.0), 1.0)
    return z * scale


def admm_aux_update(x, mu, rho: float, amp: float) -> np.ndarray:
    """ADMM auxiliary copy v = amp · e^{j∠(ρx + μ)} (31)/(36): the CM point nearest to x + μ/ρ."""
    return project_cm(rho * np.asarray(x) + np.asarray(mu), amp)
