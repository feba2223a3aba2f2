"""Batched, differentiable torch CRB of the target DoA in structured form [spec A.8].

Works in the normalised units of :class:`isac_opt.unfold.problem.DetectProblem` (u = x/sqrt(P/M) unit
modulus, radar legs scaled so that the receiver noise is 1). In those units

    CRB_θ = Tr{ [2 Re{ Vᴴ C'⁻¹ V }_{θ|α}]⁻¹ },   V = [u', d'_0, d'_R] (ML, 3),

where the Schur complement with respect to the nuisance α0 is
F = 2 Re{W_DD − W_Du W_uD / W_uu} with W = Vᴴ C'⁻¹ V (3×3); this is exactly the closed form of A.8
(the scale factors ξ0/ξ_z of u', D' and the 1/ξ_z² of C' cancel, and |α0|² = ξ0² is folded in).

Structure (never an ML×ML matrix): every vector involved is a sum of rank-one space-time "atoms"
α ⊗ τ (α ∈ C^M a leg, τ ∈ C^L a shifted slot sequence):

* clutter c'_q = a_q ⊗ J_{d_q}(b_qᵀU)         (Q atoms)
* u'  = a_0 ⊗ t_0,   t_0 = J_{d_0}(b_0ᵀU)
* d'_0 = ȧ_0 ⊗ t_0 + a_0 ⊗ J_{d_0}(ḃ_0ᵀU)     (derivative legs w.r.t. θ0)
* d'_R = ȧ_R ⊗ t_0 + a_0 ⊗ J_{d_0}(ḃ_Rᵀ U)    (derivative legs w.r.t. θ_RIS)

so the Gram matrix of the Q+5 atoms is (αᴴα) ⊙ (τᴴτ), C'⁻¹ = I − U(I + UᴴU)⁻¹Uᴴ is applied by a
Q×Q Cholesky solve (Woodbury), and the 2×2 Fisher block is inverted in closed form.
Differentiable in u and φ by torch autograd (G = 2∂f/∂z*, spec 0.3).
"""
from __future__ import annotations

import math

import numpy as np
import torch

from ..channels import ChannelsA, target_clutter_los
from ..config import ScenarioA
from ..unfold.problem import DetectProblem, complex_dtype

__all__ = ["DoaProblem", "CrbObjective", "crb_torch"]


class DoaProblem:
    """A batch of paper-A realisations for the DoA task: a :class:`DetectProblem` plus the θ-derivative legs.

    Attributes
    ----------
    det : DetectProblem (legs, user channels, shifts; normalised).
    dA0, dB0 : (M,) complex, ∂(receive/transmit direct leg)/∂θ0 (normalised like A0[:, 0], B0[:, 0]).
    dAr, dBr : (N,) complex, ∂h_rt-terms/∂θ_RIS (normalised like Ar[:, 0], Br[:, 0]).
    cscale : (B,) real, 1/CRB0 per sample (set by :meth:`set_scale`; 1 by default).
    """

    def __init__(self, det: DetectProblem, dA0, dB0, dAr, dBr, cscale=None):
        self.det = det
        self.scn = det.scn
        self.dA0, self.dB0, self.dAr, self.dBr = dA0, dB0, dAr, dBr
        self.cscale = cscale if cscale is not None else torch.ones(det.batch, dtype=det.dtype,
                                                                   device=det.device)

    @property
    def batch(self) -> int:
        return self.det.batch

    @classmethod
    def from_channels(cls, scn: ScenarioA, channels, dtype=torch.float64, device=None) -> "DoaProblem":
        """Build from a list of :class:`ChannelsA` (same normalisation as ``DetectProblem``)."""
        if isinstance(channels, ChannelsA):
            channels = [channels]
        det = DetectProblem.from_channels(scn, channels, dtype=dtype, device=device)
        los = target_clutter_los(scn)
        amp = scn.amp
        sig = math.sqrt(scn.noise_radar_w)
        beta0 = float(np.max(np.abs(channels[0].h_bt))) or 1.0     # as in DetectProblem.from_channels
        k0 = math.sqrt(scn.xi0_sq) * amp * beta0 / sig
        dh_bt, dh_rt = los["dh_bt"], los["dh_rt"]
        if scn.ris_leg_model == "literal":
            dA0, dAr = dh_bt * k0, dh_rt * k0
        else:
            dA0, dAr = np.conj(dh_bt) * k0, np.conj(dh_rt) * k0
        dB0, dBr = np.conj(dh_bt) / beta0, np.conj(dh_rt) / beta0
        cdt = complex_dtype(dtype)
        t = lambda a: torch.as_tensor(np.asarray(a), dtype=cdt, device=det.device)
        return cls(det, t(dA0), t(dB0), t(dAr), t(dBr))

    def select(self, idx) -> "DoaProblem":
        return DoaProblem(self.det.select(idx), self.dA0, self.dB0, self.dAr, self.dBr, self.cscale[idx])

    def to(self, dtype=None, device=None) -> "DoaProblem":
        det = self.det.to(dtype=dtype, device=device)
        cdt = complex_dtype(det.dtype)
        c = lambda z: z.to(dtype=cdt, device=device)
        return DoaProblem(det, c(self.dA0), c(self.dB0), c(self.dAr), c(self.dBr),
                          self.cscale.to(dtype=det.dtype, device=device))

    def crb(self, u, phi, ridge: float = 0.0) -> torch.Tensor:
        """CRB_θ [rad²] per sample (B,)."""
        return crb_torch(self, u, phi, ridge)

    def set_scale(self, u0, phi0, ridge: float = 1e-12) -> None:
        """Fix the objective scale 1/CRB(u0, φ0) per sample (detached)."""
        with torch.no_grad():
            self.cscale = 1.0 / crb_torch(self, u0, phi0, ridge).detach()


def _shift(prob: DetectProblem, row: int, t):
    """(J_d t)[l] = t[l − d] with d = bins[row]; t (B, L)."""
    idx = prob.idx_r[row]
    return t[:, idx] * prob.ok_r[row]


def crb_torch(prob: DoaProblem, u, phi, ridge: float = 0.0) -> torch.Tensor:
    """Structured CRB_θ (sum of the θ0 and θ_RIS bounds) [rad²] [spec A.8 (40)–(41), (56)–(58)].

    Parameters
    ----------
    prob : DoaProblem (batch B).
    u : (B, M, L) complex, normalised waveform x/sqrt(P/M).
    phi : (B, N) complex RIS coefficients.
    ridge : relative ridge; ε·tr(F)·I is added to the 2×2 Fisher block before inversion [RECON].

    Returns (B,) real; differentiable in ``u`` and ``phi``.
    """
    p = prob.det
    a, b = p.legs(phi)                                             # (B, Q+1, M)
    t = p.shift_right(torch.einsum("bim,bml->bil", b, u))          # (B, Q+1, L)
    Q = a.shape[1] - 1
    a0, t0 = a[:, 0], t[:, 0]
    Bn = a.shape[0]
    da0 = prob.dA0.expand(Bn, -1)
    daR = torch.einsum("bn,bnm->bm", prob.dAr * phi, p.Ga)
    dbR = torch.einsum("bn,bnm->bm", prob.dBr * phi, p.Gb)
    dt0 = _shift(p, 0, torch.einsum("m,bml->bl", prob.dB0, u))
    dtR = _shift(p, 0, torch.einsum("bm,bml->bl", dbR, u))
    # atoms: [clutters (Q) | a0⊗t0 | ȧ0⊗t0 | a0⊗ṫ0 | ȧR⊗t0 | a0⊗ṫR]
    alpha = torch.cat([a[:, 1:], torch.stack([a0, da0, a0, daR, a0], dim=1)], dim=1)
    tau = torch.cat([t[:, 1:], torch.stack([t0, t0, dt0, t0, dtR], dim=1)], dim=1)
    P = torch.einsum("bim,bjm->bij", alpha.conj(), alpha) * torch.einsum("bil,bjl->bij", tau.conj(), tau)
    Pyy = P[:, Q:, Q:]                                             # (B, 5, 5)
    if Q > 0:
        eye = torch.eye(Q, dtype=P.dtype, device=P.device)
        Lc = torch.linalg.cholesky(eye + P[:, :Q, :Q])
        Ruy = P[:, :Q, Q:]
        Z = torch.cholesky_solve(Ruy, Lc)
        W5 = Pyy - Ruy.conj().transpose(-1, -2) @ Z                # Yᴴ C'⁻¹ Y
    else:
        W5 = Pyy
    E = torch.tensor([[1, 0, 0], [0, 1, 0], [0, 1, 0], [0, 0, 1], [0, 0, 1]], dtype=P.dtype, device=P.device)
    W = E.T @ W5 @ E                                               # [u, d0, dR]ᴴ C'⁻¹ [u, d0, dR]
    Wuu = W[:, 0, 0].real
    Fm = 2.0 * (W[:, 1:, 1:] - W[:, 1:, :1] @ W[:, :1, 1:] / Wuu[:, None, None]).real   # (B, 2, 2)
    F11, F22, F12 = Fm[:, 0, 0], Fm[:, 1, 1], 0.5 * (Fm[:, 0, 1] + Fm[:, 1, 0])
    if ridge:
        r = ridge * (F11 + F22)
        F11, F22 = F11 + r, F22 + r
    det = F11 * F22 - F12 * F12
    return (F11 + F22) / det


class CrbObjective:
    """f2 normalised: f(u, φ) = CRB_θ(u, φ) · cscale (≈ 1 at the start), for the shared ADMM step.

    Implements the ``objective`` protocol of :func:`isac_opt.unfold.step.admm_layer`
    (``prep``, ``value_grad``) through :class:`~isac_opt.unfold.step.AutogradObjective`.
    ``log=True`` uses log(CRB/CRB0) instead (scale-free; [RECON] option, not the paper's f2).
    """

    def __init__(self, prob: DoaProblem, ridge: float = 1e-12, log: bool = False):
        from ..unfold.step import AutogradObjective
        self.prob = prob
        self.ridge = ridge
        self.log = log
        self._ag = AutogradObjective(self.value)

    def value(self, u, phi):
        c = crb_torch(self.prob, u, phi, self.ridge)
        return torch.log(c * self.prob.cscale) if self.log else c * self.prob.cscale

    def prep(self, phi):
        return None

    def value_grad(self, x, phi, wrt=("x",), pre=None):
        return self._ag.value_grad(x, phi, wrt, pre)
