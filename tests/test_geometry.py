"""Steering vectors, their derivatives (finite differences) and path-loss units [spec 0.3]."""
import numpy as np

from isac_opt.geometry import angle_from, path_loss, ula_steering, ula_steering_deriv


def test_steering_derivative_finite_difference():
    for th in (-1.0, 0.0, 0.3, 1.2):
        h = 1e-6
        fd = (ula_steering(8, th + h) - ula_steering(8, th - h)) / (2 * h)
        np.testing.assert_allclose(ula_steering_deriv(8, th), fd, rtol=0, atol=1e-8)


def test_steering_is_ula_phase_progression():
    a = ula_steering(5, np.pi / 6)           # sin = 1/2 -> phase step π/2
    np.testing.assert_allclose(a, np.exp(1j * np.pi / 2 * np.arange(5)), atol=1e-15)
    assert ula_steering(4, np.array([0.1, 0.2])).shape == (2, 4)


def test_path_loss_units():
    # C0 = -30 dB at d0 = 1 m: amplitude sqrt(1e-3); exponent 2 at 10 m -> 20 dB more loss
    assert np.isclose(path_loss(1.0, 2.0), np.sqrt(1e-3))
    assert np.isclose(20 * np.log10(path_loss(1.0, 2.0) / path_loss(10.0, 2.0)), 20.0)


def test_angle_from():
    # point straight ahead of a ULA along x (broadside +y) is at 0; along the axis at +90 deg
    assert np.isclose(angle_from([0, 0], [0, 10], [1, 0]), 0.0)
    assert np.isclose(angle_from([0, 0], [10, 0], [1, 0]), np.pi / 2)
    assert np.isclose(angle_from([0, 0], [10, 10], [1, 0]), np.pi / 4)
