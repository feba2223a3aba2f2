"""Issue 16: hardening regressions — no code execution from data files, an authenticated and bounded RIS
server, honest interruptions, and one clear line (non-zero exit) for every bad input found by probing.

Each test failed on the code before the fix (see the commit messages / the issue's probe table).
Property tests (hypothesis) cover scenario TOML, design meta, RIS URLs and calibration files: whatever
the input, the loader either accepts it within bounds or raises the project's typed error — never a
traceback of another type, never a hang.
"""
from __future__ import annotations

import json
import logging
import math
import os
import pickle
import re
import signal
import threading
import time
import zipfile
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

ROOT = Path(__file__).resolve().parents[1]
FAST = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])


def _cli(argv, capsys=None):
    from isac_testbed.cli import main
    rc = main([str(a) for a in argv])
    if capsys is None:
        return rc
    cap = capsys.readouterr()
    return rc, cap.out, cap.err


def _one_line_error(rc, err, *words):
    lines = [ln for ln in err.strip().splitlines() if ln.strip()]
    assert rc != 0, (rc, err)
    assert len(lines) == 1 and "Traceback" not in err, err
    for w in words:
        assert w in lines[0], (w, lines[0])
    return lines[0]


class _Plant:
    """A pickle whose loading creates ``marker`` (stands for arbitrary code)."""

    def __init__(self, marker):
        self.marker = str(marker)

    def __reduce__(self):
        return (open, (self.marker, "w"))


@pytest.fixture(scope="module")
def design_path(init_design_file):
    return init_design_file


# =============================================================================== 1. no pickle
UNSAFE = [
    (re.compile(r"\bpickle\.loads?\("), "pickle.load"),
    (re.compile(r"\b(?:cloudpickle|dill|joblib)\.loads?\("), "pickle-based load"),
    (re.compile(r"\bmarshal\.loads?\(|\bshelve\.open\("), "marshal/shelve"),
    (re.compile(r"allow_pickle\s*=\s*True"), "np.load(allow_pickle=True)"),
    (re.compile(r"\byaml\.load\((?![^)]*SafeLoader)"), "yaml.load without SafeLoader"),
]


def test_no_code_executing_deserialiser_in_the_source_tree():
    """Every torch.load passes weights_only=True; no pickle/marshal/shelve/allow_pickle=True anywhere."""
    bad = []
    for pkg in ("isac_opt", "blocks", "calibration", "ris_driver", "benchmarks", "scripts"):
        for f in (ROOT / pkg).rglob("*.py"):
            text = f.read_text()
            for rx, what in UNSAFE:
                for m in rx.finditer(text):
                    bad.append(f"{f.relative_to(ROOT)}:{text[:m.start()].count(chr(10)) + 1}: {what}")
            for m in re.finditer(r"\btorch\.load\(", text):
                call = text[m.start():text.find(")", m.start()) + 1]
                if "weights_only=True" not in call:
                    bad.append(f"{f.relative_to(ROOT)}:{text[:m.start()].count(chr(10)) + 1}: torch.load {call}")
    assert not bad, "unsafe deserialisers:\n" + "\n".join(bad)


def test_train_detect_never_unpickles_a_planted_cache(tmp_path, capsys):
    """A pickle planted as DIR/starts.pkl used to run when `train detect --out DIR` started."""
    marker = tmp_path / "PWNED"
    out = tmp_path / "train"
    out.mkdir()
    with open(out / "starts.pkl", "wb") as f:
        pickle.dump(_Plant(marker), f)
    assert _cli(["train", "detect", "--quick", "--out", out]) == 0
    assert not marker.exists(), "the planted pickle was executed"
    assert "ignoring" in capsys.readouterr().err
    assert (out / "starts.npz").exists() and (out / "detect_paper-a.pt").exists()


def test_start_point_cache_round_trip_and_planted_npz(tmp_path):
    """The npz cache holds the same start points; an object array (pickle inside .npy) is refused."""
    from isac_opt.paper_a.scenario import ScenarioA
    from isac_opt.paper_a.detect import train as tr
    from isac_opt.errors import IsacError
    scn = ScenarioA(N=8, L=6)
    o = dict(tr.DEFAULTS, n_train=2, n_test=1, seed=3)
    a, b = tr._cached_starts(tmp_path, scn, o)
    a2, b2 = tr._cached_starts(tmp_path, scn, o)            # from the cache now
    for s, s2 in zip(a + b, a2 + b2):
        np.testing.assert_array_equal(s.X0, s2.X0)
        np.testing.assert_array_equal(s.phi0, s2.phi0)
        np.testing.assert_array_equal(s.channels.G, s2.channels.G)
        assert s.t_star == s2.t_star or (math.isnan(s.t_star) and math.isnan(s2.t_star))
    # another seed: the key differs, so the cache is recomputed rather than reused
    a3, _ = tr._cached_starts(tmp_path, scn, dict(o, seed=4))
    assert not np.array_equal(a3[0].X0, a[0].X0)
    marker = tmp_path / "PWNED"
    np.savez(tmp_path / "starts.npz", key=np.array([_Plant(marker)], dtype=object))
    with pytest.raises(IsacError, match="starts.npz"):
        tr._cached_starts(tmp_path, scn, o)
    assert not marker.exists()


# ================================================================================= 3. RIS server
@pytest.fixture(scope="module")
def keys(tmp_path_factory):
    from ris_driver.zmq_link import generate_keys
    d = tmp_path_factory.mktemp("curve")
    k = {}
    k["spub"], k["ssec"] = generate_keys(d / "server", "server")
    k["apub"], k["asec"] = generate_keys(d / "allowed", "alice")
    k["mpub"], k["msec"] = generate_keys(d / "other", "mallory")
    k["allow"] = d / "allowed"
    return k


def test_curve_server_serves_a_client_with_an_allowed_key_only(keys):
    from ris_driver import open_ris
    from ris_driver.errors import RisTimeout
    from ris_driver.zmq_link import RisServer
    dev = open_ris("sim://robust_curve?n=16&bits=2")
    with RisServer(dev, "tcp://127.0.0.1:0", "tcp://127.0.0.1:0", secret_key=keys["ssec"],
                   allow_dir=keys["allow"]) as srv:
        srv.start()
        ep = srv.rep_endpoint[len("tcp://"):]
        assert srv.secure
        with open_ris(f"zmq://{ep}?server_key={keys['spub']}&client_key={keys['asec']}&timeout_ms=3000") as c:
            from ris_driver import Pattern
            p = Pattern(tuple(i % 4 for i in range(16)))
            assert c.apply(p).pattern == p and c.read_back() == p
        served = srv.requests
        for url in (f"zmq://{ep}?timeout_ms=300&retries=0",                                   # no key
                    f"zmq://{ep}?server_key={keys['spub']}&client_key={keys['msec']}&timeout_ms=300&retries=0"):
            with pytest.raises(RisTimeout):
                open_ris(url)
        assert srv.requests == served, "a client without an allowed key reached the request handler"
        assert dev.read_back() == p                                          # nobody else changed it


def test_server_refuses_non_loopback_without_keys(keys):
    from ris_driver import open_ris
    from ris_driver.errors import RisError
    from ris_driver.zmq_link import RisServer, is_loopback
    assert is_loopback("tcp://127.0.0.1:5555") and is_loopback("zmq://localhost:1") and is_loopback("ipc:///tmp/x")
    assert not is_loopback("tcp://0.0.0.0:5555") and not is_loopback("tcp://*:5555")
    assert not is_loopback("tcp://10.0.0.5:5555") and not is_loopback("tcp://lab-host:5555")
    dev = open_ris("sim://robust_exposed?n=4")
    for rep, pub in (("tcp://0.0.0.0:0", None), ("tcp://127.0.0.1:0", "tcp://*:0")):
        with pytest.raises(RisError, match="refusing to bind"):
            RisServer(dev, rep, pub)
    with pytest.raises(RisError, match="--allow"):
        RisServer(dev, "tcp://127.0.0.1:0", secret_key=keys["ssec"])
    with pytest.raises(RisError, match="secret key"):
        RisServer(dev, "tcp://127.0.0.1:0", secret_key=keys["spub"], allow_dir=keys["allow"])


def test_ris_serve_cli_refuses_before_opening_the_device(capsys):
    rc, out, err = _cli(["ris", "serve", "sim://robust_cli?n=4", "--rep", "tcp://0.0.0.0:0", "--pub", "",
                         "--duration", "0.1"], capsys)
    _one_line_error(rc, err, "refusing to bind", "--insecure")


def test_ris_serve_cli_with_keys_on_loopback(keys, tmp_path, capsys):
    rc, out, err = _cli(["ris", "keygen", tmp_path, "--name", "bench"], capsys)
    assert rc == 0 and (tmp_path / "bench.key").exists() and (tmp_path / "bench.key_secret").exists()
    assert (tmp_path / "bench.key_secret").stat().st_mode & 0o077 == 0
    rc, out, err = _cli(["ris", "keygen", tmp_path, "--name", "bench"], capsys)
    _one_line_error(rc, err, "refusing to overwrite")
    rc, out, err = _cli(["ris", "serve", "sim://robust_cli2?n=4", "--rep", "tcp://127.0.0.1:0", "--pub", "",
                         "--keys", tmp_path / "bench.key_secret", "--allow", keys["allow"], "--duration", "0.2"],
                        capsys)
    assert rc == 0 and "serving" in out, err


def test_oversized_request_is_dropped_and_the_server_keeps_serving():
    import zmq
    from ris_driver import open_ris
    from ris_driver.zmq_link import RisServer
    dev = open_ris("sim://robust_big?n=8")
    with RisServer(dev, "tcp://127.0.0.1:0", None, max_msg_bytes=64 * 1024) as srv:
        srv.start()
        s = zmq.Context.instance().socket(zmq.REQ)
        s.setsockopt(zmq.LINGER, 0)
        s.setsockopt(zmq.RCVTIMEO, 500)
        s.connect(srv.rep_endpoint)
        s.send(b'{"op": "ping", "pad": "' + b"x" * (4 << 20) + b'"}')
        with pytest.raises(zmq.Again):
            s.recv()
        s.close()
        assert srv.requests == 0                           # never handed to the handler
        with open_ris(f"zmq://{srv.rep_endpoint[6:]}?timeout_ms=3000") as c:
            assert c.read_back().phase == (0,) * 8


# ======================================================================= 4. interruptions and limits
def _run_args(argv):
    import argparse
    from isac_testbed import run as cli
    ap = argparse.ArgumentParser(prog="isac-testbed")
    cli.add_parser(ap.add_subparsers(dest="cmd"))
    return ap.parse_args([str(a) for a in argv])


@pytest.mark.gnuradio
@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM], ids=["SIGINT", "SIGTERM"])
def test_signal_during_run_gives_an_interrupted_report(design_path, tmp_path, capsys, monkeypatch, sig):
    """SIGINT used to exit 0 with a normal-looking report, throughput from the frames *asked*."""
    pytest.importorskip("gnuradio")
    from blocks import _interrupt
    seen = {}
    orig = _interrupt.StopOnSignal.attach

    def attach(self, tb):
        if tb is not None:
            seen["tb"] = tb
        orig(self, tb)
    monkeypatch.setattr(_interrupt.StopOnSignal, "attach", attach)

    def killer():
        t0 = time.monotonic()
        while time.monotonic() - t0 < 120:
            tb = seen.get("tb")
            if tb is not None and tb.det.core.results()["frame"].size >= 200:
                break
            time.sleep(0.02)
        os.kill(os.getpid(), sig)                          # (after 120 s anyway: the test must end)
    th = threading.Thread(target=killer, daemon=True)
    th.start()
    rec = tmp_path / "rec"
    args = _run_args(["run", "--design", design_path, "--frames", 10_000_000, "--ris", "ideal", "--json",
                      "--record", rec])
    rc = args.func(args)
    th.join(5)
    cap = capsys.readouterr()
    assert rc == 128 + sig, cap.err
    rep = json.loads(cap.out)
    assert rep["interrupted"] is True and rep["signal"] == signal.Signals(sig).name
    assert 200 <= rep["frames_processed"] < rep["frames_requested"] == 10_000_000
    assert rep["frames"] == rep["frames_processed"]
    F, M = 22, 6                                              # frame length L + gap, antennas of paper A
    assert rep["samples_per_s"] == pytest.approx(rep["frames_processed"] * F * M / rep["flowgraph_s"], rel=1e-9)
    assert "interrupted" in cap.err and len(cap.err.strip().splitlines()) == 1
    meta = json.loads((rec / "radar.sigmf-meta").read_text())["global"]
    assert meta["isac:frames"] == rep["frames_processed"] and meta["isac:interrupted"] is True
    assert meta["isac:frames_requested"] == 10_000_000


@pytest.mark.gnuradio
def test_run_removes_its_temporary_directory_and_counts_processed_frames(design_path, tmp_path, monkeypatch,
                                                                         capsys):
    pytest.importorskip("gnuradio")
    import tempfile
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    args = _run_args(["run", "--design", design_path, "--frames", 40, "--ris", "sim://robust_tmp?bits=4",
                      "--json"])
    assert args.func(args) == 0
    rep = json.loads(capsys.readouterr().out)
    assert rep["interrupted"] is False and rep["frames_processed"] == rep["frames"] == 40
    assert rep["design_file"].startswith("(temporary")          # a refit design lived in the temp dir
    assert not list(tmp_path.glob("risisac_run_*")), "run left its temporary directory behind"


def _chain_cal(path, side="rx", gain=None, delay=None, M=6):
    from calibration import ChainCal, make_key
    from calibration.use import sim_sdr_id
    gain = np.exp(1j * np.arange(M)) if gain is None else gain
    delay = np.zeros(M) if delay is None else delay
    ChainCal.from_coefs({"gain": gain, "delay": delay, "cfo": np.zeros(M)}, n_chains=M, side=side).save(
        path, key=make_key(hardware_ids={"sdr": sim_sdr_id(None)}, lo_hz=5.8e9, fs_hz=2e6))
    return str(path) + ".json"


@pytest.mark.parametrize("side", ["tx", "rx"])
def test_calibration_with_a_huge_delay_is_rejected_not_hung(tmp_path, side):
    """A 1e12-sample delay hung `run` (TX) or asked for 87 TiB (RX)."""
    from calibration import CalibrationError
    from calibration.use import RxCorrector, TxCorrection, load_chain_cal
    from calibration import ChainCal
    p = _chain_cal(tmp_path / "huge", side, delay=np.array([1e12, 0, 0, 0, 0, 0.0]))
    t0 = time.monotonic()
    with pytest.raises(CalibrationError, match=r"delay.*<= 4096"):
        load_chain_cal(p, n_chains=6, side=side)
    assert time.monotonic() - t0 < 5
    cal = ChainCal.from_coefs({"gain": np.ones(6, complex), "delay": np.array([1e12] + [0.0] * 5)}, n_chains=6)
    for cls in (TxCorrection, RxCorrector):
        with pytest.raises(CalibrationError, match="delay"):
            cls(cal)
    with pytest.raises(CalibrationError, match="gain"):
        load_chain_cal(_chain_cal(tmp_path / "loud", side, gain=np.full(6, 1e9 + 0j)), n_chains=6, side=side)


@pytest.mark.gnuradio
def test_run_with_a_huge_delay_calibration_fails_in_one_line(design_path, tmp_path, capsys):
    pytest.importorskip("gnuradio")
    p = _chain_cal(tmp_path / "txhuge", "tx", delay=np.array([1e12, 0, 0, 0, 0, 0.0]))
    rc, out, err = _cli(["run", "--design", design_path, "--frames", 20, "--ris", "ideal", "--tx-cal", p], capsys)
    _one_line_error(rc, err, "delay", "4096")


# ============================================================================= 5. files and inputs
def test_design_refuses_to_overwrite_and_checks_out_before_designing(tmp_path, capsys):
    important = tmp_path / "important.csv"
    important.write_text("precious\n")
    # --scenario does not exist: the --out check must come first (before any work)
    rc, out, err = _cli(["design", "--scenario", tmp_path / "missing.toml", "--seed", 0, "--out", important],
                        capsys)
    _one_line_error(rc, err, "--out", "exists", "--force")
    assert important.read_text() == "precious\n"
    rc, out, err = _cli(["design", "--scenario", tmp_path / "missing.toml", "--seed", 0, "--out", tmp_path], capsys)
    _one_line_error(rc, err, "is a directory")
    blocker = tmp_path / "afile"
    blocker.write_text("")
    rc, out, err = _cli(["design", "--seed", 0, "--out", blocker / "sub" / "d.npz"], capsys)
    _one_line_error(rc, err, "not a directory")
    rc, out, err = _cli(["design", "--method", "init", "--seed", 0, "--out", important, "--force"], capsys)
    assert rc == 0, err
    from isac_opt.designfile import load_design
    assert load_design(important).method
    assert not list(tmp_path.glob(".important.csv.*")), "temporary file left behind"


def test_scenario_out_refuses_to_overwrite(tmp_path, capsys):
    f = tmp_path / "s.toml"
    f.write_text("keep")
    rc, out, err = _cli(["scenario", "paper-a", "--out", f], capsys)
    _one_line_error(rc, err, "--out", "exists")
    assert f.read_text() == "keep"
    assert _cli(["scenario", "paper-a", "--out", f, "--force"]) == 0
    from isac_opt.paper_a.scenario import ScenarioA
    from isac_opt.scenario import load_scenario
    assert load_scenario(f) == ScenarioA()


@pytest.mark.gnuradio
def test_run_record_refuses_an_existing_directory(design_path, tmp_path, capsys):
    pytest.importorskip("gnuradio")
    rec = tmp_path / "rec"
    rec.mkdir()
    (rec / "radar.sigmf-data").write_bytes(b"old capture")
    rc, out, err = _cli(["run", "--design", design_path, "--frames", 4, "--ris", "ideal", "--record", rec], capsys)
    _one_line_error(rc, err, "--record", "not empty", "--force")
    assert (rec / "radar.sigmf-data").read_bytes() == b"old capture"
    rc, out, err = _cli(["run", "--design", design_path, "--frames", 4, "--ris", "ideal", "--record",
                         rec / "radar.sigmf-data"], capsys)
    _one_line_error(rc, err, "--record", "not a directory")
    rc, out, err = _cli(["run", "--design", design_path, "--frames", 4, "--ris", "ideal", "--png", tmp_path], capsys)
    _one_line_error(rc, err, "--png", "is a directory")


@pytest.mark.parametrize("pfa", ["2", "0", "1", "nan", "-0.1", "inf"])
def test_pfa_is_validated_for_every_command(design_path, tmp_path, capsys, pfa):
    """`evaluate --pfa 2` printed pd 1.028; `design --pfa 2` too."""
    cmds = [["evaluate", design_path], ["design", "--seed", 0, "--out", tmp_path / "never.npz"]]
    if _has_gnuradio():
        cmds.append(["run", "--design", design_path, "--frames", 4])
    for cmd in cmds:
        rc, out, err = _cli(cmd + ["--pfa", pfa], capsys)
        _one_line_error(rc, err, "--pfa", "0 < pfa < 1")
        assert out == ""
    assert not (tmp_path / "never.npz").exists()


def _has_gnuradio():
    try:
        import gnuradio  # noqa: F401
        return True
    except ImportError:
        return False


@pytest.mark.parametrize("text,field", [("N = 10000000\n", "'N'"), ("M = 64\nL = 64\n", "'M*L'"),
                                        ("K = 100000\n", "'K'"), ("Q = 10000000\n", "'Q'"),
                                        ('kind = "paper-b"\nN = 100000000\n', "'N'"),
                                        ('kind = "paper-b"\nPc = 1000\nL = 1000\n', "Pc*L"),
                                        ("", "empty")],
                         ids=["N", "ML", "K", "Q", "b-N", "b-PcLNt", "empty"])
def test_scenario_sizes_are_bounded_before_allocation(tmp_path, capsys, text, field):
    import tracemalloc
    f = tmp_path / "s.toml"
    f.write_text(text)
    tracemalloc.start()
    rc, out, err = _cli(["design", "--scenario", f, "--seed", 0, "--out", tmp_path / "d.npz"], capsys)
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    _one_line_error(rc, err, field)
    assert peak < 50e6, f"{peak / 1e6:.0f} MB allocated before the size check"


SIZE_FIELDS = {"M": 256, "N": 4096, "K": 64, "L": 1024, "Q": 64}


@FAST
@given(st.dictionaries(st.sampled_from(sorted(SIZE_FIELDS) + ["power_w", "psk_order", "kind", "bogus"]),
                       st.one_of(st.integers(-5, 10**9), st.floats(allow_nan=True), st.text(max_size=5),
                                 st.booleans()), max_size=4))
def test_property_scenario_toml_is_valid_or_one_scenario_error(tmp_path_factory, d):
    from isac_opt.scenario import SIZE_LIMITS, ScenarioBase, dumps_toml, load_scenario
    from isac_opt.errors import ScenarioError
    f = tmp_path_factory.mktemp("h") / "s.toml"
    try:
        f.write_text(dumps_toml(d))
    except ScenarioError:
        return                                   # not representable in TOML (nan/inf): nothing to load
    try:
        scn = load_scenario(f)
    except ScenarioError as e:
        assert "\n" not in str(e)
        return
    assert isinstance(scn, ScenarioBase) and d
    for k, hi in SIZE_LIMITS[scn.kind].items():
        if hasattr(scn, k):
            assert getattr(scn, k) <= hi


def _rewrite_meta(src, dst, edit):
    with np.load(src, allow_pickle=False) as z:
        arrays = {k: z[k] for k in z.files}
    meta = json.loads(str(arrays.pop("meta")))
    edit(meta)
    np.savez(dst, meta=np.array(json.dumps(meta)), **arrays)


@pytest.mark.parametrize("key,value", [("seed", "abc"), ("seed", [1]), ("scenario", [1, 2]), ("scenario", None),
                                       ("metrics", [1]), ("extra", "x"), ("format", 5), ("method", {"a": 1}),
                                       ("scenario", {"N": "x"}), ("scenario", {"N": 10**8})])
def test_design_meta_with_wrong_types_is_one_error(design_path, tmp_path, capsys, key, value):
    bad = tmp_path / "bad.npz"
    _rewrite_meta(design_path, bad, lambda m: m.__setitem__(key, value))
    rc, out, err = _cli(["evaluate", bad], capsys)
    _one_line_error(rc, err, str(bad))


JSONISH = st.recursive(st.one_of(st.none(), st.booleans(), st.integers(-10**12, 10**12), st.floats(allow_nan=False),
                                 st.text(max_size=8)),
                       lambda c: st.lists(c, max_size=3) | st.dictionaries(st.text(max_size=4), c, max_size=3),
                       max_leaves=6)


@FAST
@given(st.dictionaries(st.sampled_from(["seed", "scenario", "metrics", "extra", "format", "method", "version", "M"]),
                       JSONISH, min_size=1, max_size=3))
def test_property_design_meta_is_loaded_or_one_design_file_error(design_path, tmp_path_factory, edits):
    from isac_opt.designfile import load_design
    from isac_opt.errors import DesignFileError
    bad = tmp_path_factory.mktemp("m") / "bad.npz"
    _rewrite_meta(design_path, bad, lambda m: m.update(edits))
    try:
        d = load_design(bad)
    except DesignFileError as e:
        assert "\n" not in str(e)
        return
    assert d.X.shape == (d.scenario.M, d.scenario.L)


def test_design_file_that_decompresses_to_gigabytes_is_refused_before_decompressing(design_path, tmp_path):
    import tracemalloc
    from isac_opt.designfile import MAX_ARRAY_BYTES, load_design
    from isac_opt.errors import DesignFileError
    bomb = tmp_path / "bomb.npz"
    with zipfile.ZipFile(design_path) as src, zipfile.ZipFile(bomb, "w", zipfile.ZIP_DEFLATED) as dst:
        for i in src.infolist():
            if i.filename != "G.npy":
                dst.writestr(i.filename, src.read(i.filename))
        n = MAX_ARRAY_BYTES // 16 + (1 << 20)
        hdr = np.lib.format.header_data_from_array_1_0(np.zeros(0, np.complex128))
        hdr["shape"] = (n,)
        with dst.open("G.npy", "w", force_zip64=True) as g:
            np.lib.format.write_array_header_1_0(g, hdr)
            chunk = bytes(16 << 20)
            for _ in range(n * 16 // len(chunk) + 1):
                g.write(chunk)
    assert bomb.stat().st_size < 2e6
    tracemalloc.start()
    with pytest.raises(DesignFileError, match="decompress"):
        load_design(bomb)
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    assert peak < 20e6


# --- calibration files
def test_truncated_and_mistyped_calibration_files_are_one_error(tmp_path):
    from calibration import CalibrationError
    from calibration.use import load_chain_cal
    p = _chain_cal(tmp_path / "t")
    npz = tmp_path / "t.npz"
    npz.write_bytes(npz.read_bytes()[: npz.stat().st_size // 2])
    with pytest.raises(CalibrationError, match="truncated"):
        load_chain_cal(p, n_chains=6, side="rx")
    p = _chain_cal(tmp_path / "a")
    j = json.loads(Path(p).read_text())
    for bad in (["gain"], {"gain": 5}, {"gain": {"shape": ["x"]}}, {"gain": {"shape": [6], "dtype": "object"}}):
        Path(p).write_text(json.dumps(dict(j, arrays=bad)))
        with pytest.raises(CalibrationError, match="arrays"):
            load_chain_cal(p, n_chains=6, side="rx")
    Path(p).write_text(json.dumps(dict(j, npz="../../etc/passwd")))           # stays next to the .json
    with pytest.raises(CalibrationError, match="npz"):
        load_chain_cal(p, n_chains=6, side="rx")


def test_calibration_with_real_valued_gains_is_refused(tmp_path):
    from calibration import CalibrationError
    from calibration.use import load_chain_cal
    p = _chain_cal(tmp_path / "r")
    z = dict(np.load(tmp_path / "r.npz"))
    z["gain"] = np.abs(z["gain"])
    np.savez(tmp_path / "r.npz", **z)
    with pytest.raises(CalibrationError, match="dtype"):                 # disagrees with the .json
        load_chain_cal(p, n_chains=6, side="rx")
    j = json.loads(Path(p).read_text())
    j["arrays"]["gain"]["dtype"] = "float64"
    Path(p).write_text(json.dumps(j))
    with pytest.raises(CalibrationError, match="complex gains"):          # consistent but real: refused
        load_chain_cal(p, n_chains=6, side="rx")


@FAST
@given(delay=st.floats(-1e13, 1e13), gain_db=st.floats(-300, 300), phase=st.floats(-4, 4))
def test_property_chain_calibration_loads_within_bounds_or_one_error(tmp_path_factory, delay, gain_db, phase):
    from calibration import CalibrationError
    from calibration.use import MAX_CHAIN_DELAY, MAX_GAIN_DB, load_chain_cal
    g = np.full(6, 10 ** (gain_db / 20) * np.exp(1j * phase))
    d = np.array([delay, 0, 0, 0, 0, 0.0])
    try:
        p = _chain_cal(tmp_path_factory.mktemp("c") / "c", gain=g, delay=d)
    except CalibrationError:
        return                                                           # e.g. a gain that underflows to 0
    try:
        cal = load_chain_cal(p, n_chains=6, side="rx")
    except CalibrationError as e:
        assert "\n" not in str(e)
        assert abs(delay) > MAX_CHAIN_DELAY or abs(gain_db) > MAX_GAIN_DB - 1e-6
        return
    assert abs(cal.coefs["delay"][0]) <= MAX_CHAIN_DELAY


# --- RIS URLs
@pytest.mark.parametrize("url,param", [("sim://robust_x?rows=0", "rows"), ("sim://robust_x?cols=0", "cols"),
                                       ("sim://robust_z?drop=2", "drop"), ("sim://robust_z?drop=nan", "drop"),
                                       ("sim://robust_z?corrupt=-0.5", "corrupt"), ("sim://robust_z?silent=inf", "silent"),
                                       ("sim://robust_z?latency_ms=-1", "latency_ms"),
                                       ("sim://robust_z?timeout_ms=0", "timeout_ms"),
                                       ("sim://robust_z?retries=-1", "retries"), ("sim://robust_z?n=abc", "n")])
def test_bad_sim_url_parameters_are_one_line(capsys, url, param):
    rc, out, err = _cli(["ris", "info", url], capsys)
    _one_line_error(rc, err, repr(param))


@FAST
@given(st.dictionaries(st.sampled_from(["n", "rows", "cols", "bits", "drop", "corrupt", "silent", "latency_ms",
                                        "timeout_ms", "retries", "amps"]),
                       st.one_of(st.integers(-3, 5000).map(str), st.sampled_from(["nan", "inf", "-inf", "", "x",
                                                                                  "0.5", "1e400", "2"])),
                       max_size=3))
def test_property_sim_url_opens_a_sane_board_or_raises_value_error(params):
    from urllib.parse import urlencode
    from ris_driver import open_ris
    from ris_driver.errors import RisError
    from ris_driver.sim import remove_simulator
    name = "robust_prop"
    remove_simulator(name)
    url = f"sim://{name}?" + urlencode(params)
    try:
        dev = open_ris(url + ("&timeout_ms=50&retries=0" if "timeout_ms" not in params and "retries" not in params
                              else ""))
    except (ValueError, RisError) as e:        # RisError: a valid but lossy board (drop=1) never answered
        assert "\n" not in str(e)
        remove_simulator(name)
        return
    try:
        from ris_driver.sim import get_simulator
        f = get_simulator(name).faults
        for v in (f.drop_ack, f.corrupt, f.silent_apply):
            assert 0.0 <= v <= 1.0
        assert f.latency_s >= 0 and 1 <= dev.board.n <= 4096
    finally:
        dev.close()
        remove_simulator(name)


def test_read_back_mismatch_logs_are_summarised(caplog):
    """A recovered mismatch logged both whole patterns and amp lists (~1.5 kB per line)."""
    from ris_driver import Pattern, open_ris
    from ris_driver.sim import get_simulator
    dev = open_ris("sim://robust_log?rows=16&cols=16&bits=2&amps=2&amp_scope=element&verify=3")
    sb = get_simulator("robust_log")
    p = Pattern(tuple((i * 7) % 4 for i in range(256)), tuple(i % 2 for i in range(256)))
    sb.faults.silent_next_apply = 1                       # the first commit is acked but not applied
    with caplog.at_level(logging.WARNING, logger="ris_driver"):
        ack = dev.apply(p)
    assert ack.pattern == p and ack.cycles == 2
    msgs = [r.getMessage() for r in caplog.records if "mismatch" in r.getMessage()]
    assert msgs, caplog.text
    for m in msgs:
        assert len(m) < 300, len(m)
        assert re.search(r"phase: \d+ of 256 differ \(\[\d+\] \d!=\d", m), m
    dev.close()


def test_pattern_diff_counts_and_first_elements():
    from ris_driver import Pattern
    from ris_driver.patterndiff import pattern_diff
    want = Pattern(tuple(range(4)) * 64, (0,) * 256)
    got_phase = list(want.phase)
    for i in (3, 10, 11, 200, 255):
        got_phase[i] = (got_phase[i] + 1) % 4
    got = Pattern(tuple(got_phase), (0,) * 255 + (1,))
    s = pattern_diff(got, want, first=3)
    assert s.startswith("phase: 5 of 256 differ ([3] 0!=3, [10] 3!=2, [11] 0!=3, +2 more")
    assert "amp: 1 of 256 differ ([255] 1!=0" in s
    assert pattern_diff(want, want) == "no difference"


def test_calibrate_and_ris_sweep_refuse_to_overwrite_before_any_work(tmp_path, capsys):
    """`calibrate --out` (FILE.json + FILE.npz, --channels-out, --board-out) and `ris sweep --json-out`
    refuse an existing file without --force, before measuring; --force overwrites."""
    import time
    from isac_testbed.cli import main
    stem = tmp_path / "chains"
    (tmp_path / "chains.npz").write_bytes(b"precious")
    t0 = time.perf_counter()
    assert main(["calibrate", "chains", "--out", str(stem)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("isac-testbed calibrate: error: ") and "--force" in err and len(err.splitlines()) == 1
    assert (tmp_path / "chains.npz").read_bytes() == b"precious" and time.perf_counter() - t0 < 5
    assert main(["calibrate", "chains", "--out", str(stem), "--force", "--json"]) == 0
    capsys.readouterr()
    assert (tmp_path / "chains.npz").read_bytes() != b"precious" and (tmp_path / "chains.json").is_file()
    board = tmp_path / "board.json"
    board.write_text("{}")
    assert main(["calibrate", "ris", "--out", str(tmp_path / "ris"), "--board-out", str(board)]) == 2
    assert "--board-out" in capsys.readouterr().err and board.read_text() == "{}"
    log = tmp_path / "sweep.json"
    log.write_text("keep")
    assert main(["ris", "sweep", "sim://robust_sweep?n=4", "--count", "2", "--json-out", str(log)]) == 2
    assert "--force" in capsys.readouterr().err and log.read_text() == "keep"
    assert main(["ris", "sweep", "sim://robust_sweep?n=4", "--count", "2", "--json-out", str(log), "--force"]) == 0
    capsys.readouterr()
    assert log.read_text() != "keep"
