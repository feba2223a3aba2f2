"""Classical solver and deep-unfolded network driving the same step function [spec A.6; style point 8].

* :func:`solve` — classical ADMM-ALM-DFP: constant step sizes, up to T layers, early stop on the relative
  change of a monitored value (e.g. SINR), history of that value.
* :class:`UnfoldedAdmm` — ``nn.Module`` with, for every layer t, step-size MLPs
  (A: one hidden layer of 10 neurons, Xavier): MLP_η, MLP_κ per (t, j) shared over (k, l)
  (input [g̃_{k,l}, β_{k,l}/β̄], K-agnostic option (a)), MLP_τ, MLP_ζ per (t, j, r)
  (input [log10‖ḡ‖, log10|L|]); outputs through softplus (always positive).

[RECON] initialisation: hidden layer Xavier-uniform, output weights 0, output bias softplus⁻¹(init value),
so that at its initial parameters the network is *exactly* the classical solver with the same constant
steps (tested to 1e-12). The hidden-layer weights receive non-zero gradients as soon as the output
weights move (after the first optimiser step).
"""
from __future__ import annotations

import math

import torch
from torch import nn

from .step import AdmmConfig, AdmmState, ConstantParams, admm_layer

__all__ = ["StackedMLP", "UnfoldedAdmm", "solve", "softplus_inv"]


def softplus_inv(y: float) -> float:
    """Inverse of softplus, log(e^y − 1), stable for large y."""
    return y + math.log(-math.expm1(-y))


class StackedMLP(nn.Module):
    """A stack of independent tiny MLPs Linear(2, H) → tanh → Linear(H, 1) → softplus, indexed by ``idx``."""

    def __init__(self, shape: tuple, init_out: float, hidden: int = 10, gen: torch.Generator | None = None):
        super().__init__()
        bound = math.sqrt(6.0 / (2 + hidden))                      # Xavier-uniform, fan_in 2, fan_out H
        w1 = (torch.rand(*shape, hidden, 2, generator=gen, dtype=torch.float64) * 2 - 1) * bound
        self.W1 = nn.Parameter(w1)
        self.b1 = nn.Parameter(torch.zeros(*shape, hidden, dtype=torch.float64))
        self.W2 = nn.Parameter(torch.zeros(*shape, hidden, dtype=torch.float64))
        self.b2 = nn.Parameter(torch.full(shape, softplus_inv(init_out), dtype=torch.float64))

    def forward(self, idx: tuple, feats: torch.Tensor) -> torch.Tensor:
        """feats (..., 2) → positive output (...)."""
        W1, b1, W2, b2 = self.W1[idx], self.b1[idx], self.W2[idx], self.b2[idx]
        h = torch.tanh(feats @ W1.transpose(-1, -2) + b1)
        return nn.functional.softplus(h @ W2 + b2)


class _Layer(nn.Module):
    def __init__(self, J, R, init: dict, hidden, gen):
        super().__init__()
        self.eta = StackedMLP((J,), init["eta"], hidden, gen)
        self.kappa = StackedMLP((J,), init["kappa"], hidden, gen)
        self.tau = StackedMLP((J, R), init["tau"], hidden, gen)
        self.zeta = StackedMLP((J, R), init["zeta"], hidden, gen)


class _MLPParams:
    """Adapter: the step function's ``params`` protocol backed by the per-layer MLPs."""

    def __init__(self, layers):
        self.layers = layers

    def dual(self, block, t, j, g, beta):
        lay = self.layers[t]
        mlp = lay.eta if block == "x" else lay.kappa
        feats = torch.stack([g, beta], dim=-1).to(mlp.W1.dtype)
        return mlp((j,), feats).to(g.dtype)

    def step(self, block, t, j, r, gnorm, lval):
        lay = self.layers[t]
        mlp = lay.tau if block == "x" else lay.zeta
        feats = torch.stack([torch.log10(gnorm + 1e-30), torch.log10(lval.abs() + 1e-30)], dim=-1)
        return mlp((j, r), feats.to(mlp.W1.dtype)).to(gnorm.dtype)


DEFAULT_INIT = {"eta": 0.1, "kappa": 0.1, "tau": 1.0, "zeta": 1.0}


class UnfoldedAdmm(nn.Module):
    """Deep-unfolded ADMM-ALM-DFP [spec A.6]: T layers of :func:`admm_layer` with learnable step sizes.

    Parameters
    ----------
    cfg : AdmmConfig (T, J, R, DFP variant, constraint handler, ...)
    init : dict with the initial constant step sizes ``eta, kappa, tau, zeta`` (those of the classical
        solver it starts from).
    hidden : hidden width of every MLP (A: 10).
    seed : seed of the Xavier initialisation (torch.Generator, no global state).
    """

    def __init__(self, cfg: AdmmConfig, init: dict | None = None, hidden: int = 10, seed: int = 0):
        super().__init__()
        self.cfg = cfg
        self.init_values = dict(DEFAULT_INIT, **(init or {}))
        gen = torch.Generator().manual_seed(int(seed))
        self.layers = nn.ModuleList(_Layer(cfg.J, cfg.R, self.init_values, hidden, gen) for _ in range(cfg.T))
        self.hidden = hidden

    def classical_params(self) -> ConstantParams:
        """The constant step sizes this network was initialised from, exactly as its MLPs compute them at
        initialisation (softplus(softplus⁻¹(v)) in float64, which may differ from v in the last bit: over
        the 12 000 steps of the paper-size network such a bit grows into a different iterate)."""
        v = self.init_values
        sp = lambda a: float(nn.functional.softplus(torch.tensor(softplus_inv(a), dtype=torch.float64)))  # noqa: E731
        return ConstantParams(sp(v["eta"]), sp(v["kappa"]), sp(v["tau"]), sp(v["zeta"]))

    def forward(self, state: AdmmState, objective, constraint, layers=None, cfg: AdmmConfig | None = None,
                trace=None) -> AdmmState:
        """Run layers ``layers`` (default all T) from ``state``; ``cfg`` may override e.g. update_phi.

        ``trace``: optional callable(state) → value appended per layer to ``self.last_trace``.
        """
        cfg = cfg or self.cfg
        params = _MLPParams(self.layers)
        self.last_trace = []
        for t in (range(cfg.T) if layers is None else layers):
            state = admm_layer(state, t, objective, constraint, params, cfg)
            if trace is not None:
                self.last_trace.append(trace(state))
        return state


def solve(state: AdmmState, objective, constraint, cfg: AdmmConfig, params=None, tol: float = 0.0,
          monitor=None):
    """Classical ADMM-ALM-DFP: up to ``cfg.T`` layers with constant ``params`` [spec A.6].

    monitor(state) -> (B,) positive value (e.g. SINR); stops once |1 − v_t/v_{t−1}| < tol for every
    sample (tol = 0: never). Returns (state, history list of monitored values).
    """
    params = params or ConstantParams(**DEFAULT_INIT)
    hist = []
    prev = monitor(state) if monitor is not None else None
    for t in range(cfg.T):
        state = admm_layer(state, t, objective, constraint, params, cfg)
        if monitor is not None:
            cur = monitor(state)
            hist.append(cur)
            if tol > 0 and bool(torch.all((1 - cur / prev).abs() < tol)):
                break
            prev = cur
    return state, hist
