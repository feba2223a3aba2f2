"""Paper B scenario, geometry and STAP model: identities V-2, V-3, V-4(iii)(iv), V-5, V-10, V-11, V-16, V-17.

Every check compares the fast slicing operators with explicit Kronecker/dense forms built here from
the spec's definitions (spec B.2-B.4, Part C), on small sizes.
"""
from __future__ import annotations

import math

import numpy as np
import pytest

from isac_opt.scenario import load_scenario
from isac_opt.errors import ScenarioError
from isac_opt.geometry import angle_from, distance, path_loss, ula_steering
from isac_opt.paper_b.model import Model, apply_response, draw_channels, path_legs, poly_eval, receive_length
from isac_opt.paper_b.scenario import ScenarioB

SMALL = dict(Nt=3, Nr=3, K=2, R=2, N=4, Q=2, Pc=3, L=4, noise_comm_w=(1e-11, 1e-11), gamma_db=(5.0, 5.0),
             sigma_q_sq=(10.0, 10.0), clutter_x=(-6.0, 0.0), clutter_y=(49.0, 60.0))


def small(**kw) -> ScenarioB:
    d = dict(SMALL)
    d.update(kw)
    return ScenarioB(**d)


def rand_c(rng, *shape):
    return rng.standard_normal(shape) + 1j * rng.standard_normal(shape)


def rand_phi(rng, ch):
    return ch.a_max * np.sqrt(rng.uniform(size=(ch.R, ch.N))) * np.exp(2j * np.pi * rng.uniform(size=(ch.R, ch.N)))


def J(delta, L, Lr):
    """Explicit shift J_Delta (L x L_r): J(i, j) = 1 iff j - i = Delta [spec B.1]."""
    M = np.zeros((L, Lr))
    for i in range(L):
        j = i + delta
        if 0 <= j < Lr:
            M[i, j] = 1.0
    return M


def dense_response(s, phi, ch, moving=True):
    """Explicit T = sum_pi diag(d_pi) (x) J^T (x) H_pi (or C_q with d = 1) [spec B.3 (13)-(17)]."""
    n_out, n_in = ch.Pc * ch.Lr * ch.Nr, ch.Pc * ch.L * ch.Nt
    T = np.zeros((n_out, n_in), complex)
    for rho, tau, dl, d in path_legs(s, phi):
        H = np.outer(rho, tau)
        T += np.kron(np.diag(d if moving else np.ones(ch.Pc)), np.kron(J(dl, ch.L, ch.Lr).T, H))
    return T


def dense_noise(ch, phi):
    """R_n / sigma_r^2 = I (x) (I + sum_r Gn Phi Phi^H Gn^H) [spec B.3]."""
    Bv = np.eye(ch.Nr, dtype=complex)
    for r in range(ch.R):
        Bv += ch.Gn[r] @ np.diag(np.abs(phi[r]) ** 2) @ ch.Gn[r].conj().T
    return np.kron(np.eye(ch.Pc * ch.Lr), Bv)


def dense_cov(ch, phi, x):
    Rm = dense_noise(ch, phi)
    for q, c in enumerate(ch.clutter):
        cq = dense_response(c, phi, ch, moving=False) @ x
        Rm += ch.sigma_q_sq[q] * np.outer(cq, cq.conj())
    return Rm


@pytest.fixture
def inst():
    scn = small()
    rng = np.random.default_rng(7)
    ch = draw_channels(scn, rng)
    X = scn.amp * np.exp(2j * np.pi * rng.uniform(size=(ch.Pc, ch.L, ch.Nt)))
    phi = rand_phi(rng, ch)
    return scn, ch, X, phi, rng


# ------------------------------------------------------------------------------------------------
# scenario
# ------------------------------------------------------------------------------------------------
def test_scenario_defaults_and_builtin():
    s = load_scenario("paper-b")
    assert isinstance(s, ScenarioB) and s.kind == "paper-b"
    assert (s.Nt, s.Nr, s.K, s.R, s.N, s.Q, s.Pc, s.L) == (6, 6, 3, 2, 32, 3, 8, 16)
    assert receive_length(s) == 22          # L + Delta_max = 16 + 6 [spec B.2]
    assert math.isclose(s.amp, math.sqrt(10 / 6))


def test_scenario_toml_round_trip(tmp_path):
    s = small(ris_leg_model="literal", target_vel=(3.0, 0.0), noise_ris_w=0.0)
    p = tmp_path / "b.toml"
    s.save_toml(p)
    assert load_scenario(str(p)) == s
    assert ScenarioB.from_dict(s.to_dict()) == s


@pytest.mark.parametrize("kw,field", [
    (dict(power_w=-1.0), "power_w"),
    (dict(Nt=0), "Nt"),
    (dict(Nr=0), "Nr"),
    (dict(gamma_db=(10.0,)), "gamma_db"),
    (dict(noise_comm_w=(1e-11,) * 3), "noise_comm_w"),
    (dict(sigma_q_sq=(1.0,)), "sigma_q_sq"),
    (dict(ris_x=(1.0,)), "ris_x"),
    (dict(clutter_y=(1.0, 2.0, 3.0)), "clutter_y"),
    (dict(psk_order=5), "psk_order"),
    (dict(a_max=float("nan")), "a_max"),
    (dict(fc_hz=0.0), "fc_hz"),
    (dict(ris_leg_model="mirror"), "ris_leg_model"),
    (dict(x_solver="gurobi"), "x_solver"),
    (dict(target_pos=(0.0, 0.0)), "target_pos"),
    (dict(noise_ris_w=-1e-12), "noise_ris_w"),
])
def test_scenario_rejects_bad_input(kw, field):
    with pytest.raises(ScenarioError) as e:
        small(**kw)
    assert e.value.field.startswith(field.split("[")[0]) or field in str(e.value)


def test_scenario_unknown_field_in_toml(tmp_path):
    p = tmp_path / "bad.toml"
    p.write_text('kind = "paper-b"\nNt = 4\nbogus = 1\n')
    with pytest.raises(ScenarioError, match="bogus"):
        load_scenario(str(p))


# ------------------------------------------------------------------------------------------------
# V-16 geometry, delays, Dopplers, shifts
# ------------------------------------------------------------------------------------------------
def test_V16_doppler_and_delays():
    scn = ScenarioB(target_vel=(25.0, 0.0))            # horizontal motion, target on broadside
    ch = draw_channels(scn, np.random.default_rng(0))
    assert abs(ch.target.freq[0]) < 1e-9
    scn2 = ScenarioB(target_vel=(0.0, 30.0))           # radial (LoS) motion
    ch2 = draw_channels(scn2, np.random.default_rng(0))
    assert math.isclose(abs(ch2.target.freq[0]), 2 * 30.0 / scn2.wavelength, rel_tol=1e-12)
    for r in range(scn.R):                              # (r,1) and (r,2) share delay and Doppler
        assert ch2.target.delay[1 + 3 * r] == ch2.target.delay[2 + 3 * r]
        assert math.isclose(ch2.target.freq[1 + 3 * r], ch2.target.freq[2 + 3 * r], rel_tol=1e-12)
    # spec B.2: Delta_(r,1) = 3, Delta_(r,3) = 6 at the default geometry; normalised Dopplers -0.2, -0.1, 0
    assert list(ch2.target.delay) == [0, 3, 3, 6, 3, 3, 6]
    np.testing.assert_allclose(ch2.target.freq[:4] / scn2.prf_hz, [-0.2, -0.1, -0.1, 0.0], atol=2e-3)
    # independent distances: d_br = 52.2 m, d_rt = 15 m
    assert math.isclose(float(distance((0, 0), (15, 50))), 52.2, abs_tol=0.05)


@pytest.mark.parametrize("delta", [-2, 0, 3])
def test_V16_shift_semantics(delta):
    rng = np.random.default_rng(1)
    Pc, L, Lr, Nt, Nr = 2, 5, 8, 2, 3
    X = rand_c(rng, Pc, L, Nt)
    rho, tau = rand_c(rng, Nr), rand_c(rng, Nt)
    legs = [(rho, tau, delta, np.ones(Pc))]
    Y = apply_response(legs, X, Lr)
    for p in range(Pc):
        Xp = X[p].T                                      # N_t x L (columns = slots)
        expect = np.outer(rho, tau) @ Xp @ J(delta, L, Lr)   # column j of H X J = H x[j - Delta]
        np.testing.assert_allclose(Y[p].T, expect, atol=1e-12)
    if delta < 0:      # negative Delta drops the first |Delta| transmit slots
        X2 = X.copy()
        X2[:, :-delta] = 0
        np.testing.assert_allclose(apply_response(legs, X2, Lr), Y, atol=1e-12)


# ------------------------------------------------------------------------------------------------
# V-4 structural forms
# ------------------------------------------------------------------------------------------------
def test_V4iii_fast_forms_equal_kronecker(inst):
    scn, ch, X, phi, rng = inst
    m = Model(ch)
    x = X.reshape(-1)
    T = dense_response(ch.target, phi, ch)
    np.testing.assert_allclose(m.target(X, phi).reshape(-1), T @ x, rtol=1e-10, atol=1e-12 * np.abs(T @ x).max())
    C = m.clutter(X, phi)
    for q, c in enumerate(ch.clutter):
        Cq = dense_response(c, phi, ch, moving=False)
        np.testing.assert_allclose(C[q].reshape(-1), Cq @ x, rtol=1e-10, atol=1e-12 * np.abs(Cq @ x).max())
    W = rand_c(rng, ch.Pc, ch.Lr, ch.Nr)
    w = W.reshape(-1)
    a = m.target_adj(W, phi).reshape(-1)
    np.testing.assert_allclose(a, T.conj().T @ w, rtol=1e-10, atol=1e-12 * np.abs(a).max())
    # <w, T x> = <T^H w, x>
    assert np.isclose(np.vdot(w, T @ x), np.vdot(a, x), rtol=1e-10)
    # polynomial form w^H T x = c0 + c1^T phi + phi^T C2 phi, for target and clutter
    u = np.vdot(w, T @ x)
    assert np.isclose(poly_eval(*m.poly(ch.target, W, X), phi), u, rtol=1e-10)
    uq = np.vdot(w, dense_response(ch.clutter[0], phi, ch, moving=False) @ x)
    assert np.isclose(poly_eval(*m.poly(ch.clutter[0], W, X), phi), uq, rtol=1e-10)


def test_V4iii_literal_leg_model_polynomial():
    scn = small(ris_leg_model="literal")
    rng = np.random.default_rng(3)
    ch = draw_channels(scn, rng)
    m = Model(ch)
    X, W, phi = rand_c(rng, ch.Pc, ch.L, ch.Nt), rand_c(rng, ch.Pc, ch.Lr, ch.Nr), rand_phi(rng, ch)
    T = dense_response(ch.target, phi, ch)
    assert np.isclose(poly_eval(*m.poly(ch.target, W, X), phi), np.vdot(W.reshape(-1), T @ X.reshape(-1)),
                      rtol=1e-10)


def test_V4iv_ris_noise_quadratic_form(inst):
    scn, ch, X, phi, rng = inst
    m = Model(ch)
    W = rand_c(rng, ch.Pc, ch.Lr, ch.Nr)
    w = W.reshape(-1)
    lhs = np.vdot(w, dense_noise(ch, phi) @ w).real
    Lw = m.ris_noise_weights(W)
    rhs = np.vdot(w, w).real + np.sum(Lw * np.abs(phi) ** 2)     # sigma_r^2 ||w||^2 + sigma_v^2 phi^H Lambda phi
    assert math.isclose(lhs, rhs, rel_tol=1e-10)
    assert np.all(Lw > 0)


# ------------------------------------------------------------------------------------------------
# V-3 Woodbury, V-2 MVDR optimality
# ------------------------------------------------------------------------------------------------
def test_V3_woodbury_equals_direct_solve(inst):
    scn, ch, X, phi, rng = inst
    m = Model(ch)
    Wv, scnr = m.mvdr(X, phi)
    Rm = dense_cov(ch, phi, X.reshape(-1))
    t = dense_response(ch.target, phi, ch) @ X.reshape(-1)
    v = np.linalg.solve(Rm, t)
    np.testing.assert_allclose(Wv.reshape(-1), v, rtol=1e-8, atol=1e-10 * np.abs(v).max())
    assert math.isclose(scnr, ch.sigma_t_sq * np.vdot(t, v).real, rel_tol=1e-9)


def test_V2_mvdr_optimality(inst):
    scn, ch, X, phi, rng = inst
    m = Model(ch)
    Wv, scnr = m.mvdr(X, phi)
    t = m.target(X, phi)
    w_star = Wv / np.vdot(t, Wv)                      # w*^H t = 1 ... scaled MVDR
    assert np.isclose(np.vdot(w_star, t), 1.0)
    assert math.isclose(m.scnr(w_star, X, phi), scnr, rel_tol=1e-9)
    assert math.isclose(m.scnr(3.7j * w_star, X, phi), scnr, rel_tol=1e-9)
    for _ in range(300):
        Wr = rand_c(rng, *Wv.shape) if _ % 2 else w_star + 0.1 * np.abs(w_star).max() * rand_c(rng, *Wv.shape)
        assert m.scnr(Wr, X, phi) <= scnr * (1 + 1e-10)


# ------------------------------------------------------------------------------------------------
# V-10 power monotonicity, V-11 phase invariance
# ------------------------------------------------------------------------------------------------
def test_V10_power_monotonicity(inst):
    scn, ch, X, phi, rng = inst
    m = Model(ch)
    vals = [m.mvdr(np.sqrt(c) * X, phi)[1] for c in (0.1, 0.5, 1.0, 2.0, 10.0)]
    assert all(b >= a * (1 - 1e-12) for a, b in zip(vals, vals[1:]))
    assert math.isclose(np.sum(np.abs(X) ** 2), scn.power_w * scn.L * scn.Pc, rel_tol=1e-12)


def test_V11_common_phase_invariance(inst):
    scn, ch, X, phi, rng = inst
    m = Model(ch)
    s0 = m.mvdr(X, phi)[1]
    for psi in rng.uniform(0, 2 * np.pi, 5):
        assert math.isclose(m.mvdr(np.exp(1j * psi) * X, phi)[1], s0, rel_tol=1e-10)


# ------------------------------------------------------------------------------------------------
# V-17 reductions
# ------------------------------------------------------------------------------------------------
def test_V17_reductions(inst):
    scn, ch, X, phi, rng = inst
    m0 = Model(ch.without_ris())
    # R = 0 equals the direct-only model built from scratch
    T0 = np.zeros((ch.Pc * ch.Lr * ch.Nr, ch.Pc * ch.L * ch.Nt), complex)
    s = ch.target
    T0 += np.kron(np.diag(s.doppler[0]), np.kron(J(s.delay[0], ch.L, ch.Lr).T, np.outer(s.rx_b, s.tx_b)))
    np.testing.assert_allclose(m0.target(X, phi[:0]).reshape(-1), T0 @ X.reshape(-1), rtol=1e-10)
    # a_max = 0 (phi = 0) and sigma_v^2 = 0 equals w/o RIS
    chv = draw_channels(small(noise_ris_w=0.0), np.random.default_rng(7))
    mv = Model(chv)
    zero = np.zeros((ch.R, ch.N), complex)
    assert math.isclose(mv.mvdr(X, zero)[1], Model(chv.without_ris()).mvdr(X, zero[:0])[1], rel_tol=1e-10)
    # sigma_v^2 = 0: R_n = sigma_r^2 I
    np.testing.assert_allclose(mv.noise_block(phi), np.eye(ch.Nr), atol=0)
    # scenario R = 0 gives the same direct model as stripping the RISs (same L_r via lr_extra)
    scn_r0 = small(R=0, ris_x=(), ris_y=(), lr_extra=ch.Lr - ch.L)
    ch_r0 = draw_channels(scn_r0, np.random.default_rng(7))
    np.testing.assert_allclose(Model(ch_r0).target(X, phi[:0]), m0.target(X, phi[:0]), rtol=1e-10)


# ------------------------------------------------------------------------------------------------
# V-5 A subset of B
# ------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("leg_model", ["reciprocal", "literal"])
def test_V5_A_subset_B(leg_model):
    from isac_opt.paper_a.channels import ChannelsA, legs
    M, N, L = 3, 4, 3
    scn = small(Nt=M, Nr=M, R=1, N=N, Pc=1, L=L, Q=0, sigma_q_sq=(), clutter_x=(), clutter_y=(),
                ris_x=(-15.0,), ris_y=(50.0,), target_vel=(0.0, 0.0), fs_hz=1.0, lr_extra=0,
                ris_leg_model=leg_model)
    ch = draw_channels(scn, np.random.default_rng(0))
    assert ch.Lr == L and list(ch.target.delay) == [0, 0, 0, 0] and np.all(ch.target.freq == 0)
    phi = rand_phi(np.random.default_rng(1), ch)
    # independent geometry -> A's inputs [spec V-5]
    bs, pt, pr = np.zeros(2), np.array(scn.target_pos), np.array([scn.ris_x[0], scn.ris_y[0]])
    th_bt = angle_from(bs, pt, np.array([1.0, 0.0]))
    th_rt = angle_from(pr, pt, np.array([0.0, 1.0]))
    th_br = angle_from(bs, pr, np.array([1.0, 0.0]))
    th_rb = angle_from(pr, bs, np.array([0.0, 1.0]))
    b_bt = path_loss(distance(bs, pt), scn.ple_direct, scn.c0_db)
    b_rt = path_loss(distance(pr, pt), scn.ple_ris_scat, scn.c0_db)
    b_br = path_loss(distance(pr, bs), scn.ple_br, scn.c0_db)
    a = ula_steering
    if leg_model == "reciprocal":
        G = b_br * np.outer(a(N, th_rb), a(M, th_br))
        h_bt, h_rt = np.conj(b_bt * a(M, th_bt)), np.conj(b_rt * a(N, th_rt))   # so that b_0 = b
    else:
        G = b_br * np.outer(a(N, th_rb), np.conj(a(M, th_br)))
        h_bt, h_rt = b_bt * a(M, th_bt), b_rt * a(N, th_rt)
    chA = ChannelsA(G=G, h_bt=h_bt, h_rt=h_rt, h_bq=np.zeros((0, M), complex), h_rq=np.zeros((0, N), complex),
                    h_k=np.zeros((1, M), complex), h_rk=np.zeros((1, N), complex), S=np.ones((1, L), complex))
    aa, bb = legs(chA, phi[0], leg_model)
    H0 = np.outer(aa[0], bb[0])
    TA = np.kron(np.eye(L), H0) / math.sqrt(scn.noise_radar_w)       # B normalises receive legs by sigma_r
    TB = dense_response(ch.target, phi, ch)
    np.testing.assert_allclose(TB, TA, rtol=1e-9, atol=1e-12 * np.abs(TA).max())
    if leg_model == "reciprocal":   # symmetric rank one b b^T
        np.testing.assert_allclose(H0, H0.T, atol=1e-12 * np.abs(H0).max())
