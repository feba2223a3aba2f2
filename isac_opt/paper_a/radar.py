"""Paper A radar model: echoes, interference covariance, MVDR, SINR, gradients [spec A.4, A.7].

Everything is structured: H̃_q x is computed as vec(a_q (b_qᵀ X_{(d_q)})) with X_{(d)} the slots shifted
right by d (zero fill), and C⁻¹ is applied by Woodbury — never an ML×ML matrix (those appear only in tests).

Vectorisation: x = vec(X) with X (M, L), antenna index fastest (slot-major) — :func:`isac_opt.radar.vec`.
Powers in W; SINR values linear unless the name says ``_db``.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..radar import shift_slots, shift_slots_left, unvec, vec
from .channels import ChannelsA, legs
from .scenario import ScenarioA


@dataclass(frozen=True)
class EchoA:
    """Structured echo of one design.

    s : (M, L) target echo H̃0 x (unvec'd); c : (Q, M, L) clutter echoes H̃_q x;
    a, b : (Q+1, M) receive/transmit legs (row 0 target); U = [ξ_q c_q] as (Q, M·L) rows.
    """

    s: np.ndarray
    c: np.ndarray
    a: np.ndarray
    b: np.ndarray
    xi_q: np.ndarray
    noise_w: float
    xi0_sq: float
    bins: tuple

    @property
    def U(self) -> np.ndarray:
        return self.xi_q[:, None] * vec(self.c)

    def cinv(self, v) -> np.ndarray:
        """C⁻¹ v by Woodbury: ξ_z⁻²[v − U(ξ_z² I + UᴴU)⁻¹Uᴴ v] [spec A.4]; v (ML,) or (ML, r)."""
        U = self.U.T                                   # (ML, Q)
        v = np.asarray(v)
        if U.shape[1] == 0:
            return v / self.noise_w
        core = self.noise_w * np.eye(U.shape[1]) + U.conj().T @ U
        return (v - U @ np.linalg.solve(core, U.conj().T @ v)) / self.noise_w

    def covariance(self) -> np.ndarray:
        """Dense C = ξ_z² I + Σ ξ_q² c_q c_qᴴ (ML×ML) — for tests and small checks only."""
        U = self.U.T
        return self.noise_w * np.eye(U.shape[0]) + U @ U.conj().T


def echo(scn: ScenarioA, ch: ChannelsA, X, phi) -> EchoA:
    """Target and clutter echoes of waveform X (M, L) with RIS φ (N,) [spec A.4 (3)–(9)]."""
    X = np.asarray(X, dtype=np.complex128)
    a, b = legs(ch, phi, scn.ris_leg_model)
    bins = (scn.target_bin,) + tuple(scn.clutter_bins)
    s = np.outer(a[0], b[0] @ shift_slots(X, bins[0]))
    c = np.stack([np.outer(a[q + 1], b[q + 1] @ shift_slots(X, bins[q + 1])) for q in range(scn.Q)]) \
        if scn.Q else np.zeros((0,) + X.shape, dtype=np.complex128)
    return EchoA(s=s, c=c, a=a, b=b, xi_q=np.sqrt(np.asarray(scn.xi_q_sq, dtype=np.float64)),
                 noise_w=scn.noise_radar_w, xi0_sq=scn.xi0_sq, bins=bins)


def sinr_mvdr(e: EchoA) -> float:
    """SINR* = ξ0² sᴴC⁻¹s = (ξ0²/ξ_z²)[‖s‖² − (Uᴴs)ᴴ(ξ_z² I + UᴴU)⁻¹(Uᴴs)] [spec A.4 (20), Woodbury]."""
    s = vec(e.s)
    return float(e.xi0_sq * np.real(np.vdot(s, e.cinv(s))))


def mvdr_filter(e: EchoA) -> np.ndarray:
    """w* = C⁻¹s/(sᴴC⁻¹s) [spec A.4 (20)]; complex128 (M·L,), so w*ᴴ s = 1."""
    s = vec(e.s)
    m = e.cinv(s)
    return m / np.vdot(s, m)


def sinr_of_filter(e: EchoA, w) -> float:
    """SINR(w) = ξ0²|wᴴs|² / (wᴴCw) for any filter w (ML,) [spec A.4 (17)]."""
    w = np.asarray(w, dtype=np.complex128)
    s = vec(e.s)
    Uw = e.U.conj() @ w                              # (Q,) = c_qᴴ w ξ_q
    den = e.noise_w * np.vdot(w, w).real + np.sum(np.abs(Uw) ** 2)
    return float(e.xi0_sq * abs(np.vdot(w, s)) ** 2 / den)


def objective_gradients(scn: ScenarioA, ch: ChannelsA, X, phi) -> tuple[float, np.ndarray, np.ndarray]:
    """F = sᴴC⁻¹s and its gradients G = 2∂F/∂z* w.r.t. X and φ (closed form) [spec A.7].

    Returns (F, G_X (M, L), G_phi (N,)). f1 = −F is the minimised objective; SINR* = ξ0² F.
    """
    X = np.asarray(X, dtype=np.complex128)
    e = echo(scn, ch, X, phi)
    M_, L_ = X.shape
    s = vec(e.s)
    m = e.cinv(s)
    F = float(np.real(np.vdot(s, m)))
    Mm = unvec(m, M_, L_)
    xi2 = np.asarray(scn.xi_q_sq, dtype=np.float64)
    # ∂F/∂x* = H̃0ᴴ m − Σ ξ_q² u_q H̃_qᴴ m, with H̃_iᴴ m = J_{d_i}ᵀ vec(H_iᴴ M_m), H_iᴴ = b_i* a_iᴴ
    def adj(i):
        return shift_slots_left(np.outer(np.conj(e.b[i]), np.conj(e.a[i]) @ Mm), e.bins[i])
    u = np.array([np.vdot(m, vec(e.c[q])) for q in range(scn.Q)])       # u_q = mᴴ c_q
    gx = adj(0)
    for q in range(scn.Q):
        gx = gx - xi2[q] * u[q] * adj(q + 1)
    # φ: e_i = diag(h_r) G* W_i b_i + diag(h_r*) G W_iᵀ a_i (literal); reciprocal: diag(h_r*) G (W+Wᵀ) b
    hr = np.concatenate([ch.h_rt[None], ch.h_rq], axis=0)
    def e_vec(i):
        W = np.conj(Mm) @ shift_slots(X, e.bins[i]).T
        if scn.ris_leg_model == "literal":
            return hr[i] * (np.conj(ch.G) @ (W @ e.b[i])) + np.conj(hr[i]) * (ch.G @ (W.T @ e.a[i]))
        return np.conj(hr[i]) * (ch.G @ ((W + W.T) @ e.b[i]))
    gphi = np.conj(e_vec(0))
    for q in range(scn.Q):
        gphi = gphi - xi2[q] * u[q] * np.conj(e_vec(q + 1))
    return F, 2.0 * gx, 2.0 * gphi
