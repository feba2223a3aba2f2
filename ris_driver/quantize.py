"""Quantisation: continuous designed coefficients -> board states, and states -> effective coefficients.

The optimiser (``isac_opt``) designs continuous RIS coefficients ``phi`` (complex, shape ``(N,)``,
logical row-major order; unit modulus for a passive RIS, amplitude-bounded for an active one).
A board only realises the entries of its reflection table ``gamma[n, s, a]`` (``BoardSpec.gamma``,
measured per element and state). The quantiser picks, per element,

    (s_n, a_n) = argmin_{s, a} | phi_n - gamma[n, s, a] |                      (nearest table entry)

with the amplifier state chosen per element (scope ``"element"``), jointly for the whole array
(scope ``"array"``: the single ``a`` minimising sum_n min_s |phi_n - gamma[n, s, a]|^2), or fixed to 0
(scope ``"none"``). With an ideal 1-bit table (+1, -1) this is the sign of Re(phi_n); with an ideal
b-bit table it rounds the phase to the nearest multiple of 2 pi / 2**b.

:func:`coefficients` is the inverse map (pattern -> ``gamma[n, s_n, a_n]``), used by evaluation and by
the simulated channel.
"""
from __future__ import annotations

import numpy as np

from .device import BoardSpec, Pattern

__all__ = ["quantize", "coefficients", "quantization_error"]


def _check_coef(coef, board: BoardSpec) -> np.ndarray:
    c = np.asarray(coef)
    if c.shape != (board.n,):
        raise ValueError(f"coef: expected shape ({board.n},) for board {board.name!r}, got {c.shape}")
    if not np.issubdtype(c.dtype, np.number):
        raise ValueError(f"coef: expected complex numbers, got dtype {c.dtype}")
    c = c.astype(np.complex128)
    if not np.all(np.isfinite(c)):
        raise ValueError("coef: expected finite complex coefficients, got NaN/inf")
    return c


def quantize(coef, board: BoardSpec, *, amp_state: int | None = None) -> Pattern:
    """Nearest realisable pattern for continuous coefficients.

    Parameters
    ----------
    coef : complex array, shape (N,)
        Designed coefficients ``phi`` (logical order).
    board : BoardSpec
        Board whose reflection table ``gamma`` (N, 2**bits, n_amp) defines the candidates.
    amp_state : int, optional
        Force this amplifier state (all elements / the array) instead of optimising it.

    Returns
    -------
    Pattern
        States minimising ``|coef[n] - gamma[n, s, a]|`` per element (see module docstring).
    """
    c = _check_coef(coef, board)
    g = board.gamma                                       # (N, S, A)
    if amp_state is not None and not (0 <= int(amp_state) < board.n_amp):
        raise ValueError(f"amp_state: expected 0..{board.n_amp - 1} {board.amp_states}, got {amp_state!r}")
    d2 = np.abs(c[:, None, None] - g) ** 2                # (N, S, A)
    if amp_state is not None:
        a = np.full(board.n, int(amp_state))
        s = np.argmin(d2[:, :, int(amp_state)], axis=1)
    elif board.amp_scope == "element":
        flat = np.argmin(d2.reshape(board.n, -1), axis=1)
        s, a = np.divmod(flat, board.n_amp)
    else:
        best_s = np.argmin(d2, axis=1)                    # (N, A)
        cost = np.take_along_axis(d2, best_s[:, None, :], axis=1)[:, 0, :].sum(axis=0)   # (A,)
        a0 = int(np.argmin(cost)) if board.amp_scope == "array" else 0
        s = best_s[:, a0]
        a = np.full(board.n, a0)
    amp = {"none": (), "array": (int(a[0]),), "element": tuple(int(x) for x in a)}[board.amp_scope]
    return Pattern.from_arrays(s.astype(np.int64), amp)


def coefficients(pattern: Pattern, board: BoardSpec) -> np.ndarray:
    """Effective complex coefficients ``gamma[n, s_n, a_n]`` of a pattern, complex128 shape (N,)."""
    pattern.validate(board)
    s = pattern.phase_array
    if board.amp_scope == "element":
        a = pattern.amp_array
    elif board.amp_scope == "array":
        a = np.full(board.n, pattern.amp[0])
    else:
        a = np.zeros(board.n, np.int64)
    return board.gamma[np.arange(board.n), s, a].copy()


def quantization_error(coef, board: BoardSpec, pattern: Pattern | None = None) -> np.ndarray:
    """Per-element error ``|coef - coefficients(quantize(coef))|``, shape (N,)."""
    c = _check_coef(coef, board)
    p = quantize(c, board) if pattern is None else pattern
    return np.abs(c - coefficients(p, board))
