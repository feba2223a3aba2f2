"""Paper B certified designs (issue 12): violations(), the rho blow-up fix, restoration, every method's file.

Independent computations: CI margins from the explicit effective channel h_k^H + sum_r h_{r,k}^H Phi_r G_r
and the explicit half-plane form Re{c^+- h~^H x} (not the certify module's code path), a brute-force
phase grid for CM feasibility, and the CLI's own design -> evaluate round trip.
"""
from __future__ import annotations

import dataclasses
import json
import math
import zipfile

import numpy as np
import pytest

from isac_opt.errors import DesignFileError
from isac_opt.paper_b.algorithm import (Options, design, gamma_ci, init_phi_aligned, init_x_ci, restore_ci)
from isac_opt.paper_b.certify import TOLERANCES, constraint_status
from isac_opt.paper_b.design import DesignB
from isac_opt.paper_b.design import load as load_b
from isac_opt.paper_b.methods import METHOD_TABLE, run_method
from isac_opt.paper_b.model import draw_channels
from isac_opt.paper_b.scenario import ScenarioB
from isac_opt.projections import project_cm

SMALL = dict(Nt=3, Nr=3, K=2, R=2, N=4, Q=2, Pc=2, L=4, noise_comm_w=(1e-11, 1e-11), gamma_db=(5.0, 5.0),
             sigma_q_sq=(10.0, 10.0), clutter_x=(-6.0, 0.0), clutter_y=(49.0, 60.0), max_outer=30)


def small(**kw) -> ScenarioB:
    d = dict(SMALL)
    d.update(kw)
    return ScenarioB(**d)


def explicit_half_planes(ch, X, phi) -> np.ndarray:
    """Re{c^+-_{k,n} h~_k^H x_n} / gamma_k for every (sign, k, n), from the explicit channel [spec B.5]."""
    H = ch.hd_H.copy()
    for r in range(ch.R):
        H = H + ch.hr_H[r] @ np.diag(phi[r]) @ ch.G[r]
    Z = H @ X.reshape(-1, ch.Nt).T                                  # (K, B)
    th = math.pi / ch.psk_order
    out = []
    for sgn in (+1, -1):
        c = np.exp(-1j * np.angle(ch.S)) * (math.sin(th) - sgn * 1j * math.cos(th))
        out.append(np.real(c * Z) / gamma_ci(ch)[:, None])
    return np.stack(out)                                            # (2, K, B)


# ------------------------------------------------------------------------------------------------
# violations() on constructed designs
# ------------------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def feasible_design():
    scn = small(max_outer=6)
    ch = draw_channels(scn, np.random.default_rng(3))
    d = run_method("stap-fp-mm-admm", scn, ch, seed=3)
    return d


def test_violations_empty_for_certified_design(feasible_design):
    d = feasible_design
    assert d.violations() == []
    assert explicit_half_planes(d.channels, d.X, d.phi).min() >= 1 - TOLERANCES["ci"]
    assert np.allclose(np.abs(d.X), d.channels.amp, rtol=1e-12)
    assert np.all(np.abs(d.phi) <= d.channels.a_max * (1 + 1e-12))
    assert d.report()["constraints_ok"] is True


def test_violations_lists_each_family_on_a_constructed_infeasible_design(feasible_design):
    d0 = feasible_design
    ch = d0.channels
    X = d0.X.copy()
    X[0, 1] = -X[0, 1]                 # flip one slot: its CI half-planes turn negative
    X[1, 2, 0] *= 0.5                  # one entry off the constant modulus
    phi = d0.phi.copy()
    phi[0, 0] = phi[0, 0] / abs(phi[0, 0]) * ch.a_max * 1.01     # one RIS coefficient above a_max
    d = dataclasses.replace(d0, X=X, phi=phi)
    lines = d.violations()
    assert len(lines) == 3, lines
    hp = explicit_half_planes(ch, X, phi)
    n_bad = int(np.sum(hp < 1 - TOLERANCES["ci"]))
    assert n_bad > 0
    ci = [ln for ln in lines if ln.startswith("CI:")][0]
    assert ci.startswith(f"CI: {n_bad} of {hp.size} (k,l) constraints violated, worst margin {hp.min() - 1:.3g} < 0")
    assert any(ln.startswith("CM: 1 of 24 ") for ln in lines)
    assert any(ln.startswith("RIS power: 1 of 8 ") for ln in lines)
    assert d.report()["constraints_ok"] is False


def test_radar_only_design_has_no_ci_family(feasible_design):
    d = dataclasses.replace(feasible_design, method="radar-only", problem=None)
    d.__post_init__()
    assert d.problem == {"ci": False, "cm": True}
    X = d.X.copy()
    X[0, 1] = -X[0, 1]                 # CI broken, but CI is not a constraint of the radar-only problem
    assert dataclasses.replace(d, X=X).violations() == []


def test_tolerances_round_trip_and_bad_tolerances_rejected(feasible_design, tmp_path):
    p = tmp_path / "d.npz"
    feasible_design.save(p)
    d = load_b(p)
    assert d.tolerances == TOLERANCES and d.problem == {"ci": True, "cm": True}
    assert d.violations() == []
    with np.load(p) as z:
        arrays = {k: z[k] for k in z.files}
    meta = json.loads(str(arrays["meta"]))
    for bad in ({"ci": 1.0, "cm": 1e-9, "ris": 1e-9}, {"ci": -1, "cm": 1e-9, "ris": 1e-9}, "loose"):
        meta["tolerances"] = bad
        arrays["meta"] = np.array(json.dumps(meta))
        q = tmp_path / "bad.npz"
        np.savez(q, **arrays)
        with pytest.raises(DesignFileError, match="tolerances"):
            load_b(q)


# ------------------------------------------------------------------------------------------------
# the rho blow-up: cause and fix
# ------------------------------------------------------------------------------------------------
BLOWUP_SEED = 7      # small scenario, 30 iterations: the pre-fix algorithm returns a CI-violating design


@pytest.fixture(scope="module")
def blowup():
    scn = small()
    ch = draw_channels(scn, np.random.default_rng(BLOWUP_SEED))
    legacy = design(ch, Options.from_scenario(scn, dual_rescale=False, certify=False))
    fixed_raw = design(ch, Options.from_scenario(scn, certify=False))
    fixed = design(ch, Options.from_scenario(scn))
    return scn, ch, legacy, fixed_raw, fixed


def test_unguarded_legacy_algorithm_fails_on_this_instance(blowup):
    scn, ch, legacy, _, _ = blowup
    t = init_x_ci(ch, init_phi_aligned(ch))[1]
    assert t.min() > 1                                     # a CI-feasible instance ...
    assert explicit_half_planes(ch, legacy.X, legacy.phi).min() < 1 - 1e-3   # ... and an infeasible output
    assert legacy.info["rho_final_rel"] > 1e9              # rho grown by 2^polish_iters on top of the cap


def test_scaled_dual_closes_the_gap_without_rho_blowup(blowup):
    scn, ch, _, raw, fixed = blowup
    # the algorithm's own final point is feasible: the fix is in the iteration, not in the guard
    assert raw.info["output"] == "final"
    assert explicit_half_planes(ch, raw.X, raw.phi).min() >= 1 - TOLERANCES["ci"]
    assert raw.info["rho_final_rel"] < 1e9
    assert constraint_status(ch, fixed.X, fixed.phi)["feasible"]
    assert fixed.scnr >= fixed.history_out[0] * (1 - 1e-12)     # never below its own feasible start


def test_guard_makes_the_legacy_dynamics_safe(blowup):
    """Even the pre-fix iteration comes back feasible (restored/earlier point) once certify is on."""
    scn, ch, _, _, _ = blowup
    r = design(ch, Options.from_scenario(scn, dual_rescale=False))
    assert explicit_half_planes(ch, r.X, r.phi).min() >= 1 - TOLERANCES["ci"]
    assert r.info["output"] != "final"
    assert r.scnr >= r.history_out[0] * (1 - 1e-12)


def test_restore_ci_changes_only_the_broken_slots(feasible_design):
    ch, X, phi = feasible_design.channels, feasible_design.X, feasible_design.phi
    assert constraint_status(ch, X, phi)["feasible"]
    Xb = X.copy()
    Xb[1, 2] = Xb[1, 2] * np.exp(1j * np.array([2.5, -2.0, 1.0]))     # break one slot
    hp = explicit_half_planes(ch, Xb, phi)
    assert hp.min() < 1
    Xr, n, how = restore_ci(ch, Xb, phi, gamma_ci(ch))
    assert Xr is not None and n == 1 and how in ("admm", "phase-ascent")
    assert explicit_half_planes(ch, Xr, phi).min() >= 1
    assert np.allclose(np.abs(Xr), ch.amp, rtol=1e-12)
    keep = np.ones((ch.Pc, ch.L), bool)
    keep[1, 2] = False
    assert np.array_equal(Xr[keep], Xb[keep])


def test_cm_infeasible_start_is_reported_not_hidden():
    """Seed 1 of the small scenario: t* = 23 for |x| <= amp, yet no constant-modulus waveform meets CI in
    three slots at phi(0) (brute-force phase grid). The design must say so through violations()."""
    scn = small(max_outer=4)
    ch = draw_channels(scn, np.random.default_rng(1))
    phi = init_phi_aligned(ch)
    X, t = init_x_ci(ch, phi)
    assert t.min() > 20
    bad = np.where(explicit_half_planes(ch, project_cm(X, ch.amp), phi).min(axis=(0, 1)) < 1)[0]
    a = np.linspace(0, 2 * np.pi, 60, endpoint=False)
    E = ch.amp * np.exp(1j * np.stack(np.meshgrid(a, a, a, indexing="ij"), -1).reshape(-1, 3))
    slot = int(bad[0])
    Xg = np.broadcast_to(X.reshape(-1, ch.Nt), (E.shape[0],) + X.reshape(-1, ch.Nt).shape).copy()
    Xg[:, slot] = E
    best = max(explicit_half_planes(ch, Xg[i], phi)[:, :, slot].min() for i in range(0, E.shape[0], 7))
    assert best < 0.9
    d = run_method("stap-fp-mm-admm", scn, ch, seed=1)
    assert d.violations() and d.violations()[0].startswith("CI:")


# ------------------------------------------------------------------------------------------------
# every registered paper-B method: certified, never below its start, file round trip through the CLI
# ------------------------------------------------------------------------------------------------
RT = dict(Nt=4, Nr=3, K=2, R=2, N=4, Q=2, Pc=2, L=4, noise_comm_w=(1e-11, 1e-11), gamma_db=(5.0, 5.0),
          sigma_q_sq=(10.0, 10.0), clutter_x=(-6.0, 0.0), clutter_y=(49.0, 60.0), max_outer=8)
RT_SEED = 2


@pytest.fixture(scope="module")
def rt_files(tmp_path_factory):
    from isac_testbed.cli import main
    from isac_opt.registry import methods_for
    tmp = tmp_path_factory.mktemp("rt")
    toml = tmp / "small_b.toml"
    ScenarioB(**RT).save_toml(toml)
    names = [m.name for m in methods_for("paper-b")]
    assert set(names) == set(METHOD_TABLE)
    files = {}
    for name in names:
        f = tmp / f"{name}.npz"
        assert main(["design", "--scenario", str(toml), "--method", name, "--seed", str(RT_SEED),
                     "--out", str(f)]) == 0
        files[name] = f
    return toml, files


@pytest.mark.parametrize("name", list(METHOD_TABLE))
def test_every_method_designs_certified_and_round_trips(rt_files, name, capsys):
    from isac_testbed.cli import main
    from isac_opt.designfile import load_design
    _, files = rt_files
    f = files[name]
    assert main(["evaluate", str(f), "--json"]) == 0
    rep = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    d = load_design(f)
    assert isinstance(d, DesignB) and d.method == name
    assert d.violations() == [], (name, d.violations())
    assert rep["constraints_ok"] is True and rep["method"] == name
    assert math.isclose(rep["scnr_db"], d.report()["scnr_db"], rel_tol=1e-12)
    # the method's own objective at the output is not below its own feasible start
    assert 10 ** (rep["scnr_db"] / 10) >= d.extra["history_out"][0] * (1 - 1e-9)
    if name.startswith("no-ris"):
        assert d.channels.R == 0 and d.scenario.R == 0 and d.channels.Lr == d.scenario.L + d.scenario.lr_extra
        assert d.extra["ris_removed"]["R"] == RT["R"]
    with zipfile.ZipFile(f) as z:
        assert not any(n.endswith(".pkl") for n in z.namelist())


def test_radar_variants_upper_bound_their_isac_designs():
    """Each radar-only variant is warm-started from its ISAC counterpart, so its SCNR ≥ the counterpart's on
    every realisation (the figures pass the ISAC design in; the method computes it itself)."""
    from isac_opt.paper_b.methods import ISAC_OF, run_method
    scn = small()
    for seed in (3, 4):
        ch = draw_channels(scn, np.random.default_rng(seed))
        for radar, isac_name in ISAC_OF.items():
            isac = run_method(isac_name, scn, ch, seed=seed)
            r = run_method(radar, scn, ch, seed=seed, isac=isac)
            assert r.scnr_db >= isac.scnr_db - 1e-9, (seed, radar)
            assert r.scnr_db >= r.extra["scnr_db_own_start"] - 1e-12
            assert not r.violations(), r.violations()
