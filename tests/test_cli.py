"""The `isac-testbed` command line: design/evaluate reports, and clear errors for bad input."""
import json
import subprocess
import sys
from pathlib import Path

import pytest

from isac_testbed.cli import main

VENV_BIN = Path(sys.executable).parent


def test_design_and_evaluate_json(tmp_path, capsys):
    out = tmp_path / "d.npz"
    assert main(["design", "--scenario", "paper-a", "--method", "init", "--seed", "3", "--out", str(out), "--json"]) == 0
    rep = json.loads(capsys.readouterr().out)
    assert main(["evaluate", str(out), "--json", "--pfa", "1e-2"]) == 0
    ev = json.loads(capsys.readouterr().out)
    for k in ("sinr_db", "crb", "ci_min_margin", "ser", "pd"):
        assert k in ev
    assert ev["sinr_db"] == pytest.approx(rep["sinr_db"], rel=1e-12)
    assert ev["pfa"] == 1e-2 and ev["pd"] > rep["pd"]          # larger Pfa, larger Pd


def test_design_from_toml_and_channels_file(tmp_path, capsys):
    assert main(["scenario", "paper-a", "--out", str(tmp_path / "s.toml")]) == 0
    text = (tmp_path / "s.toml").read_text().replace("N = 64", "N = 16")
    (tmp_path / "s.toml").write_text(text)
    assert main(["design", "--scenario", str(tmp_path / "s.toml"), "--method", "init", "--seed", "1",
                 "--out", str(tmp_path / "d.npz"), "--json", "--allow-infeasible"]) == 0
    rep = json.loads(capsys.readouterr().out)
    assert rep["method"] == "init"
    # the design's own file doubles as a channels file
    assert main(["design", "--scenario", str(tmp_path / "s.toml"), "--method", "init", "--seed", "1",
                 "--channels", str(tmp_path / "d.npz"), "--out", str(tmp_path / "d2.npz"), "--json",
                 "--allow-infeasible"]) == 0
    rep2 = json.loads(capsys.readouterr().out)
    assert rep2["sinr_db"] == pytest.approx(rep["sinr_db"], abs=1e-6)   # same channels + seed, same design


@pytest.mark.parametrize("argv, needle", [
    (["design", "--scenario", "nope", "--seed", "1", "--out", "x.npz"], "scenario"),
    (["design", "--method", "not-a-method", "--seed", "1", "--out", "x.npz"], "not-a-method"),
    (["evaluate", "/nonexistent.npz"], "no such design file"),
    (["reproduce", "no-such-figure"], "unknown reproduction target"),
])
def test_bad_input_one_line_error(argv, needle, capsys, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert err.startswith("isac-testbed ") and ": error: " in err and needle in err and "Traceback" not in err


def test_bad_toml_field_via_console_script(tmp_path):
    (tmp_path / "s.toml").write_text('kind = "paper-a"\npower_w = -5.0\n')
    r = subprocess.run([str(VENV_BIN / "isac-testbed"), "design", "--scenario", str(tmp_path / "s.toml"),
                        "--seed", "1", "--out", str(tmp_path / "x.npz")], capture_output=True, text=True)
    assert r.returncode == 2
    assert "'power_w'" in r.stderr and "Traceback" not in r.stderr


def test_help_everywhere():
    for argv in (["--help"], ["design", "--help"], ["evaluate", "--help"], ["reproduce", "--help"],
                 ["train", "--help"], ["demo", "--help"]):
        with pytest.raises(SystemExit) as e:
            main(argv)
        assert e.value.code == 0


def test_reproduce_executor_flags_errors(capsys, tmp_path):
    # a target without Monte-Carlo chunks refuses a distributed executor instead of ignoring it
    assert main(["reproduce", "fig8", "--executor", "dask", "--out", str(tmp_path)]) == 2
    assert "supported by fig4-fig7" in capsys.readouterr().err
    # an unreachable scheduler is one line naming it
    assert main(["reproduce", "fig4", "--quick", "--scheduler", "tcp://127.0.0.1:1", "--out", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("isac-testbed ") and ": error: " in err and "scheduler" in err and "Traceback" not in err
