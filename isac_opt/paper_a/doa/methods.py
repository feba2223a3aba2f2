"""Registrations of paper A's DoA task: design methods, the ``train doa`` task, reproduction targets.

Methods (scenario ``paper-a``; ``run(scenario, seed, channels=None) -> DesignA``):

* ``unfolded-doa``      unfolded ADMM-PHR-ALM-DFP minimising the CRB (shipped weights, A.9);
* ``unfolded-doa-lite`` the same network with T_e = 20 layers, trained with larger/more Adam updates per
  layer (a third of the time per design);
* ``unfolded-doa-alm``  the "ALM" ablation (plain Lagrangian Σβg, A.6 handler) on the CRB;
* ``unsupervised-doa``  the unsupervised MLP baseline (A.11.5);
* ``classical-doa``     the classical ADMM-PHR-ALM-DFP with constant steps (same layers, no learning).

Weights live in ``isac_opt/weights/doa_*.pt`` (see ``doa_weights.md`` there for the command line and log).
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

from ..channels import ChannelsA, draw_channels, realisation_rng
from ..scenario import ScenarioA
from .model import DoaBatch, DoaConfig, DoaNet, WeightsError, repair_ci, run_classical, start_points

WEIGHTS_DIR = Path(__file__).resolve().parents[2] / "weights"
WEIGHTS = {"unfolded-doa": "doa_unfolded_K3.pt", "unfolded-doa-alm": "doa_unfolded_alm_K3.pt",
           "unfolded-doa-lite": "doa_unfolded_lite_K3.pt", "unsupervised-doa": "doa_unsup_K3.pt"}

_cache: dict = {}


def weights_path(method: str, K_train: int = 3) -> Path:
    name = WEIGHTS[method].replace("K3", f"K{K_train}")
    return WEIGHTS_DIR / name


def load_net(method: str, K_train: int = 3, path=None):
    """Load (cached) shipped weights of ``method`` trained with ``K_train`` users."""
    from .unsupervised import UnsupervisedDoa
    p = Path(path) if path is not None else weights_path(method, K_train)
    key = (method, str(p))
    if key not in _cache:
        if not p.is_file():
            raise WeightsError(f"{method}: weights file {p} is missing; train them with "
                               f"`isac-testbed train doa --out DIR` and copy doa_*.pt into {WEIGHTS_DIR}")
        _cache[key] = UnsupervisedDoa.load(p) if method == "unsupervised-doa" else DoaNet.load(p)
    return _cache[key]


def _channels(scn: ScenarioA, seed: int, channels):
    if not isinstance(scn, ScenarioA):
        raise WeightsError(f"DoA methods need a paper-a scenario, got {type(scn).__name__}")
    return channels if channels is not None else draw_channels(scn, realisation_rng(seed, 0))


def design_many(method: str, scn: ScenarioA, chs, seed: int = 0, K_train: int = 3, T=None, path=None,
                starts=None, repair: bool = True):
    """Designs (lists X (M, L), φ (N,)) of ``method`` for the realisations ``chs`` (batched).

    ``repair``: apply the per-slot CI restoration (:func:`isac_opt.paper_a.doa.model.repair_ci`) to the
    outputs, towards the A.10 start (computed here for the unsupervised baseline too).
    """
    if method == "unsupervised-doa":
        m = load_net(method, K_train, path)
        m.check_fits(scn)
        if starts is None and (repair or m.residual):
            starts = start_points(scn, chs, "ris", seed)
        X, P = m.design(scn, chs, starts)
        if repair:
            X, _ = repair_ci(scn, chs, X, P, starts)
        return X, P
    starts = starts if starts is not None else start_points(scn, chs, "ris", seed)
    if method == "classical-doa":
        net = load_net("unfolded-doa", K_train, path)
        b = DoaBatch(scn, chs, starts, net.cfg, "ris")
        X, P = b.designs(run_classical(b, T))
    else:
        net = load_net(method, K_train, path)
        net.check_fits(scn)
        b = DoaBatch(scn, chs, starts, net.cfg, "ris")
        X, P = b.designs(net.infer(b, T))
    if repair:
        X, _ = repair_ci(scn, chs, X, P, starts)
    return X, P


def _make(method: str):
    def run(scenario: ScenarioA, seed: int, channels: ChannelsA | None = None):
        from ..design import DesignA
        ch = _channels(scenario, seed, channels)
        ch.check(scenario)
        X, P = design_many(method, scenario, [ch], seed)
        return DesignA.build(scenario, ch, X[0], P[0], method=method, seed=seed,
                             extra={"weights": WEIGHTS.get(method, WEIGHTS["unfolded-doa"])})
    return run


RUNNERS = {name: _make(name) for name in ("unfolded-doa", "unfolded-doa-lite", "unfolded-doa-alm",
                                          "classical-doa", "unsupervised-doa")}


def run_named(method: str, scenario: ScenarioA, seed: int, channels: ChannelsA | None = None):
    """Registry entry point of the DoA methods (catalogue: :mod:`isac_opt.paper_a.catalog`)."""
    return RUNNERS[method](scenario, seed, channels)
