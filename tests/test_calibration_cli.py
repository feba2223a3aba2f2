"""``isac-testbed calibrate``: sim backend end to end, hardware backends fail cleanly, SigMF, layering."""
from __future__ import annotations

import json
import os
import subprocess
import sys

import numpy as np
import pytest

from isac_testbed import calibrate as cli
from calibration.base import Calibration

NO_HW = not (os.environ.get("SDR_URI") or os.environ.get("RIS_URI"))


def _run(capsys, argv):
    rc = cli.main(argv)
    out, err = capsys.readouterr()
    return rc, out, err


@pytest.mark.parametrize("what, checks", [
    ("chains", {"phase_error_deg_max": 1.0, "gain_error_db_max": 0.1, "delay_error_samples_max": 0.05}),
    ("channels", {"nmse_db": -15.0}),
    ("ris", {"state_phase_error_deg_max": 2.0, "state_gain_error_db_max": 0.2}),
    ("clutter", {"sinr_loss_db": 1.0}),
])
def test_sim_backend_json_report(capsys, tmp_path, what, checks):
    out_stem = tmp_path / f"cal_{what}"
    rc, out, err = _run(capsys, [what, "--backend", "sim", "--seed", "4", "--json", "--out", str(out_stem),
                                 "--sigmf", str(tmp_path / "sig")])
    assert rc == 0, err
    rep = json.loads(out)                        # exactly one JSON object on stdout
    for k, lim in checks.items():
        assert rep[k] < lim, (k, rep[k], lim)
    cal = Calibration.load(out_stem, expect_key={"fs_hz": 2e6, "hardware_ids": {"backend": "sim"}})
    assert cal.coefs is not None and rep["calibration_id"] in open(rep["sigmf"]).read()
    from sigmf import sigmffile
    rec = sigmffile.fromfile(rep["sigmf"])
    assert rec.read_samples().ndim in (1, 2) and rec.get_global_field("ris:calibration_id") == rep["calibration_id"]


def test_channels_nmse_matches_theory(capsys, tmp_path):
    rc, out, _ = _run(capsys, ["channels", "--seed", "1", "--json", "--out", str(tmp_path / "c")])
    rep = json.loads(out)
    assert rc == 0 and abs(rep["nmse_db"] - rep["nmse_theory_db"]) < 1.5, rep


def test_ris_board_file_loads_in_the_driver(capsys, tmp_path):
    pytest.importorskip("ris_driver.device")
    from ris_driver.device import BoardSpec
    rc, out, err = _run(capsys, ["ris", "--json", "--out", str(tmp_path / "t"), "--board-out", str(tmp_path / "b.json")])
    assert rc == 0, err
    board = BoardSpec.load(tmp_path / "b.json")
    table = np.load(tmp_path / "t.npz")["table"]
    np.testing.assert_allclose(board.gamma[:, :, 0], table)


@pytest.mark.skipif(not NO_HW, reason="hardware is configured (SDR_URI set)")
@pytest.mark.parametrize("backend", ["pluto", "uhd"])
def test_hardware_backend_without_hardware_fails_cleanly(capsys, tmp_path, monkeypatch, backend):
    monkeypatch.delenv("SDR_URI", raising=False)
    rc, out, err = _run(capsys, ["chains", "--backend", backend, "--out", str(tmp_path / "x")])
    assert rc == 2
    assert "Traceback" not in err and "calibrate:" in err and ("no " in err or "needs" in err), err
    assert not (tmp_path / "x.json").exists()


def test_calibrate_is_declared_in_the_cli_and_runs(capsys, tmp_path):
    """`calibrate` is a declared sub-command of isac-testbed; its sub-commands have only their own options."""
    from isac_testbed.cli import COMMANDS, main
    assert COMMANDS["calibrate"][1] == "isac_testbed.calibrate:add_parser"
    assert main(["calibrate", "chains", "--json", "--out", str(tmp_path / "c")]) == 0
    assert json.loads(capsys.readouterr().out)["phase_error_deg_max"] < 1.0
    # an option of another sub-command is refused by the parser (argparse exit 2)
    with pytest.raises(SystemExit) as e:
        main(["calibrate", "chains", "--codebook", "dft", "--out", str(tmp_path / "d")])
    assert e.value.code == 2 and "--codebook" in capsys.readouterr().err


def test_sigmf_round_trip(tmp_path):
    from sigmf import sigmffile
    from calibration.sigmf_io import pattern_hex, write_recording
    x = (np.arange(40) + 1j * np.arange(40)[::-1]).reshape(20, 2).astype(np.complex64)
    meta = write_recording(tmp_path, "r", x, sample_rate=1e6, frequency=5.8e9, global_extra={"seed": 3},
                           segments=[(0, {"ris:pattern_hex": pattern_hex([1, 0, 1, 1, 0, 0, 0, 0, 1])}),
                                     (10, {"ris:pattern_hex": "00"})])
    rec = sigmffile.fromfile(meta)
    np.testing.assert_array_equal(rec.read_samples(), x)
    assert rec.get_captures()[0]["ris:pattern_hex"] == "b080"


def test_estimators_never_import_gnuradio_serial_zmq():
    code = ("import sys, importlib\n"
            "for b in ('gnuradio', 'serial', 'zmq'): sys.modules[b] = None\n"
            "for m in ('base', 'store', 'signals', 'chains', 'channels', 'ris_states', 'clutter', 'sim_bench',"
            " 'sigmf_io'):\n"
            "    importlib.import_module('calibration.' + m)\n")
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr[-2000:]


@pytest.mark.hardware
def test_pluto_chain_calibration_entry(capsys, tmp_path):
    """Real path: `calibrate chains --backend pluto` with RX0/RX1 fed from TX0 through a splitter."""
    uri = os.environ.get("SDR_URI")
    if not uri:
        pytest.skip("set SDR_URI (e.g. ip:192.168.2.1) to run")
    rc, out, err = _run(capsys, ["chains", "--backend", "pluto", "--uri", uri, "--json", "--out",
                                 str(tmp_path / "hw")])
    assert rc == 0, err
    cal = Calibration.load(tmp_path / "hw", expect_key={"hardware_ids": {"sdr": uri}})
    assert np.all(np.isfinite(cal.coefs["delay"])) and cal.coefs["delay"][0] == 0.0


class _FakeAd9361:
    """Stands in for ``adi.ad9361``: the cyclic TX frame reaches both RX ports through hidden chain errors;
    every rx() starts at another point of the period (a circular shift), like the real cyclic buffer."""

    truth = None

    def __init__(self, uri):
        self.uri, self._tx, self._start = uri, None, 0
        self._rng = np.random.default_rng(0)

    def tx(self, bufs):
        self._tx = [np.asarray(b, complex) for b in bufs]

    def tx_destroy_buffer(self):
        self._tx = None

    def rx(self):
        from calibration.chains import ChainCal
        frame = self._tx[0] / 2 ** 14
        n = frame.size
        cal = ChainCal.from_coefs(self.truth, n_chains=2, preamble_len=1021, root=25, offset=64)
        y = cal.embed(np.roll(frame, -self._start))                  # same circular shift on both ports
        self._start = int(self._rng.integers(0, n))
        return list(y * 2 ** 11 + 1e-3 * (self._rng.standard_normal(y.shape) + 1j * self._rng.standard_normal(y.shape)))


def test_pluto_path_with_a_fake_pyadi(capsys, tmp_path, monkeypatch):
    """The hardware entry end to end against a pyadi-iio stand-in: relative phase/gain/delay recovered."""
    import types
    pytest.importorskip("iio")
    _FakeAd9361.truth = {"gain": np.array([0.8 * np.exp(0.4j), 1.1 * np.exp(-2.1j)]), "delay": np.array([1.3, 4.05])}
    monkeypatch.setitem(sys.modules, "adi", types.SimpleNamespace(ad9361=_FakeAd9361))
    rc, out, err = _run(capsys, ["chains", "--backend", "pluto", "--uri", "ip:fake", "--json",
                                 "--out", str(tmp_path / "hw")])
    assert rc == 0, err
    rep = json.loads(out)
    t = _FakeAd9361.truth
    assert rep["delay_samples"][1] == pytest.approx(t["delay"][1] - t["delay"][0], abs=0.01)
    dphi = np.angle(np.exp(1j * np.radians(rep["phase_deg"][1])) / (t["gain"][1] / t["gain"][0]))
    assert abs(np.degrees(dphi)) < 0.5
    assert rep["gain_db"][1] == pytest.approx(20 * np.log10(1.1 / 0.8), abs=0.05)
