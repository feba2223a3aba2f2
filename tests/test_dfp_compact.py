"""Compact low-rank DFP (isac_opt.paper_a.unfold.dfp) against the dense n × n update [spec A.6 (28), (29a), V-12]."""
from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from isac_opt.paper_a.unfold import AdmmConfig, ConstantParams, dfp_update, solve
from isac_opt.paper_a.unfold.dfp import CompactDFP
from isac_opt.paper_a.unfold.step import _cs, _rs, project_modulus

torch.set_num_threads(1)


def _pairs(rng, B, n, steps):
    """(δ, y) pairs from random SPD quadratics (yᵀδ > 0), one quadratic per sample."""
    Hq = []
    for _ in range(B):
        A = rng.standard_normal((n, n))
        Hq.append(A @ A.T / n + 0.5 * np.eye(n))
    Hq = torch.as_tensor(np.stack(Hq))
    out = []
    for _ in range(steps):
        d = torch.as_tensor(rng.standard_normal((B, n)))
        y = (Hq @ d[:, :, None])[:, :, 0] + 0.05 * torch.as_tensor(rng.standard_normal((B, n)))
        out.append((d, y))
    return out


@pytest.mark.parametrize("variant", ["paper", "standard"])
def test_compact_equals_dense_sequence_with_skips(variant):
    """R − 1 = 9 cautious updates on a batch of 4 (n = 12): the factor form equals the dense (29a)/standard
    update after every step — H v and the assembled matrix — including per-sample skips of rule (28)."""
    rng = np.random.default_rng(3)
    B, n = 4, 12
    H = torch.eye(n, dtype=torch.float64).expand(B, -1, -1).clone()
    C = CompactDFP(B, n, 1.0, variant, dtype=torch.float64)
    n_upd = torch.zeros(B, dtype=torch.long)
    for k, (d, y) in enumerate(_pairs(rng, B, n, 9)):
        # threshold ‖ḡ‖: small for most samples, huge for sample 1 at odd steps (forced skips)
        gn = torch.full((B,), 1e-3, dtype=torch.float64)
        if k % 2:
            gn[1] = 1e6
        yd, dd = (y * d).sum(1), (d * d).sum(1)
        expect_ok = yd / dd > gn
        H = dfp_update(H, d, y, gn, variant)
        ok = C.update(d, y, gn)
        assert torch.equal(ok, expect_ok)
        n_upd += expect_ok.long()
        v = torch.as_tensor(rng.standard_normal((B, n)))
        np.testing.assert_allclose(C.apply(v).numpy(), (H @ v[:, :, None])[:, :, 0].numpy(), rtol=1e-10, atol=1e-11)
        np.testing.assert_allclose(C.dense().numpy(), H.numpy(), rtol=1e-10, atol=1e-11)
    assert C.rank == 18 and torch.equal(C.updates, n_upd)
    assert int(n_upd[1]) < 9 and int(n_upd[0]) > 0            # the forced skips happened, others updated
    for Hb in C.dense().numpy():                               # V-12: stays SPD
        assert np.linalg.eigvalsh((Hb + Hb.T) / 2).min() > 0


def test_compact_skip_leaves_H_unchanged_and_scaled_secant():
    """(28) fails → H v unchanged; (28) holds → scaled secant H⁺y = (yᵀHy/yᵀδ)δ (paper), H⁺y = δ (standard)."""
    rng = np.random.default_rng(5)
    B, n = 2, 10
    (d0, y0), (d, y) = _pairs(rng, B, n, 2)
    for variant in ("paper", "standard"):
        C = CompactDFP(B, n, torch.tensor([1.0, 0.5], dtype=torch.float64), variant)
        C.update(d0, y0, torch.zeros(B, dtype=torch.float64))
        v = torch.as_tensor(rng.standard_normal((B, n)))
        Hv = C.apply(v)
        ok = C.update(d, y, torch.full((B,), 1e9, dtype=torch.float64))     # skipped
        assert not bool(ok.any())
        assert torch.equal(C.apply(v), Hv)
        Hy = C.apply(y)
        ok = C.update(d, y, torch.zeros(B, dtype=torch.float64))
        assert bool(ok.all())
        yHy, yd = (y * Hy).sum(1), (y * d).sum(1)
        expect = (yHy / yd)[:, None] * d if variant == "paper" else d
        np.testing.assert_allclose(C.apply(y).numpy(), expect.numpy(), rtol=1e-9, atol=1e-12)


def _dense_qn(z, lagr, step_fn, R, variant, amp):
    """Reference: the R projected quasi-Newton steps of spec A.6 with the dense n × n matrix (the signature of
    ``step.quasi_newton_block``; ``step_fn(r, |g|, L) -> τ (B,)``)."""
    B = z.shape[0]
    Lv, G = lagr(z)
    g, zr = _rs(G), _rs(z)
    H = torch.eye(g.shape[1], dtype=g.dtype).expand(B, -1, -1)
    for r in range(R):
        gn = g.norm(dim=1)
        d = (H @ g[:, :, None])[:, :, 0]
        znew = project_modulus(_cs(zr - step_fn(r, gn, Lv)[:, None] * d, z.shape), amp, z)
        if r == R - 1:
            return znew
        Lv1, G1 = lagr(znew)
        g1, zr1 = _rs(G1), _rs(znew)
        H = dfp_update(H, zr1 - zr, g1 - g, gn, variant)
        z, zr, g, Lv = znew, zr1, g1, Lv1
    return z


def test_block_with_compact_dfp_equals_dense_reference():
    """quasi_newton_block (compact) gives the same iterates as the dense-matrix reference on a smooth
    non-quadratic function on the CM set (batch 3, n = 2·6)."""
    from isac_opt.paper_a.unfold.step import quasi_newton_block
    rng = np.random.default_rng(7)
    Q = torch.as_tensor(rng.standard_normal((3, 6, 6)) + 1j * rng.standard_normal((3, 6, 6)))
    Q = Q @ Q.conj().transpose(1, 2) / 6 + torch.eye(6)

    def lagr(z):
        zq = (Q @ z[:, :, None])[:, :, 0]
        q = (z.conj() * zq).real.sum(1)
        f = -torch.log(q) + 0.1 * (z.real ** 4).sum(1)
        G = -2 * zq / q[:, None] + 0.1 * 4 * z.real ** 3          # 2∂f/∂z*
        return f, G

    z0 = project_modulus(torch.as_tensor(rng.standard_normal((3, 6)) + 1j * rng.standard_normal((3, 6))), 1.0)
    taus = [0.05 + 0.01 * r for r in range(8)]
    for variant in ("paper", "standard"):
        ref = _dense_qn(z0, lagr, lambda r, gn, Lv: taus[r] * torch.ones_like(gn), 8, variant, 1.0)
        got = quasi_newton_block(z0, lagr, lambda r, gn, lv: torch.full_like(gn, taus[r]), 8, variant, 1.0)
        assert float((ref - z0).abs().max()) > 1e-3
        torch.testing.assert_close(got, ref, rtol=0, atol=1e-12)


def test_float32_and_device_follow_inputs():
    """dtype/device follow the inputs (float32 here; CUDA when present)."""
    devs = ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])
    rng = np.random.default_rng(9)
    pairs = _pairs(rng, 2, 8, 3)
    for dev in devs:
        C = CompactDFP(2, 8, 1.0, "paper", dtype=torch.float32, device=dev)
        H = torch.eye(8, dtype=torch.float64).expand(2, -1, -1)
        for d, y in pairs:
            gn = torch.full((2,), 1e-3, dtype=torch.float64)
            C.update(d.float().to(dev), y.float().to(dev), gn.float().to(dev))
            H = dfp_update(H, d, y, gn)
        v = torch.ones(2, 8, dtype=torch.float32, device=dev)
        out = C.apply(v)
        assert out.dtype == torch.float32 and out.device.type == dev
        np.testing.assert_allclose(out.cpu().double().numpy(), (H @ v.double().cpu()[:, :, None])[:, :, 0].numpy(),
                                   rtol=1e-4, atol=1e-4)


def test_paper_detection_solver_uses_compact_form_and_matches_dense():
    """The classical ADMM-ALM-DFP solver (paper variant) on a small detection problem equals a run in
    which the DFP matrix is dense (monkeypatched reference block)."""
    import isac_opt.paper_a.unfold.step as step
    from isac_opt.paper_a.channels import draw_channels, realisation_rng
    from isac_opt.paper_a.detect.core import make_batch, start_point
    from isac_opt.paper_a.scenario import ScenarioA
    scn = ScenarioA(M=3, N=5, K=2, L=4, Q=2, noise_comm_w=(1e-11, 1e-11), gamma_db=(10.0, 10.0),
                    xi_q_sq=(1.0, 0.5), clutter_bins=(1, 2), clutter_angles_rad=(-math.pi / 3, math.pi / 4))
    starts = [start_point(scn, draw_channels(scn, realisation_rng(0, 2 * i)), "ris", realisation_rng(0, 2 * i + 1))
              for i in range(2)]
    b = make_batch(scn, starts, "ris")
    cfg = AdmmConfig(T=2, J=2, R=4, dfp_variant="paper")
    params = ConstantParams(0.1, 0.1, 0.3, 0.2)
    st, _ = solve(b.state0, b.objective, b.constraint, cfg, params)
    orig = step.quasi_newton_block

    step.quasi_newton_block = _dense_qn
    try:
        st_d, _ = solve(b.state0, b.objective, b.constraint, cfg, params)
    finally:
        step.quasi_newton_block = orig
    torch.testing.assert_close(st.x, st_d.x, rtol=0, atol=1e-10)
    torch.testing.assert_close(st.phi, st_d.phi, rtol=0, atol=1e-10)
