"""DoA CRB in torch [spec A.8, V-8, V-1] and the PHR slack closed form [spec A.9 (45)]."""
from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from isac_opt.paper_a.channels import draw_channels
from isac_opt.paper_a.scenario import ScenarioA
from isac_opt.paper_a.crb import crb_doa
from isac_opt.paper_a.doa.crb_torch import DoaProblem, crb_torch
from isac_opt.paper_a.unfold import CIConstraint, phr_penalty


def _instances(scn, rng, n=3):
    chs = [draw_channels(scn, rng) for _ in range(n)]
    Xs = [scn.amp * np.exp(2j * np.pi * rng.uniform(size=(scn.M, scn.L))) for _ in chs]
    ph = [np.exp(2j * np.pi * rng.uniform(size=scn.N)) for _ in chs]
    return chs, Xs, ph


def _scenarios(small):
    return [small, small.replace(target_bin=1, ris_leg_model="reciprocal"),
            ScenarioA(N=16, L=6)]


@pytest.mark.parametrize("which", [0, 1, 2])
def test_crb_torch_matches_numpy_reference(small_scn, rng, which):
    """V-8: the structured torch CRB equals isac_opt.paper_a.crb.crb_doa (itself checked by finite-difference FIM)."""
    scn = _scenarios(small_scn)[which]
    chs, Xs, ph = _instances(scn, rng)
    ref = np.array([crb_doa(scn, c, X, p) for c, X, p in zip(chs, Xs, ph)])
    pr = DoaProblem.from_channels(scn, chs)
    got = crb_torch(pr, pr.det.u_from_numpy(Xs), pr.det.phi_from_numpy(ph)).numpy()
    np.testing.assert_allclose(got, ref, rtol=1e-10)
    # ridge: the same relative ridge as the numpy reference
    ref_r = np.array([crb_doa(scn, c, X, p, ridge=1e-3) for c, X, p in zip(chs, Xs, ph)])
    got_r = crb_torch(pr, pr.det.u_from_numpy(Xs), pr.det.phi_from_numpy(ph), ridge=1e-3).numpy()
    np.testing.assert_allclose(got_r, ref_r, rtol=1e-10)


def test_crb_dense_fim(small_scn, rng):
    """V-8 independent of isac_opt.paper_a.crb: dense C and the full 4×4 FIM with finite-difference ∂μ/∂θ."""
    from isac_opt.paper_a.channels import legs
    from isac_opt.paper_a.radar import echo
    from isac_opt.radar import vec
    scn = small_scn
    chs, Xs, ph = _instances(scn, rng, 1)
    ch, X, p = chs[0], Xs[0], ph[0]
    C = echo(scn, ch, X, p).covariance()

    def mu(th0, thr):
        s2 = scn.replace(theta0_rad=th0, theta_ris_rad=thr)
        from isac_opt.paper_a.channels import target_clutter_los
        los = target_clutter_los(s2)
        import dataclasses
        c2 = dataclasses.replace(ch, h_bt=los["h_bt"], h_rt=los["h_rt"])
        return vec(echo(s2, c2, X, p).s)

    h = 1e-6
    t0, tr = scn.theta0_rad, scn.theta_ris_rad
    u = mu(t0, tr)
    d0 = (mu(t0 + h, tr) - mu(t0 - h, tr)) / (2 * h)
    dR = (mu(t0, tr + h) - mu(t0, tr - h)) / (2 * h)
    Dm = np.stack([d0, dR, u, 1j * u], axis=1)                  # α0 = 1 (ξ0² = 1)
    F = 2 * np.real(Dm.conj().T @ np.linalg.solve(C, Dm))
    assert np.allclose(F, F.T, rtol=1e-8) and np.linalg.eigvalsh(F).min() > 0
    Fs = F[:2, :2] - F[:2, 2:] @ np.linalg.solve(F[2:, 2:], F[2:, :2])
    ref = np.trace(np.linalg.inv(Fs))
    pr = DoaProblem.from_channels(scn, [ch])
    got = crb_torch(pr, pr.det.u_from_numpy([X]), pr.det.phi_from_numpy([p])).item()
    assert abs(got / ref - 1) < 1e-6, (got, ref)


def test_crb_wirtinger_gradient(small_scn, rng):
    """V-1 for f2: central differences vs Re{Gᴴd} with G = torch autograd on the complex leaves."""
    scn = small_scn
    chs, Xs, ph = _instances(scn, rng, 2)
    pr = DoaProblem.from_channels(scn, chs)
    u = pr.det.u_from_numpy(Xs).requires_grad_(True)
    p = pr.det.phi_from_numpy(ph).requires_grad_(True)
    f = crb_torch(pr, u, p)
    Gu, Gp = torch.autograd.grad(f.sum(), [u, p])
    g = torch.Generator().manual_seed(3)
    for z, G, which in ((u, Gu, 0), (p, Gp, 1)):
        d = torch.complex(torch.randn(z.shape, generator=g, dtype=torch.float64),
                          torch.randn(z.shape, generator=g, dtype=torch.float64))
        eps = 1e-6 * z.detach().abs().pow(2).sum().sqrt().item()
        with torch.no_grad():
            zp, zm = z + eps * d, z - eps * d
            fp = crb_torch(pr, zp, p) if which == 0 else crb_torch(pr, u, zp)
            fm = crb_torch(pr, zm, p) if which == 0 else crb_torch(pr, u, zm)
        fd = (fp - fm) / (2 * eps)
        an = (G.conj() * d).real.reshape(len(chs), -1).sum(1)
        np.testing.assert_allclose(fd.numpy(), an.numpy(), rtol=1e-5)


def test_phr_lagrangian_gradient(small_scn, rng):
    """V-1 for L2 (A.9 (46)): CRB + ρ/2‖x − v + μ/ρ‖² + Σ(η/2)max(g + β/η, 0)², gradient via the PHR weights."""
    scn = small_scn
    chs, Xs, ph = _instances(scn, rng, 2)
    pr = DoaProblem.from_channels(scn, chs)
    cons = CIConstraint(pr.det)
    u0 = pr.det.u_from_numpy(Xs)
    p = pr.det.phi_from_numpy(ph)
    g0 = cons.g(u0, p)
    beta = torch.rand(g0.shape, dtype=torch.float64, generator=torch.Generator().manual_seed(1)) * 0.5
    eta = torch.full_like(g0, 0.3)
    v = u0 * torch.exp(1j * torch.tensor(0.2, dtype=torch.float64))
    mu = 0.1 * u0
    rho = 0.7

    def L2(u):
        gz = cons.g(u, p)
        pv, _ = phr_penalty(gz, beta, eta)
        return crb_torch(pr, u, p) + 0.5 * rho * ((u - v + mu / rho).abs() ** 2).sum(dim=(1, 2)) + pv

    u = u0.clone().requires_grad_(True)
    Gauto = torch.autograd.grad(L2(u).sum(), u)[0]
    # closed-form pieces of A.7: PHR term gradient = max(ηg + β, 0)∇g, augmented term ρ(x − v) + μ
    uu = u0.clone().requires_grad_(True)
    Gf = torch.autograd.grad(crb_torch(pr, uu, p).sum(), uu)[0]
    _, W = phr_penalty(g0, beta, eta)
    Gc = Gf + rho * (u0 - v) + mu + cons.vjp(u0, p, W, ("x",))[0]
    np.testing.assert_allclose(Gc.numpy(), Gauto.numpy(), rtol=1e-9, atol=1e-12 * Gauto.abs().max().item())
    d = torch.complex(torch.randn(u0.shape, dtype=torch.float64), torch.randn(u0.shape, dtype=torch.float64))
    eps = 1e-7
    with torch.no_grad():
        fd = (L2(u0 + eps * d) - L2(u0 - eps * d)) / (2 * eps)
    an = (Gc.conj() * d).real.sum(dim=(1, 2))
    np.testing.assert_allclose(fd.numpy(), an.numpy(), rtol=1e-5)


def test_phr_slack_closed_form_brute_force():
    """A.9 (45): min_{p≥0} β(g+p) + (η/2)(g+p)² is attained at p* = max(−g − β/η, 0), and its value is the
    PHR term (η/2)max(g + β/η, 0)² − β²/(2η)."""
    rng = np.random.default_rng(7)
    grid = np.linspace(0.0, 20.0, 200001)
    for _ in range(30):
        g, beta, eta = rng.normal() * 3, abs(rng.normal()), rng.uniform(0.1, 3.0)
        vals = beta * (g + grid) + 0.5 * eta * (g + grid) ** 2
        i = int(np.argmin(vals))
        p_star = max(-g - beta / eta, 0.0)
        assert abs(grid[i] - p_star) <= 2e-4, (g, beta, eta, grid[i], p_star)
        phr, _ = phr_penalty(torch.tensor([[g]]), torch.tensor([[beta]]), torch.tensor([[eta]]))
        assert abs(vals[i] - (phr.item() - beta ** 2 / (2 * eta))) < 1e-6


def test_crb_non_increasing_in_power(small_scn, rng):
    """V-8: CRB(c·x) is non-increasing in c for a fixed phase pattern."""
    scn = small_scn
    chs, Xs, ph = _instances(scn, rng, 1)
    pr = DoaProblem.from_channels(scn, chs)
    u = pr.det.u_from_numpy(Xs)
    p = pr.det.phi_from_numpy(ph)
    vals = [crb_torch(pr, c * u, p).item() for c in (0.5, 1.0, 2.0, 4.0)]
    assert all(b <= a * (1 + 1e-12) for a, b in zip(vals, vals[1:])), vals


@pytest.mark.parametrize("which", [0, 1, 2])
def test_closed_form_gradient_equals_autograd(small_scn, rng, which):
    """The hand-written reverse mode (crb_value_grad) equals torch autograd of crb_torch, with and without ridge."""
    from isac_opt.paper_a.doa.crb_torch import crb_value_grad
    scn = _scenarios(small_scn)[which]
    chs, Xs, ph = _instances(scn, rng)
    pr = DoaProblem.from_channels(scn, chs)
    for ridge in (0.0, 1e-3):
        u = pr.det.u_from_numpy(Xs).requires_grad_(True)
        p = pr.det.phi_from_numpy(ph).requires_grad_(True)
        c = crb_torch(pr, u, p, ridge)
        gu, gp = torch.autograd.grad(c.sum(), [u, p])
        c2, gu2, gp2 = crb_value_grad(pr, u.detach(), p.detach(), ("x", "phi"), ridge)
        np.testing.assert_allclose(c2.numpy(), c.detach().numpy(), rtol=1e-12)
        from isac_opt.paper_a.doa.crb_torch import crb_prep
        c3, gu3, _ = crb_value_grad(pr, u.detach(), p.detach(), ("x",), ridge, pre=crb_prep(pr, p.detach()))
        np.testing.assert_allclose(c3.numpy(), c2.numpy(), rtol=1e-14)
        np.testing.assert_allclose(gu3.numpy(), gu2.numpy(), rtol=1e-13, atol=1e-15 * gu2.abs().max().item())
        np.testing.assert_allclose(gu2.numpy(), gu.numpy(), rtol=1e-9, atol=1e-12 * gu.abs().max().item())
        np.testing.assert_allclose(gp2.numpy(), gp.numpy(), rtol=1e-9, atol=1e-12 * gp.abs().max().item())


def test_closed_form_gradient_is_differentiable(small_scn, rng):
    """Training differentiates through the gradient: second derivatives of the closed form = autograd's."""
    from isac_opt.paper_a.doa.crb_torch import crb_value_grad
    scn = small_scn
    chs, Xs, ph = _instances(scn, rng, 2)
    pr = DoaProblem.from_channels(scn, chs)
    d = torch.complex(torch.randn(scn.M, scn.L, dtype=torch.float64), torch.randn(scn.M, scn.L, dtype=torch.float64))
    out = []
    for mode in ("closed", "autograd"):
        u = pr.det.u_from_numpy(Xs).requires_grad_(True)
        p = pr.det.phi_from_numpy(ph)
        if mode == "closed":
            g = crb_value_grad(pr, u, p, ("x",))[1]
        else:
            g = torch.autograd.grad(crb_torch(pr, u, p).sum(), u, create_graph=True)[0]
        s = (g.conj() * d).real.sum()
        out.append(torch.autograd.grad(s, u)[0])
    np.testing.assert_allclose(out[0].numpy(), out[1].numpy(), rtol=1e-8, atol=1e-10 * out[1].abs().max().item())
