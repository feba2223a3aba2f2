"""Known stimuli: preambles, orthogonal pilots, RIS codebooks, and the FFT-domain fractional delay.

All pure numpy/scipy (no GNU Radio) [bench notes §5.1, §5.2].
"""
from __future__ import annotations

import math

import numpy as np
import scipy.linalg

from .errors import CalibrationError


def zadoff_chu(length: int = 1021, root: int = 25) -> np.ndarray:
    """Zadoff-Chu sequence, complex128 shape (length,), unit modulus, flat spectrum.

    x[n] = exp(-j π u n (n + c) / N_zc), c = N_zc mod 2. ``root`` must be coprime with ``length``.
    """
    if length < 2:
        raise CalibrationError("length", "an integer >= 2", length)
    if math.gcd(int(root), int(length)) != 1:
        raise CalibrationError("root", f"an integer coprime with length={length}", root)
    n = np.arange(length)
    return np.exp(-1j * np.pi * root * n * (n + (length % 2)) / length)


def qpsk_preamble(length: int, rng: np.random.Generator) -> np.ndarray:
    """Seeded random QPSK preamble, complex128 shape (length,), unit modulus."""
    return np.exp(1j * (np.pi / 4 + np.pi / 2 * rng.integers(0, 4, size=length)))


def orthogonal_pilots(n_tx: int, n_slots: int | None = None) -> np.ndarray:
    """Orthogonal pilots X, shape (n_tx, T): rows of a T-point DFT, so X Xᴴ = T I (T >= n_tx)."""
    T = n_tx if n_slots is None else int(n_slots)
    if T < n_tx:
        raise CalibrationError("n_slots", f"an integer >= n_tx={n_tx}", T)
    t = np.arange(T)
    return np.exp(-2j * np.pi * np.outer(np.arange(n_tx), t) / T)


def _hadamard_order(n: int) -> int:
    return 1 << max(0, (n - 1).bit_length())


def hadamard_states(n_elements: int, n_slots: int | None = None) -> np.ndarray:
    """1-bit Hadamard RIS patterns, int shape (T, N) in {0, 1} [bench notes §5.2].

    Columns 1..N of a Sylvester Hadamard matrix of order P >= N+1 (column 0 is the all-ones intercept),
    mapped +1 -> state 0, -1 -> state 1. ``n_slots`` = T must be a multiple of P (rows are repeated).
    With the affine model y = h_d' + Σ b_n s_n, the design A = [1, S] then has AᴴA = (T/4)·[[4, 2·1ᵀ],
    [2·1, I + 11ᵀ]] (well conditioned, every element switches in half of the slots).
    """
    P = _hadamard_order(n_elements + 1)
    T = P if n_slots is None else int(n_slots)
    if T < P or T % P:
        raise CalibrationError("n_slots", f"a multiple of the Hadamard order {P} (N={n_elements})", T)
    H = scipy.linalg.hadamard(P)[:, 1:n_elements + 1]
    S = ((1 - H) // 2).astype(np.int64)
    return np.tile(S, (T // P, 1))


def onoff_states(n_elements: int, n_slots: int | None = None) -> np.ndarray:
    """ON/OFF patterns, int shape (T, N): an all-OFF slot, then one element ON per slot (repeated)."""
    S = np.vstack([np.zeros((1, n_elements), np.int64), np.eye(n_elements, dtype=np.int64)])
    P = n_elements + 1
    T = P if n_slots is None else int(n_slots)
    if T < P or T % P:
        raise CalibrationError("n_slots", f"a multiple of N+1 = {P}", T)
    return np.tile(S, (T // P, 1))


def random_states(n_elements: int, n_slots: int, rng: np.random.Generator, n_states: int = 2) -> np.ndarray:
    """Random RIS states, int shape (T, N), i.i.d. uniform over {0..n_states-1}."""
    return rng.integers(0, n_states, size=(int(n_slots), n_elements))


def dft_phases(n_elements: int, n_slots: int | None = None) -> np.ndarray:
    """DFT codebook (needs continuous/many-level phases): φ, complex shape (T, N), φ[t, n] = e^{-j2π t (n+1)/T}.

    With the intercept column this is the first N+1 columns of a T-point DFT: AᴴA = T I (T >= N+1).
    """
    T = n_elements + 1 if n_slots is None else int(n_slots)
    if T < n_elements + 1:
        raise CalibrationError("n_slots", f"an integer >= N+1 = {n_elements + 1}", T)
    return np.exp(-2j * np.pi * np.outer(np.arange(T), np.arange(1, n_elements + 1)) / T)


def frac_delay(x: np.ndarray, delay, axis: int = -1) -> np.ndarray:
    """Delay ``x`` by ``delay`` samples (real, may be fractional or negative) in the FFT domain.

    Circular, band-limited interpolation: X[k] ← X[k]·e^{-j2π f_k d}, f_k = fftfreq(n). ``delay`` broadcasts
    against ``x`` without its ``axis`` (e.g. shape (n_chains,) for ``x`` of shape (n_chains, n)). Exactly
    invertible: ``frac_delay(frac_delay(x, d), -d) == x``. Pad the signal with zeros on both sides
    (more than |d|) so that the circular shift acts as a linear one.
    """
    x = np.asarray(x, dtype=np.complex128)
    x = np.moveaxis(x, axis, -1)
    n = x.shape[-1]
    f = np.fft.fftfreq(n)
    d = np.asarray(delay, dtype=np.float64)[..., None]
    y = np.fft.ifft(np.fft.fft(x, axis=-1) * np.exp(-2j * np.pi * f * d), axis=-1)
    return np.moveaxis(y, -1, axis)
