"""CLI: ``ris`` sub-parser (registry contract), every sub-command, ``--help``, simulate/serve processes."""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from ris_driver import Pattern, open_ris
from ris_driver.cli import add_parser, main
from ris_driver.sim import get_simulator

try:
    from ris_fixtures import free_tcp_port, simulated_board, unique_name, no_leaked_threads
except ImportError:                      # tests/ imported as a package
    from tests.ris_fixtures import free_tcp_port, simulated_board, unique_name, no_leaked_threads

pytestmark = pytest.mark.usefixtures("no_leaked_threads")

ROOT = Path(__file__).resolve().parents[1]
SUBCOMMANDS = ("info", "set", "get", "sweep", "serve", "simulate")


def test_add_parser_contract():
    """isac_testbed.cli.COMMANDS contract: add_parser adds ONE sub-parser 'ris' whose handler returns an int."""
    parser = argparse.ArgumentParser()
    subs = parser.add_subparsers(dest="command")
    ris = add_parser(subs)
    assert list(subs.choices) == ["ris"] and subs.choices["ris"] is ris
    name = unique_name("cli")
    args = parser.parse_args(["ris", "get", f"sim://{name}?n=8", "--json"])
    assert callable(args.func)
    assert args.func(args) == 0


@pytest.mark.parametrize("sub", SUBCOMMANDS)
def test_help_everywhere(sub, capsys):
    with pytest.raises(SystemExit) as ei:
        main([sub, "--help"])
    assert ei.value.code == 0
    assert "url" in capsys.readouterr().out


def test_set_get_info_sweep_in_process(capsys, tmp_path):
    name = unique_name("cli")
    url = f"sim://{name}?rows=2&cols=4&bits=2"
    assert main(["set", url, "--states", "0,1,2,3,3,2,1,0"]) == 0
    assert get_simulator(name).applied_pattern() == Pattern((0, 1, 2, 3, 3, 2, 1, 0))
    capsys.readouterr()
    assert main(["get", url, "--json"]) == 0
    got = json.loads(capsys.readouterr().out)
    assert got["phase"] == [0, 1, 2, 3, 3, 2, 1, 0] and got["hex"] == "1BE4"    # 00 01 10 11 11 10 01 00
    assert main(["set", url, "--hex", "ffff"]) == 0
    assert get_simulator(name).applied_pattern() == Pattern((3,) * 8)
    capsys.readouterr()
    assert main(["info", url, "--json"]) == 0
    info = json.loads(capsys.readouterr().out)
    assert info["board"]["rows"] == 2 and info["health"]["supply_v"] == pytest.approx(5.02)
    # quantise a coefficient file: exp(j*pi/2*k) maps to state k on an ideal 2-bit table
    coef = np.exp(1j * np.pi / 2 * np.array([1, 2, 3, 0, 1, 2, 3, 0]))
    np.save(tmp_path / "c.npy", coef)
    assert main(["set", url, "--coef", str(tmp_path / "c.npy")]) == 0
    assert get_simulator(name).applied_pattern() == Pattern((1, 2, 3, 0, 1, 2, 3, 0))
    log = tmp_path / "sweep.json"
    assert main(["sweep", url, "--count", "4", "--kind", "single", "--json-out", str(log)]) == 0
    d = json.loads(log.read_text())
    assert [p["hex"] for p in d["patterns"]] == ["4000", "1000", "0400", "0100"]


def test_cli_errors_are_exit_code_2(capsys):
    name = unique_name("cli")
    assert main(["set", f"sim://{name}?n=4", "--states", "0,1"]) == 2
    assert "Pattern.phase" in capsys.readouterr().err
    assert main(["get", "serial:///dev/does-not-exist-ris"]) == 2


def _spawn(args, env_extra=None):
    env = dict(os.environ, PYTHONPATH=str(ROOT), PYTHONUNBUFFERED="1")
    return subprocess.Popen([sys.executable, "-m", "ris_driver", *args], cwd=ROOT, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def _stop(proc):
    if proc.poll() is None:
        proc.terminate()
    try:
        proc.wait(timeout=10)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(timeout=10)
    for s in (proc.stdout, proc.stderr):
        s.close()


def _readline_deadline(proc, timeout_s):
    import select
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        r, _, _ = select.select([proc.stdout], [], [], 0.1)
        if r:
            return proc.stdout.readline().strip()
        if proc.poll() is not None:
            break
    pytest.fail(f"no output from {proc.args} within {timeout_s} s: {proc.stderr.read() if proc.poll() is not None else ''}")


def test_simulate_prints_pty_then_serve_over_zmq():
    """`python -m ris_driver simulate` in one process; `serve` in front of it in another; a zmq client here."""
    sim = _spawn(["simulate", "sim://clisim?rows=4&cols=4", "--duration", "30"])
    srv = None
    try:
        path = _readline_deadline(sim, 20)
        assert path.startswith("/dev/")
        dev = open_ris(f"serial://{path}?timeout_ms=500")
        p = Pattern.random(dev.board, np.random.default_rng(0))
        assert dev.apply(p).pattern == p and dev.read_back() == p
        dev.close()
        port = free_tcp_port()
        srv = _spawn(["serve", f"serial://{path}?timeout_ms=500", "--rep", f"tcp://127.0.0.1:{port}", "--pub", "",
                      "--duration", "30"])
        assert "serving" in _readline_deadline(srv, 20)
        z = open_ris(f"zmq://127.0.0.1:{port}?timeout_ms=5000")
        q = Pattern.random(z.board, np.random.default_rng(1))
        assert z.apply(q).pattern == q and z.read_back() == q
        z.close()
    finally:
        if srv is not None:
            _stop(srv)
        _stop(sim)
