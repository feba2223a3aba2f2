"""Constructive-interference (CI) symbol-level precoding: margins, thresholds, SER/BER, initialisation.

Shared by paper A [spec A.3, A.10] and paper B [spec B.5, B.7 (67)].

Notation: Z (..., K, L) noise-free received points z_{k,l} = h̃_kᴴ x[l]; S (K, L) unit-modulus PSK symbols;
Θ = π/Ω. Rotated point z̃ = z e^{−j∠s}. Boundary distances m_± = sinΘ Re z̃ ± cosΘ Im z̃; the CI margin is
m = min(m_+, m_−) = sinΘ Re z̃ − cosΘ |Im z̃|, and CI holds iff m ≥ γ_k = σ_k sqrt(Γ_k) sinΘ.
"""
from __future__ import annotations

import math
from functools import lru_cache

import numpy as np
from scipy.special import ndtr  # standard normal CDF

from .errors import IsacError


def psk_constellation(order: int) -> np.ndarray:
    """PSK points e^{j(π/Ω + 2πi/Ω)}, i = 0..Ω−1 [spec A.1]; complex128, shape (Ω,)."""
    i = np.arange(order)
    return np.exp(1j * (np.pi / order + 2 * np.pi * i / order))


def draw_symbols(K: int, L: int, order: int, rng: np.random.Generator) -> np.ndarray:
    """i.i.d. uniform PSK symbols, complex128 (K, L) [spec A.2]."""
    return psk_constellation(order)[rng.integers(0, order, size=(K, L))]


def ci_thresholds(noise_w, gamma_db, order: int) -> np.ndarray:
    """γ_k = σ_k sqrt(Γ_k) sinΘ [spec A.3]; float64 (K,)."""
    sig = np.sqrt(np.asarray(noise_w, dtype=np.float64))
    gam = 10.0 ** (np.asarray(gamma_db, dtype=np.float64) / 10.0)
    return sig * np.sqrt(gam) * math.sin(math.pi / order)


def rotate(Z, S) -> np.ndarray:
    """z̃ = z e^{−j∠s} (S has unit modulus, so z·s*/|s|)."""
    S = np.asarray(S)
    return np.asarray(Z) * np.conj(S) / np.abs(S)


def ci_margins_pm(Z, S, order: int) -> tuple[np.ndarray, np.ndarray]:
    """Boundary distances (m_+, m_−) = sinΘ Re z̃ ± cosΘ Im z̃ [spec A.3, V-6]; each float64 (..., K, L)."""
    th = math.pi / order
    zt = rotate(Z, S)
    a = math.sin(th) * zt.real
    b = math.cos(th) * zt.imag
    return a + b, a - b


def ci_margins(Z, S, order: int) -> np.ndarray:
    """CI margin m = sinΘ Re z̃ − cosΘ |Im z̃| [spec A.3]; float64 (..., K, L)."""
    mp, mm = ci_margins_pm(Z, S, order)
    return np.minimum(mp, mm)


def ci_constraint_g(Z, S, gamma, order: int) -> np.ndarray:
    """g_{k,l} = γ_k − m_{k,l} (≤ 0 when CI holds) [spec A.3 (19)]; float64 (..., K, L)."""
    return np.asarray(gamma, dtype=np.float64)[:, None] - ci_margins(Z, S, order)


def ci_rows(Htil, S, order: int) -> np.ndarray:
    """Rows c^±_{k,l} h̃_kᴴ of the linear CI form, per slot [spec A.3].

    Returns complex128 (L, 2K, M): Re{rows[l] @ x[l]} ≥ γ (γ stacked twice) ⇔ CI at slot l.
    Order of the 2K rows: (+, k=0..K−1), then (−, k=0..K−1).
    """
    th = math.pi / order
    S = np.asarray(S)
    ph = np.conj(S) / np.abs(S)                       # e^{−j∠s}, (K, L)
    cp = ph * (math.sin(th) - 1j * math.cos(th))      # c^+ : Re{c^+ z} = sinΘ Re z̃ + cosΘ Im z̃
    cm = ph * (math.sin(th) + 1j * math.cos(th))
    c = np.concatenate([cp, cm], axis=0)              # (2K, L)
    H2 = np.concatenate([Htil, Htil], axis=0)         # (2K, M)
    return np.einsum("kl,km->lkm", c, H2)


# --------------------------------------------------------------------------------------------------
# error rates
def ser_analytic(Z, S, noise_w, order: int) -> np.ndarray:
    """Per-point symbol error probability of minimum-distance PSK detection [spec V-7].

    QPSK (exact): SER = 1 − Φ(√2 m_+/σ) Φ(√2 m_−/σ), valid for any z̃ (the correct region is the
    quadrant bounded by the two orthogonal half-lines). BPSK (exact): Q(√2 Re z̃/σ).
    Ω ≥ 8: union bound Q(√2 m_+/σ) + Q(√2 m_−/σ), tight at high SNR.
    noise_w: (K,) per-user noise power σ_k² [W]. Returns float64 (..., K, L).
    """
    sig = np.sqrt(np.asarray(noise_w, dtype=np.float64))[:, None]
    if order == 2:
        zt = rotate(Z, S)
        return ndtr(-math.sqrt(2) * zt.real / sig)
    mp, mm = ci_margins_pm(Z, S, order)
    a, b = math.sqrt(2) * mp / sig, math.sqrt(2) * mm / sig
    if order == 4:
        return 1.0 - ndtr(a) * ndtr(b)
    return np.minimum(ndtr(-a) + ndtr(-b), 1.0)


def ber_analytic_qpsk(Z, S, noise_w) -> np.ndarray:
    """Gray-coded QPSK bit error probability ½[Q(√2 m_+/σ) + Q(√2 m_−/σ)] [spec V-7]; (..., K, L)."""
    sig = np.sqrt(np.asarray(noise_w, dtype=np.float64))[:, None]
    mp, mm = ci_margins_pm(Z, S, 4)
    return 0.5 * (ndtr(-math.sqrt(2) * mp / sig) + ndtr(-math.sqrt(2) * mm / sig))


def psk_detect(y, order: int) -> np.ndarray:
    """Minimum-distance PSK decision: the nearest constellation point (by angle sector)."""
    idx = np.floor(np.mod(np.angle(y), 2 * np.pi) / (2 * np.pi / order)).astype(np.int64) % order
    return psk_constellation(order)[idx]


def ser_monte_carlo(Z, S, noise_w, order: int, n_draws: int, rng: np.random.Generator,
                    chunk: int = 2000) -> tuple[float, float]:
    """Monte-Carlo SER: add CN(0, σ_k²) to each z_{k,l}, detect, count [spec A.13 Fig. 10].

    Returns (mean SER over k, l and draws, its standard error).
    """
    Z = np.asarray(Z)
    sig = np.sqrt(np.asarray(noise_w, dtype=np.float64) / 2.0)[:, None]
    errs = 0
    total = 0
    left = n_draws
    while left > 0:
        n = min(chunk, left)
        noise = sig * (rng.standard_normal((n,) + Z.shape) + 1j * rng.standard_normal((n,) + Z.shape))
        dec = psk_detect(Z + noise, order)
        errs += int(np.count_nonzero(np.abs(dec - S) > 1e-9))
        total += dec.size
        left -= n
    p = errs / total
    return p, math.sqrt(max(p * (1 - p), 1e-300) / total)


# --------------------------------------------------------------------------------------------------
# worst-case-margin initialisation (A.10, B.7 (67))
@lru_cache(maxsize=16)
def _margin_problem(K: int, M: int, L: int):
    """Real-valued SOCP: max Σ_l t_l s.t. A_l z_l ≥ t_l·1, |x_{l,i}| ≤ amp (separable over slots).

    Maximising the sum maximises every t_l because the slots share no constraint. Built once per
    shape with cvxpy Parameters (DPP) and re-solved [performance_notes §5].
    """
    import cvxpy as cp
    Ar = [cp.Parameter((2 * K, 2 * M)) for _ in range(L)]
    amp = cp.Parameter(nonneg=True)
    Zv = cp.Variable((2 * M, L))
    t = cp.Variable(L)
    cons = []
    for l in range(L):
        cons.append(Ar[l] @ Zv[:, l] >= t[l])
    re, im = Zv[:M, :], Zv[M:, :]
    cons.append(cp.SOC(cp.reshape(amp * np.ones(M * L), (M * L,), order="F"),
                       cp.vstack([cp.reshape(re, (M * L,), order="F"),
                                  cp.reshape(im, (M * L,), order="F")]), axis=0))
    prob = cp.Problem(cp.Maximize(cp.sum(t)), cons)
    return prob, Ar, amp, Zv, t


def worst_case_margin_init(Htil, S, gamma, amp: float, order: int) -> tuple[np.ndarray, np.ndarray]:
    """x⁰ maximising the worst normalised CI margin, slot by slot [spec A.10, B.7 (67)].

    max_{x,t} t  s.t.  Re{c^±_{k,l} h̃_kᴴ x[l]}/γ_k ≥ t,  |x_i| ≤ amp.

    Parameters
    ----------
    Htil : complex (K, M), effective user channels (rows h̃_kᴴ)
    S : complex (K, L), symbols
    gamma : float (K,), CI thresholds γ_k [√W]
    amp : per-antenna amplitude bound sqrt(P/M) [√W]

    Returns
    -------
    X : complex128 (M, L) (not projected to constant modulus)
    t : float64 (L,), per-slot optimal worst normalised margin; min(t) ≥ 1 ⇔ CI-feasible instance.
    """
    import cvxpy as cp
    Htil = np.asarray(Htil, dtype=np.complex128)
    K, M = Htil.shape
    L = np.asarray(S).shape[1]
    rows = ci_rows(Htil, S, order) / np.concatenate([gamma, gamma])[None, :, None]
    prob, Ar, ampp, Zv, t = _margin_problem(K, M, L)
    for l in range(L):
        Ar[l].value = np.concatenate([rows[l].real, -rows[l].imag], axis=1)
    ampp.value = float(amp)
    try:
        prob.solve(solver=cp.CLARABEL, warm_start=False)  # same answer whatever was solved before
    except cp.error.SolverError:
        prob.solve(solver=cp.SCS, eps=1e-8)
    if prob.status not in ("optimal", "optimal_inaccurate"):
        raise IsacError(f"worst-case-margin initialisation failed: solver status {prob.status}")
    z = np.asarray(Zv.value)
    X = z[:M] + 1j * z[M:]
    return X, np.asarray(t.value, dtype=np.float64)
