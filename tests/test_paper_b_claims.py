"""Paper B's qualitative claims on a REDUCED scenario (spec V-18, B.10): statistical, means over realisations.

Reduced scenario: N_t = N_r = 4, K = 2, N = 16 per RIS, P_c = 8, L = 4 (the default has 6, 6, 3, 32, 8, 16).
SCNR means are taken in linear scale. The low-speed collapse check needs more realisations and is
marked slow.
"""
from __future__ import annotations

import numpy as np
import pytest

from isac_opt.paper_b.methods import run_method
from isac_opt.paper_b.model import draw_channels
from isac_opt.paper_b.scenario import ScenarioB

REDUCED = dict(Nt=4, Nr=4, K=2, N=16, Pc=8, L=4, noise_comm_w=(1e-11, 1e-11), gamma_db=(10.0, 10.0))
SEEDS = (100, 101)


def reduced(**kw) -> ScenarioB:
    d = dict(REDUCED)
    d.update(kw)
    return ScenarioB(**d)


def mean_db(values_db) -> float:
    return float(10 * np.log10(np.mean(10 ** (np.asarray(values_db) / 10))))


def scnr_means(scn: ScenarioB, methods, seeds) -> dict:
    out = {m: [] for m in methods}
    for s in seeds:
        ch = draw_channels(scn, np.random.default_rng(s))
        for m in methods:
            out[m].append(run_method(m, scn, ch, seed=s).report()["scnr_db"])
    return {m: mean_db(v) for m, v in out.items()} | {"_raw": out}


@pytest.fixture(scope="module")
def default_point():
    methods = ["stap-fp-mm-admm", "spatial-only", "random-ris", "no-ris", "radar-only", "spatial-only-radar",
               "random-ris-radar", "no-ris-radar"]
    return scnr_means(reduced(), methods, SEEDS)


def test_claim_scheme_ordering(default_point):
    r = default_point
    msg = {k: v for k, v in r.items() if k != "_raw"}
    assert r["stap-fp-mm-admm"] > r["spatial-only"] > r["random-ris"] > r["no-ris"], msg


def test_claim_radar_only_upper_bounds_isac(default_point):
    r = default_point
    for isac, radar in (("stap-fp-mm-admm", "radar-only"), ("spatial-only", "spatial-only-radar"),
                        ("random-ris", "random-ris-radar"), ("no-ris", "no-ris-radar")):
        assert r[radar] >= r[isac] - 0.1, (isac, r[isac], radar, r[radar])


def _scnr_vs_r(rs):
    return [scnr_means(reduced().with_ris_count(R), ["stap-fp-mm-admm"], SEEDS)["stap-fp-mm-admm"] for R in rs]


def test_claim_scnr_rises_with_number_of_ris():
    vals = _scnr_vs_r((1, 2))
    assert vals[0] < vals[1], vals


@pytest.mark.slow
def test_claim_scnr_rises_with_number_of_ris_up_to_4():
    vals = _scnr_vs_r((1, 2, 3, 4))
    assert all(a < b for a, b in zip(vals, vals[1:])), vals


@pytest.mark.slow
def test_claim_no_ris_collapses_at_low_los_speed():
    seeds = (100, 101, 102, 103)
    methods = ["stap-fp-mm-admm", "no-ris"]
    fast = scnr_means(reduced(target_vel=(0.0, 30.0)), methods, seeds)
    still = scnr_means(reduced(target_vel=(0.0, 0.0)), methods, seeds)
    drop_no_ris = fast["no-ris"] - still["no-ris"]
    drop_prop = fast["stap-fp-mm-admm"] - still["stap-fp-mm-admm"]
    assert drop_no_ris > 1.0 and drop_no_ris > drop_prop, (fast, still)
    assert still["stap-fp-mm-admm"] - still["no-ris"] > 3.0
