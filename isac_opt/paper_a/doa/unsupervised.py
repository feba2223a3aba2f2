"""Unsupervised-learning baseline of paper A's DoA task ("Unsuper., w/ RIS") [spec A.11.5–6, RECON].

An MLP maps the channels and the symbol phases to waveform and RIS phases:

* input: [Re, Im] of G (N×M), h_k (K_max×M), h_{r,k} (K_max×N), each scaled by its path-loss amplitude,
  and [cos, sin] of ∠S (K_max×L); users beyond the scenario's K are zero-padded (K ≤ K_max), which lets
  a network trained with K users run with K* ≠ K (the transfer test);
* hidden layers 1024–512–256 (configurable), ReLU, BatchNorm;
* outputs ψ_x ∈ R^{ML}, ψ_φ ∈ R^N; x = sqrt(P/M) e^{jψ_x}, φ = e^{jψ_φ};
* loss: CRB/CRB_ref + ω Σ_{k,l} max(g_{k,l}/γ_{k,l}, 0)² (ω = 10, or ramped, see ``train_unsupervised``),
  CRB_ref the CRB of the A.10 start;
* stored in float16 on disk (runs in float64).
"""
from __future__ import annotations

import json

import numpy as np
import torch
from torch import nn

from ..scenario import ScenarioA
from ..unfold import CIConstraint
from .crb_torch import DoaProblem
from .model import WeightsError, read_weights

__all__ = ["UnsupervisedDoa", "features"]


def features(scn: ScenarioA, channels, K_max: int, starts=None) -> torch.Tensor:
    """Input features (B, F) float64; zero-padding of users up to K_max (K > K_max is refused).

    ``starts`` (residual networks only): the A.10 starts (:class:`DoaStart`), whose phases [cos, sin] of
    ∠X0 (M·L) and ∠φ0 (N) are appended.
    """
    if scn.K > K_max:
        raise WeightsError(f"unsupervised DoA network accepts at most K = {K_max} users, scenario has K = {scn.K}")
    rows = []
    for i, ch in enumerate(channels):
        sG = np.max(np.abs(ch.G)) or 1.0
        sk = np.max(np.abs(ch.h_k)) or 1.0
        sr = np.max(np.abs(ch.h_rk)) or 1.0
        hk = np.zeros((K_max, scn.M), complex)
        hk[:scn.K] = ch.h_k / sk
        hr = np.zeros((K_max, scn.N), complex)
        hr[:scn.K] = ch.h_rk / sr
        ang = np.zeros((2, K_max, scn.L))
        ang[0, :scn.K] = np.cos(np.angle(ch.S))
        ang[1, :scn.K] = np.sin(np.angle(ch.S))
        parts = [ch.G / sG, hk, hr]
        extra = []
        if starts is not None:
            a0 = np.r_[np.angle(starts[i].X0).T.ravel(), np.angle(starts[i].phi0)]
            extra = [np.cos(a0), np.sin(a0)]
        rows.append(np.concatenate([np.r_[p.real.ravel(), p.imag.ravel()] for p in parts] + [ang.ravel()] + extra))
    return torch.as_tensor(np.stack(rows), dtype=torch.float64)


class UnsupervisedDoa(nn.Module):
    """MLP from (channels, symbol phases) to (ψ_x, ψ_φ) [spec A.11.5]."""

    def __init__(self, scn: ScenarioA, K_max: int, hidden=(1024, 512, 256), seed: int = 0,
                 residual: bool = False):
        super().__init__()
        self.scn, self.K_max, self.hidden = scn, int(K_max), tuple(int(h) for h in hidden)
        self.residual = bool(residual)
        n_in = 2 * scn.N * scn.M + 2 * K_max * scn.M + 2 * K_max * scn.N + 2 * K_max * scn.L
        if self.residual:
            n_in += 2 * (scn.M * scn.L + scn.N)
        n_out = scn.M * scn.L + scn.N
        gen = torch.Generator().manual_seed(int(seed))
        layers, d = [], n_in
        for h in self.hidden:
            lin = nn.Linear(d, h).double()
            nn.init.xavier_uniform_(lin.weight, generator=gen)
            nn.init.zeros_(lin.bias)
            layers += [lin, nn.BatchNorm1d(h).double(), nn.ReLU()]
            d = h
        out = nn.Linear(d, n_out).double()
        if self.residual:     # starts exactly at the A.10 start (CI-feasible)
            nn.init.zeros_(out.weight)
        else:
            nn.init.xavier_uniform_(out.weight, generator=gen)
        nn.init.zeros_(out.bias)
        layers.append(out)
        self.mlp = nn.Sequential(*layers)
        self.meta: dict = {}

    def check_fits(self, scn: ScenarioA) -> None:
        bad = [f"{k}={getattr(scn, k)!r} (trained with {getattr(self.scn, k)!r})"
               for k in ("M", "N", "L", "Q", "psk_order", "ris_leg_model") if getattr(scn, k) != getattr(self.scn, k)]
        if scn.K > self.K_max:
            bad.append(f"K={scn.K} (at most K_max={self.K_max})")
        if bad:
            raise WeightsError("unsupervised DoA weights do not fit this scenario: " + ", ".join(bad))

    def forward(self, scn: ScenarioA, feats: torch.Tensor, start=None):
        """(u (B, M, L) unit modulus, φ (B, N)) complex128.

        ``start`` = (u0 (B, M, L), φ0 (B, N)): required by residual networks, whose outputs are phase
        corrections ψ = ∠start + Δψ [RECON]."""
        self.check_fits(scn)
        psi = self.mlp(feats)
        ML = scn.M * scn.L
        if self.residual:
            if start is None:
                raise ValueError("residual unsupervised DoA network: start (u0, φ0) is required")
            u0, phi0 = start
            psi = psi + torch.cat([torch.angle(u0).transpose(1, 2).reshape(-1, ML), torch.angle(phi0)], dim=1)
        u = torch.polar(torch.ones_like(psi[:, :ML]), psi[:, :ML]).reshape(-1, scn.L, scn.M).transpose(1, 2)
        phi = torch.polar(torch.ones_like(psi[:, ML:]), psi[:, ML:])
        return u, phi

    def design(self, scn: ScenarioA, channels, starts=None, seed: int = 0):
        """Inference: lists of X (M, L) [√W] and φ (N,). Residual networks use ``starts`` (A.10 starts,
        computed with ``seed`` when not given)."""
        self.eval()
        start = None
        if self.residual:
            if starts is None:
                from .model import start_points
                starts = start_points(scn, channels, "ris", seed)
            start = self._start(scn, starts)
        with torch.no_grad():
            u, phi = self.forward(scn, features(scn, channels, self.K_max, starts if self.residual else None),
                                  start)
        return list((u * scn.amp).numpy()), list(phi.numpy())

    @staticmethod
    def _start(scn: ScenarioA, starts):
        u0 = torch.as_tensor(np.stack([s.X0 for s in starts]) / scn.amp, dtype=torch.complex128)
        phi0 = torch.as_tensor(np.stack([s.phi0 for s in starts]), dtype=torch.complex128)
        return u0, phi0

    def loss(self, scn: ScenarioA, prob: DoaProblem, feats, crb_ref, omega: float = 10.0, start=None):
        u, phi = self.forward(scn, feats, start)
        crb = prob.crb(u, phi, 1e-12)
        g = CIConstraint(prob.det).g(u, phi) / prob.det.gscale[:, None, None]   # in units of γ (A.11.5)
        pen = (torch.clamp(g, min=0.0) ** 2).sum(dim=(1, 2))
        return (crb / crb_ref + omega * pen).mean(), crb.detach()

    def save(self, path) -> None:
        meta = {"format": "ris-isac-testbed/doa-unsupervised", "version": 1, "K_max": self.K_max,
                "hidden": list(self.hidden), "residual": self.residual, "train_scenario": self.scn.to_dict(), **self.meta}
        # stored in float16 (a quarter of the float64 size, so that 1024–512–256 fits the 9 MB budget;
        # the network runs in float64 after loading; the shipped test CRBs are measured after the round trip)
        sd = {k: (v.half() if v.is_floating_point() else v) for k, v in self.state_dict().items()}
        torch.save({"meta": json.dumps(meta), "state_dict": sd}, path)

    @classmethod
    def load(cls, path) -> "UnsupervisedDoa":
        path, blob, meta = read_weights(path, "weights file")
        if meta.get("format") != "ris-isac-testbed/doa-unsupervised":
            raise WeightsError(f"{path}: format {meta.get('format')!r}, expected 'ris-isac-testbed/doa-unsupervised'")
        m = cls(ScenarioA.from_dict(meta["train_scenario"]), meta["K_max"], meta["hidden"],
                residual=bool(meta.get("residual", False)))
        try:
            m.load_state_dict(blob["state_dict"])
        except RuntimeError as e:
            raise WeightsError(f"{path}: weights do not match the recorded configuration ({e})") from None
        m.meta = {k: v for k, v in meta.items() if k not in ("format", "version", "K_max", "hidden", "residual",
                                                             "train_scenario")}
        return m
