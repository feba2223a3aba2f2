"""The certified-design contract (issue 12): every design is checked against its problem's constraints;
an infeasible one fails the command loudly unless --allow-infeasible, which marks it in the file."""
import dataclasses
import json

import numpy as np
import pytest

from isac_opt.contract import CI_TOL, CM_TOL, certify, ci_violation, has_ci, modulus_violation
from isac_opt.errors import InfeasibleDesignError
from isac_testbed.cli import main


def _small_a(**kw):
    from isac_opt.paper_a.scenario import ScenarioA
    return ScenarioA(N=16, L=8, **kw)


def _init_design(scn, seed=3):
    """The A.10 start, kept whatever its feasibility (the test builds its own violations)."""
    from isac_opt.registry import get_method
    return get_method("init", "paper-a").run(scn, seed, allow_infeasible=True)


def test_modulus_and_ci_checks_against_direct_computation():
    z = np.full(10, 2.0 + 0j)
    assert modulus_violation(z, 2.0, "CM") == []
    z[3] *= 1 + 10 * CM_TOL
    v = modulus_violation(z, 2.0, "CM")
    assert len(v) == 1 and "1 of 10" in v[0]
    m = np.ones((3, 5)) * 1.5
    assert ci_violation(m) == []
    m[1, 2] = 1 - 10 * CI_TOL
    m[2, 2] = 0.5
    v = ci_violation(m)
    assert len(v) == 1 and "2 of 15" in v[0] and "1 slot" in v[0] and "0.5" in v[0]
    assert has_ci("unfolded") and has_ci("unfolded+refit") and not has_ci("radar-only")
    assert not has_ci("init-radar-only") and not has_ci("no-ris-radar") and has_ci("no-ris")


def test_paper_a_violations_detect_each_constraint_family():
    from isac_opt.ci import ci_margins, ci_thresholds
    from isac_opt.paper_a.channels import effective_user_channels
    scn = _small_a()
    d = _init_design(scn)
    # an independent recomputation of the normalised CI margins decides what the design must report
    Z = effective_user_channels(d.channels, d.phi) @ d.X
    mn = ci_margins(Z, d.channels.S, scn.psk_order) / ci_thresholds(scn.noise_comm_w, scn.gamma_db, scn.psk_order)[:, None]
    assert any("CI" in v for v in d.violations()) == bool(mn.min() < 1 - CI_TOL)
    # CM broken on one entry
    X = d.X.copy()
    X[0, 0] *= 1.01
    bad = dataclasses.replace(d, X=X)
    assert any(v.startswith("CM") for v in bad.violations())
    # RIS unit modulus broken
    phi = d.phi.copy()
    phi[2] *= 0.9
    assert any(v.startswith("RIS unit modulus") for v in dataclasses.replace(d, phi=phi).violations())
    # CI broken by flipping the waveform's sign on every slot (m -> -m for QPSK CI)
    flipped = dataclasses.replace(d, X=-d.X)
    assert any(v.startswith("CI") for v in flipped.violations()) or mn.min() < 0
    # radar-only designs have no CI constraints
    assert not any(v.startswith("CI") for v in dataclasses.replace(flipped, method="radar-only").violations())


def test_certify_raises_or_marks():
    scn = _small_a()
    d = _init_design(scn)
    bad = dataclasses.replace(d, X=d.X * np.exp(1j * 0.0) * 1.5, extra=dict(d.extra))
    with pytest.raises(InfeasibleDesignError, match="violates its constraints"):
        certify(bad)
    v = certify(bad, allow_infeasible=True)
    assert v and bad.extra["certified"] is False and bad.extra["violations"] == v


def test_paper_b_violations_active_ris_amplitude():
    from isac_opt.paper_b.methods import run_method
    from isac_opt.paper_b.model import draw_channels
    from isac_opt.paper_b.scenario import ScenarioB
    scn = ScenarioB(N=4, L=4, Pc=2)
    ch = draw_channels(scn, np.random.default_rng(11))
    d = run_method("radar-only", scn, ch, seed=11)
    assert d.violations() == []
    phi = d.phi.copy()
    phi.flat[0] = ch.a_max * 1.5
    assert any(v.startswith("RIS power") and "a_max" in v for v in dataclasses.replace(d, phi=phi).violations())


def test_cli_fails_loudly_on_an_infeasible_problem_and_keeps_it_when_asked(tmp_path, capsys):
    """Γ = 60 dB with the default power: no waveform meets CI, whatever the method — the command must say
    so in one line (exit 2) and write nothing; --allow-infeasible writes a file marked uncertified."""
    assert main(["scenario", "paper-a", "--out", str(tmp_path / "s.toml")]) == 0
    text = (tmp_path / "s.toml").read_text()
    text = text.replace("N = 64", "N = 16").replace("gamma_db = [ 10.0, 10.0, 10.0,]", "gamma_db = [60.0, 60.0, 60.0]")
    text = "\n".join(ln if not ln.startswith("gamma_db") else "gamma_db = [60.0, 60.0, 60.0]" for ln in text.splitlines())
    (tmp_path / "s.toml").write_text(text + "\n")
    out = tmp_path / "d.npz"
    assert main(["design", "--scenario", str(tmp_path / "s.toml"), "--method", "init", "--seed", "1",
                 "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("isac-testbed design: error: method 'init'") and "CI:" in err
    assert len(err.strip().splitlines()) == 1 and not out.exists()
    assert main(["design", "--scenario", str(tmp_path / "s.toml"), "--method", "init", "--seed", "1",
                 "--out", str(out), "--allow-infeasible", "--json"]) == 0
    rep = json.loads(capsys.readouterr().out)
    assert rep["certified"] is False
    assert main(["evaluate", str(out), "--json"]) == 0
    rep = json.loads(capsys.readouterr().out)
    assert rep["certified"] is False and any(v.startswith("CI") for v in rep["violations"])
    from isac_opt.designfile import load_design
    assert load_design(out).extra["certified"] is False
