"""Paper A radar model against dense Kronecker/shift matrices: spec V-1, V-2, V-3, V-4, V-9–V-11,
V-13, V-14(i), V-17."""
import dataclasses
import math

import numpy as np
import pytest

from isac_opt.paper_a import radar
from isac_opt.radar import apply_filter, pd_from_pfa, threshold_from_pfa
from isac_opt.paper_a.channels import cascaded_matrix, draw_channels, legs
from isac_opt.projections import admm_aux_update, project_cm, project_um


def J(M, L, d):
    """Dense range-shift matrix: J(i, j) = 1 iff i − j = M d [spec A.4 (9)]."""
    n = M * L
    Jm = np.zeros((n, n))
    for j in range(n - M * d):
        Jm[j + M * d, j] = 1.0
    return Jm


def dense_model(scn, ch, X, phi):
    """Independent dense computation: s = (I⊗H0)J_{d0} x, C = ξ²I + Σ ξ_q² c_q c_qᴴ."""
    a, b = legs(ch, phi, scn.ris_leg_model)
    x = radar.vec(X)
    bins = (scn.target_bin,) + tuple(scn.clutter_bins)
    Ht = [np.kron(np.eye(scn.L), cascaded_matrix(a[i], b[i])) @ J(scn.M, scn.L, bins[i]) for i in range(scn.Q + 1)]
    s = Ht[0] @ x
    C = scn.noise_radar_w * np.eye(scn.M * scn.L, dtype=complex)
    for q in range(scn.Q):
        c = Ht[q + 1] @ x
        C += scn.xi_q_sq[q] * np.outer(c, c.conj())
    return s, C, Ht


def _setup(scn, rng, model="literal"):
    scn = scn.replace(ris_leg_model=model)
    ch = draw_channels(scn, rng)
    phi = np.exp(2j * np.pi * rng.uniform(size=scn.N))
    X = scn.amp * np.exp(2j * np.pi * rng.uniform(size=(scn.M, scn.L)))
    return scn, ch, X, phi


@pytest.mark.parametrize("model", ["literal", "reciprocal"])
def test_V04_structured_equals_kronecker_and_V03_woodbury(small_scn, rng, model):
    scn, ch, X, phi = _setup(small_scn.replace(target_bin=1), rng, model)
    e = radar.echo(scn, ch, X, phi)
    s, C, Ht = dense_model(scn, ch, X, phi)
    np.testing.assert_allclose(radar.vec(e.s), s, rtol=1e-12, atol=1e-25)
    for q in range(scn.Q):
        np.testing.assert_allclose(radar.vec(e.c[q]), Ht[q + 1] @ radar.vec(X), rtol=1e-12, atol=1e-25)
    np.testing.assert_allclose(e.covariance(), C, rtol=1e-12, atol=1e-30)
    ref = np.linalg.solve(C, s)
    np.testing.assert_allclose(e.cinv(s), ref, rtol=1e-8)
    assert radar.sinr_mvdr(e) == pytest.approx(scn.xi0_sq * np.real(np.vdot(s, ref)), rel=1e-9)


def test_V04_ii_H0_rank_one_non_hermitian(small_scn, rng):
    scn, ch, X, phi = _setup(small_scn, rng)
    a, b = legs(ch, phi, "literal")
    H0 = cascaded_matrix(a[0], b[0])
    sv = np.linalg.svd(H0, compute_uv=False)
    assert sv[1] / sv[0] < 1e-12
    assert np.linalg.norm(H0 - H0.conj().T) > 1e-3 * np.linalg.norm(H0)


def test_V02_mvdr_optimality(small_scn, rng):
    scn, ch, X, phi = _setup(small_scn, rng)
    e = radar.echo(scn, ch, X, phi)
    w = radar.mvdr_filter(e)
    star = radar.sinr_mvdr(e)
    assert np.vdot(w, radar.vec(e.s)) == pytest.approx(1.0, rel=1e-10)
    assert radar.sinr_of_filter(e, w) == pytest.approx(star, rel=1e-9)
    n = scn.M * scn.L
    W = rng.standard_normal((1000, n)) + 1j * rng.standard_normal((1000, n))
    vals = np.array([radar.sinr_of_filter(e, wi) for wi in W])
    assert np.all(vals <= star * (1 + 1e-10))
    assert radar.sinr_of_filter(e, (2 - 3j) * W[0]) == pytest.approx(vals[0], rel=1e-12)


def test_V10_power_monotone_and_V11_phase_invariance(rng):
    from isac_opt.paper_a.scenario import ScenarioA
    scn = ScenarioA(N=16, L=8)
    scn, ch, X, phi = _setup(scn, rng)
    vals = [radar.sinr_mvdr(radar.echo(scn, ch, math.sqrt(c) * X, phi)) for c in (0.1, 0.5, 1, 2, 10)]
    assert all(b >= a * (1 - 1e-12) for a, b in zip(vals, vals[1:]))
    assert np.linalg.norm(X) ** 2 == pytest.approx(scn.power_w * scn.L, rel=1e-12)
    rot = radar.sinr_mvdr(radar.echo(scn, ch, np.exp(1.234j) * X, phi))
    assert rot == pytest.approx(vals[2], rel=1e-10)


def test_V09_detection_monte_carlo(rng):
    sinr, pfa = 10.0, 1e-2
    pd = pd_from_pfa(pfa, sinr)
    assert pd == pytest.approx(0.658, abs=1e-3)
    eps0 = 2.0
    eps1 = eps0 * (1 + sinr)
    delta = threshold_from_pfa(pfa, eps0)
    n = 200_000
    for eps, p in ((eps0, pfa), (eps1, pd)):
        r = math.sqrt(eps / 2) * (rng.standard_normal(n) + 1j * rng.standard_normal(n))
        emp = np.mean(np.abs(r) ** 2 > delta)
        assert abs(emp - p) < 4 * math.sqrt(p * (1 - p) / n), f"{emp} vs {p}"
    assert pd_from_pfa(pfa, 20.0) > pd > pfa


@pytest.mark.parametrize("model", ["literal", "reciprocal"])
def test_V01_closed_form_gradients_finite_difference(small_scn, rng, model):
    scn, ch, X, phi = _setup(small_scn, rng, model)
    F, GX, Gp = radar.objective_gradients(scn, ch, X, phi)
    f = lambda X_, p_: radar.sinr_mvdr(radar.echo(scn, ch, X_, p_)) / scn.xi0_sq
    assert F == pytest.approx(f(X, phi), rel=1e-12)
    for _ in range(3):
        dX = rng.standard_normal(X.shape) + 1j * rng.standard_normal(X.shape)
        eps = 1e-6 * np.linalg.norm(X) / np.linalg.norm(dX)
        fd = (f(X + eps * dX, phi) - f(X - eps * dX, phi)) / (2 * eps)
        assert np.real(np.vdot(GX, dX)) == pytest.approx(fd, rel=1e-5)
        dp = rng.standard_normal(phi.shape) + 1j * rng.standard_normal(phi.shape)
        eps = 1e-6 * np.linalg.norm(phi) / np.linalg.norm(dp)
        fd = (f(X, phi + eps * dp) - f(X, phi - eps * dp)) / (2 * eps)
        assert np.real(np.vdot(Gp, dp)) == pytest.approx(fd, rel=1e-5)


def test_V14_i_mm_minoriser(small_scn, rng):
    scn, ch, Xt, phi = _setup(small_scn, rng)
    e = radar.echo(scn, ch, Xt, phi)
    m = e.cinv(radar.vec(e.s))
    def F(X):
        s, C, _ = dense_model(scn, ch, X, phi)
        return np.real(np.vdot(s, np.linalg.solve(C, s)))
    def minor(X):
        s, C, _ = dense_model(scn, ch, X, phi)
        return 2 * np.real(np.vdot(m, s)) - np.real(np.vdot(m, C @ m))
    assert minor(Xt) == pytest.approx(F(Xt), rel=1e-9)
    for _ in range(50):
        X = Xt + rng.standard_normal(Xt.shape) + 1j * rng.standard_normal(Xt.shape)
        assert F(X) >= minor(X) - 1e-9 * abs(F(X))
    # equal gradient at x_t (finite differences of both)
    d = rng.standard_normal(Xt.shape) + 1j * rng.standard_normal(Xt.shape)
    h = 1e-6
    gF = (F(Xt + h * d) - F(Xt - h * d)) / (2 * h)
    gm = (minor(Xt + h * d) - minor(Xt - h * d)) / (2 * h)
    assert gm == pytest.approx(gF, rel=1e-5)


def test_V17_no_ris_equals_direct_only(small_scn, rng):
    scn, ch, X, phi = _setup(small_scn, rng)
    ch0 = ch.without_ris()
    e = radar.echo(scn, ch0, X, phi)
    H0 = np.outer(ch.h_bt, ch.h_bt.conj())                    # h_bt h_btᴴ
    np.testing.assert_allclose(e.s, radar.shift_slots(H0 @ X, scn.target_bin), rtol=1e-12)
    e2 = radar.echo(scn, ch0, X, np.exp(2j * np.pi * rng.uniform(size=scn.N)))
    assert radar.sinr_mvdr(e2) == pytest.approx(radar.sinr_mvdr(e), rel=1e-12)


def test_V13_projections(rng):
    amp, rho = 2.5, 0.7
    x = rng.standard_normal(6) + 1j * rng.standard_normal(6)
    mu = rng.standard_normal(6) + 1j * rng.standard_normal(6)
    v = admm_aux_update(x, mu, rho, amp)
    np.testing.assert_allclose(np.abs(v), amp, rtol=0, atol=1e-14)
    grid = amp * np.exp(1j * np.linspace(0, 2 * np.pi, 20001))
    target = x + mu / rho
    for i in range(6):
        best = grid[np.argmin(np.abs(grid - target[i]))]
        assert abs(v[i] - target[i]) <= abs(best - target[i]) + 1e-9
    np.testing.assert_allclose(project_cm(project_cm(x, amp), amp), project_cm(x, amp), atol=1e-15)
    u = project_um(x)
    np.testing.assert_allclose(np.abs(u), 1.0, atol=1e-15)
    np.testing.assert_allclose(project_um(u), u, atol=1e-15)
    # a zero entry keeps the reference phase
    z = project_cm(np.array([0j, 1 + 1j]), 1.0, ref=np.array([1j, 1.0]))
    np.testing.assert_allclose(z, [1j, np.exp(1j * np.pi / 4)], atol=1e-15)


def test_apply_filter_matches_inner_product(small_scn, rng):
    scn, ch, X, phi = _setup(small_scn, rng)
    w = rng.standard_normal(scn.M * scn.L) + 1j * rng.standard_normal(scn.M * scn.L)
    frames = rng.standard_normal((5, scn.M, scn.L)) + 1j * rng.standard_normal((5, scn.M, scn.L))
    out = apply_filter(frames, w)
    np.testing.assert_allclose(out, [np.vdot(w, radar.vec(f)) for f in frames], rtol=1e-12)
