"""DoA CRB [spec A.8] against the full 4×4 Fisher matrix with finite-difference ∂μ/∂θ (spec V-8)."""
import dataclasses
import math

import numpy as np
import pytest

from isac_opt.paper_a import radar
from isac_opt.paper_a.channels import draw_channels, target_clutter_los
from isac_opt.paper_a.crb import crb_doa


def mu_of(scn, ch, X, phi, th0, thr, alpha):
    """Mean echo μ(θ0, θ_RIS, α) with the target LoS vectors rebuilt at the given angles."""
    los = target_clutter_los(scn.replace(theta0_rad=th0, theta_ris_rad=thr))
    ch2 = dataclasses.replace(ch, h_bt=los["h_bt"], h_rt=los["h_rt"])
    return alpha * radar.vec(radar.echo(scn, ch2, X, phi).s)


@pytest.mark.parametrize("model", ["literal", "reciprocal"])
def test_V08_crb_equals_finite_difference_fim(small_scn, rng, model):
    scn = small_scn.replace(ris_leg_model=model, theta0_rad=0.2, theta_ris_rad=-0.3)
    ch = draw_channels(scn, rng)
    phi = np.exp(2j * np.pi * rng.uniform(size=scn.N))
    X = scn.amp * np.exp(2j * np.pi * rng.uniform(size=(scn.M, scn.L)))
    alpha = math.sqrt(scn.xi0_sq) * np.exp(0.7j)
    e = radar.echo(scn, ch, X, phi)
    C = e.covariance()
    h = 1e-6
    th = (scn.theta0_rad, scn.theta_ris_rad)
    d0 = (mu_of(scn, ch, X, phi, th[0] + h, th[1], alpha) - mu_of(scn, ch, X, phi, th[0] - h, th[1], alpha)) / (2 * h)
    dR = (mu_of(scn, ch, X, phi, th[0], th[1] + h, alpha) - mu_of(scn, ch, X, phi, th[0], th[1] - h, alpha)) / (2 * h)
    u = radar.vec(e.s)
    Dm = np.stack([d0, dR, u, 1j * u], axis=1)
    FIM = 2 * np.real(Dm.conj().T @ np.linalg.solve(C, Dm))
    assert np.allclose(FIM, FIM.T, rtol=1e-10)
    assert np.all(np.linalg.eigvalsh(FIM) > 0)
    np.testing.assert_allclose(FIM[2:, 2:], 2 * np.real(np.vdot(u, np.linalg.solve(C, u))) * np.eye(2), rtol=1e-9, atol=1e-12 * FIM[2, 2])
    crb_fd = np.trace(np.linalg.inv(FIM)[:2, :2])
    assert crb_doa(scn, ch, X, phi) == pytest.approx(crb_fd, rel=1e-6)


def test_V08_crb_monotone_in_power_and_phase_invariant(small_scn, rng):
    scn = small_scn
    ch = draw_channels(scn, rng)
    phi = np.exp(2j * np.pi * rng.uniform(size=scn.N))
    X = scn.amp * np.exp(2j * np.pi * rng.uniform(size=(scn.M, scn.L)))
    vals = [crb_doa(scn, ch, math.sqrt(c) * X, phi) for c in (0.2, 1.0, 5.0, 25.0)]
    assert all(b <= a * (1 + 1e-10) for a, b in zip(vals, vals[1:]))
    assert crb_doa(scn, ch, np.exp(0.9j) * X, phi) == pytest.approx(vals[1], rel=1e-9)


def test_crb_without_ris_is_infinite(small_scn, rng):
    ch = draw_channels(small_scn, rng).without_ris()
    X = small_scn.amp * np.ones((small_scn.M, small_scn.L))
    assert math.isinf(crb_doa(small_scn, ch, X, np.ones(small_scn.N)))
