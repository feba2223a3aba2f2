"""``make grc`` / ``python -m blocks.grc_install``: GRC finds the blocks and its Python imports them.

Runs with a temporary HOME: the user's real ~/.gnuradio and user site are never touched.
"""
from __future__ import annotations

import configparser
import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]
SYS_PY = "/usr/bin/python3"


def _env(home):
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "GRC_BLOCKS_PATH", "PYTHONUSERBASE",
                                                              "VIRTUAL_ENV")}
    env["HOME"] = str(home)
    return env


@pytest.mark.skipif(not Path(SYS_PY).exists(), reason="no system python")
def test_install_registers_path_and_makes_blocks_importable(tmp_path):
    home = tmp_path / "home"
    (home / ".gnuradio").mkdir(parents=True)
    (home / ".gnuradio" / "config.conf").write_text("[grc]\nlocal_blocks_path = /opt/other_oot\n"
                                                    "[log]\ndebug_level = info\n")
    env = _env(home)
    # before: the system python cannot import the blocks (outside the repo directory)
    probe = [SYS_PY, "-c", "import blocks.frontend, isac_opt; print(blocks.frontend.__file__)"]
    before = subprocess.run(probe, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120)
    assert before.returncode != 0
    r = subprocess.run([sys.executable, "-m", "blocks.grc_install", "--python", SYS_PY], cwd=ROOT, env=env,
                       capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    cp = configparser.ConfigParser(interpolation=None)
    cp.read(home / ".gnuradio" / "config.conf")
    paths = cp.get("grc", "local_blocks_path").split(os.pathsep)
    assert paths == ["/opt/other_oot", str(ROOT / "grc")]                # kept the user's own path
    assert cp.get("log", "debug_level") == "info"
    after = subprocess.run(probe, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120)
    assert after.returncode == 0, after.stderr[-800:]
    assert after.stdout.strip() == str(ROOT / "blocks" / "frontend.py")
    # idempotent: a second run does not list the path twice
    subprocess.run([sys.executable, "-m", "blocks.grc_install", "--python", SYS_PY], cwd=ROOT, env=env,
                   capture_output=True, text=True, timeout=120, check=True)
    cp.read(home / ".gnuradio" / "config.conf")
    assert cp.get("grc", "local_blocks_path").split(os.pathsep).count(str(ROOT / "grc")) == 1


def test_missing_python_is_one_line(tmp_path):
    r = subprocess.run([sys.executable, "-m", "blocks.grc_install", "--python", str(tmp_path / "nope")], cwd=ROOT,
                       env=_env(tmp_path), capture_output=True, text=True, timeout=60)
    assert r.returncode == 2 and r.stderr.count("\n") == 1 and "--python" in r.stderr


# run-time parameters: GRC calls these when the variable behind the parameter changes
RUNTIME = {"risisac_frontend": {"rx_gain_db", "tx_gain_db"}, "risisac_stap_detector": {"pfa"},
           "risisac_ris_control": {"initial"}, "risisac_slp_source": {"design"},
           "risisac_user_receiver": {"report_every"}}


@pytest.mark.gnuradio
@pytest.mark.parametrize("block", sorted(RUNTIME))
def test_callbacks_exist_for_runtime_parameters(block):
    """Defect: no template had `callbacks`, so changing gain/pfa/RIS state/design in a running flowgraph did
    nothing. Each run-time parameter has a callback naming a method the Python block really has."""
    import importlib
    import re
    d = yaml.safe_load((ROOT / "grc" / f"{block}.block.yml").read_text())
    cbs = d["templates"].get("callbacks") or []
    used = {p for cb in cbs for p in re.findall(r"\$\{\s*(\w+)\s*\}", cb)}
    assert RUNTIME[block] <= used, (block, cbs)
    stem = block[len("risisac_"):]
    cls = getattr(importlib.import_module(f"blocks.{stem}"), stem)
    for cb in cbs:
        assert hasattr(cls, cb.split("(")[0].strip()), cb


@pytest.mark.gnuradio
def test_pfa_callback_changes_the_threshold():
    from blocks.stap_detector import stap_detector
    det = stap_detector(M=2, pfa=1e-3, publish=False)
    det.set_pfa(1e-2)
    assert det.core.pfa == 1e-2
    with pytest.raises(ValueError):
        det.set_pfa(1.5)


def test_bench_scenario_fits_one_2x2_radio_and_its_flowgraphs():
    """grc/scenarios/bench_2x2.toml: M = 2, a small RIS, K <= 2; the Pluto and B210 flowgraphs use the same
    sizes; the multi-radio flowgraph keeps M = 6 with a shared reference."""
    from isac_opt.scenario import load_scenario
    scn = load_scenario(str(ROOT / "grc" / "scenarios" / "bench_2x2.toml"))
    assert scn.M == 2 and scn.K <= 2 and scn.N <= 16

    def var(fg, name):
        d = yaml.safe_load((ROOT / "grc" / "flowgraphs" / fg).read_text())
        return next(b for b in d["blocks"] if b["name"] == name)["parameters"]

    for fg in ("risisac_bench_pluto.grc", "risisac_bench_usrp_2x2.grc"):
        assert int(var(fg, "M")["value"]) == scn.M and int(var(fg, "K")["value"]) == scn.K
    assert int(var("risisac_bench_usrp.grc", "M")["value"]) == 6
    fe = var("risisac_bench_usrp.grc", "fe")
    assert fe["clock_source"] == "'external'" and fe["time_source"] == "'external'" and fe["sync"] == "'pps'"


_GRC_LOAD = r"""
import glob, os, sys
from gnuradio import gr
from gnuradio.grc.core.platform import Platform
# exactly how gnuradio-companion builds its block library (grc/main.py), without the GTK window:
# the block paths come only from the prefs (~/.gnuradio/config.conf) and GRC_BLOCKS_PATH
p = Platform(version=gr.version(), version_parts=(gr.major_version(), gr.api_version(), gr.minor_version()),
             prefs=gr.prefs())
p.build_library()
print("BLOCKS", ",".join(sorted(k for k in p.blocks if k.startswith("risisac_"))))
for path in sorted(glob.glob(os.path.join(sys.argv[1], "*.grc"))):
    fg = p.make_flow_graph(path)
    fg.validate()
    print("FG", os.path.basename(path), fg.is_valid(), "|".join(map(str, fg.get_error_messages()))[:300])
"""


@pytest.mark.skipif(not Path(SYS_PY).exists(), reason="no system python")
def test_readme_grc_section_from_scratch(tmp_path):
    """The README's GRC steps in a fresh HOME: `make grc`, then GRC's own platform (system Python, no
    GRC_BLOCKS_PATH, outside the repository) lists every block YAML and opens every flowgraph valid.
    The GTK window itself is not opened (no display/python3-gi on CI)."""
    home = tmp_path / "home"
    (home / ".gnuradio").mkdir(parents=True)
    env = _env(home)
    subprocess.run([sys.executable, "-m", "blocks.grc_install", "--python", SYS_PY], cwd=ROOT, env=env,
                   capture_output=True, text=True, timeout=120, check=True)
    r = subprocess.run([SYS_PY, "-c", _GRC_LOAD, str(ROOT / "grc" / "flowgraphs")], cwd=tmp_path, env=env,
                       capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr[-1500:]
    lines = r.stdout.splitlines()
    listed = next(ln for ln in lines if ln.startswith("BLOCKS ")).split(" ", 1)[1].split(",")
    expected = sorted("risisac_" + p.name[len("risisac_"):-len(".block.yml")]
                      for p in (ROOT / "grc").glob("risisac_*.block.yml"))
    assert listed == expected
    fgs = {ln.split()[1]: ln for ln in lines if ln.startswith("FG ")}
    assert set(fgs) == {p.name for p in (ROOT / "grc" / "flowgraphs").glob("*.grc")}
    bad = [ln for ln in fgs.values() if ln.split()[2] != "True"]
    assert not bad, bad
