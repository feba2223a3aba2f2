"""Batched torch form of paper A's detection problem in normalised units [spec A.4, A.7, A.3].

Normalisation [spec D.4, RECON]
--------------------------------
* waveform x = amp · u with amp = sqrt(P/M), so |u_i| = 1 on the CM set (both u and φ are unit modulus);
* radar: legs are scaled so that the noise power is 1 and ξ's are absorbed: a'_i = a_i ξ_i amp β0/σ_z,
  b'_i = b_i/β0 (β0 = |h_bt| path-loss amplitude). Then F(u, φ) := s'ᴴ(I + Σ c'_q c'_qᴴ)⁻¹ s' equals the
  MVDR SINR* = ξ0² sᴴC⁻¹s exactly (linear, not dB);
* CI: user channels are scaled by amp/γ_k, so the normalised constraint is g̃ = g/γ = 1 − m(z')
  with z' = h̃'_kᵀ u[l] (≤ 0 ⇔ CI holds);
* objective minimised by the ADMM step: f(u, φ) = −F(u, φ)/F0 with F0 the SINR at the starting point
  (per sample), so f ≈ −1 at the start. This is a positive rescaling of A's f1 = −sᴴC⁻¹s.

Shapes: batch first. u (B, M, L) complex, φ (B, N) complex, g̃ (B, K, L) real.
Gradients follow the spec convention G = 2∂f/∂z* (= torch autograd on complex leaves), computed here in
closed, fully structured form (rank-one legs, Gram matrices, a (Q×Q) solve; never an ML×ML matrix), and
differentiable with torch autograd for training.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch

from ..channels import ChannelsA
from ...ci import ci_thresholds
from ..scenario import ScenarioA

__all__ = ["DetectProblem", "SinrObjective", "CIConstraint", "complex_dtype"]


def complex_dtype(dtype: torch.dtype) -> torch.dtype:
    """complex dtype matching a real dtype (float64 → complex128, float32 → complex64)."""
    if dtype == torch.float64:
        return torch.complex128
    if dtype == torch.float32:
        return torch.complex64
    raise ValueError(f"dtype: expected torch.float64 or torch.float32, got {dtype}")


def _stack(arrs, cdt, dev):
    return torch.as_tensor(np.stack(arrs), dtype=cdt, device=dev)


@dataclass
class DetectProblem:
    """A batch of B paper-A realisations of one scenario, as normalised torch tensors.

    Attributes (all complex, batch first): A0, Ar (B, Q+1, M/N) and Ga (B, N, M) give the receive legs
    a_i = A0_i + (Ar_i ⊙ φ) Ga; B0, Br, Gb the transmit legs b_i = B0_i + (Br_i ⊙ φ) Gb; Hk (B, K, M),
    Hrk (B, K, N), Gu (B, N, M) give h̃'_k = Hk_k + (Hrk_k ⊙ φ) Gu; Sc (B, K, L) = e^{−j∠s}.
    ``fscale`` (B,) = 1/F0 (set by :meth:`set_scale`). ``bins`` = (target bin, clutter bins...).
    """

    scn: ScenarioA
    A0: torch.Tensor
    Ar: torch.Tensor
    Ga: torch.Tensor
    B0: torch.Tensor
    Br: torch.Tensor
    Gb: torch.Tensor
    Hk: torch.Tensor
    Hrk: torch.Tensor
    Gu: torch.Tensor
    Sc: torch.Tensor
    fscale: torch.Tensor
    gscale: torch.Tensor     # (B,) CI scale: g̃ = gscale·(1 − m/γ)
    bins: tuple
    idx_r: torch.Tensor      # (Q+1, L) gather index for the right shift (l - d)
    ok_r: torch.Tensor       # (Q+1, L) validity mask
    idx_l: torch.Tensor      # (Q+1, L) gather index for the left shift (l + d)
    ok_l: torch.Tensor

    @property
    def batch(self) -> int:
        return self.A0.shape[0]

    @property
    def dtype(self) -> torch.dtype:
        return torch.float64 if self.A0.dtype == torch.complex128 else torch.float32

    @property
    def device(self):
        return self.A0.device

    @classmethod
    def from_channels(cls, scn: ScenarioA, channels, dtype=torch.float64, device=None) -> "DetectProblem":
        """Build the normalised batch from a list of :class:`~isac_opt.paper_a.channels.ChannelsA`."""
        if isinstance(channels, ChannelsA):
            channels = [channels]
        if len(channels) == 0:
            raise ValueError("channels: expected at least one realisation, got an empty list")
        cdt = complex_dtype(dtype)
        dev = torch.device(device) if device is not None else torch.device("cpu")
        amp = scn.amp
        sig = math.sqrt(scn.noise_radar_w)
        beta0 = float(np.max(np.abs(channels[0].h_bt))) or 1.0
        xi = np.sqrt(np.r_[scn.xi0_sq, np.asarray(scn.xi_q_sq, dtype=np.float64)])
        kappa = (xi * amp * beta0 / sig)[:, None]                        # (Q+1, 1)
        gam = ci_thresholds(scn.noise_comm_w, scn.gamma_db, scn.psk_order)
        ug = (amp / gam)[:, None]                                        # (K, 1)
        A0, Ar, Ga, B0, Br, Gb, Hk, Hrk, Gu, Sc = ([] for _ in range(10))
        for ch in channels:
            ch.check(scn)
            hb = np.concatenate([ch.h_bt[None], ch.h_bq], axis=0)
            hr = np.concatenate([ch.h_rt[None], ch.h_rq], axis=0)
            B0.append(np.conj(hb) / beta0)
            Br.append(np.conj(hr) / beta0)
            Gb.append(ch.G)
            if scn.ris_leg_model == "literal":
                A0.append(hb * kappa)
                Ar.append(hr * kappa)
                Ga.append(np.conj(ch.G))
            else:
                A0.append(np.conj(hb) * kappa)
                Ar.append(np.conj(hr) * kappa)
                Ga.append(ch.G)
            Hk.append(np.conj(ch.h_k) * ug)
            Hrk.append(np.conj(ch.h_rk) * ug)
            Gu.append(ch.G)
            Sc.append(np.conj(ch.S) / np.abs(ch.S))
        bins = (scn.target_bin,) + tuple(int(d) for d in scn.clutter_bins)
        ll = torch.arange(scn.L, device=dev)
        d = torch.as_tensor(bins, device=dev)[:, None]
        idx_r = ll[None] - d
        idx_l = ll[None] + d
        st = lambda a: _stack(a, cdt, dev)
        return cls(scn, st(A0), st(Ar), st(Ga), st(B0), st(Br), st(Gb), st(Hk), st(Hrk), st(Gu), st(Sc),
                   torch.ones(len(channels), dtype=dtype, device=dev),
                   torch.ones(len(channels), dtype=dtype, device=dev), bins,
                   idx_r.clamp(min=0), idx_r >= 0, idx_l.clamp(max=scn.L - 1), idx_l < scn.L)

    # ------------------------------------------------------------------------------------------
    def legs(self, phi):
        """Receive and transmit legs a, b (B, Q+1, M) at φ (B, N) [spec A.4 (6)]."""
        a = self.A0 + (self.Ar * phi[:, None, :]) @ self.Ga
        b = self.B0 + (self.Br * phi[:, None, :]) @ self.Gb
        return a, b

    def shift_right(self, T):
        """Row i of T (B, Q+1, L) shifted right by d_i with zero fill: (J_d t)[l] = t[l − d]."""
        idx = self.idx_r.expand(T.shape[0], -1, -1)
        return torch.gather(T, 2, idx) * self.ok_r

    def shift_left(self, T):
        """Adjoint of :meth:`shift_right` (row i shifted left by d_i, zero fill)."""
        idx = self.idx_l.expand(T.shape[0], -1, -1)
        return torch.gather(T, 2, idx) * self.ok_l

    def htil(self, phi):
        """Normalised effective user channels h̃' (B, K, M) = (amp/γ_k)(h_kᴴ + h_{r,k}ᴴΦG) [spec A.3]."""
        return self.Hk + (self.Hrk * phi[:, None, :]) @ self.Gu

    def sinr(self, u, phi):
        """MVDR SINR* (linear) of (u, φ) per sample, (B,) real [spec A.4 (20)]."""
        return SinrObjective(self).value_grad(u, phi, wrt=())[0]

    def set_scale(self, u0, phi0) -> None:
        """Fix f = −F/F0 with F0 = SINR*(u0, φ0) per sample, and the CI scale
        gscale = 1/mean_{k,l}|m_{k,l}/γ_k| at (u0, φ0) (so g̃ = O(1); the feasible set is unchanged)."""
        with torch.no_grad():
            self.fscale = 1.0 / self.sinr(u0, phi0).detach()
            self.gscale = torch.ones_like(self.fscale)
            g = CIConstraint(self).g(u0, phi0)
            self.gscale = 1.0 / (1.0 - g).abs().mean(dim=(1, 2)).clamp(min=1.0)

    def select(self, idx) -> "DetectProblem":
        """Sub-batch (index tensor or slice) sharing the scenario."""
        kw = {k: getattr(self, k)[idx] for k in ("A0", "Ar", "Ga", "B0", "Br", "Gb", "Hk", "Hrk", "Gu", "Sc",
                                                 "fscale", "gscale")}
        return DetectProblem(self.scn, bins=self.bins, idx_r=self.idx_r, ok_r=self.ok_r, idx_l=self.idx_l,
                             ok_l=self.ok_l, **kw)

    def to(self, dtype=None, device=None) -> "DetectProblem":
        dtype = dtype or self.dtype
        cdt = complex_dtype(dtype)
        kw = {k: getattr(self, k).to(dtype=cdt, device=device) for k in
              ("A0", "Ar", "Ga", "B0", "Br", "Gb", "Hk", "Hrk", "Gu", "Sc")}
        return DetectProblem(self.scn, fscale=self.fscale.to(dtype=dtype, device=device),
                             gscale=self.gscale.to(dtype=dtype, device=device), bins=self.bins,
                             idx_r=self.idx_r.to(device), ok_r=self.ok_r.to(device),
                             idx_l=self.idx_l.to(device), ok_l=self.ok_l.to(device), **kw)

    def phi_from_numpy(self, phis) -> torch.Tensor:
        return torch.as_tensor(np.stack(phis), dtype=self.A0.dtype, device=self.device)

    def u_from_numpy(self, Xs) -> torch.Tensor:
        return torch.as_tensor(np.stack(Xs) / self.scn.amp, dtype=self.A0.dtype, device=self.device)


class SinrObjective:
    """f(u, φ) = −F(u, φ)·fscale with F the MVDR SINR*, closed-form structured gradients [spec A.7].

    ``value_grad(u, phi, wrt=("x",)|("phi",)|("x","phi")|())`` → (f or F, G_u, G_φ).
    With ``wrt=()`` returns (F (B,), None, None) — the raw SINR (linear).

    Structure: t_i = J_{d_i}(b_iᵀU) (B, Q+1, L); Gram P_ij = (a_iᴴa_j)(t_iᴴt_j);
    F = P00 − rᴴ(I + Γ)⁻¹r with Γ = P[1:,1:], r = P[1:,0]; M_m = a0 t0ᵀ − Σ w_q a_q t_qᵀ (= C⁻¹s);
    u_q = m^H c_q; G_{a_i} = 2κ_i M_m t_i*, G_{t_i} = 2κ_i M_mᵀ a_i* (κ_0 = 1, κ_q = −u_q);
    G_U = Σ_i b_i* ⊗ J_{d_i}ᵀG_{t_i}; G_φ = Σ_i Ar_i* ⊙ (Ga* G_{a_i}) + Br_i* ⊙ (Gb* G_{b_i}).
    """

    def __init__(self, prob: DetectProblem):
        self.p = prob

    def prep(self, phi):
        """Legs (a, b) at φ, reused while only u changes."""
        return self.p.legs(phi)

    def value_grad(self, u, phi, wrt=("x",), pre=None):
        p = self.p
        a, b = pre if pre is not None else p.legs(phi)
        t = p.shift_right(b @ u)
        A = a.conj() @ a.transpose(-1, -2)
        Tm = t.conj() @ t.transpose(-1, -2)
        P = A * Tm
        Q = P.shape[1] - 1
        if Q > 0:
            Gam = P[:, 1:, 1:]
            r = P[:, 1:, 0]
            eye = torch.eye(Q, dtype=P.dtype, device=P.device)
            w = torch.linalg.solve(eye + Gam, r.unsqueeze(-1)).squeeze(-1)
            F = P[:, 0, 0].real - (r.conj() * w).sum(-1).real
        else:
            F = P[:, 0, 0].real
        if not wrt:
            return F, None, None
        sc = -p.fscale
        f = F * sc
        if Q > 0:
            uq = P[:, 0, 1:] - (w.conj().unsqueeze(1) @ Gam).squeeze(1)        # m^H c_q
            coef_m = torch.cat([torch.ones_like(w[:, :1]), -w], dim=1)          # M_m = Σ coef_m a_i t_iᵀ
            coef_g = torch.cat([torch.ones_like(uq[:, :1]), -uq], dim=1)
        else:
            coef_m = coef_g = torch.ones(P.shape[0], 1, dtype=P.dtype, device=P.device)
        Mm = (a * coef_m[:, :, None]).transpose(-1, -2) @ t                  # (B, M, L)
        cg = (2.0 * sc).to(P.dtype)[:, None] * coef_g                        # scaled for f
        Gt = cg[:, :, None] * (a.conj() @ Mm)
        Gts = p.shift_left(Gt)
        Gu = b.conj().transpose(-1, -2) @ Gts if "x" in wrt else None
        Gphi = None
        if "phi" in wrt:
            Ga_ = cg[:, :, None] * (t.conj() @ Mm.transpose(-1, -2))
            Gb_ = Gts @ u.conj().transpose(-1, -2)
            Gphi = (p.Ar.conj() * (Ga_ @ p.Ga.conj().transpose(-1, -2))).sum(1) \
                + (p.Br.conj() * (Gb_ @ p.Gb.conj().transpose(-1, -2))).sum(1)
        return f, Gu, Gphi

    def value(self, u, phi):
        """f(u, φ) = −F·fscale (B,)."""
        return -self.p.fscale * self.value_grad(u, phi, wrt=())[0]


class CIConstraint:
    """Normalised CI constraints g̃_{k,l} = c_s(1 − (sinΘ Re z̃ − cosΘ |Im z̃|)) ≤ 0 [spec A.3 (19)].

    c_s = ``prob.gscale`` (B,) > 0 rescales the constraints of a sample (default 1; :meth:`set_scale`).

    ``g(u, phi)`` → (B, K, L); ``vjp(u, phi, W, wrt)`` → (Σ W⊙∇_u g̃, Σ W⊙∇_φ g̃) with the gradient
    convention G = 2∂/∂z*: G_z̃ = −sinΘ + j cosΘ sgn(Im z̃) [spec A.7, CI term].
    """

    def __init__(self, prob: DetectProblem):
        self.p = prob
        th = math.pi / prob.scn.psk_order
        self.sin, self.cos = math.sin(th), math.cos(th)

    def prep(self, phi):
        """h̃'(φ), reused while only u changes."""
        return self.p.htil(phi)

    def g(self, u, phi, pre=None):
        ht = pre if pre is not None else self.p.htil(phi)
        zt = (ht @ u) * self.p.Sc
        return self.p.gscale[:, None, None] * (1.0 - (self.sin * zt.real - self.cos * zt.imag.abs()))

    def g_vjp(self, u, phi, weights, wrt=("x",), pre=None):
        """g̃ and the penalty gradient in one pass: weights(g̃) -> (value (B,), W (B, K, L));
        returns (g̃, value, Σ W∇_u g̃ or None, Σ W∇_φ g̃ or None)."""
        p = self.p
        ht = pre if pre is not None else p.htil(phi)
        zt = (ht @ u) * p.Sc
        gs = p.gscale[:, None, None]
        g = gs * (1.0 - (self.sin * zt.real - self.cos * zt.imag.abs()))
        val, W = weights(g)
        c = torch.complex(torch.full_like(zt.real, -self.sin), self.cos * torch.sign(zt.imag))
        Wc = (W * gs).to(zt.dtype) * c * p.Sc.conj()
        gu = ht.conj().transpose(-1, -2) @ Wc if "x" in wrt else None
        gphi = None
        if "phi" in wrt:
            gphi = (p.Hrk.conj() * (Wc @ (p.Gu @ u).conj().transpose(-1, -2))).sum(1)
        return g, val, gu, gphi

    def vjp(self, u, phi, W, wrt=("x",), pre=None):
        p = self.p
        ht = pre if pre is not None else p.htil(phi)
        zt = (ht @ u) * p.Sc
        c = torch.complex(torch.full_like(zt.real, -self.sin), self.cos * torch.sign(zt.imag))
        Wc = (W * p.gscale[:, None, None]).to(zt.dtype) * c * p.Sc.conj()                               # G_z (B, K, L)
        gu = ht.conj().transpose(-1, -2) @ Wc if "x" in wrt else None
        gphi = None
        if "phi" in wrt:
            GuU = p.Gu @ u
            tmp = Wc @ GuU.conj().transpose(-1, -2)
            gphi = (p.Hrk.conj() * tmp).sum(1)
        return gu, gphi
