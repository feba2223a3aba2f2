"""Pure-numpy bench core (isac_opt.bench): framing, channel emulation, STAP statistic, SER, report.

Statistical asserts use exact or binomial confidence intervals with their level in the message.
"""
from __future__ import annotations

import math

import numpy as np
import pytest

from isac_opt.bench import channel as bch
from isac_opt.bench.demod import count_errors, expected_ser, gray, psk_index
from isac_opt.bench.framing import (FrameAssembler, auto_gap, frame_samples, symbol_indices,
                                    symbols_from_indices)
from isac_opt.bench.pipeline import simulate
from isac_opt.bench.stap import estimate_sinr, filter_stats, roc_check
from isac_opt.ci import psk_constellation
from isac_opt.paper_a.radar import echo


@pytest.fixture(scope="module")
def design():
    from isac_opt.paper_a import starting  # noqa: F401  (registers "init" without loading other extensions)
    from isac_opt.paper_a.scenario import ScenarioA
    from isac_opt.registry import get_method
    return get_method("init", "paper-a").run(ScenarioA(), 0)


def test_frame_layout_and_symbols(rng):
    X = rng.standard_normal((3, 5)) + 1j * rng.standard_normal((3, 5))
    f = frame_samples(X, 2, scale=0.5)
    assert f.shape == (7, 3) and f.dtype == np.complex64
    np.testing.assert_allclose(f[:5].T, 0.5 * X, rtol=1e-6)
    assert not np.any(f[5:])
    for order in (2, 4, 8):
        idx = rng.integers(0, order, size=(3, 6))
        S = psk_constellation(order)[idx]
        assert np.array_equal(symbol_indices(S, order), idx)
        np.testing.assert_allclose(symbols_from_indices(idx, order), S, atol=1e-12)


def _stream(n_frames, F, C, rng):
    data = rng.standard_normal((n_frames * F + 1, C)).astype(np.complex64)
    offs = np.arange(n_frames + 1) * F
    vals = np.r_[np.arange(n_frames), -1]
    return data, offs, vals


@pytest.mark.parametrize("chunk", [1, 7, 64, 10_000])
def test_assembler_recovers_frames_any_chunking(rng, chunk):
    F, C = 11, 2
    data, offs, vals = _stream(40, F, C, rng)
    asm = FrameAssembler(F, C)
    got, idx = [], []
    for s in range(0, len(data), chunk):
        e = min(s + chunk, len(data))
        sel = (offs >= s) & (offs < e)
        fr, v, _ = asm.push(data[s:e], s, offs[sel], vals[sel])
        got.append(fr); idx.append(v)
    got, idx = np.concatenate(got), np.concatenate(idx)
    assert np.array_equal(idx, np.arange(40))
    np.testing.assert_array_equal(got, data[:40 * F].reshape(40, F, C))
    assert asm.dropped == 0


@pytest.mark.parametrize("kind", [-1, +1])
@pytest.mark.parametrize("where", [0, 5, 10])
def test_assembler_slip_costs_one_frame(rng, kind, where):
    F, C = 11, 1
    data, offs, vals = _stream(30, F, C, rng)
    at = 12 * F + where                                   # inside frame 12
    if kind < 0:
        data = np.delete(data, at, 0); offs = offs - (offs > at)
    else:
        data = np.insert(data, at, 0, 0); offs = offs + (offs >= at)
    asm = FrameAssembler(F, C)
    fr, v, starts = asm.push(data, 0, offs, vals)
    lost = sorted(set(range(30)) - set(v.tolist()))
    assert len(lost) <= 1 and set(lost) <= {11, 12}, lost
    for f, i, s in zip(fr, v, starts):                    # every accepted frame is intact
        np.testing.assert_array_equal(f, data[s:s + F])


def test_channel_matches_spec_model(design):
    """Noise-free part of the emulator output equals spec A.4's H̃0x + Σ ξ_q H̃_q x (fixed RCS, target on)
    computed by isac_opt.radar.echo; the residual is unit-variance noise."""
    scn, ch = design.scenario, design.channels
    rng = np.random.default_rng(5)
    emu = bch.ChannelEmulator(scn, ch, design.phi, rng, target_mode="on", rcs="fixed")
    gap = auto_gap(scn)
    nf = 400
    x = np.tile(frame_samples(design.X, gap), (nf, 1))
    F = scn.L + gap
    users, radar, present = emu.process(x, np.arange(nf) * F, np.arange(nf))
    assert present.all()
    e = echo(scn, ch, design.X, design.phi)
    clean = (math.sqrt(scn.xi0_sq) * e.s + np.einsum("q,qml->ml", np.sqrt(scn.xi_q_sq), e.c)) \
        / math.sqrt(scn.noise_radar_w)                   # (M, L)
    R = radar.reshape(nf, F, scn.M)[:, :scn.L, :]
    res = R - clean.T[None]
    p = np.mean(np.abs(res) ** 2)
    sd = 1 / math.sqrt(res.size)                         # |CN(0,1)|² has unit std
    assert abs(p - 1) < 5 * sd, f"residual power {p} vs 1 (5σ = {5 * sd:.3g})"
    # fixed RCS: the frame average converges to the model; its error power is exactly 1/nf
    err = nf * np.mean(np.abs(R.mean(axis=0) - clean.T) ** 2)
    assert abs(err - 1) < 5 / math.sqrt(clean.size), f"frame-mean error {err} (x nf) vs 1"
    assert np.mean(np.abs(clean) ** 2) > 20 / nf         # the check resolves the echo
    # the guard samples hold only the echo tails of bins ≥ 1 plus noise; no leakage into the next frame
    from isac_opt.paper_a.channels import effective_user_channels
    Z = (effective_user_channels(ch, design.phi) @ design.X) / np.sqrt(np.asarray(scn.noise_comm_w))[:, None]
    U = users.reshape(nf, F, scn.K)[:, :scn.L, :]
    pu = np.mean(np.abs(U - Z.T[None]) ** 2)
    assert abs(pu - 1) < 5 / math.sqrt(U.size)


def test_channel_impairments_and_quantisation(design, rng):
    scn = design.scenario
    g = np.exp(1j * rng.uniform(0, 2 * np.pi, scn.M))
    imp = bch.Impairments(rx_gain=g, rx_delay=np.arange(scn.M) % 2, ris_phase_bits=1)
    emu = bch.ChannelEmulator(scn, design.channels, design.phi, np.random.default_rng(1), impairments=imp)
    assert set(np.round(np.angle(emu.phi) / np.pi, 9) % 2) <= {0.0, 1.0}
    ref = bch.ChannelEmulator(scn, design.channels, design.phi, np.random.default_rng(1),
                              impairments=bch.Impairments(ris_phase_bits=1))
    x = np.tile(frame_samples(design.X, 2), (20, 1))
    _, r_imp, _ = emu.process(x, [0], [0])
    _, r_ref, _ = ref.process(x, [0], [0])
    for m in range(scn.M):
        d = m % 2
        np.testing.assert_allclose(r_imp[d:, m], g[m] * r_ref[:len(x) - d, m], rtol=1e-9, atol=1e-9)
    with pytest.raises(ValueError, match="rx_delay"):
        bch.Impairments(rx_delay=[-1] * scn.M).check(scn.M)


def test_gray_and_error_counting(rng):
    for order in (4, 8):
        g = gray(np.arange(order))
        nb = [bin(int(a ^ b)).count("1") for a, b in zip(g, np.roll(g, 1))]
        assert nb == [1] * order                             # adjacent points differ in one bit
    S = psk_constellation(4)[rng.integers(0, 4, (2, 5))]
    Y = np.repeat(S.T[None], 3, axis=0).copy()
    Y[1, 2, 0] *= 1j                                          # rotate by 90°: one symbol, one bit wrong
    c = count_errors(Y, symbol_indices(S, 4), 4)
    assert c["sym_err"].tolist() == [1, 0] and c["bit_err"].tolist() == [1, 0]
    assert np.array_equal(psk_index(S, 4), symbol_indices(S, 4))


def test_sinr_ser_roc_measured_match_model(design):
    """V-9 + V-7 through the whole numpy chain: measured SINR, SER and ROC agree with the analytic values."""
    off = 45.0
    det, rx = simulate(design, 1600, np.random.default_rng(7), user_noise_offset_db=off)
    r = det.results()
    t0, t1 = r["stat"][r["target"] == 0], r["stat"][r["target"] == 1]
    assert t0.size == t1.size == 800
    fs = filter_stats(design)
    est = estimate_sinr(t0, t1, conf=0.999)
    assert est["lo_db"] <= fs["sinr_db"] <= est["hi_db"], (est, fs["sinr_db"])
    assert abs(t0.mean() - 1) < 4 / math.sqrt(t0.size), "H0 statistic must be Exp(1) after /ε0"
    for p in roc_check(t0, t1, fs["sinr"]):
        assert p["pfa_ok"] and p["pd_ok"], p
    tot = rx.totals()
    ser_a = expected_ser(design, None, off)
    for k in range(design.scenario.K):
        n = tot["n_sym"][k]
        sd = math.sqrt(ser_a[k] * (1 - ser_a[k]) / n)
        assert abs(tot["ser"][k] - ser_a[k]) < 4 * sd + 1e-12, (k, tot["ser"][k], ser_a[k], sd)
    assert ser_a.max() > 1e-3                                  # the check is not vacuous


def test_random_ris_state_lowers_sinr_as_predicted(design):
    phi_r = np.exp(2j * np.pi * np.random.default_rng(3).uniform(size=design.scenario.N))
    pred = filter_stats(design, phi_r)
    assert pred["sinr_db"] < filter_stats(design)["sinr_db"]
    det, _ = simulate(design, 1600, np.random.default_rng(8), phi=phi_r)
    r = det.results()
    est = estimate_sinr(r["stat"][r["target"] == 0], r["stat"][r["target"] == 1], conf=0.999)
    assert est["lo_db"] <= pred["sinr_db"] <= est["hi_db"], (est, pred["sinr_db"])


@pytest.mark.parametrize("kind", [-1, +1])
def test_pipeline_slip_costs_at_most_one_frame(design, kind):
    scn = design.scenario
    F = scn.L + auto_gap(scn)
    det, rx = simulate(design, 60, np.random.default_rng(2), slip=(20 * F + 7, kind))
    assert det.results()["frame"].size >= 59 and rx.frames >= 59


def test_report_builds(design):
    from isac_opt.bench.report import build_report, format_text
    det, rx = simulate(design, 200, np.random.default_rng(4))
    rep = build_report(design, det.results(), rx)
    for k in ("sinr_designed_db", "sinr_measured_db", "ser_analytic", "ser_measured", "pfa", "pd_measured", "frames"):
        assert k in rep
    assert rep["frames"] == 200 and abs(rep["ci_margin_measured_min"] - rep["ci_margin_designed_min"]) < 1.0
    assert "MEASURED" in format_text(rep)


@pytest.mark.parametrize("window", [0, 7])
def test_running_sinr_estimate_matches_direct_computation(window, rng):
    from isac_opt.bench.framing import DesignTrack
    from isac_opt.bench.stap import DetectorCore
    stat = rng.exponential(size=50) * np.where(np.arange(50) % 2 == 0, 11.0, 1.0)
    tgt = (np.arange(50) % 2 == 0).astype(np.int8)
    core = DetectorCore(1e-3, 2, DesignTrack())
    got = np.concatenate([core.running_sinr_db(stat[:13], tgt[:13], window),
                          core.running_sinr_db(stat[13:], tgt[13:], window)])   # state carries over
    a = 1.0 if window == 0 else 1.0 / window
    acc = np.zeros(4)
    want = []
    for t, g in zip(stat, tgt):
        x = np.array([t * (g == 0), g == 0, t * (g == 1), g == 1], float)
        acc = acc + x if window == 0 else (1 - a) * acc + a * x
        v = (acc[2] / acc[3]) / (acc[0] / acc[1]) - 1 if acc[1] > 0 and acc[3] > 0 else np.nan
        want.append(10 * np.log10(v) if v > 0 else np.nan)
    np.testing.assert_allclose(got, want, rtol=1e-10, equal_nan=True)


def test_report_without_truth_tags(design):
    """Hardware loopbacks carry no 'target' tags: the report must still build (no ROC, NaN SINR)."""
    from isac_opt.bench.report import build_report, format_text
    det, rx = simulate(design, 50, np.random.default_rng(4))
    res = det.results()
    res["target"] = np.full_like(res["target"], -1)
    rep = build_report(design, res, rx)
    assert rep["roc"] == [] and rep["roc_consistent"] is None and math.isnan(rep["sinr_measured_db"])
    assert "no truth tags" in format_text(rep)


def test_measured_margins_converge_to_designed(design):
    from isac_opt.bench.demod import designed_margins
    _, rx = simulate(design, 400, np.random.default_rng(6))
    m = rx.margins()
    # frame mean of 400 frames: error std per component 1/sqrt(2*400) in units of σ_k
    assert np.max(np.abs(m - designed_margins(design))) < 6 / math.sqrt(800) * math.sqrt(2)


def test_frontend_scale():
    from isac_opt.bench.framing import frontend_scale
    assert frontend_scale("sim", 4.08) == 1.0
    assert frontend_scale("pluto", 4.0) == pytest.approx(0.125)
    with pytest.raises(ValueError, match="backend"):
        frontend_scale("hackrf", 1.0)
