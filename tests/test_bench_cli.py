"""``isac-testbed run`` (isac_testbed/run.py): JSON report, SigMF recording, PNG, clean errors."""
from __future__ import annotations

import argparse
import json

import pytest

pytest.importorskip("gnuradio")
pytestmark = pytest.mark.gnuradio


@pytest.fixture(scope="module")
def design_file(init_design_file):
    return init_design_file


def _parse(argv):
    from isac_testbed import run as cli
    ap = argparse.ArgumentParser(prog="isac-testbed")
    sub = ap.add_subparsers(dest="cmd")
    cli.add_parser(sub)
    return ap.parse_args(argv)


def test_run_json_record_png(design_file, tmp_path, capsys):
    rec = tmp_path / "rec"
    png = tmp_path / "run.png"
    args = _parse(["run", "--design", str(design_file), "--frames", "400", "--json", "--record", str(rec),
                   "--png", str(png), "--ris", f"sim://cli_test_{tmp_path.name}?bits=4"])
    assert args.func(args) == 0
    rep = json.loads(capsys.readouterr().out)
    for k in ("sinr_designed_db", "sinr_measured_db", "ser_analytic", "ser_measured", "pfa", "pd_measured", "frames"):
        assert k in rep
    assert rep["frames"] == 400 and rep["frames_h0"] == rep["frames_h1"] == 200
    lo, hi = rep["sinr_measured_ci_db"]
    assert lo - 0.3 <= rep["sinr_predicted_db"] <= hi + 0.3
    assert png.stat().st_size > 10_000
    from sigmf import sigmffile
    from isac_opt.designfile import load_design
    d = load_design(design_file)
    s = sigmffile.fromfile(str(rec / "radar"))
    x = s.read_samples()
    assert x.shape[1] == d.scenario.M and x.shape[0] >= 400 * 22
    assert s.get_global_field("isac:design_hash") == rep["design_hash"]
    assert "isac:ris_state" in s.get_global_info() and "isac:software_version" in s.get_global_info()


def test_run_rejects_bad_arguments(design_file, capsys):
    from isac_testbed.cli import main
    assert main(["run", "--design", str(design_file), "--frames", "1"]) == 2
    err = capsys.readouterr().err
    assert "--frames" in err and err.startswith("isac-testbed run: error: ") and len(err.splitlines()) == 1
    # no Pluto attached (and M != 2): one clean error line
    assert main(["run", "--design", str(design_file), "--backend", "pluto", "--frames", "10"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("isac-testbed run: error: ") and "Traceback" not in err


def test_run_loads_each_design_file_once(design_file, tmp_path, capsys, monkeypatch):
    """The orchestration and every block of the flowgraph share one loaded design per file."""
    import collections
    from isac_opt import designfile
    from isac_testbed.cli import main
    counts = collections.Counter()
    real = designfile._load_design

    def counting(path):
        counts[str(path)] += 1
        return real(path)
    monkeypatch.setattr(designfile, "_load_design", counting)
    designfile._CACHE.clear()
    assert main(["run", "--design", str(design_file), "--frames", "20", "--ris", "ideal", "--json"]) == 0
    json.loads(capsys.readouterr().out)
    assert counts and max(counts.values()) == 1, counts
