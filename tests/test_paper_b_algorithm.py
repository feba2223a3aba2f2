"""Paper B algorithm: V-1 (F(phi)), V-14(ii)(iii), V-15(i)(iii), fast path vs cvxpy, design files, methods."""
from __future__ import annotations

import json
import math
import zipfile

import numpy as np
import pytest

from isac_opt.errors import DesignFileError
from isac_opt.paper_b import designfile
from isac_opt.paper_b.design import load as load_b
from isac_opt.paper_b.algorithm import (Options, PhiObjective, _ci_rows_x, build_x_qp, ci_min_margin, design,
                                        gamma_ci, init_phi_aligned, init_x_ci, phi_step)
from isac_opt.paper_b.model import Model, draw_channels
from isac_opt.paper_b.qp import CvxQP, admm_qp
from isac_opt.paper_b.scenario import ScenarioB

SMALL = dict(Nt=3, Nr=3, K=2, R=2, N=4, Q=2, Pc=2, L=4, noise_comm_w=(1e-11, 1e-11), gamma_db=(5.0, 5.0),
             sigma_q_sq=(10.0, 10.0), clutter_x=(-6.0, 0.0), clutter_y=(49.0, 60.0), max_outer=12)


def small(**kw) -> ScenarioB:
    d = dict(SMALL)
    d.update(kw)
    return ScenarioB(**d)


def rand_c(rng, *shape):
    return rng.standard_normal(shape) + 1j * rng.standard_normal(shape)


@pytest.fixture(scope="module")
def inst():
    scn = small()
    ch = draw_channels(scn, np.random.default_rng(11))
    m = Model(ch)
    phi = init_phi_aligned(ch)
    X, t = init_x_ci(ch, phi)
    W, lam = m.mvdr(X, phi)
    num, den = m.scnr_parts(W, X, phi)
    W = W / np.sqrt(den)
    return scn, ch, m, X, phi, W, num / den


def F_explicit(m, W, X, phi, lam):
    """F(phi) = -sigma_t^2 |w^H T x|^2 + lam (w^H R w - ||w||^2), from the model's SCNR pieces [spec B.7]."""
    ch = m.ch
    num, den = m.scnr_parts(W, X, phi)
    return -num + lam * (den - np.vdot(W, W).real)


# ------------------------------------------------------------------------------------------------
def test_V1_phi_objective_value_and_gradient(inst):
    scn, ch, m, X, phi, W, lam = inst
    obj = PhiObjective(m, W, X, lam)
    rng = np.random.default_rng(0)
    p = phi * 0.7 + 0.3 * rand_c(rng, *phi.shape)
    assert math.isclose(obj.value(p), F_explicit(m, W, X, p, lam), rel_tol=1e-9)
    G = obj.grad(p)
    for _ in range(3):
        d = rand_c(rng, *phi.shape)
        eps = 1e-6 * np.linalg.norm(p)
        fd = (obj.value(p + eps * d) - obj.value(p - eps * d)) / (2 * eps)
        assert math.isclose(fd, np.real(np.vdot(G, d)), rel_tol=1e-5, abs_tol=1e-9 * np.abs(G).max())


def test_V14ii_x_minorisation(inst):
    scn, ch, m, X, phi, W, lam = inst
    a = m.target_adj(W, phi).reshape(-1)
    rng = np.random.default_rng(1)
    xt = X.reshape(-1)
    for _ in range(200):
        x = ch.amp * rand_c(rng, xt.size)
        lhs = -abs(np.vdot(a, x)) ** 2
        rhs = -2 * np.real(np.conj(np.vdot(a, xt)) * np.vdot(a, x)) + abs(np.vdot(a, xt)) ** 2
        assert lhs <= rhs + 1e-12 * abs(rhs)
    assert math.isclose(-abs(np.vdot(a, xt)) ** 2,
                        -2 * abs(np.vdot(a, xt)) ** 2 + abs(np.vdot(a, xt)) ** 2, rel_tol=1e-12)


def test_V14iii_prox_linear_bound_and_feasibility(inst):
    scn, ch, m, X, phi, W, lam = inst
    opts = Options.from_scenario(scn, phi_inner=1)
    obj = PhiObjective(m, W, X, lam)
    f0, g0 = F_explicit(m, W, X, phi, lam), obj.grad(phi)
    new, Lf, info = phi_step(m, W, X, lam, phi, gamma_ci(ch), opts, None)
    d = new - phi
    f1 = F_explicit(m, W, X, new, lam)
    assert info["accepted"] == 1 and info["bound_ok"]
    assert f1 <= f0 + np.real(np.vdot(g0, d)) + 0.5 * Lf * np.sum(np.abs(d) ** 2) + 1e-9 * abs(f0)
    assert f1 <= f0 + 1e-12 * abs(f0)
    assert np.all(np.abs(new) <= ch.a_max * (1 + 1e-7))
    assert ci_min_margin(ch, X, new) >= 1 - 1e-6


def test_V15iii_dinkelbach(inst):
    scn, ch, m, X, phi, W, lam = inst
    num, den = m.scnr_parts(W, X, phi)
    assert abs(num - lam * den) <= 1e-10 * num           # zero at lambda = SCNR(w)
    rng = np.random.default_rng(2)
    hits = 0
    for _ in range(100):
        Xr = X * np.exp(0.3j * rng.standard_normal(X.shape))
        n2, d2 = m.scnr_parts(W, Xr, phi)
        if n2 - lam * d2 > 0:
            hits += 1
            assert n2 / d2 > lam
        else:
            assert n2 / d2 <= lam * (1 + 1e-12)
    assert hits >= 0


def test_V15i_monotone_when_cm_relaxed():
    scn = small()
    ch = draw_channels(scn, np.random.default_rng(5))
    res = design(ch, Options.from_scenario(scn, cm=False, max_outer=10, tol=0.0))
    h = np.asarray(res.history)
    assert len(h) == 10
    assert np.all(np.diff(h) >= -1e-6 * h[:-1]), np.diff(h) / h[:-1]
    assert h[-1] > h[0]
    assert res.ci_min_margin >= 1 - 1e-5          # CI holds at the relaxed output
    assert np.all(np.abs(res.X) <= ch.amp * (1 + 1e-9)) and np.all(np.abs(res.phi) <= ch.a_max * (1 + 1e-7))


def test_cm_output_is_constant_modulus_and_scnr_consistent():
    scn = small()
    ch = draw_channels(scn, np.random.default_rng(6))
    res = design(ch, Options.from_scenario(scn, max_outer=6))
    np.testing.assert_allclose(np.abs(res.X), ch.amp, rtol=1e-12)
    assert res.ci_min_margin >= 0.999, res.ci_min_margin     # the final rho-continuation keeps CI at y_a
    m = Model(ch)
    assert math.isclose(res.scnr, m.mvdr(res.X, res.phi)[1], rel_tol=1e-9)
    assert math.isclose(m.scnr(res.W, res.X, res.phi), res.scnr, rel_tol=1e-8)
    t = m.target(res.X, res.phi)
    assert np.isclose(np.vdot(res.W, t), 1.0)


# ------------------------------------------------------------------------------------------------
# fast path vs cvxpy
# ------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("rho", [0.0, 1.0])
def test_fast_x_step_matches_cvxpy(inst, rho):
    scn, ch, m, X, phi, W, lam = inst
    rows = _ci_rows_x(ch, phi, gamma_ci(ch))
    if rho:
        a = m.target_adj(W, phi)
        rho = ch.sigma_t_sq * abs(np.vdot(a, X)) ** 2 / (ch.amp ** 2 * X.size)
        v = X * np.exp(0.2j)
        qp, _ = build_x_qp(m, W, phi, X, lam, rows, v=v, rho=rho)
    else:
        qp, _ = build_x_qp(m, W, phi, X, lam, rows)
    u_fast, _, info = admm_qp(qp, eps_abs=1e-8, eps_rel=1e-8, max_iter=20000)
    u_ref = CvxQP(ch.Pc * ch.L, ch.Nt, 2 * ch.K, qp.F.shape[1]).solve(qp)
    f_fast, f_ref = qp.objective(u_fast), qp.objective(u_ref)
    assert abs(f_fast - f_ref) <= 1e-4 * abs(f_ref), (f_fast, f_ref, info)
    assert qp.violation(u_fast) < 1e-6 and qp.violation(u_ref) < 1e-6


def _dense_phi_projection(ch, X, v):
    """Independent reference: argmin ||phi - v||^2 s.t. every CI row written densely in phi (cvxpy, complex),
    |phi| <= a_max [spec B.5 (61)-(64)]: h~_k^H x_n = h_k^H x_n + sum_r (h_{r,k}^* (.) G_r x_n)^T phi_r."""
    import cvxpy as cp
    from isac_opt.ci import ci_rows
    g = gamma_ci(ch)
    Xf = X.reshape(-1, ch.Nt)
    b = np.einsum("rkm,rmt,nt->knrm", ch.hr_H, ch.G, Xf).reshape(ch.K, Xf.shape[0], -1)   # (K, B, RN)
    a0 = ch.hd_H @ Xf.T                                                                    # (K, B)
    c = ci_rows(np.ones((ch.K, 1)), ch.S, ch.psk_order)[:, :, 0]                          # (B, 2K)
    f = cp.Variable(ch.R * ch.N, complex=True)
    cons = [cp.abs(f) <= ch.a_max]
    for s in range(2):
        cs = c[:, s * ch.K:(s + 1) * ch.K].T                                               # (K, B)
        A = (cs[:, :, None] * b / g[:, None, None]).reshape(-1, ch.R * ch.N)
        rhs = (1.0 - np.real(cs * a0) / g[:, None]).reshape(-1)
        cons.append(cp.real(A @ f) >= rhs)
    prob = cp.Problem(cp.Minimize(cp.sum_squares(f - v.reshape(-1))), cons)
    prob.solve(solver=cp.CLARABEL)
    return f.value.reshape(ch.R, ch.N), prob.value


@pytest.mark.parametrize("los", [True, False])
def test_phi_projection_matches_dense_cvxpy(inst, los):
    """The low-rank (z = E phi) exact projection equals the dense-row projection, also for a full-rank G."""
    import dataclasses
    scn, ch, m, X, phi, W, lam = inst
    from isac_opt.paper_b.algorithm import PhiCIFactor, PhiProjector
    if not los:
        rng = np.random.default_rng(5)
        ch = dataclasses.replace(ch, G=ch.G * 0 + np.abs(ch.G).max() * rand_c(rng, *ch.G.shape))
        X, _ = init_x_ci(ch, phi)
    X = X * (1.02 / ci_min_margin(ch, X, phi))      # CI nearly active at phi: the projection has work to do
    fac = PhiCIFactor(ch)
    assert fac.Z == ch.K * sum(np.linalg.matrix_rank(ch.G[r]) for r in range(ch.R))
    pr = PhiProjector(ch, X, gamma_ci(ch), True, "admm", phi, factor=fac)
    rng = np.random.default_rng(3)
    v = phi + 2.0 * ch.a_max * rand_c(rng, *phi.shape)
    out, used = pr(v)
    assert used                      # clipping alone breaks CI for this step
    ref, f_ref = _dense_phi_projection(ch, X, v)
    f_out = float(np.sum(np.abs(out - v) ** 2))
    assert abs(f_out - f_ref) <= 1e-5 * max(abs(f_ref), 1.0)
    assert np.linalg.norm(out - ref) <= 1e-3 * np.linalg.norm(ref)
    assert np.all(np.abs(out) <= ch.a_max * (1 + 1e-12))
    assert ci_min_margin(ch, X, out) >= 1.0 - 1e-6


def test_phi_projection_frozen_keeps_every_ci_row(inst):
    """mode="frozen": the step keeps z = E phi, hence every CI value, and is no closer to v than the exact one."""
    scn, ch, m, X, phi, W, lam = inst
    from isac_opt.paper_b.algorithm import PhiProjector
    from isac_opt.paper_b.model import effective_channels
    X = X * (1.02 / ci_min_margin(ch, X, phi))
    rng = np.random.default_rng(4)
    v = phi + 2.0 * ch.a_max * rand_c(rng, *phi.shape)
    ex, _ = PhiProjector(ch, X, gamma_ci(ch), True, "admm", phi, mode="exact")(v)
    fr, _ = PhiProjector(ch, X, gamma_ci(ch), True, "admm", phi, mode="frozen")(v)
    Z0 = effective_channels(ch, phi) @ X.reshape(-1, ch.Nt).T
    Zf = effective_channels(ch, fr) @ X.reshape(-1, ch.Nt).T
    assert np.max(np.abs(Zf - Z0)) <= 1e-6 * np.max(np.abs(Z0))
    assert np.sum(np.abs(fr - v) ** 2) >= np.sum(np.abs(ex - v) ** 2) * (1 - 1e-6)
    assert np.all(np.abs(fr) <= ch.a_max * (1 + 1e-12))


def test_design_fast_vs_cvxpy_same_scnr():
    scn = small(max_outer=4)
    ch = draw_channels(scn, np.random.default_rng(8))
    r1 = design(ch, Options.from_scenario(scn, cm=False, x_solver="admm", tol=0.0))
    r2 = design(ch, Options.from_scenario(scn, cm=False, x_solver="cvxpy", tol=0.0))
    assert abs(10 * np.log10(r1.scnr / r2.scnr)) < 0.1


# ------------------------------------------------------------------------------------------------
# design files and methods
# ------------------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def saved_design(tmp_path_factory):
    from isac_opt.paper_b.methods import run_method
    scn = small(max_outer=3)
    ch = draw_channels(scn, np.random.default_rng(9))
    d = run_method("stap-fp-mm-admm", scn, ch, seed=9)
    p = tmp_path_factory.mktemp("b") / "design.npz"
    d.save(p)
    return d, p


def test_design_file_round_trip(saved_design):
    d, p = saved_design
    d2 = load_b(p)
    from isac_opt.designfile import load_design
    d3 = load_design(p)
    for dd in (d2, d3):
        np.testing.assert_array_equal(dd.X, d.X)
        np.testing.assert_array_equal(dd.phi, d.phi)
        np.testing.assert_array_equal(dd.W, d.W)
        assert dd.scenario == d.scenario and dd.method == d.method
    r1, r2 = d.report(), d2.report()
    for k in ("scnr_db", "ci_min_margin", "ser", "pd", "pfa", "method"):
        assert r1[k] == pytest.approx(r2[k], rel=1e-12) if isinstance(r1[k], float) else r1[k] == r2[k]
    assert r1["crb"] is None
    # independent Pd: Pfa^{1/(1+SCNR)}
    assert r1["pd"] == pytest.approx(1e-3 ** (1 / (1 + 10 ** (r1["scnr_db"] / 10))), rel=1e-12)


def test_design_file_rejects_truncated(saved_design, tmp_path):
    _, p = saved_design
    b = p.read_bytes()
    q = tmp_path / "trunc.npz"
    q.write_bytes(b[: len(b) // 2])
    with pytest.raises(DesignFileError):
        load_b(q)


def _rewrite(p, q, **changes):
    with np.load(p, allow_pickle=False) as z:
        arrays = {k: z[k] for k in z.files}
    arrays.update(changes)
    arrays = {k: v for k, v in arrays.items() if v is not None}
    np.savez(q, **arrays)


def test_design_file_rejects_nan_and_bad_shapes(saved_design, tmp_path):
    d, p = saved_design
    X = d.X.copy()
    X[0, 0, 0] = np.nan
    q = tmp_path / "nan.npz"
    _rewrite(p, q, X=X)
    with pytest.raises(DesignFileError, match="NaN"):
        load_b(q)
    _rewrite(p, q, phi=d.phi[:, :-1])
    with pytest.raises(DesignFileError, match="shape"):
        load_b(q)
    _rewrite(p, q, W=np.abs(d.W))
    with pytest.raises(DesignFileError, match="complex"):
        load_b(q)
    _rewrite(p, q, S=None)
    with pytest.raises(DesignFileError, match="missing"):
        load_b(q)


def test_design_file_rejects_foreign(saved_design, tmp_path):
    _, p = saved_design
    q = tmp_path / "foreign.npz"
    np.savez(q, a=np.arange(3))
    with pytest.raises(DesignFileError):
        load_b(q)
    with np.load(p, allow_pickle=False) as z:
        meta = json.loads(str(z["meta"]))
    meta["format"] = "someone-else/design"
    _rewrite(p, q, meta=np.array(json.dumps(meta)))
    with pytest.raises(DesignFileError, match="format"):
        load_b(q)
    meta["format"] = designfile.FORMAT
    meta["version"] = 99
    _rewrite(p, q, meta=np.array(json.dumps(meta)))
    with pytest.raises(DesignFileError, match="version"):
        load_b(q)
    q.write_text("not a zip at all")
    with pytest.raises(DesignFileError):
        load_b(q)


def test_methods_registered_and_run():
    from isac_opt.registry import get_method, methods_for
    names = {m.name for m in methods_for("paper-b")}
    expected = {"stap-fp-mm-admm", "random-ris", "no-ris", "spatial-only", "radar-only", "random-ris-radar",
                "no-ris-radar", "spatial-only-radar"}
    assert expected <= names
    assert get_method(None, "paper-b").name == "stap-fp-mm-admm"
    scn = small(max_outer=2, R=1, ris_x=(-15.0,), ris_y=(50.0,), Pc=1, L=2)
    for name in sorted(expected):
        d = get_method(name, "paper-b").run(scn, 3)
        r = d.report()
        for k in ("scnr_db", "crb", "ci_min_margin", "ser", "pd", "pfa", "method"):
            assert k in r
        assert r["method"] == name and math.isfinite(r["scnr_db"])
        if name.startswith("no-ris"):
            assert d.phi.shape == (0, scn.N)
