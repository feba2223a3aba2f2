"""Radar helpers shared by both papers: space-time vectorisation, slot shifts, filtering, Pd/threshold [spec A.4].

The paper-specific echo models live with their papers (:mod:`isac_opt.paper_a.radar`, paper B's
:mod:`isac_opt.paper_b.model`).

Vectorisation: x = vec(X) with X (M, L), antenna index fastest (slot-major) — ``vec``/``unvec`` below.
Powers in W; SINR values linear unless the name says ``_db``.
"""
from __future__ import annotations

import numpy as np



def vec(X) -> np.ndarray:
    """vec of (..., M, L) → (..., M·L), antenna index fastest."""
    X = np.asarray(X)
    return np.swapaxes(X, -1, -2).reshape(X.shape[:-2] + (-1,))


def unvec(x, M: int, L: int) -> np.ndarray:
    """Inverse of :func:`vec`: (..., M·L) → (..., M, L)."""
    x = np.asarray(x)
    return np.swapaxes(x.reshape(x.shape[:-1] + (L, M)), -1, -2)


def shift_slots(X, d: int) -> np.ndarray:
    """X_{(d)}: columns shifted right by d ≥ 0 with zero fill, i.e. (J_d x)[l] = x[l − d] [spec A.4 (9)]."""
    X = np.asarray(X)
    if d == 0:
        return X
    out = np.zeros_like(X)
    if d < X.shape[-1]:
        out[..., d:] = X[..., :-d]
    return out


def shift_slots_left(Y, d: int) -> np.ndarray:
    """Adjoint of :func:`shift_slots` (J_dᵀ): columns shifted left by d with zero fill."""
    Y = np.asarray(Y)
    if d == 0:
        return Y
    out = np.zeros_like(Y)
    if d < Y.shape[-1]:
        out[..., :-d] = Y[..., d:]
    return out


def pd_from_pfa(pfa, sinr):
    """Pd = Pfa^{1/(1+SINR)} for the fluctuating-target |r_o|² detector [spec A.4 (16)]."""
    return np.asarray(pfa, dtype=np.float64) ** (1.0 / (1.0 + np.asarray(sinr, dtype=np.float64)))


def threshold_from_pfa(pfa, eps0):
    """δ = −ε0 ln Pfa, with ε0 = wᴴCw the H0 output power [spec A.4]."""
    return -np.asarray(eps0) * np.log(pfa)


def apply_filter(frames, w) -> np.ndarray:
    """Test statistic input r_o = wᴴ r for frames (..., M, L) and filter w (M·L,); complex (...)."""
    W = unvec(np.asarray(w), *np.asarray(frames).shape[-2:])
    return np.einsum("ml,...ml->...", np.conj(W), frames)
