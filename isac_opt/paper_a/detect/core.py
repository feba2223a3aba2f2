"""Shared set-up of paper A's detection task: variants, A.10 starting points, batches [spec A.10, A.11].

Variants (``VARIANTS``):
* ``"ris"``        optimised RIS (A's "Prop., w/ RIS"): φ⁰ by Riemannian ascent, x⁰ worst-case CI margin;
* ``"random-ris"`` φ = e^{jψ}, ψ ~ U[0, 2π)^N fixed; only the x-block runs (A.11.3);
* ``"no-ris"``     G = 0 (A.11.4), only the x-block runs;
* ``"radar-only"`` no CI constraints, radar-only x⁰ (A.11.2).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from ..channels import ChannelsA, realisation_rng
from ..scenario import ScenarioA
from ..starting import init_phi, init_x, init_x_radar_only, polish_cm_slots  # noqa: F401 (re-exported)
from ..unfold import AdmmState, CIConstraint, DetectProblem, SinrObjective

VARIANTS = ("ris", "random-ris", "no-ris", "radar-only")


@dataclass
class Start:
    """A.10 starting point of one realisation for one variant (numpy, unnormalised)."""

    channels: ChannelsA      # channels the variant designs for (G = 0 for "no-ris")
    X0: np.ndarray           # (M, L), CM-projected
    phi0: np.ndarray         # (N,)
    t_star: float            # worst-case normalised CI margin of the SOCP (nan for radar-only)


def check_variant(variant: str) -> str:
    if variant not in VARIANTS:
        raise ValueError(f"variant: expected one of {VARIANTS}, got {variant!r}")
    return variant


def start_point(scn: ScenarioA, ch: ChannelsA, variant: str, rng: np.random.Generator) -> Start:
    """A.10 initialisation of ``variant`` for realisation ``ch`` (``rng`` drives φ⁰/random phases)."""
    check_variant(variant)
    if variant == "no-ris":
        ch = ch.without_ris()
        phi = np.ones(scn.N, dtype=np.complex128)
    elif variant == "random-ris":
        phi = np.exp(2j * np.pi * rng.uniform(size=scn.N))
    else:
        phi = init_phi(scn, ch, rng)
    if variant == "radar-only":
        return Start(ch, init_x_radar_only(scn, ch, phi, rng), phi, float("nan"))
    X, t = init_x(scn, ch, phi)
    return Start(ch, polish_cm_slots(scn, ch, phi, X), phi, t)


def updates_phi(variant: str) -> bool:
    return variant in ("ris", "radar-only")


@dataclass
class Batch:
    """A batch ready for the step function."""

    problem: DetectProblem
    objective: SinrObjective
    constraint: CIConstraint | None
    state0: AdmmState
    starts: list


def make_batch(scn: ScenarioA, starts: list, variant: str, dtype=torch.float64, device=None) -> Batch:
    """Normalised torch batch + initial ADMM state from numpy start points [spec A.6 initialisation]."""
    prob = DetectProblem.from_channels(scn, [s.channels for s in starts], dtype=dtype, device=device)
    u0 = prob.u_from_numpy([s.X0 for s in starts])
    phi0 = prob.phi_from_numpy([s.phi0 for s in starts])
    prob.set_scale(u0, phi0)
    obj = SinrObjective(prob)
    cons = None if variant == "radar-only" else CIConstraint(prob)
    f0 = obj.value(u0, phi0)
    st = AdmmState.start(u0, phi0, f0, scn.K, scn.L)
    return Batch(prob, obj, cons, st, list(starts))


def draw_starts(scn: ScenarioA, seed: int, indices, variant: str, channels_fn=None) -> list:
    """Start points of realisations ``indices`` of a seeded run (channels from realisation_rng(seed, i))."""
    from ..channels import draw_channels
    out = []
    for i in indices:
        ch = channels_fn(i) if channels_fn is not None else draw_channels(scn, realisation_rng(seed, 2 * i))
        out.append(start_point(scn, ch, variant, realisation_rng(seed, 2 * i + 1)))
    return out


def sinr_db(prob: DetectProblem, x, phi) -> np.ndarray:
    """MVDR SINR in dB per sample (numpy)."""
    with torch.no_grad():
        return 10 * np.log10(prob.sinr(x, phi).detach().cpu().double().numpy())
