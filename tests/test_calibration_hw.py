"""Hardware paths of ``calibrate chains|channels|ris|clutter`` against a simulated front end with hidden truth.

The fake front end (:class:`calibration.fake_frontend.SimFrontEnd`) plays a continuous cyclic TX buffer
through hidden chain gains and a channel that follows the pattern the in-process RIS simulator
(``sim://NAME``) actually committed, with random capture offsets and a switching transient. The hidden
truth (sim_bench's impairments) is computed here independently and compared with the estimates at the
same tolerances as the sim backend (tests/test_calibration_cli.py).
"""
from __future__ import annotations

import json
import os
import sys

import numpy as np
import pytest

from isac_testbed import calibrate as cli
from calibration.base import Calibration
from calibration.channels import RisCascadeCal, affine_truth, nmse_db
from calibration.clutter import compare_cov
from calibration.ris_states import RisStateCal, compare_tables, scan_response
from calibration.sim_bench import draw_channels, draw_clutter_cov, draw_ris_table, ula

pytest.importorskip("ris_driver")
from ris_driver import BoardSpec, open_ris  # noqa: E402
from ris_driver.sim import create_simulator, remove_simulator  # noqa: E402

from calibration.fake_frontend import SimFrontEnd  # noqa: E402
from calibration.hw_measure import align, build_frame, measure_channels, measure_clutter, measure_ris_table  # noqa: E402

NO_SDR = not os.environ.get("SDR_URI")


def _board(name, table):
    N = table.shape[0]
    rows = int(np.sqrt(N))
    create_simulator(name, BoardSpec(rows=rows, cols=N // rows, bits=1, gamma=table[:, :, None]), replace=True)


@pytest.fixture
def channels_bench():
    """Hidden truth: chain gains, Rayleigh direct + cascaded channels, non-ideal 1-bit RIS table."""
    rng = np.random.default_rng(11)
    N, R, T = 16, 2, 2
    table = draw_ris_table(rng, N)
    _board("hwtest_ch", table)
    ch = draw_channels(rng, R, T, N)
    fe = SimFrontEnd(rng, n_tx=T, n_rx=R, ris_name="hwtest_ch", noise_std=0.1, transient=200,
                     channel=lambda g, k: ch["direct"] + np.tensordot(g, ch["cascade"], axes=(0, 0)))
    G = fe.g_rx[:, None] * fe.g_tx[None, :]                               # hidden chain gains
    truth = affine_truth(ch["direct"] * G, ch["cascade"] * G[None], table)
    yield fe, truth, N
    remove_simulator("hwtest_ch")


def _theta(c):
    return np.concatenate([np.asarray(c["direct"])[None], np.asarray(c["cascade"])])


def test_frame_alignment_undoes_any_circular_shift():
    rng = np.random.default_rng(0)
    frame = build_frame(np.exp(2j * np.pi * rng.random((2, 40))))
    P = frame.shape[1]
    for shift in (0, 1, 57, P - 1):
        y = np.roll(frame, -shift, axis=1) * (0.3 - 0.7j)
        al, s = align(y, P)
        assert s == (P - shift) % P
        np.testing.assert_allclose(al, frame * (0.3 - 0.7j), atol=1e-12)


def test_channels_sweep_recovers_hidden_cascade(channels_bench):
    fe, truth, N = channels_bench
    ris = open_ris("sim://hwtest_ch")
    cal = RisCascadeCal(n_elements=N, entry_shape=(2, 2))
    run = measure_channels(fe, ris, cal, settle=256)
    cal.run(run.data)
    err = nmse_db(_theta(cal.coefs), _theta(truth))
    assert err < -15.0, err                                               # sim backend tolerance
    assert len(run.acks) == cal.params["n_slots"] and all(a["attempts"] >= 1 for a in run.acks)
    # the verified apply really reached the board: the last pattern is the one committed
    from ris_driver.sim import get_simulator
    np.testing.assert_array_equal(get_simulator("hwtest_ch").applied_pattern().phase_array, cal.patterns()[-1])


def test_channels_without_dropping_the_transient_is_wrong(channels_bench):
    """The fake's switching transient is real: settle=0 spoils the estimate (so settle matters)."""
    fe, truth, N = channels_bench
    cal = RisCascadeCal(n_elements=N, entry_shape=(2, 2))
    cal.run(measure_channels(fe, open_ris("sim://hwtest_ch"), cal, settle=0).data)
    assert nmse_db(_theta(cal.coefs), _theta(truth)) > -10.0


def _fake_open(fe):
    def open_frontend(backend, uri, **kw):
        assert backend in ("pluto", "uhd")
        return fe
    return open_frontend


def test_cli_channels_pluto_with_fake_front_end(channels_bench, monkeypatch, capsys, tmp_path):
    fe, truth, N = channels_bench
    from calibration import frontend
    monkeypatch.setattr(frontend, "open_frontend", _fake_open(fe))
    rc = cli.main(["channels", "--backend", "pluto", "--ris", "sim://hwtest_ch", "--json", "--lo-hz", "2.4e9",
                   "--out", str(tmp_path / "ch"), "--sigmf", str(tmp_path / "sig")])
    out, err = capsys.readouterr()
    assert rc == 0, err
    rep = json.loads(out)
    cal = Calibration.load(tmp_path / "ch", expect_key={"hardware_ids": {"sdr": "fake://FAKE-0001"},
                                                        "lo_hz": fe.lo_hz, "fs_hz": fe.fs_hz})
    assert nmse_db(_theta(cal.coefs), _theta(truth)) < -15.0
    key = json.loads((tmp_path / "ch.json").read_text())["key"]
    assert key["hardware_ids"]["sdr_hw_serial"] == "FAKE-0001" and key["hardware_ids"]["ris"] == "sim://hwtest_ch"
    assert key["lo_hz"] == fe.lo_hz and key["fs_hz"] == fe.fs_hz and key["gains_db"] == [0.0] * 4
    assert "noise_var_est" in json.loads((tmp_path / "ch.json").read_text())["residual"]
    assert rep["ris_applies"] == cal.params["n_slots"] and rep["ris_attempts_max"] >= 1
    from sigmf import sigmffile
    rec = sigmffile.fromfile(rep["sigmf"])
    caps = rec.get_captures()
    assert len(caps) == cal.params["n_slots"] and "ris:pattern_hex" in caps[0] and "ris:ack_attempts" in caps[0]
    assert rec.read_samples().shape[1] == 2


def test_ris_table_at_positions_recovers_hidden_table(monkeypatch, capsys, tmp_path):
    """K receiver positions (the test's `move` stands for the user moving the antenna); the table is
    recovered relative to its mean state-0 reflection within the sim tolerances (2 deg, 0.2 dB)."""
    rng = np.random.default_rng(5)
    N = 8
    table = draw_ris_table(rng, N)
    _board("hwtest_ris", table)
    Q = scan_response(N, N)
    fe = SimFrontEnd(rng, n_tx=1, n_rx=1, ris_name="hwtest_ris", noise_std=0.01, transient=100,
                     channel=lambda g, k: Q[k] @ g)
    try:
        cal = RisStateCal(n_elements=N)
        moves = []

        def move(k):
            moves.append(k)
            fe.position = k
            fe._H_now = fe._seen()

        run = measure_ris_table(fe, open_ris("sim://hwtest_ris"), cal, N, move=move)
        assert moves == list(range(1, N))
        cal.run(run.data, element_response=run.extra["element_response"])
        g = fe.g_rx[0] * fe.g_tx[0]
        cmp = compare_tables(cal.coefs["table"], g * table)
        assert cmp["state_phase_error_deg_max"] < 2.0 and cmp["state_gain_error_db_max"] < 0.2, cmp

        # CLI: hardware sweep with --positions/--wait-s, then offline re-estimate from --position-file
        from calibration import frontend
        monkeypatch.setattr(frontend, "open_frontend", _fake_open(fe))
        monkeypatch.setattr("time.sleep", lambda s: None)
        fe.position = 0
        fe._H_now = fe._seen()
        orig = measure_ris_table

        def measure_with_move(fe_, ris_, cal_, K, move=None, **kw):
            def both(k):
                move(k)
                fe.position = k
                fe._H_now = fe._seen()
            return orig(fe_, ris_, cal_, K, move=both, **kw)
        monkeypatch.setattr("calibration.hw_measure.measure_ris_table", measure_with_move)
        rc = cli.main(["ris", "--backend", "uhd", "--ris", "sim://hwtest_ris", "--positions", str(N), "--wait-s",
                       "0", "--json", "--out", str(tmp_path / "ris")])
        out, err = capsys.readouterr()
        assert rc == 0, err
        assert "move the receive antenna" in err
        rep = json.loads(out)
        rel = table / np.mean(table[:, 0])
        hw = Calibration.load(tmp_path / "ris")
        cmp = compare_tables(hw.coefs["table"], rel)
        assert cmp["state_phase_error_deg_max"] < 2.0 and cmp["state_gain_error_db_max"] < 0.2, cmp
        assert rep["reference_gain_db"] == pytest.approx(20 * np.log10(abs(g * np.mean(table[:, 0]))), abs=0.1)
        # interrupted at position 4 (the radio drops out), then --resume measures positions 4..N only
        state = {"fail": True}

        def measure_interrupted(fe_, ris_, cal_, K, move=None, **kw):
            def both(k):
                if k == 3 and state.pop("fail", False):
                    from calibration.errors import HardwareUnavailable
                    raise HardwareUnavailable("AD936x RX failed: device unplugged")
                move(k)
                fe.position = k
                fe._H_now = fe._seen()
            fe.position = kw["done"].shape[1] if kw.get("done") is not None else 0
            fe._H_now = fe._seen()
            return orig(fe_, ris_, cal_, K, move=both, **kw)
        monkeypatch.setattr("calibration.hw_measure.measure_ris_table", measure_interrupted)
        argv = ["ris", "--backend", "pluto", "--ris", "sim://hwtest_ris", "--positions", str(N), "--wait-s", "0",
                "--json", "--out", str(tmp_path / "res")]
        assert cli.main(argv) == 2
        assert "unplugged" in capsys.readouterr().err
        assert np.load(tmp_path / "res_positions.npz")["Y"].shape == (cal.params["n_slots"], 3)
        assert cli.main(argv + ["--resume"]) == 0
        out, err = capsys.readouterr()
        assert json.loads(out)["resumed_from_position"] == 3
        cmp = compare_tables(Calibration.load(tmp_path / "res").coefs["table"], rel)
        assert cmp["state_phase_error_deg_max"] < 2.0 and cmp["state_gain_error_db_max"] < 0.2, cmp

        rc = cli.main(["ris", "--position-file", rep["positions_file"], "--json", "--out", str(tmp_path / "off")])
        out, err = capsys.readouterr()
        assert rc == 0, err
        off = Calibration.load(tmp_path / "off", expect_key={"hardware_ids": {"sdr": "fake://FAKE-0001"}})
        np.testing.assert_allclose(off.coefs["table"], hw.coefs["table"], atol=1e-9)
    finally:
        remove_simulator("hwtest_ris")


def test_ris_table_needs_wait_between_positions(monkeypatch, capsys, tmp_path):
    rng = np.random.default_rng(2)
    _board("hwtest_w", draw_ris_table(rng, 4))
    try:
        fe = SimFrontEnd(rng, n_tx=1, n_rx=1, ris_name="hwtest_w", channel=lambda g, k: np.sum(g))
        from calibration import frontend
        monkeypatch.setattr(frontend, "open_frontend", _fake_open(fe))
        rc = cli.main(["ris", "--backend", "pluto", "--ris", "sim://hwtest_w", "--out", str(tmp_path / "x")])
        err = capsys.readouterr().err
        assert rc == 2 and "wait-s" in err and "Traceback" not in err and len(err.strip().splitlines()) == 1
    finally:
        remove_simulator("hwtest_w")


def test_clutter_frames_of_the_design_waveform(monkeypatch, capsys, tmp_path):
    rng = np.random.default_rng(3)
    R, L, T = 2, 8, 2
    tc = draw_clutter_cov(rng, R * L)
    X = np.exp(2j * np.pi * rng.random((T, L)))
    np.savez(tmp_path / "design.npz", X=X)
    amp = np.sqrt(np.mean(np.real(np.diag(tc["C"]))))          # the sync comes back at the echo's level
    fe = SimFrontEnd(rng, n_tx=T, n_rx=R, channel=lambda g, k: amp * np.eye(R, T), clutter_cov=tc["C"],
                     noise_std=0.0)
    run = measure_clutter(fe, X, 256)
    assert run.data.shape == (256, R * L)
    from calibration.clutter import ClutterCovCal
    cal = ClutterCovCal(dim=R * L)
    cal.run(run.data)
    s = ula(R * L, 0.0)
    assert compare_cov(cal.coefs["C"], tc["C"], s)["sinr_loss_db"] < 1.0      # sim backend tolerance

    from calibration import frontend
    monkeypatch.setattr(frontend, "open_frontend", _fake_open(fe))
    rc = cli.main(["clutter", "--backend", "pluto", "--design", str(tmp_path / "design.npz"), "--n-slots", "256",
                   "--json", "--out", str(tmp_path / "cl")])
    out, err = capsys.readouterr()
    assert rc == 0, err
    hw = Calibration.load(tmp_path / "cl", expect_key={"hardware_ids": {"sdr": "fake://FAKE-0001"}})
    assert compare_cov(hw.coefs["C"], tc["C"], s)["sinr_loss_db"] < 1.0
    assert json.loads(out)["dim"] == R * L


@pytest.mark.skipif(not NO_SDR, reason="hardware is configured (SDR_URI set)")
@pytest.mark.parametrize("what, extra", [("channels", ["--ris", "sim://nohw"]), ("ris", ["--ris", "sim://nohw"]),
                                         ("clutter", ["--design", "x.npz"]), ("chains", ["--side", "rx"]),
                                         ("chains", ["--side", "tx"])])
@pytest.mark.parametrize("backend", ["pluto", "uhd"])
def test_no_hardware_one_line_exit_2(capsys, tmp_path, monkeypatch, backend, what, extra):
    monkeypatch.delenv("SDR_URI", raising=False)
    monkeypatch.chdir(tmp_path)
    np.savez(tmp_path / "x.npz", X=np.ones((2, 8), complex))
    rc = cli.main([what, "--backend", backend, "--out", str(tmp_path / "cal")] + extra)
    err = capsys.readouterr().err
    assert rc == 2, err
    lines = [ln for ln in err.strip().splitlines() if ln.startswith("isac-testbed calibrate: error:")]
    assert len(lines) == 1 and "Traceback" not in err and ("no " in lines[0] or "needs" in lines[0]), err
    assert not (tmp_path / "x.json").exists()


def test_missing_ris_url_is_one_line(monkeypatch, capsys, tmp_path):
    rng = np.random.default_rng(4)
    fe = SimFrontEnd(rng, n_tx=2, n_rx=2, channel=lambda g, k: np.eye(2))
    from calibration import frontend
    monkeypatch.setattr(frontend, "open_frontend", _fake_open(fe))
    rc = cli.main(["channels", "--backend", "pluto", "--out", str(tmp_path / "x")])
    err = capsys.readouterr().err
    assert rc == 2 and "--ris URL" in err and len(err.strip().splitlines()) == 1


@pytest.mark.hardware
@pytest.mark.parametrize("what", ["channels", "ris", "clutter", "chains"])
def test_real_bench(tmp_path, capsys, what):
    """Real path: SDR_URI (+ RIS_URI for channels/ris, CAL_DESIGN for clutter; chains: CAL_CHAINS_SIDE rx =
    TX0 through a splitter into all RX [default], tx = every TX through a combiner into RX0) on a bench."""
    uri = os.environ.get("SDR_URI")
    if not uri:
        pytest.skip("set SDR_URI (e.g. ip:192.168.2.1 or serial=...) to run")
    backend = os.environ.get("SDR_BACKEND", "pluto")
    argv = [what, "--backend", backend, "--uri", uri, "--json", "--out", str(tmp_path / "hw")]
    if what in ("channels", "ris"):
        if not os.environ.get("RIS_URI"):
            pytest.skip("set RIS_URI to run")
        argv += ["--ris", os.environ["RIS_URI"]]
    if what == "ris":
        argv += ["--positions", "1"]
    if what == "clutter":
        if not os.environ.get("CAL_DESIGN"):
            pytest.skip("set CAL_DESIGN to a design file with M = TX chains")
        argv += ["--design", os.environ["CAL_DESIGN"]]
    if what == "chains":
        argv += ["--side", os.environ.get("CAL_CHAINS_SIDE", "rx")]
    rc = cli.main(argv)
    out, err = capsys.readouterr()
    if what == "ris" and rc == 2 and "rank" in err:
        pytest.skip("one position cannot identify the table (expected); the sweep itself ran")
    assert rc == 0, err
    cal = Calibration.load(tmp_path / "hw", expect_key={"hardware_ids": {"sdr": uri}})
    assert all(np.all(np.isfinite(v)) for v in cal.coefs.values())
    if what == "chains":
        assert cal.coefs["delay"][0] == 0.0 and cal.coefs["gain"][0] == 1.0      # relative to chain 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(pytest.main([__file__, "-q"]))


# ------------------------------------------------------------------- the two real front ends' glue
class _Ad9361OverSimBench:
    """``adi.ad9361`` stand-in that forwards the DMA buffers to a SimFrontEnd (full-scale conversions as
    on the AD9361: TX 2**14, RX 2**11), to test PlutoFrontEnd's glue (scaling, buffer size, flush, ids)."""

    bench = None

    def __init__(self, uri):
        import types
        self.uri, self.rx_buffer_size, self.rx_calls = uri, 1024, 0
        self.ctx = types.SimpleNamespace(attrs={"hw_serial": "104473ce0000", "hw_model": "Analog Devices PlutoSDR"})

    def tx(self, data):
        bufs = [np.asarray(d, complex) for d in (data if isinstance(data, list) else [data])]
        self.bench.tx_cyclic(np.asarray(bufs) / 2 ** 14)

    def tx_destroy_buffer(self):
        self.bench.tx_stop()

    def rx_destroy_buffer(self):
        pass

    def rx(self):
        self.rx_calls += 1
        return list(self.bench.rx(self.rx_buffer_size) * 2 ** 11)


def test_pluto_front_end_glue_over_the_sim_bench(channels_bench, monkeypatch):
    import types
    from calibration.frontend import PlutoFrontEnd
    fe_sim, truth, N = channels_bench
    _Ad9361OverSimBench.bench = fe_sim
    monkeypatch.setitem(sys.modules, "adi", types.SimpleNamespace(ad9361=_Ad9361OverSimBench))
    fe = PlutoFrontEnd("ip:fake", lo_hz=2.4e9, fs_hz=1e6, tx_scale=0.5, flush=2)
    assert fe.ids()["sdr_hw_serial"] == "104473ce0000" and fe.sdr.sample_rate == 1000000
    assert fe.sdr.rx_lo == fe.sdr.tx_lo == 2400000000
    cal = RisCascadeCal(n_elements=N, entry_shape=(2, 2))
    run = measure_channels(fe, open_ris("sim://hwtest_ch"), cal)
    assert fe.sdr.rx_calls == 3 * cal.params["n_slots"]                # 2 flushed + 1 kept per pattern
    cal.run(run.data)
    half = {k: 0.5 * v for k, v in truth.items()}                      # TX backoff 0.5 of full scale
    assert nmse_db(_theta(cal.coefs), _theta(half)) < -15.0


def test_uhd_capture_block_records_skip_plus_n():
    """The capture sink of UhdFrontEnd, fed by a repeating vector source instead of usrp_source."""
    gr = pytest.importorskip("gnuradio.gr")
    from gnuradio import blocks
    from calibration.frontend import make_capture_block
    data = (np.arange(100) + 1j).astype(np.complex64)
    tb = gr.top_block()
    src0, src1 = blocks.vector_source_c(data.tolist(), True), blocks.vector_source_c((2 * data).tolist(), True)
    thr0, thr1 = blocks.throttle(gr.sizeof_gr_complex, 1e6), blocks.throttle(gr.sizeof_gr_complex, 1e6)
    cap = make_capture_block(2)
    tb.connect(src0, thr0, (cap, 0))
    tb.connect(src1, thr1, (cap, 1))
    tb.start()
    try:
        y = cap.capture(250, 30, timeout_s=10.0)
    finally:
        tb.stop()
        tb.wait()
    assert y.shape == (2, 250)
    k = int(np.real(y[0, 0]))                                          # wherever the stream was
    np.testing.assert_array_equal(y[0], data[(k + np.arange(250)) % 100])
    np.testing.assert_array_equal(y[1], 2 * y[0])


@pytest.mark.skipif(not NO_SDR, reason="hardware is configured (SDR_URI set)")
@pytest.mark.parametrize("backend", ["pluto", "uhd"])
@pytest.mark.parametrize("what", [["channels", "--ris", "sim://x"], ["chains", "--side", "tx"]])
def test_no_hardware_subprocess_prints_exactly_one_line(tmp_path, backend, what):
    """The real command line (C-library chatter included): one stderr line, exit code 2."""
    import subprocess
    env = dict(os.environ)
    env.pop("SDR_URI", None)
    r = subprocess.run([sys.executable, "-m", "isac_testbed.calibrate"] + what + ["--backend", backend,
                        "--out", str(tmp_path / "x")], capture_output=True, text=True, timeout=120,
                       env=env, cwd=os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    assert r.returncode == 2, r.stderr
    assert len(r.stderr.strip().splitlines()) == 1 and r.stderr.startswith("isac-testbed calibrate: error: "), r.stderr
    assert not (tmp_path / "x.json").exists()


# --------------------------------------------------------------------------------------------- chains
# Tolerances of the sim backend (tests/test_calibration_cli.py): phase 1 deg, gain 0.1 dB, delay 0.05 sample.
CHAIN_TOL = {"phase": 1.0, "gain_db": 0.1, "delay": 0.05}


def _chains_fe(seed, side, n_chains, n_tx_rx_side=1, noise_std=0.1):
    """Fake bench for a chain measurement: hidden complex gains AND fractional delays on every chain
    (up to ±8 samples); a splitter (rx side) or a combiner into RX0 (tx side) with equal arms (H = 1).
    noise_std 0.1 = 20 dB per-sample SNR at unit chain gains (14 dB worst case with ±3 dB chains)."""
    rng = np.random.default_rng(seed)
    n_tx, n_rx = (n_tx_rx_side, n_chains) if side == "rx" else (n_chains, 1)
    return SimFrontEnd(rng, n_tx=n_tx, n_rx=n_rx, channel=lambda g, k: np.ones((n_rx, n_tx)),
                       noise_std=noise_std, chain_delay_max=8.0)


def _chain_truth(fe, side):
    """Hidden truth relative to chain 0 (what a reference-0 ChainCal reports): g_i/g_0, d_i − d_0."""
    g, d = (fe.g_rx, fe.d_rx) if side == "rx" else (fe.g_tx, fe.d_tx)
    return g / g[0], d - d[0]


def _chain_errors(gain, delay, g_true, d_true):
    return {"phase": float(np.max(np.abs(np.degrees(np.angle(np.asarray(gain) / g_true))))),
            "gain_db": float(np.max(np.abs(20 * np.log10(np.abs(np.asarray(gain) / g_true))))),
            "delay": float(np.max(np.abs(np.asarray(delay) - d_true)))}


@pytest.mark.parametrize("side", ["rx", "tx"])
def test_chains_measurement_recovers_hidden_chains(side):
    """measure_chains through the fake front end: random capture offsets on every rx call, hidden gains and
    fractional delays (TX chains one at a time in their slots of one cyclic buffer; RX chains all at once)."""
    from calibration.chains import ChainCal
    from calibration.hw_measure import measure_chains
    for seed in range(3):
        fe = _chains_fe(seed, side, 3)
        cal = ChainCal(n_chains=3, side=side, reference=0)
        run = measure_chains(fe, cal, reps=4)
        assert fe.rx_calls == 4 and run.data.shape == (3, cal.params["n_samples"])
        assert run.raw.shape == (4, 3 if side == "rx" else 1, run.extra["frame"].shape[1])
        cal.run(run.data)
        err = _chain_errors(cal.coefs["gain"], cal.coefs["delay"], *_chain_truth(fe, side))
        assert all(err[k] < CHAIN_TOL[k] for k in CHAIN_TOL), (seed, err)
        assert np.max(np.abs(_chain_truth(fe, side)[1])) > 1.0               # the delays were not trivial


def test_chains_tx_frame_layout_sync_and_slots():
    """Without the TX0 sync the slots of identical preambles are indistinguishable: the chain order (and so
    the relative delays) would be a guess — the frame must carry the sync (guard against regressions)."""
    from calibration.chains import ChainCal
    from calibration.hw_measure import SYNC_LEN, chain_frame
    cal = ChainCal(n_chains=3, side="tx", reference=0)
    frame = chain_frame(cal, "tx", 3)
    n = cal.params["n_samples"]
    assert np.count_nonzero(frame[1:, :SYNC_LEN]) == 0 and np.count_nonzero(frame[0, :SYNC_LEN]) == SYNC_LEN
    for i in range(3):                                                     # chain i alone in slot i
        slot = frame[:, SYNC_LEN + 16 + i * n: SYNC_LEN + 16 + (i + 1) * n]
        np.testing.assert_allclose(slot[i], cal.stimulus(), atol=1e-12)
        assert np.count_nonzero(np.delete(slot, i, axis=0)) == 0


def _fake_open_checked(fe, backend_seen):
    """open_frontend stand-in that checks the chain counts the CLI asks for."""
    def open_frontend(backend, uri, *, n_tx, n_rx, **kw):
        assert (n_tx, n_rx) == (fe.n_tx, fe.n_rx), ((n_tx, n_rx), (fe.n_tx, fe.n_rx))
        backend_seen.append(backend)
        return fe
    return open_frontend


@pytest.mark.parametrize("backend", ["pluto", "uhd"])
@pytest.mark.parametrize("side", ["rx", "tx"])
def test_cli_chains_hardware_with_fake_front_end(monkeypatch, capsys, tmp_path, backend, side):
    """``calibrate chains --backend pluto|uhd --side rx|tx``: the same code on both backends; the file
    carries the front end's key; the SigMF raw captures re-estimate to the same coefficients."""
    from calibration import frontend
    from calibration.chains import ChainCal
    from calibration.hw_measure import GUARD, SYNC_LEN
    n_default_tx = 2 if backend == "pluto" else 1                          # TX chains opened for the rx side
    fe = _chains_fe(7, side, 2, n_tx_rx_side=n_default_tx)
    seen = []
    monkeypatch.setattr(frontend, "open_frontend", _fake_open_checked(fe, seen))
    rc = cli.main(["chains", "--backend", backend, "--side", side, "--n-chains", "2", "--json",
                   "--out", str(tmp_path / "c"), "--sigmf", str(tmp_path / "sig")])
    out, err = capsys.readouterr()
    assert rc == 0, err
    assert seen == [backend]
    rep = json.loads(out)
    cal = Calibration.load(tmp_path / "c", expect_key={"hardware_ids": {"sdr": "fake://FAKE-0001"},
                                                       "lo_hz": fe.lo_hz, "fs_hz": fe.fs_hz})
    assert cal.kind == "ChainCal" and cal.params["side"] == side and cal.params["reference"] == 0
    g_true, d_true = _chain_truth(fe, side)
    err_ = _chain_errors(cal.coefs["gain"], cal.coefs["delay"], g_true, d_true)
    assert all(err_[k] < CHAIN_TOL[k] for k in CHAIN_TOL), err_
    # the JSON report says the same as the file
    np.testing.assert_allclose(rep["delay_samples"], cal.coefs["delay"], atol=1e-12)
    np.testing.assert_allclose(rep["gain_db"], 20 * np.log10(np.abs(cal.coefs["gain"])), atol=1e-9)
    key = json.loads((tmp_path / "c.json").read_text())["key"]
    assert key["hardware_ids"]["sdr_hw_serial"] == "FAKE-0001" and key["gains_db"] == [0.0] * (fe.n_rx + fe.n_tx)
    # raw captures: reps aligned periods; averaging them and cutting the slots gives the file's estimate
    from sigmf import sigmffile
    rec = sigmffile.fromfile(rep["sigmf"])
    assert rec.get_global_field("ris:calibration_id") == rep["calibration_id"]
    assert rec.get_global_field("ris:side") == side and len(rec.get_captures()) == 4
    y = np.asarray(rec.read_samples()).reshape(4, -1, 1 if side == "tx" else 2)      # (reps, P, R)
    mean = y.mean(axis=0).T.astype(np.complex128)
    n = cal.params["n_samples"]
    a = SYNC_LEN + GUARD
    data = mean[:, a:a + n] if side == "rx" else mean[0, a:a + 2 * n].reshape(2, n)
    again = ChainCal(n_chains=2, side=side, reference=0)
    again.run(data)
    np.testing.assert_allclose(again.coefs["delay"], cal.coefs["delay"], atol=1e-3)     # complex64 file
    np.testing.assert_allclose(again.coefs["gain"], cal.coefs["gain"], atol=1e-4)


def test_pluto_front_end_chains_glue(monkeypatch):
    """``calibrate chains`` RX side through PlutoFrontEnd (full-scale scaling, buffer sizing, flushes) over an
    ``adi.ad9361`` stand-in that forwards the DMA buffers to the fake bench (2 TX enabled, TX0 sends)."""
    import types
    from calibration.chains import ChainCal
    from calibration.frontend import PlutoFrontEnd
    from calibration.hw_measure import measure_chains
    sim = _chains_fe(3, "rx", 2, n_tx_rx_side=2)
    _Ad9361OverSimBench.bench = sim
    monkeypatch.setitem(sys.modules, "adi", types.SimpleNamespace(ad9361=_Ad9361OverSimBench))
    fe = PlutoFrontEnd("ip:fake", lo_hz=2.4e9, fs_hz=2e6, flush=2)
    cal = ChainCal(n_chains=2, side="rx", reference=0)
    run = measure_chains(fe, cal, reps=3)
    assert fe.sdr.rx_calls == 3 * 3 and fe.sdr.rx_buffer_size == run.extra["frame"].shape[1]
    cal.run(run.data)
    err = _chain_errors(cal.coefs["gain"], cal.coefs["delay"], *_chain_truth(sim, "rx"))
    assert all(err[k] < CHAIN_TOL[k] for k in CHAIN_TOL), err


def test_uhd_cyclic_tx_keeps_the_channels_in_step():
    """UhdFrontEnd's TX source: every channel repeats its own buffer, all starting on the same sample."""
    gr = pytest.importorskip("gnuradio.gr")
    from gnuradio import blocks
    from calibration.frontend import make_cyclic_tx
    P = 37
    bufs = np.stack([np.arange(P) + 1j, -(np.arange(P) + 2j), 3 * np.arange(P) + 0j]).astype(np.complex64)
    tb = gr.top_block()
    tx = make_cyclic_tx(3)
    tx.set(bufs)
    sinks = []
    for ch in range(3):
        h, v = blocks.head(gr.sizeof_gr_complex, 5 * P), blocks.vector_sink_c()
        tb.connect((tx, ch), h, v)
        sinks.append(v)
    tb.run()
    for ch in range(3):
        np.testing.assert_array_equal(np.asarray(sinks[ch].data()), np.tile(bufs[ch], 5))
    from calibration.errors import CalibrationError
    with pytest.raises(CalibrationError, match="bufs"):
        tx.set(bufs[:2])
