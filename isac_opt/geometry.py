"""Array geometry and path loss [spec 0.3, A.2, B.2].

ULA with half-wavelength spacing; angles in rad from broadside; distances in m.
"""
from __future__ import annotations

import numpy as np


def ula_steering(n: int, theta) -> np.ndarray:
    """Steering vector a_n(θ) = [1, e^{jπ sinθ}, …, e^{jπ(n−1) sinθ}]ᵀ [spec 0.3].

    Parameters
    ----------
    n : int, number of elements
    theta : float or array, shape (...), angle [rad] from broadside

    Returns
    -------
    complex128 array, shape (..., n)
    """
    theta = np.asarray(theta, dtype=np.float64)
    idx = np.arange(n, dtype=np.float64)
    return np.exp(1j * np.pi * np.sin(theta)[..., None] * idx)


def ula_steering_deriv(n: int, theta) -> np.ndarray:
    """∂a_n/∂θ = jπ cosθ · diag(0..n−1) · a_n(θ) [spec 0.3]; shape (..., n), complex128."""
    theta = np.asarray(theta, dtype=np.float64)
    idx = np.arange(n, dtype=np.float64)
    return 1j * np.pi * np.cos(theta)[..., None] * idx * ula_steering(n, theta)


def path_loss(d, ple: float, c0_db: float = -30.0, d0: float = 1.0):
    """Amplitude path loss β(d, ϱ) = sqrt(C0 (d/d0)^{−ϱ}) [spec 0.3]; C0 = 10^{c0_db/10}."""
    d = np.asarray(d, dtype=np.float64)
    return np.sqrt(10.0 ** (c0_db / 10.0) * (d / d0) ** (-ple))


def angle_from(origin, point, axis) -> np.ndarray:
    """Angle [rad] of ``point`` seen from an array at ``origin`` with unit element axis ``axis`` [spec B.2].

    θ = arcsin(((p − o)·e)/‖p − o‖); broadside is perpendicular to the element axis.
    ``origin``, ``point``: shape (..., 2) in m; ``axis``: shape (2,).
    """
    v = np.asarray(point, dtype=np.float64) - np.asarray(origin, dtype=np.float64)
    e = np.asarray(axis, dtype=np.float64)
    e = e / np.linalg.norm(e)
    r = np.linalg.norm(v, axis=-1)
    return np.arcsin(np.clip((v @ e) / r, -1.0, 1.0))


def distance(a, b) -> np.ndarray:
    """Euclidean distance [m] between points of shape (..., 2)."""
    return np.linalg.norm(np.asarray(a, dtype=np.float64) - np.asarray(b, dtype=np.float64), axis=-1)
