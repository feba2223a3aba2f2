"""Unfolded ADMM machinery (isac_opt.paper_a.unfold): V-1, V-12, V-13, step-function equivalence, gradients."""
from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from isac_opt.paper_a.channels import draw_channels
from isac_opt.paper_a.scenario import ScenarioA
from isac_opt.paper_a.radar import echo, objective_gradients, sinr_mvdr
from isac_opt.paper_a.unfold import (AdmmConfig, AdmmState, AutogradObjective, CIConstraint, ConstantParams, DetectProblem, SinrObjective, UnfoldedAdmm, dfp_update, project_modulus, repair_ci, solve)
from isac_opt.paper_a.unfold.step import phr_penalty

torch.set_num_threads(1)


def _scn(model="literal"):
    return ScenarioA(M=3, N=5, K=2, L=4, Q=2, noise_comm_w=(1e-11, 1e-11), gamma_db=(10.0, 10.0),
                     xi_q_sq=(1.0, 0.5), clutter_bins=(1, 2), clutter_angles_rad=(-math.pi / 3, math.pi / 4),
                     ris_leg_model=model)


def _rand_design(scn, rng):
    X = scn.amp * np.exp(2j * np.pi * rng.uniform(size=(scn.M, scn.L)))
    phi = np.exp(2j * np.pi * rng.uniform(size=scn.N))
    return X, phi


def _crandn(rng, shape):
    return rng.standard_normal(shape) + 1j * rng.standard_normal(shape)


def _fd(fun, z, d, eps):
    return (fun(z + eps * d) - fun(z - eps * d)) / (2 * eps)


@pytest.mark.parametrize("model", ["literal", "reciprocal"])
def test_v1_f1_closed_form_vs_numpy_vs_fd(model):
    """V-1: torch closed form = numpy closed form (A.7) = finite differences, for x and φ."""
    scn = _scn(model)
    rng = np.random.default_rng(3)
    ch = draw_channels(scn, rng)
    X, phi = _rand_design(scn, rng)
    p = DetectProblem.from_channels(scn, [ch])
    obj = SinrObjective(p)
    u, ph = p.u_from_numpy([X]), p.phi_from_numpy([phi])
    f, gu, gp = obj.value_grad(u, ph, ("x", "phi"))
    F, GX, Gp = objective_gradients(scn, ch, X, phi)
    # f = −SINR (fscale = 1) = −ξ0² F and u = X/amp  ⇒  G_u = −ξ0² amp G_X, G_φ = −ξ0² G_φ
    assert abs(-f.item() - scn.xi0_sq * F) <= 1e-12 * abs(F)
    assert abs(-f.item() - sinr_mvdr(echo(scn, ch, X, phi))) <= 1e-12 * abs(F)
    np.testing.assert_allclose(gu[0].numpy(), -scn.xi0_sq * scn.amp * GX, rtol=1e-10, atol=1e-12 * np.abs(GX).max())
    np.testing.assert_allclose(gp[0].numpy(), -scn.xi0_sq * Gp, rtol=1e-10, atol=1e-12 * np.abs(Gp).max())
    # finite differences: [f(z+εd) − f(z−εd)]/2ε ≈ Re{Gᴴd}
    for which, z0, G in (("x", u, gu), ("phi", ph, gp)):
        d = torch.as_tensor(_crandn(rng, z0.shape))
        eps = 1e-6 * float(z0.abs().norm())
        fun = (lambda z: obj.value(z, ph).item()) if which == "x" else (lambda z: obj.value(u, z).item())
        fd = _fd(fun, z0, d, eps)
        lin = float(torch.real(torch.vdot(G.flatten(), d.flatten())))
        assert abs(fd - lin) <= 1e-5 * max(abs(lin), 1e-12), (which, fd, lin)
    # autograd agrees (torch returns G = ∂f/∂Re + j∂f/∂Im on complex leaves)
    ua, pa = u.clone().requires_grad_(), ph.clone().requires_grad_()
    obj.value(ua, pa).sum().backward()
    assert torch.allclose(ua.grad, gu, rtol=1e-10, atol=1e-13)
    assert torch.allclose(pa.grad, gp, rtol=1e-10, atol=1e-13)


def test_v1_lagrangian_L1_and_phr():
    """V-1 for L1 = f + (ρ/2)‖x − v + μ/ρ‖² + Σβg (and the PHR term): gradient vs FD vs autograd."""
    scn = _scn()
    rng = np.random.default_rng(5)
    ch = draw_channels(scn, rng)
    X, phi = _rand_design(scn, rng)
    p = DetectProblem.from_channels(scn, [ch])
    obj, cons = SinrObjective(p), CIConstraint(p)
    u, ph = p.u_from_numpy([X]), p.phi_from_numpy([phi])
    v = project_modulus(torch.as_tensor(_crandn(rng, u.shape)), 1.0)
    mu = torch.as_tensor(_crandn(rng, u.shape)) * 0.1
    rho = 0.3
    beta = torch.as_tensor(rng.uniform(0, 1, size=(1, scn.K, scn.L)))
    eta = torch.full_like(beta, 0.7)
    for handler in ("alm", "phr"):
        def L1(z):
            g = cons.g(z, ph)
            pen = (beta * g).sum() if handler == "alm" else phr_penalty(g, beta, eta)[0].sum()
            return (obj.value(z, ph).sum() + 0.5 * rho * ((z - v + mu / rho).abs() ** 2).sum() + pen)

        g = cons.g(u, ph)
        W = beta if handler == "alm" else phr_penalty(g, beta, eta)[1]
        _, gf, _ = obj.value_grad(u, ph, ("x",))
        G = gf + rho * (u - v) + mu + cons.vjp(u, ph, W, ("x",))[0]
        d = torch.as_tensor(_crandn(rng, u.shape))
        fd = _fd(lambda z: L1(z).item(), u, d, 1e-7)
        lin = float(torch.real(torch.vdot(G.flatten(), d.flatten())))
        assert abs(fd - lin) <= 1e-5 * abs(lin), (handler, fd, lin)
        ua = u.clone().requires_grad_()
        L1(ua).backward()
        assert torch.allclose(ua.grad, G, rtol=1e-9, atol=1e-12)


def test_ci_constraint_matches_numpy_margins():
    from isac_opt.paper_a.channels import effective_user_channels
    from isac_opt.ci import ci_constraint_g, ci_thresholds
    scn = _scn()
    rng = np.random.default_rng(9)
    ch = draw_channels(scn, rng)
    X, phi = _rand_design(scn, rng)
    p = DetectProblem.from_channels(scn, [ch])
    gam = ci_thresholds(scn.noise_comm_w, scn.gamma_db, scn.psk_order)
    ref = ci_constraint_g(effective_user_channels(ch, phi) @ X, ch.S, gam, scn.psk_order) / gam[:, None]
    got = CIConstraint(p).g(p.u_from_numpy([X]), p.phi_from_numpy([phi]))[0].numpy()
    np.testing.assert_allclose(got, ref, rtol=1e-10, atol=1e-10)


def test_v12_dfp_paper_and_standard():
    """V-12: after a non-skipped update H⁺ is SPD with H⁺y = (yᵀHy/yᵀδ)δ (paper) or H⁺y = δ (standard);
    when (yᵀδ)/‖δ‖² ≤ ‖ḡ‖ the matrix is unchanged."""
    rng = np.random.default_rng(0)
    n = 8
    A = rng.standard_normal((n, n))
    Hq = A @ A.T + n * np.eye(n)                                   # Hessian of a random quadratic
    B = rng.standard_normal((n, n))
    H = torch.as_tensor(B @ B.T + np.eye(n))[None]
    delta = torch.as_tensor(rng.standard_normal(n))[None]
    y = delta @ torch.as_tensor(Hq).T                                # y = Hq δ  ⇒ yᵀδ > 0
    small = torch.tensor([1e-3], dtype=torch.float64)
    for variant in ("paper", "standard"):
        Hn = dfp_update(H, delta, y, small, variant)[0].numpy()
        assert np.allclose(Hn, Hn.T, atol=1e-10)
        assert np.linalg.eigvalsh(Hn).min() > 0
        Hy = Hn @ y[0].numpy()
        yHy = float(y[0] @ H[0] @ y[0])
        yd = float(y[0] @ delta[0])
        expect = (yHy / yd) * delta[0].numpy() if variant == "paper" else delta[0].numpy()
        np.testing.assert_allclose(Hy, expect, rtol=1e-9)
    big = torch.tensor([1e6], dtype=torch.float64)                   # skip rule (28) fails → unchanged
    assert torch.equal(dfp_update(H, delta, y, big, "paper"), H)


def test_v13_projections():
    """V-13: CM/UM projection minimises the distance (phase-grid brute force), exact modulus, idempotent."""
    rng = np.random.default_rng(1)
    z = torch.as_tensor(_crandn(rng, (4, 7)))
    amp = 2.5
    p = project_modulus(z, amp)
    assert torch.allclose(p.abs(), torch.full_like(p.abs(), amp), atol=1e-14)
    assert torch.allclose(project_modulus(p, amp), p, atol=1e-14)
    grid = amp * torch.exp(1j * torch.linspace(0, 2 * math.pi, 20001, dtype=torch.float64))
    best = (z[..., None] - grid).abs().min(dim=-1).values
    assert torch.all((z - p).abs() <= best + 1e-9)
    # ADMM aux update v = amp e^{j∠(ρx+μ)} is the CM point nearest to x + μ/ρ
    x, mu, rho = z, torch.as_tensor(_crandn(rng, (4, 7))), 0.7
    v = project_modulus(rho * x + mu, amp)
    assert torch.allclose(v, project_modulus(x + mu / rho, amp), atol=1e-13)
    # zero entries keep the reference phase
    zz = torch.zeros(1, 3, dtype=torch.complex128)
    ref = torch.tensor([[1j, -1, 1]], dtype=torch.complex128)
    assert torch.allclose(project_modulus(zz, 2.0, ref), 2.0 * ref)


def _batch(scn, n, seed=0, dtype=torch.float64):
    from isac_opt.paper_a.channels import realisation_rng
    from isac_opt.paper_a.detect.core import make_batch, start_point
    starts = [start_point(scn, draw_channels(scn, realisation_rng(seed, 2 * i)), "ris",
                          realisation_rng(seed, 2 * i + 1)) for i in range(n)]
    return make_batch(scn, starts, "ris", dtype=dtype)


@pytest.mark.parametrize("variant", ["paper", "identity"])
def test_unfolded_at_init_equals_classical_solver(variant):
    scn = _scn()
    b = _batch(scn, 3)
    cfg = AdmmConfig(T=3, J=2, R=3, dfp_variant=variant)
    net = UnfoldedAdmm(cfg, init={"eta": 0.2, "kappa": 0.1, "tau": 0.3, "zeta": 0.2})
    with torch.no_grad():
        st_net = net(b.state0, b.objective, b.constraint)
    st_cl, _ = solve(b.state0, b.objective, b.constraint, cfg, net.classical_params())
    assert torch.allclose(st_net.x, st_cl.x, rtol=0, atol=1e-12)
    assert torch.allclose(st_net.phi, st_cl.phi, rtol=0, atol=1e-12)
    assert torch.allclose(st_net.beta_x, st_cl.beta_x, rtol=0, atol=1e-12)
    # the classical solver moved away from the start and kept the CM/UM sets
    assert float((st_cl.x - b.state0.x).abs().max()) > 1e-3
    assert torch.allclose(st_cl.x.abs(), torch.ones_like(st_cl.x.abs()), atol=1e-12)
    assert torch.allclose(st_cl.phi.abs(), torch.ones_like(st_cl.phi.abs()), atol=1e-12)


def test_batch_with_different_channels_equals_per_sample_runs():
    scn = _scn()
    b = _batch(scn, 3, seed=4)
    cfg = AdmmConfig(T=2, J=2, R=2, dfp_variant="paper")
    params = ConstantParams(0.1, 0.1, 0.3, 0.2)
    st, _ = solve(b.state0, b.objective, b.constraint, cfg, params)
    for i in range(3):
        p = b.problem.select([i])
        sti, _ = solve(b.state0.select([i]), SinrObjective(p), CIConstraint(p), cfg, params)
        assert torch.allclose(st.x[i], sti.x[0], atol=1e-12)
        assert torch.allclose(st.phi[i], sti.phi[0], atol=1e-12)
    assert not torch.allclose(b.problem.Ga[0], b.problem.Ga[1])          # channels really differ


def test_gradients_finite_and_nonzero_for_every_parameter():
    # high Γ so that CI constraints are active and the dual-step MLPs (η, κ) influence the output
    scn = _scn().replace(gamma_db=(52.0, 52.0))
    b = _batch(scn, 2, seed=2)
    assert bool((b.constraint.g(b.state0.x, b.state0.phi) > 0).any())
    cfg = AdmmConfig(T=2, J=2, R=2, dfp_variant="paper")
    net = UnfoldedAdmm(cfg, seed=1)
    opt = torch.optim.Adam(net.parameters(), lr=1e-2)
    for step in range(2):    # at step 0 the hidden layers get 0 (output weights are 0); after a step: non-zero
        opt.zero_grad()
        st = net(b.state0, b.objective, b.constraint)
        loss = -(b.problem.sinr(st.x, st.phi) * b.problem.fscale).mean() \
            + torch.clamp(b.constraint.g(st.x, st.phi), min=0).mean()
        loss.backward()
        if step == 0:
            for name, prm in net.named_parameters():
                assert prm.grad is not None and torch.all(torch.isfinite(prm.grad)), name
            opt.step()
    for name, prm in net.named_parameters():
        assert prm.grad is not None and torch.all(torch.isfinite(prm.grad)), name
        assert float(prm.grad.abs().max()) > 0, name


def test_float32_runs_close_to_float64():
    scn = _scn()
    b64 = _batch(scn, 2, seed=6)
    b32 = _batch(scn, 2, seed=6, dtype=torch.float32)
    cfg = AdmmConfig(T=2, J=1, R=2, dfp_variant="identity")
    params = ConstantParams(0.1, 0.1, 0.3, 0.2)
    s64, _ = solve(b64.state0, b64.objective, b64.constraint, cfg, params)
    s32, _ = solve(b32.state0, b32.objective, b32.constraint, cfg, params)
    assert s32.x.dtype == torch.complex64
    f64 = b64.problem.sinr(s64.x, s64.phi)
    f32 = b32.problem.sinr(s32.x, s32.phi).double()
    assert torch.allclose(f32, f64, rtol=1e-3)


def test_autograd_objective_wrapper_matches_closed_form():
    scn = _scn()
    b = _batch(scn, 2, seed=8)
    obj = b.objective
    ag = AutogradObjective(lambda x, phi: obj.value(x, phi))
    u, ph = b.state0.x, b.state0.phi
    f1, gx1, gp1 = obj.value_grad(u, ph, ("x", "phi"))
    with torch.no_grad():
        f2, gx2, gp2 = ag.value_grad(u, ph, ("x", "phi"))
    assert torch.allclose(f1, f2) and torch.allclose(gx1, gx2, atol=1e-12) and torch.allclose(gp1, gp2, atol=1e-12)


def test_repair_ci_restores_feasibility():
    scn = _scn()
    b = _batch(scn, 3, seed=3)
    rng = np.random.default_rng(0)
    x = project_modulus(torch.as_tensor(_crandn(rng, tuple(b.state0.x.shape))), 1.0)
    phi = b.state0.phi
    safe_ok = (b.constraint.g(b.state0.x, phi) <= 0).all(dim=1)       # slots where the safe point is feasible
    assert bool(safe_ok.float().mean() > 0.5)
    xr, al = repair_ci(b.constraint, x, phi, b.state0.x)
    ok_after = (b.constraint.g(xr, phi) <= 0).all(dim=1)
    assert bool(ok_after[safe_ok].all())
    assert bool((al > 0).any())
    assert torch.allclose(xr.abs(), torch.ones_like(xr.abs()), atol=1e-12)
    ok_before = (b.constraint.g(x, phi) <= 0).all(dim=1)
    assert torch.all(al[ok_before] == 0)                               # feasible slots untouched


@pytest.mark.parametrize("T, J, R, dfp, seeds, steps", [
    (2, 1, 3, "identity", (11, 12), 30),
    (1, 2, 5, "paper", (21, 22), 25),      # one paper-structure layer with the compact DFP (29a) [issue 14]
])
def test_tiny_training_improves_sinr(T, J, R, dfp, seeds, steps):
    """A few Adam steps on 8 training samples (N = 8) raise the held-out SINR above the untrained network of
    the same depth (classical constant steps)."""
    scn = _scn().replace(N=8)
    tr, te = _batch(scn, 8, seed=seeds[0]), _batch(scn, 8, seed=seeds[1])
    cfg = AdmmConfig(T=T, J=J, R=R, dfp_variant=dfp)
    net = UnfoldedAdmm(cfg, init={"eta": 0.1, "kappa": 0.1, "tau": 0.02, "zeta": 0.02}, seed=0)

    def test_db():
        with torch.no_grad():
            st = net(te.state0, te.objective, te.constraint)
            return float((10 * torch.log10(te.problem.sinr(st.x, st.phi))).mean())

    before = test_db()
    opt = torch.optim.Adam(net.parameters(), lr=0.05)
    for _ in range(steps):
        opt.zero_grad()
        st = net(tr.state0, tr.objective, tr.constraint)
        loss = -(tr.problem.sinr(st.x, st.phi) * tr.problem.fscale).mean()
        loss.backward()
        opt.step()
    after = test_db()
    assert after > before + 0.3, (before, after)


def test_pluggable_parts_satisfy_the_typed_protocols():
    """The shipped objective / constraint / step-size objects implement the Protocols admm_layer expects."""
    import torch
    from isac_opt.paper_a.unfold.protocols import Constraint, FusedConstraint, Objective, StepParams
    from isac_opt.paper_a.unfold import AutogradObjective, CIConstraint, ConstantParams, SinrObjective
    obj = AutogradObjective(lambda x, phi: (x.abs() ** 2).sum(dim=(1, 2)) + (phi.abs() ** 2).sum(dim=1))
    assert isinstance(obj, Objective)
    assert isinstance(ConstantParams(), StepParams)
    for cls, proto in ((SinrObjective, Objective), (CIConstraint, Constraint)):
        missing = [m for m in ("prep", "value_grad" if proto is Objective else "g") if not hasattr(cls, m)]
        assert not missing, (cls, missing)
    assert hasattr(CIConstraint, "g_vjp") == issubclass(CIConstraint, FusedConstraint)
    # a constant step-size object really returns the shapes the Protocol documents
    p = ConstantParams(eta=0.3, tau=2.0)
    g = torch.zeros(2, 3, 4, dtype=torch.float64)
    assert p.dual("x", 0, 0, g, g).shape == (2, 3, 4) and float(p.dual("x", 0, 0, g, g)[0, 0, 0]) == 0.3
    assert float(p.step("x", 0, 0, 0, torch.ones(2, dtype=torch.float64), torch.ones(2))[1]) == 2.0
