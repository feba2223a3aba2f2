"""Radar statistics over per-frame varying waveforms (isac_opt.link.radar_stats, issue 13).

Checked against independent computations: the detector output simulated from its definition (complex
Gaussian target RCS and interference at the filter output, threshold δ = −ε0 ln Pfa on |r_o|², NOT the
exponential law the module derives), scipy's own binomial intervals, and coverage over repetitions.
"""
from __future__ import annotations

import numpy as np
import pytest

from isac_opt.errors import IsacError
from isac_opt.link import radar_stats as rs


def _cn(rng, shape, var):
    return np.sqrt(np.asarray(var) / 2) * (rng.standard_normal(shape) + 1j * rng.standard_normal(shape))


def _frames(rng, F, sinr_db_mean=10.0, spread_db=3.0):
    """Per-frame SINRs (linear) and output powers: ε0 = ξ0²/SINR with ξ0² = 1 (what w_fᴴC_f w_f is)."""
    sinr = 10 ** ((sinr_db_mean + spread_db * rng.standard_normal(F)) / 10)
    return sinr, 1.0 / sinr


def _detector_output(rng, sinr, eps0, present):
    """r_o = α wᴴs + wᴴn with wᴴs = 1, α ~ CN(0, ξ0² = 1) on target frames, wᴴn ~ CN(0, ε0)."""
    F = sinr.size
    return _cn(rng, F, 1.0) * present + _cn(rng, F, eps0)


def test_pd_of_varying_sinr_matches_monte_carlo_of_the_detector():
    """Pd = mean_f Pfa^{1/(1+SINR_f)} vs counting |r_o|² > δ_f = −ε0,f ln Pfa on simulated outputs."""
    rng = np.random.default_rng(1)
    F = 400_000
    sinr, eps0 = _frames(rng, F)
    r = _detector_output(rng, sinr, eps0, np.ones(F, bool))
    r0 = _detector_output(rng, sinr, eps0, np.zeros(F, bool))
    for pfa in (1e-1, 1e-2, 1e-3):
        delta = -eps0 * np.log(pfa)
        pd_mc = np.mean(np.abs(r) ** 2 > delta)
        pfa_mc = np.mean(np.abs(r0) ** 2 > delta)
        pd = rs.pd_varying(pfa, sinr)[0]
        assert abs(pd_mc - pd) <= 4 * np.sqrt(pd * (1 - pd) / F), (pfa, pd_mc, pd)
        assert abs(pfa_mc - pfa) <= 4 * np.sqrt(pfa * (1 - pfa) / F), (pfa, pfa_mc)
        # a fixed waveform is the special case of one SINR (spec V-9: SINR 10, Pfa 1e-2 -> 0.658)
        assert rs.pd_varying(pfa, [10.0])[0] == pytest.approx(rs.pd_fixed(pfa, 10.0))
    assert rs.pd_fixed(1e-2, 10.0) == pytest.approx(0.658, abs=1e-3)
    # varying SINR is not the same as the fixed formula at the mean SINR (the reason for the mean over frames)
    assert abs(rs.pd_varying(1e-3, sinr)[0] - rs.pd_fixed(1e-3, sinr.mean())) > 0.01


def test_binomial_intervals_match_scipy():
    from scipy.stats import binomtest
    for k, n in ((0, 50), (3, 50), (25, 50), (50, 50), (7, 2000)):
        lo, hi = rs.clopper_pearson(k, n, 0.95)
        ref = binomtest(k, n).proportion_ci(0.95, method="exact")
        assert lo == pytest.approx(ref.low, abs=1e-10) and hi == pytest.approx(ref.high, abs=1e-10)
        lo, hi = rs.wilson(k, n, 0.95)
        ref = binomtest(k, n).proportion_ci(0.95, method="wilson")
        assert lo == pytest.approx(ref.low, abs=1e-10) and hi == pytest.approx(ref.high, abs=1e-10)


def test_sinr_estimate_is_unbiased_and_its_interval_covers():
    """Measured mean SINR = mean z(H1) − mean z(H0) from detector outputs with known varying SINRs: the
    95 % interval covers the mean predicted SINR in ≈ 95 % of 400 independent runs."""
    rng = np.random.default_rng(2)
    cover, diffs = 0, []
    reps, F = 400, 2000
    for _ in range(reps):
        sinr, eps0 = _frames(rng, F, 15.0, 2.0)
        present = np.arange(F) % 2 == 0
        z = np.abs(_detector_output(rng, sinr, eps0, present)) ** 2 / eps0
        est = rs.sinr_estimate(z, present, sinr)
        cover += est["predicted_in_ci"]
        diffs.append(est["measured"] / est["predicted"] - 1)
    assert 0.92 <= cover / reps <= 0.98, cover / reps
    assert abs(np.mean(diffs)) < 4 * np.std(diffs) / np.sqrt(reps)


def test_roc_check_accepts_the_model_and_rejects_a_wrong_one():
    rng = np.random.default_rng(3)
    pfa = np.array([1e-1, 1e-2, 1e-3])
    reject_true, reject_wrong, reps = 0, 0, 100
    for _ in range(reps):
        F = 4000
        sinr, eps0 = _frames(rng, F, 8.0, 3.0)
        present = rng.random(F) < 0.5
        z = np.abs(_detector_output(rng, sinr, eps0, present)) ** 2 / eps0
        r = rs.roc_check(z, present, sinr, pfa, conf=0.95)
        reject_true += not r["all_in_ci"]
        # a model that over-predicts SINR by 3 dB must not be "on the curve"
        reject_wrong += not rs.roc_check(z, present, 2 * sinr, pfa, conf=0.95)["all_in_ci"]
        assert np.all(r["pfa_lo"] <= r["pfa_emp"]) and np.all(r["pd_emp"] <= r["pd_hi"])
    assert reject_true <= 12, reject_true                  # level 0.05 (Bonferroni: at most), 100 runs
    assert reject_wrong >= 95, reject_wrong


def test_bad_input():
    with pytest.raises(IsacError, match="pfa"):
        rs.roc_check(np.ones(4), np.array([1, 0, 1, 0], bool), np.ones(4), [0.0])
    with pytest.raises(IsacError, match="frames"):
        rs.sinr_estimate(np.ones(3), np.array([1, 1, 1], bool), np.ones(3))
    with pytest.raises(IsacError, match="method"):
        rs.roc_check(np.ones(4), np.array([1, 0, 1, 0], bool), np.ones(4), [0.1], method="x")
