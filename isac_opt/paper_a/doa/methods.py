"""Paper A's DoA design methods (entry point :func:`run_named`, catalogue :mod:`isac_opt.paper_a.catalog`).

Methods (scenario ``paper-a``; ``run(scenario, seed, channels=None) -> DesignA``):

* ``unfolded-doa``      unfolded ADMM-PHR-ALM-DFP minimising the CRB (shipped weights, A.9);
* ``unfolded-doa-lite`` the same network with T_e = 20 layers, trained with larger/more Adam updates per
  layer (a third of the time per design);
* ``unfolded-doa-alm``  the "ALM" ablation (plain Lagrangian Σβg, A.6 handler) on the CRB;
* ``unsupervised-doa``  the unsupervised MLP baseline (A.11.5);
* ``classical-doa``     the classical ADMM-PHR-ALM-DFP with constant steps (same layers, no learning);
* ``unfolded-doa-paper`` the paper-size network T_e, J_e, R_e = 60, 10, 10 with the compact DFP (29a) and PHR,
  trained layer-wise for its first ``layers_trained`` layers (weights metadata), the rest at the classical
  constant steps.

Weights live in ``isac_opt/weights/doa_*.pt`` (see ``doa_weights.md`` there for the command line and log).
"""
from __future__ import annotations


import numpy as np

from ..channels import ChannelsA, draw_channels, realisation_rng
from ..scenario import ScenarioA
from .model import DoaBatch, WeightsError, repair_ci, run_classical, start_points
from .weights import WEIGHTS, WEIGHTS_DIR, load_net, weights_path  # noqa: F401  (re-exported)

def _channels(scn: ScenarioA, seed: int, channels):
    if not isinstance(scn, ScenarioA):
        raise WeightsError(f"DoA methods need a paper-a scenario, got {type(scn).__name__}")
    return channels if channels is not None else draw_channels(scn, realisation_rng(seed, 0))


DEFAULT_STARTS = ("a10", "detection")
# inference depth of the unfolded networks [issue 12]: the shipped unfolded-doa net has 60 trained layers;
# at inference layers 61..200 reuse the last trained layer's step sizes (held-out CRB −20 %, see docs/doa.md)
INFER_T = {"unfolded-doa": 200}


def design_many(method: str, scn: ScenarioA, chs, seed: int = 0, K_train: int = 3, T=None, path=None,
                starts=None, repair: bool = True, start_kinds=DEFAULT_STARTS, seeds=None,
                info: dict | None = None):
    """Designs (lists X (M, L), φ (N,)) of ``method`` for the realisations ``chs`` (batched).

    The ADMM methods (``unfolded-doa*``, ``classical-doa``) run from every start of ``start_kinds``
    (``"a10"``, ``"detection"`` = the ``unfolded`` detection design with algorithm seed ``seeds[i]``
    (default ``seed + i``), ``"radar"``; :mod:`isac_opt.paper_a.doa.multistart`) and keep, per realisation, the
    CI-feasible candidate (final iterate after the feasibility layer and repair, best feasible iterate,
    the start itself) of smallest CRB. ``repair=False`` returns the raw last iterate of the A.10 run
    (diagnostics only: not certified). The unsupervised MLP's output is repaired and compared with
    its A.10 start (the smaller feasible CRB is returned).
    """
    from .multistart import build_starts, certify_single, run_certified
    if method == "unsupervised-doa":
        m = load_net(method, K_train, path)
        m.check_fits(scn)
        if starts is None and (repair or m.residual):
            starts = start_points(scn, chs, "ris", seed)
        X, P = m.design(scn, chs, starts)
        if repair:
            X, _ = repair_ci(scn, chs, X, P, starts)
            X, P = certify_single(scn, chs, X, P, starts, info)
        return X, P
    if method == "classical-doa":
        net = load_net("unfolded-doa", K_train, path)
    else:
        net = load_net(method, K_train, path)
        net.check_fits(scn)
    if not repair:
        starts = starts if starts is not None else start_points(scn, chs, "ris", seed)
        b = DoaBatch(scn, chs, starts, net.cfg, "ris")
        st = run_classical(b, T) if method == "classical-doa" else net.infer(b, T)
        return b.designs(st)
    sets = build_starts(scn, chs, start_kinds, seed, seeds)
    if starts is not None and "a10" in start_kinds:
        sets[list(start_kinds).index("a10")] = list(starts)
    a10 = sets[list(start_kinds).index("a10")] if "a10" in start_kinds else start_points(scn, chs, "ris", seed)
    return run_certified(scn, chs, sets, _runner(method, net, T), net.cfg, a10=a10, info=info)


def _runner(method: str, net, T=None):
    """runner(batch, trace) → final state, calling ``trace`` after every layer (no autograd)."""
    import torch
    from ..unfold import solve

    def run(b, trace):
        from .model import _use_jit
        cfg = b.cfg.admm(b.update_phi, T or INFER_T.get(method, net.cfg.T))
        with torch.no_grad():
            if _use_jit(b, "auto"):                 # the compiled kernel (unfold.fastnet), same iterates
                from ..unfold.fastnet import engine_for
                from .model import extend_layers
                eng = (engine_for(cfg, params=b.cfg.params()) if method == "classical-doa"
                       else engine_for(cfg, net=extend_layers(net, cfg.T).net))
                return eng.forward(b, layers=range(cfg.T), trace=trace)
            if method == "classical-doa":
                return solve(b.state0(), b.objective, b.constraint, cfg, b.cfg.params(),
                             monitor=lambda s: (trace(s), torch.ones(b.batch, dtype=b.u0.real.dtype))[1])[0]
            from .model import extend_layers
            nn_ = extend_layers(net, cfg.T).net
            return nn_(b.state0(), b.objective, b.constraint, cfg=cfg, trace=trace)
    return run


def _make(method: str):
    def run(scenario: ScenarioA, seed: int, channels: ChannelsA | None = None):
        from ..design import DesignA
        ch = _channels(scenario, seed, channels)
        ch.check(scenario)
        info: dict = {}
        X, P = design_many(method, scenario, [ch], seed, seeds=[seed], info=info)
        extra = {"weights": WEIGHTS.get(method, WEIGHTS["unfolded-doa"]),
                 "candidate": info.get("source", ["?"])[0]}
        if "viol_raw" in info:
            extra["viol_raw"] = [int(v) for v in np.ravel(info["viol_raw"])]
            extra["viol_pre_repair"] = [int(v) for v in np.ravel(info["viol_pre_repair"])]
            extra["starts"] = list(DEFAULT_STARTS)
        return DesignA.build(scenario, ch, X[0], P[0], method=method, seed=seed, extra=extra)
    return run


RUNNERS = {name: _make(name) for name in ("unfolded-doa", "unfolded-doa-lite", "unfolded-doa-alm",
                                          "classical-doa", "unsupervised-doa", "unfolded-doa-paper")}


def run_named(method: str, scenario: ScenarioA, seed: int, channels: ChannelsA | None = None):
    """Registry entry point of the DoA methods (catalogue: :mod:`isac_opt.paper_a.catalog`)."""
    return RUNNERS[method](scenario, seed, channels)

