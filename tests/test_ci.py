"""CI margins and error rates: spec V-6 (equivalence/geometry) and V-7 (analytic SER vs Monte Carlo)."""
import math

import numpy as np
import pytest
from scipy.stats import norm

from isac_opt import ci
from isac_opt.paper_a.channels import draw_channels, effective_user_channels


def _qfunc(x):
    return norm.sf(x)


def test_V06_ci_equivalence_and_geometry(rng):
    K, L = 4, 2000
    S = ci.draw_symbols(K, L, 4, rng)
    gamma = np.full(K, 0.3)
    # points scattered on both sides of the boundary around the symbols
    Z = S * (0.6 + 0.6 * (rng.standard_normal((K, L)) + 1j * rng.standard_normal((K, L))))
    g = ci.ci_constraint_g(Z, S, gamma, 4)
    rows = ci.ci_rows(np.eye(K), S, 4)                       # h̃ = e_k so rows act on z directly
    lin = np.einsum("lrk,kl->rl", rows, Z).real               # (2K, L): Re{c± z}
    both = (lin[:K] >= gamma[:, None]) & (lin[K:] >= gamma[:, None])
    assert np.array_equal(g <= 0, both)                       # (i)
    assert both.any() and (~both).any()
    zt = Z * np.conj(S)
    mp, mm = ci.ci_margins_pm(Z, S, 4)
    assert np.all(np.abs(np.angle(zt[both])) < math.pi / 4)   # (ii) inside the constructive sector
    assert np.all(mp[both] >= gamma.repeat(L).reshape(K, L)[both] - 1e-12)
    assert np.all(mm[both] >= gamma.repeat(L).reshape(K, L)[both] - 1e-12)
    assert np.all(ci.psk_detect(Z[both], 4) == S[both])       # noise-free detection is correct


def test_V06_iii_linear_in_phi(small_scn, rng):
    ch = draw_channels(small_scn, rng)
    phi = np.exp(2j * np.pi * rng.uniform(size=small_scn.N))
    X = rng.standard_normal((small_scn.M, small_scn.L)) + 1j * rng.standard_normal((small_scn.M, small_scn.L))
    direct = effective_user_channels(ch, phi) @ X
    a = np.conj(ch.h_k) @ X                                   # h_kᴴ x[l]
    b = np.conj(ch.h_rk)[:, None, :] * (ch.G @ X).T[None]     # b_{k,l} = h_rk* ⊙ (G x[l]), (K, L, N)
    np.testing.assert_allclose(a + b @ phi, direct, rtol=1e-12, atol=1e-20)


def test_V07_qpsk_ser_analytic_vs_monte_carlo(rng):
    sigma2 = 1.0
    S = ci.draw_symbols(1, 6, 4, rng)
    # points: interference-free at Γ = 10 dB, off-centre, and one outside the constructive region
    gam = 10 ** (10 / 10)
    zt = np.array([[math.sqrt(gam), math.sqrt(gam) * (1 + 0.4j), 2.0 - 1.0j, 0.5 + 0.2j, 1.0, 3.0 + 1j]])
    Z = zt * S
    ana = ci.ser_analytic(Z, S, np.array([sigma2]), 4)
    n = 200_000
    for j in range(Z.shape[1]):
        p, se = ci.ser_monte_carlo(Z[:, j:j + 1], S[:, j:j + 1], np.array([sigma2]), 4, n, rng)
        assert abs(p - ana[0, j]) < 4 * max(se, math.sqrt(ana[0, j] * (1 - ana[0, j]) / n)) + 1e-6, \
            f"point {j}: MC {p:.5f} ± {se:.1e} vs analytic {ana[0, j]:.5f}"
    # the interference-free point attains the bound 1 − (1 − Q(√Γ))² (spec V-7: 1.56e-3 at 10 dB)
    assert ana[0, 0] == pytest.approx(1 - (1 - _qfunc(math.sqrt(gam))) ** 2, rel=1e-12)
    assert ana[0, 0] == pytest.approx(1.56e-3, rel=0.01)


def test_V07_ser_bound_under_ci(rng):
    K, L, gam_db = 3, 500, 10.0
    noise = np.full(K, 2.0)
    gamma = ci.ci_thresholds(noise, [gam_db] * K, 4)
    S = ci.draw_symbols(K, L, 4, rng)
    # random points that satisfy CI
    zt = (gamma[:, None] / math.sin(math.pi / 4)) * (1 + rng.uniform(size=(K, L))) * \
        np.exp(1j * rng.uniform(-0.2, 0.2, size=(K, L)))
    Z = zt * S
    m = ci.ci_margins(Z, S, 4)
    ok = m >= gamma[:, None]
    assert ok.sum() > 100
    bound = 1 - (1 - _qfunc(math.sqrt(10 ** (gam_db / 10)))) ** 2
    assert np.all(ci.ser_analytic(Z, S, noise, 4)[ok] <= bound + 1e-12)
    ber = ci.ber_analytic_qpsk(Z, S, noise)
    assert np.all(ber <= ci.ser_analytic(Z, S, noise, 4) + 1e-15)


def test_bpsk_ser_analytic_vs_monte_carlo(rng):
    S = ci.draw_symbols(1, 2, 2, rng)
    Z = S * np.array([[1.0 + 0.5j, 0.7]])
    ana = ci.ser_analytic(Z, S, np.array([1.0]), 2)
    for j in range(2):
        p, se = ci.ser_monte_carlo(Z[:, j:j + 1], S[:, j:j + 1], np.array([1.0]), 2, 200_000, rng)
        assert abs(p - ana[0, j]) < 4 * se + 1e-6


def test_worst_case_margin_init_is_optimal_and_feasible(small_scn, rng):
    import cvxpy as cp
    ch = draw_channels(small_scn, rng)
    phi = np.exp(2j * np.pi * rng.uniform(size=small_scn.N))
    H = effective_user_channels(ch, phi)
    gamma = ci.ci_thresholds(small_scn.noise_comm_w, small_scn.gamma_db, 4)
    X, t = ci.worst_case_margin_init(H, ch.S, gamma, small_scn.amp, 4)
    assert np.all(np.abs(X) <= small_scn.amp * (1 + 1e-6))
    mnorm = ci.ci_margins(H @ X, ch.S, 4) / gamma[:, None]
    np.testing.assert_allclose(mnorm.min(axis=0), t, rtol=1e-5)
    # independent check: complex-variable cvxpy formulation of slot 0 gives the same optimum
    x = cp.Variable(small_scn.M, complex=True)
    tt = cp.Variable()
    zt = cp.multiply(np.conj(ch.S[:, 0]), H @ x)
    th = math.pi / 4
    cons = [(math.sin(th) * cp.real(zt) - math.cos(th) * cp.imag(zt)) / gamma >= tt,
            (math.sin(th) * cp.real(zt) + math.cos(th) * cp.imag(zt)) / gamma >= tt,
            cp.abs(x) <= small_scn.amp]
    cp.Problem(cp.Maximize(tt), cons).solve(solver=cp.CLARABEL)
    assert t[0] == pytest.approx(tt.value, rel=1e-5)
