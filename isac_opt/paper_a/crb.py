"""Cramér–Rao bound of the target DoA (θ0 at the BS, θ_RIS at the RIS) [spec A.8].

CRB_θ = Tr{ [2|α0|² Re{Dᴴ(C⁻¹ − C⁻¹uuᴴC⁻¹/(uᴴC⁻¹u))D}]⁻¹ },  u = H̃0 x,  D = [(I⊗∂H0/∂θ0)x, (I⊗∂H0/∂θ_RIS)x].
C⁻¹ is applied by Woodbury (clutter does not depend on the target parameters). |α0|² := ξ0².
"""
from __future__ import annotations

import numpy as np

from .channels import ChannelsA, target_clutter_los
from .scenario import ScenarioA
from .radar import echo
from ..radar import shift_slots, vec


def doa_derivative_echoes(scn: ScenarioA, ch: ChannelsA, X, phi) -> np.ndarray:
    """D = [d_0, d_R] (M·L, 2): echoes through ∂H0/∂θ0 and ∂H0/∂θ_RIS [spec A.8 (56)].

    Literal: ∂H0/∂θ0 = ḣ_bt b0ᵀ + a0 ḣ_btᴴ; ∂H0/∂θ_RIS = (GᴴΦḣ_rt) b0ᵀ + a0 (ḣ_rtᴴΦG).
    Reciprocal: ∂H0/∂θ = ḃ b0ᵀ + b0 ḃᵀ with ḃ = ḣ_bt* (θ0) or GᵀΦḣ_rt* (θ_RIS).
    The derivatives of the LoS vectors come from the scenario geometry.
    """
    los = target_clutter_los(scn)
    dh_bt, dh_rt = los["dh_bt"], los["dh_rt"]
    e = echo(scn, ch, X, phi)
    a0, b0 = e.a[0], e.b[0]
    Xs = shift_slots(np.asarray(X, dtype=np.complex128), scn.target_bin)
    if scn.ris_leg_model == "literal":
        da0 = dh_bt                                  # ∂a0/∂θ0
        db0 = np.conj(dh_bt)                         # ∂b0/∂θ0 (bᵀ = h_btᴴ + …)
        daR = np.conj(ch.G).T @ (phi * dh_rt)        # Gᴴ Φ ḣ_rt
        dbR = ch.G.T @ (phi * np.conj(dh_rt))        # (ḣ_rtᴴ Φ G)ᵀ
    else:
        da0 = db0 = np.conj(dh_bt)
        daR = dbR = ch.G.T @ (phi * np.conj(dh_rt))
    d0 = np.outer(da0, b0 @ Xs) + np.outer(a0, db0 @ Xs)
    dR = np.outer(daR, b0 @ Xs) + np.outer(a0, dbR @ Xs)
    return np.stack([vec(d0), vec(dR)], axis=1)


def crb_doa(scn: ScenarioA, ch: ChannelsA, X, phi, ridge: float = 0.0) -> float:
    """CRB_θ (sum of the two DoA bounds) [rad²] [spec A.8 (40)–(41)].

    ``ridge``: relative ridge ε_reg·tr added to the 2×2 Fisher block before inversion [RECON].
    """
    e = echo(scn, ch, X, phi)
    u = vec(e.s)
    D = doa_derivative_echoes(scn, ch, X, phi)
    V = np.concatenate([D, u[:, None]], axis=1)          # (ML, 3)
    CiV = e.cinv(V)
    Ci_u = CiV[:, 2]
    uCu = np.real(np.vdot(u, Ci_u))
    DCD = D.conj().T @ CiV[:, :2]
    DCu = D.conj().T @ Ci_u
    Fm = 2.0 * scn.xi0_sq * np.real(DCD - np.outer(DCu, DCu.conj()) / uCu)
    if ridge:
        Fm = Fm + ridge * np.trace(Fm) * np.eye(2)
    # Without a RIS (G = 0) θ_RIS is not identifiable: the Fisher block is singular, the bound infinite.
    if np.linalg.cond(Fm) > 1e14:
        return float("inf")
    return float(np.trace(np.linalg.inv(Fm)))
