"""Issue 8 "Use": estimated channels file -> design, TX/RX chain corrections (pure + GNU Radio blocks),
stale-key refusal, and the bench run with hidden chain impairments with / without calibration."""
from __future__ import annotations

import json
import math

import numpy as np
import pytest

from calibration import ChainCal, StaleCalibrationError, make_key
from calibration.use import (RxCorrector, TxCorrection, bench_chain_truth, bench_key, emulator_impairments,
                             rx_correct, sim_sdr_id)

SEED, IMPAIR = 3, 7
FS, LO = 2e6, 5.8e9


def _cli(argv):
    from isac_testbed.cli import main
    return main([str(a) for a in argv])


def _truth_cal(truth, side, path, impair=IMPAIR, fs=FS):
    cal = ChainCal.from_coefs(truth, n_chains=len(truth["gain"]), side=side)
    cal.save(path, key=make_key(hardware_ids={"sdr": sim_sdr_id(impair)}, lo_hz=LO, fs_hz=fs))
    return cal


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    """Estimated + true channels of realisation SEED, designs for both, chain calibrations of IMPAIR."""
    d = tmp_path_factory.mktemp("caluse")
    f = {k: d / v for k, v in dict(est="est.npz", truth="truth.npz", d_est="d_est.npz", d_true="d_true.npz",
                                    tx=d / "tx", rx=d / "rx").items()}
    assert _cli(["calibrate", "channels", "--backend", "sim", "--scenario", "paper-a", "--seed", SEED,
                 "--channels-out", f["est"], "--truth-out", f["truth"], "--json"]) == 0
    assert _cli(["design", "--method", "init", "--seed", SEED, "--channels", f["est"], "--out", f["d_est"]]) == 0
    assert _cli(["design", "--method", "init", "--seed", SEED, "--out", f["d_true"]]) == 0
    for side in ("tx", "rx"):
        assert _cli(["calibrate", "chains", "--backend", "sim", "--impair-seed", IMPAIR, "--side", side,
                     "--n-chains", 6, "--out", f[side], "--json"]) == 0
    f["dir"] = d
    return f


# ------------------------------------------------------------------------------------------ channels
def test_channels_out_is_a_channels_file_of_the_estimate(files):
    from isac_opt.paper_a.channels import (ChannelsA, draw_channels, effective_user_channels, realisation_rng, target_clutter_los)
    from isac_opt.paper_a.scenario import ScenarioA
    scn = ScenarioA()
    est = ChannelsA.load(files["est"], scn)
    truth = draw_channels(scn, realisation_rng(SEED, 0))           # what the design methods draw
    tru_file = ChannelsA.load(files["truth"], scn)
    np.testing.assert_array_equal(tru_file.h_k, truth.h_k)
    los = target_clutter_los(scn)                                   # radar legs: geometry, exactly
    for k in ("h_bt", "h_rt", "h_bq", "h_rq"):
        np.testing.assert_allclose(getattr(est, k), los[k], rtol=1e-12)
    np.testing.assert_array_equal(est.S, truth.S)
    assert not np.array_equal(est.h_k, truth.h_k)                   # it IS an estimate
    nm = lambda a, b: 10 * np.log10(np.sum(np.abs(a - b) ** 2) / np.sum(np.abs(b) ** 2))  # noqa: E731
    assert nm(est.h_k, truth.h_k) < -30                             # 20 dB pilots x 128 slots
    # the user cascade diag(h_rk*) G the design uses, against the truth (independent dense product)
    casc = lambda ch: np.conj(ch.h_rk)[:, :, None] * ch.G[None, :, :]  # noqa: E731
    assert nm(casc(est), casc(truth)) < -10
    rng = np.random.default_rng(0)
    phi = np.exp(2j * np.pi * rng.uniform(size=scn.N))
    assert nm(effective_user_channels(est, phi), effective_user_channels(truth, phi)) < -20
    meta = json.loads(str(np.load(files["est"])["meta"]))
    assert meta["estimated"] is True and "representation" in meta


def test_design_from_estimated_channels_uses_them(files):
    from isac_opt.paper_a.channels import ChannelsA
    from isac_opt.designfile import load_design
    d = load_design(files["d_est"])
    est = ChannelsA.load(files["est"], d.scenario)
    np.testing.assert_array_equal(d.channels.h_k, est.h_k)
    np.testing.assert_array_equal(d.channels.h_rk, est.h_rk)
    t = load_design(files["d_true"])
    # radar legs are the same geometry: the design from the estimate loses < 1 dB of SINR
    assert d.report()["sinr_db"] > t.report()["sinr_db"] - 1.0


# ------------------------------------------------------------------------------- pure corrections
def _truth(rng, M, frac=True):
    d = rng.uniform(0, 4, M) if frac else rng.integers(0, 4, M).astype(float)
    return {"gain": 10 ** (rng.uniform(-2, 2, M) / 20) * np.exp(1j * rng.uniform(-np.pi, np.pi, M)),
            "delay": d, "cfo": np.zeros(M)}


def _bandlimited(rng, M, n, bw=0.25, edges=40):
    X = np.zeros((M, n), complex)
    k = int(bw * n / 2)
    X[:, :k] = rng.standard_normal((M, k)) + 1j * rng.standard_normal((M, k))
    X[:, -k:] = rng.standard_normal((M, k)) + 1j * rng.standard_normal((M, k))
    x = np.fft.ifft(X, axis=1)
    if edges:
        x[:, :edges] = 0
        x[:, -edges:] = 0
    return x


def test_tx_precorrection_and_rx_correction_invert_the_chains(rng):
    M, n = 4, 512
    truth = _truth(rng, M)
    chains = ChainCal.from_coefs(truth, n_chains=M)
    x = _bandlimited(rng, M, n, edges=0)                # periodic band-limited: circular delays are exact
    u = TxCorrection(chains).apply(x)                    # pre-distorted; the chains then act on u
    np.testing.assert_allclose(chains.embed(u), x, atol=1e-9 * np.abs(x).max())
    np.testing.assert_allclose(rx_correct(chains, chains.embed(x)), x, atol=1e-9 * np.abs(x).max())


@pytest.mark.parametrize("frac", [False, True])
def test_streaming_rx_corrector_matches_delayed_input(rng, frac):
    M, n = 3, 800
    truth = _truth(rng, M, frac=frac)
    chains = ChainCal.from_coefs(truth, n_chains=M)
    x = _bandlimited(rng, M, n)
    # impose the chains independently: integer delay by shifting, fractional by the FFT
    y = chains.embed(x)
    corr = RxCorrector(chains)
    out = np.vstack([corr.process(c) for c in np.array_split(y.T, 7)])        # streaming, uneven chunks
    D = corr.latency
    ref = np.zeros_like(x.T)
    ref[D:] = x.T[:n - D]
    err = np.abs(out - ref)[60:-60].max() / np.abs(x).max()
    assert err < (1e-9 if not frac else 2e-2), f"max relative error {err:.2e} (latency {D})"
    assert corr.fractional == frac


# ----------------------------------------------------------------------------- GNU Radio blocks
def _emit(design, frames, **kw):
    import pmt
    from gnuradio import blocks as grb, gr
    from blocks.slp_source import slp_source
    tb = gr.top_block()
    src = slp_source(design=str(design), frames=frames, **kw)
    snk = grb.vector_sink_c(src.M)
    tb.connect(src, snk)
    tb.run()
    x = np.asarray(snk.data(), np.complex128).reshape(-1, src.M)
    tags = sorted((t.offset, pmt.to_python(t.value)) for t in snk.tags() if pmt.symbol_to_string(t.key) == "frame")
    return x, tags


def test_slp_source_tx_cal_radiates_the_design_after_the_chains(files):
    pytest.importorskip("gnuradio")
    truth = bench_chain_truth(IMPAIR, 6, "tx")
    path = files["dir"] / "tx_truth"
    _truth_cal(truth, "tx", path)
    clean, tags0 = _emit(files["d_est"], 5)
    u, tags1 = _emit(files["d_est"], 5, tx_cal=str(path) + ".json",
                     cal_key=json.dumps(bench_key(sdr=sim_sdr_id(IMPAIR), fs_hz=FS, lo_hz=LO)))
    D = int(truth["delay"].max())
    assert [o for o, _ in tags1] == [o + D for o, _ in tags0] and [v for _, v in tags1] == [v for _, v in tags0]
    # the TX chains (gain g_i, integer delay d_i) applied independently, sample by sample
    rad = np.zeros_like(u)
    for i in range(6):
        di = int(truth["delay"][i])
        rad[di:, i] = truth["gain"][i] * u[:u.shape[0] - di, i]
    np.testing.assert_allclose(rad[D:D + clean.shape[0] - 1], clean[:-1], atol=1e-5)


def _radar_stats(design, data, tags, **kw):
    """Run stap_detector on a tagged vector stream; returns ({frame: stat}, results)."""
    from gnuradio import blocks as grb, gr
    from blocks.stap_detector import stap_detector
    tb = gr.top_block()
    src = grb.vector_source_c(data.astype(np.complex64).reshape(-1).tolist(), False, data.shape[1], tags)
    det = stap_detector(M=data.shape[1], pfa=1e-3, design=str(design), publish=False, **kw)
    tb.connect(src, det)
    tb.connect((det, 0), grb.null_sink(4))
    tb.connect((det, 1), grb.null_sink(4))
    tb.run()
    r = det.results()
    return dict(zip(r["frame"].tolist(), r["stat"].tolist())), r


def test_stap_detector_rx_cal_restores_the_statistics(files):
    pytest.importorskip("gnuradio")
    import pmt
    from gnuradio import gr
    from isac_opt.bench.channel import ChannelEmulator
    from isac_opt.bench.framing import auto_gap, design_tag, frame_samples
    from isac_opt.designfile import load_design
    d = load_design(files["d_est"])
    scn = d.scenario
    F = scn.L + auto_gap(scn)
    nf = 40
    x = np.tile(frame_samples(d.X, auto_gap(scn)), (nf, 1))
    fpos = np.arange(nf) * F
    emu = ChannelEmulator(scn, d.channels, d.phi, np.random.default_rng(1))
    _, radar, present = emu.process(x, fpos, np.arange(nf))
    truth = bench_chain_truth(IMPAIR, scn.M, "rx")
    imp = ChainCal.from_coefs(truth, n_chains=scn.M)
    bad = np.zeros_like(radar)                             # RX chains, independently: gain and integer delay
    for i in range(scn.M):
        di = int(truth["delay"][i])
        bad[di:, i] = truth["gain"][i] * radar[:radar.shape[0] - di, i]
    path = files["dir"] / "rx_truth"
    _truth_cal(truth, "rx", path)

    def tags():
        out = [gr.tag_utils.python_to_tag((0, pmt.intern("design"),
                                           pmt.to_pmt(design_tag(d, str(files["d_est"]), 0, F))))]
        for f, p in zip(range(nf), present):
            out.append(gr.tag_utils.python_to_tag((int(f * F), pmt.intern("frame"), pmt.from_long(f))))
            out.append(gr.tag_utils.python_to_tag((int(f * F), pmt.intern("target"), pmt.from_bool(bool(p)))))
        out.append(gr.tag_utils.python_to_tag((nf * F - 1, pmt.intern("frame"), pmt.from_long(-1))))
        return out
    ref, _ = _radar_stats(files["d_est"], radar, tags())
    unc, _ = _radar_stats(files["d_est"], bad, tags())
    cor, res = _radar_stats(files["d_est"], bad, tags(), rx_cal=str(path),
                            cal_key={"fs_hz": FS, "hardware_ids": {"sdr": sim_sdr_id(IMPAIR)}})
    common = sorted(set(ref) & set(cor))
    assert len(common) >= nf - 3
    a, b = np.array([ref[f] for f in common]), np.array([cor[f] for f in common])
    np.testing.assert_allclose(b, a, rtol=2e-3, atol=1e-3 * a.mean())
    u = np.array([unc[f] for f in common])
    assert np.max(np.abs(u - a)) > 0.1 * a.mean()          # the impairment really changes the statistics
    assert set(res["target"].tolist()) <= {0, 1}            # target tags followed the data


# ----------------------------------------------------------------------------------- stale keys
def test_stale_calibration_is_refused_with_one_line(files):
    pytest.importorskip("gnuradio")
    from blocks.slp_source import slp_source
    from blocks.stap_detector import stap_detector
    tx = str(files["tx"]) + ".json"
    ok = bench_key(sdr=sim_sdr_id(IMPAIR), fs_hz=FS, lo_hz=LO)
    slp_source(design=str(files["d_est"]), tx_cal=tx, cal_key=ok)             # accepted
    for field, key in (("fs_hz", dict(ok, fs_hz=1e6)), ("lo_hz", dict(ok, lo_hz=2.4e9)),
                       ("hardware_ids.sdr", dict(ok, hardware_ids={"sdr": sim_sdr_id(IMPAIR + 1)})),
                       ("gains_db", dict(ok, gains_db=[10.0] * 6))):
        with pytest.raises(StaleCalibrationError) as e:
            slp_source(design=str(files["d_est"]), tx_cal=tx, cal_key=json.dumps(key))
        msg = str(e.value)
        assert f"'{field}' changed" in msg and "\n" not in msg and "slp_source" in msg, msg
    with pytest.raises(StaleCalibrationError, match="'fs_hz' changed"):
        stap_detector(M=6, rx_cal=str(files["rx"]), cal_key=dict(ok, fs_hz=1e6))
    with pytest.raises(ValueError, match="side"):                                # a TX file on the RX side
        stap_detector(M=6, rx_cal=tx)


def test_run_refuses_a_stale_calibration(files, capsys):
    rc = _cli(["run", "--design", files["d_est"], "--frames", 4, "--ris", "ideal", "--impair-seed", IMPAIR + 1,
               "--tx-cal", str(files["tx"]) + ".json"])
    err = capsys.readouterr().err.strip()
    assert rc == 2 and len(err.splitlines()) == 1 and "'hardware_ids.sdr' changed" in err, err


# ---------------------------------------------------------------------------------- end to end
def _bench(files, frames, **kw):
    from blocks.pipeline import sim_pipeline
    from isac_opt.bench.stap import estimate_sinr
    tb = sim_pipeline(str(files["d_est"]), frames, seed=SEED, world=kw.pop("world", None), **kw)
    tb.run()
    r = tb.det.results()
    return estimate_sinr(r["stat"][r["target"] == 0], r["stat"][r["target"] == 1], conf=0.999)


def test_run_with_impairments_loses_without_and_recovers_with_calibration(files):
    pytest.importorskip("gnuradio")
    import dataclasses
    from isac_opt.paper_a.channels import ChannelsA
    from isac_opt.designfile import load_design
    d, t = load_design(files["d_est"]), load_design(files["d_true"])
    world = files["dir"] / "world.npz"                      # the estimated design in the TRUE channels
    dataclasses.replace(d, channels=dataclasses.replace(ChannelsA.load(files["truth"], d.scenario),
                                                        S=d.channels.S)).save(world)
    sinr_true = t.report()["sinr_db"]                        # design made from the true channels
    imp = emulator_impairments(bench_chain_truth(IMPAIR, 6, "tx"), bench_chain_truth(IMPAIR, 6, "rx"))
    key = bench_key(sdr=sim_sdr_id(IMPAIR), fs_hz=FS, lo_hz=LO)
    frames = 600
    unc = _bench(files, frames, impairments=imp, world=str(world))
    cal = _bench(files, frames, impairments=imp, world=str(world), tx_cal=str(files["tx"]),
                 rx_cal=str(files["rx"]), cal_key=key)
    # 99.9 % intervals of the measured SINR (exact F-distribution interval, ~300 frames per hypothesis)
    assert cal["hi_db"] >= sinr_true - 1.0, f"calibrated {cal} vs true design {sinr_true:.2f} dB"
    assert cal["lo_db"] <= sinr_true + 1.0, f"calibrated {cal} vs true design {sinr_true:.2f} dB"
    assert not (unc["hi_db"] >= sinr_true - 3.0), f"uncalibrated {unc} should lose > 3 dB vs {sinr_true:.2f}"
    assert math.isfinite(cal["sinr_db"])


def test_run_cli_plumbs_calibration_and_world_channels(files, capsys):
    pytest.importorskip("gnuradio")
    from isac_opt.designfile import load_design
    sinr_true = load_design(files["d_true"]).report()["sinr_db"]
    rc = _cli(["run", "--design", files["d_est"], "--world-channels", files["truth"], "--ris", "ideal",
               "--seed", SEED, "--impair-seed", IMPAIR, "--frames", 400, "--tx-cal", files["tx"],
               "--rx-cal", files["rx"], "--json"])
    out = capsys.readouterr().out.strip().splitlines()[-1]
    r = json.loads(out)
    assert rc == 0 and r["impair_seed"] == IMPAIR and r["tx_cal"] and r["rx_cal"]
    assert abs(r["sinr_world_predicted_db"] - r["sinr_designed_db"]) < 1e-9   # same radar legs (geometry)
    lo, hi = r["sinr_measured_ci_db"]                                          # exact 95 % interval
    assert hi >= sinr_true - 1.0 and lo <= sinr_true + 1.0, (r["sinr_measured_db"], lo, hi, sinr_true)
    assert max(r["ser_measured"]) < 0.01                                       # users decode again


def test_emulator_chain_impairments_equal_chaincal_embed(files):
    """The bench channel's hidden TX/RX chains == ChainCal.embed of the same truth (integer delays)."""
    from isac_opt.bench.channel import ChannelEmulator
    from isac_opt.designfile import load_design
    d = load_design(files["d_est"])
    scn = d.scenario
    rng = np.random.default_rng(5)
    n = 300
    x = (rng.standard_normal((n, scn.M)) + 1j * rng.standard_normal((n, scn.M))) * scn.amp
    tx, rx = bench_chain_truth(IMPAIR, scn.M, "tx"), bench_chain_truth(IMPAIR, scn.M, "rx")
    pad = lambda a: np.vstack([a, np.zeros((8, a.shape[1]))])          # noqa: E731  (room for the delays)
    emb = lambda t, a: ChainCal.from_coefs(t, n_chains=scn.M).embed(pad(a).T).T[:n]  # noqa: E731
    clean = ChannelEmulator(scn, d.channels, d.phi, np.random.default_rng(9), target_mode="off", rcs="fixed")
    u0, r0, _ = clean.process(emb(tx, x))                 # TX chains imposed by ChainCal.embed
    imp = ChannelEmulator(scn, d.channels, d.phi, np.random.default_rng(9), target_mode="off", rcs="fixed")
    imp.set_impairments(emulator_impairments(tx, rx))
    u1, r1, _ = imp.process(x)
    np.testing.assert_allclose(u1, u0, atol=1e-9)
    np.testing.assert_allclose(r1, emb(rx, r0), atol=1e-6 * np.abs(r0).max())
