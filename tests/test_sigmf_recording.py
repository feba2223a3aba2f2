"""``run --record`` SigMF recordings tell the truth about the radio and the frames (issue 15, item 4)."""
from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import sys
import time

import numpy as np
import pytest

pytest.importorskip("gnuradio")
sigmf = pytest.importorskip("sigmf")
pytestmark = pytest.mark.gnuradio


@pytest.fixture(scope="module")
def design_file(init_design_file):
    return init_design_file


def _parse(argv):
    from isac_testbed import run as cli
    ap = argparse.ArgumentParser(prog="isac-testbed")
    cli.add_parser(ap.add_subparsers(dest="cmd"))
    return ap.parse_args(argv)


def _when(s: str) -> float:
    return dt.datetime.strptime(s, "%Y-%m-%dT%H:%M:%S.%fZ").replace(tzinfo=dt.timezone.utc).timestamp()


def test_run_record_is_valid_sigmf_with_one_annotation_per_frame(design_file, tmp_path, capsys):
    from sigmf import sigmffile
    from isac_opt.bench.framing import design_id
    from isac_opt.designfile import file_hash, load_design
    frames = 120
    rec = tmp_path / "rec"
    args = _parse(["run", "--design", str(design_file), "--frames", str(frames), "--json", "--record", str(rec),
                   "--fs-hz", "2e6"])
    args.func(args)
    t_after = time.time()
    rep = json.loads(capsys.readouterr().out)
    d = load_design(design_file)
    for name, nch in (("radar", d.scenario.M), ("users", d.scenario.K)):
        s = sigmffile.fromfile(str(rec / name))
        s.validate()                                                   # the sigmf package's own schema check
        gi = s.get_global_info()
        assert gi["core:datatype"] == ("cf32_le" if sys.byteorder == "little" else "cf32_be")
        assert gi["core:sample_rate"] == 2e6 and gi["core:num_channels"] == nch
        x = s.read_samples()
        F = gi["isac:frame_len"]
        assert x.shape == (frames * F, nch), "exactly frames*F samples: no end-marker sample"
        raw = np.fromfile(rec / f"{name}.sigmf-data", dtype="<c8")
        assert raw.size == frames * F * nch
        ann = s.get_annotations()
        assert len(ann) == frames
        assert not os.path.isabs(gi["isac:design_file"])               # relative to the recording
        used = rec / gi["isac:design_file"]                              # the design the run streamed
        du = load_design(used)
        did = design_id(du.X, du.phi)
        for i, a in enumerate(ann):
            assert a["core:sample_start"] == i * F and a["core:sample_count"] == F
            assert a["isac:frame_id"] == i and a["isac:design_id"] == did
            assert a["isac:target_present"] == (i % 2 == 0)               # the sim's alternate schedule (truth tags)
        assert gi["isac:design_hash"] == file_hash(used) == rep["design_hash"]
        cap = s.get_captures()[0]
        assert "core:frequency" not in cap                              # simulated: no carrier
        # the capture datetime is the start of the streams, not the end of the run
        assert _when(cap["core:datetime"]) <= t_after - rep["flowgraph_s"] + 0.02


def test_hardware_recording_carries_rate_and_frequency(design_file, tmp_path):
    """pluto/uhd: core:sample_rate and core:frequency are the radio's; target truth unknown -> null."""
    from sigmf import sigmffile
    from blocks._record import finish_recording
    from isac_opt.designfile import load_design
    d = load_design(design_file)
    F, frames = 22, 5
    rec = tmp_path / "hw"
    rec.mkdir()
    rng = np.random.default_rng(0)
    paths = (rec / "radar.sigmf-data", rec / "users.sigmf-data")
    for p, n in zip(paths, (d.scenario.M, d.scenario.K)):
        (rng.standard_normal((frames * F + 1, n)) + 0j).astype(np.complex64).tofile(p)
    det = {"frame": np.arange(frames), "target": -np.ones(frames, np.int8)}
    out = finish_recording(paths, design=d, design_path=design_file, work=rec, frames=frames, frame_len=F, det=det,
                           backend="pluto", fs_hz=1.92e6, lo_hz=2.45e9, start_utc="2026-01-02T03:04:05.000006Z",
                           extra={})
    s = sigmffile.fromfile(out[0])
    s.validate()
    assert s.get_global_info()["core:sample_rate"] == 1.92e6
    cap = s.get_captures()[0]
    assert cap["core:frequency"] == 2.45e9 and cap["core:datetime"] == "2026-01-02T03:04:05.000006Z"
    assert all(a["isac:target_present"] is None for a in s.get_annotations())
    assert s.read_samples().shape == (frames * F, d.scenario.M)


def test_datatype_names_the_host_byte_order(monkeypatch):
    from blocks import _record
    monkeypatch.setattr(_record.sys, "byteorder", "big")
    assert _record.sigmf_cf32() == "cf32_be"
    monkeypatch.setattr(_record.sys, "byteorder", "little")
    assert _record.sigmf_cf32() == "cf32_le"


def test_calibration_recording_is_little_endian_bytes(tmp_path):
    from calibration.sigmf_io import write_recording
    x = (np.arange(6) + 1j * np.arange(6)).astype(">c16").reshape(3, 2)            # big-endian input
    meta = write_recording(tmp_path, "r", x, sample_rate=1e6, frequency=2.4e9)
    raw = (tmp_path / "r.sigmf-data").read_bytes()
    assert raw == np.asarray(x, "<c8").tobytes()
    assert json.loads(open(meta).read())["global"]["core:datatype"] == "cf32_le"
