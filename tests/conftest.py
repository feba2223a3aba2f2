"""Shared fixtures: seeded generators, small scenarios, and skips for optional system parts."""
from __future__ import annotations

import os

import numpy as np
import pytest


@pytest.fixture
def rng():
    return np.random.default_rng(12345)


@pytest.fixture
def small_scn():
    """A small paper-A scenario for tests that form dense matrices (M=3, N=4, L=4, Q=2, K=2)."""
    from isac_opt.paper_a.scenario import ScenarioA
    import math
    return ScenarioA(M=3, N=4, K=2, L=4, Q=2, noise_comm_w=(1e-11, 1e-11), gamma_db=(10.0, 10.0),
                     xi_q_sq=(1.0, 0.5), clutter_bins=(1, 2), clutter_angles_rad=(-math.pi / 3, math.pi / 4))


def pytest_collection_modifyitems(config, items):
    have_hw = bool(os.environ.get("RIS_URI") or os.environ.get("SDR_URI"))
    for item in items:
        if "hardware" in item.keywords and not have_hw:
            item.add_marker(pytest.mark.skip(reason="hardware test: set RIS_URI / SDR_URI to run it"))


@pytest.fixture(scope="session")
def init_design_file(tmp_path_factory):
    """The A.10 starting design of the default paper-A scenario (seed 0), saved once per session."""
    from isac_opt.paper_a.scenario import ScenarioA
    from isac_opt.registry import get_method
    d = get_method("init", "paper-a").run(ScenarioA(), 0)
    p = tmp_path_factory.mktemp("init_design") / "design.npz"
    d.save(p)
    return p
