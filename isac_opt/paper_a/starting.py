"""Starting designs for paper A [spec A.10, A.11.3–4] and their design methods.

* φ⁰: unit-modulus maximiser of f_init(φ) = ‖h_btᴴ + h_rtᴴΦG‖² − Σ_q ‖h_bqᴴ + h_rqᴴΦG‖² by Riemannian
  gradient ascent with Armijo steps [RECON for Manopt RCG].
* x⁰: worst-case-margin SOCP at φ⁰ (cvxpy + Clarabel, real-valued), then the CM projection, then
  :func:`polish_cm_slots` on the slots whose CI constraints the projection broke.
* radar-only x⁰ = amp·(1_L ⊗ x_l), x_l maximising |b0ᵀx_l|² − Σ_q |b_qᵀx_l|² on the unit-modulus torus.
Methods registered here (scenario ``paper-a``): ``init``, ``init-radar-only``, ``init-random-ris``,
``init-no-ris``. The papers' algorithms register better-ranked methods in their own modules.
"""
from __future__ import annotations

import numpy as np

from .channels import ChannelsA, draw_channels, effective_user_channels, legs, realisation_rng
from ..ci import ci_thresholds, worst_case_margin_init
from .scenario import ScenarioA
from ..projections import project_cm, project_um


def um_maximize_quadratic(P, q, z0, iters: int = 300, tol: float = 1e-9) -> np.ndarray:
    """Maximise f(z) = zᴴPz + 2Re{qᴴz} over |z_n| = 1 by Riemannian gradient ascent with Armijo.

    P : Hermitian (n, n); q : (n,); z0 : unit-modulus start. Returns unit-modulus z (n,).
    Euclidean gradient G = 2(Pz + q); Riemannian gradient G − Re{G ⊙ z*} ⊙ z [spec A.10].
    """
    z = project_um(z0)
    f = lambda v: float(np.real(np.vdot(v, P @ v)) + 2 * np.real(np.vdot(q, v)))
    fz = f(z)
    t = 1.0 / max(np.linalg.norm(P, 2), 1e-300)
    for _ in range(iters):
        g = 2.0 * (P @ z + q)
        rg = g - np.real(g * np.conj(z)) * z
        nrm2 = float(np.real(np.vdot(rg, rg)))
        if nrm2 <= tol * tol * max(abs(fz), 1e-300) ** 2:
            break
        t *= 2.0
        while True:
            zn = project_um(z + t * rg)
            fn = f(zn)
            if fn >= fz + 1e-4 * t * nrm2 or t < 1e-30:
                break
            t *= 0.5
        if fn <= fz:
            break
        if fn - fz <= 1e-12 * abs(fz):
            z, fz = zn, fn
            break
        z, fz = zn, fn
    return z


def init_phi(scn: ScenarioA, ch: ChannelsA, rng: np.random.Generator) -> np.ndarray:
    """φ⁰ of A.10: transmit-leg gain towards the target minus towards the clutters."""
    hb = np.concatenate([ch.h_bt[None], ch.h_bq], axis=0)
    hr = np.concatenate([ch.h_rt[None], ch.h_rq], axis=0)
    sign = np.r_[1.0, -np.ones(scn.Q)]
    # b_i(φ) = c_i + A_i φ with c_i = h_b,i*, A_i = Gᵀ diag(h_r,i*)
    P = np.zeros((scn.N, scn.N), dtype=np.complex128)
    q = np.zeros(scn.N, dtype=np.complex128)
    for i in range(scn.Q + 1):
        A = ch.G.T * np.conj(hr[i])[None, :]
        c = np.conj(hb[i])
        P += sign[i] * (A.conj().T @ A)
        q += sign[i] * (A.conj().T @ c)
    z0 = np.exp(2j * np.pi * rng.uniform(size=scn.N))
    if not np.any(ch.G):
        return z0
    return um_maximize_quadratic(P, q, z0)


def init_x(scn: ScenarioA, ch: ChannelsA, phi) -> tuple[np.ndarray, float]:
    """x⁰ of A.10 (CM-projected) and t* (t* ≥ 1 ⇔ the instance is CI-feasible)."""
    gamma = ci_thresholds(scn.noise_comm_w, scn.gamma_db, scn.psk_order)
    X, t = worst_case_margin_init(effective_user_channels(ch, phi), ch.S, gamma, scn.amp, scn.psk_order)
    return project_cm(X, scn.amp), float(np.min(t))


def init_x_radar_only(scn: ScenarioA, ch: ChannelsA, phi, rng: np.random.Generator) -> np.ndarray:
    """Radar-only x⁰ = amp·(1_L ⊗ x_l) [spec A.10, R25 get_x_RIS_radar]."""
    _, b = legs(ch, phi, scn.ris_leg_model)
    sign = np.r_[1.0, -np.ones(scn.Q)]
    P = sum(sign[i] * np.outer(np.conj(b[i]), b[i]) for i in range(scn.Q + 1))   # |bᵀx|² = xᴴ b* bᵀ x
    xl = um_maximize_quadratic(P, np.zeros(scn.M, complex), np.exp(2j * np.pi * rng.uniform(size=scn.M)))
    return scn.amp * np.repeat(xl[:, None], scn.L, axis=1)


def polish_cm_slots(scn: ScenarioA, ch: ChannelsA, phi, X, iters: int = 300) -> np.ndarray:
    """Make the CM-projected A.10 waveform CI-feasible where the projection broke it [RECON].

    The worst-case-margin SOCP solution has entries with |x_i| < amp; projecting them to the CM set can
    break the CI constraints of a slot (seen in ≈ 2% of slots at the default scenario). For each such slot,
    run projected (soft-min) gradient ascent of the slot's worst normalised margin on the CM set, starting
    from the projected point, and keep the best iterate. Slots that were feasible are not touched.
    """
    from ..ci import ci_rows
    gam = ci_thresholds(scn.noise_comm_w, scn.gamma_db, scn.psk_order)
    rows = ci_rows(effective_user_channels(ch, phi), ch.S, scn.psk_order) \
        / np.concatenate([gam, gam])[None, :, None]                          # (L, 2K, M): margin_j = Re{r_j x}
    X = np.array(X, dtype=np.complex128)
    amp = scn.amp
    for l in range(scn.L):
        m = np.real(rows[l] @ X[:, l])
        if m.min() >= 1.0:
            continue
        x = X[:, l].copy()
        best, bx = m.min(), x.copy()
        scale = np.abs(rows[l]).sum(axis=1).max() * amp
        for it in range(iters):
            m = np.real(rows[l] @ x)
            tmp = max(1e-3 * scale, 1e-12)
            w = np.exp(-(m - m.min()) / tmp)
            w /= w.sum()
            G = np.conj(rows[l]).T @ w                                            # ascent direction (2∂/∂x*)
            step = amp / (np.abs(G).max() + 1e-300) * 0.5 / (1 + it / 30)
            x = amp * np.exp(1j * np.angle(x + step * G))
            mm = np.real(rows[l] @ x).min()
            if mm > best:
                best, bx = mm, x.copy()
        X[:, l] = bx
    return X


# --------------------------------------------------------------------------------------------------
def _make(method: str):
    def run(scn: ScenarioA, seed: int, channels: ChannelsA | None = None):
        from .design import DesignA
        rng = realisation_rng(seed, 0)
        ch = channels if channels is not None else draw_channels(scn, rng)
        alg_rng = realisation_rng(seed, 1)
        if method == "init-no-ris":
            ch_d = ch.without_ris()
            phi = np.ones(scn.N, dtype=np.complex128)
        else:
            ch_d = ch
            phi = (np.exp(2j * np.pi * alg_rng.uniform(size=scn.N)) if method == "init-random-ris"
                   else init_phi(scn, ch, alg_rng))
        if method == "init-radar-only":
            X, tstar = init_x_radar_only(scn, ch_d, phi, alg_rng), float("nan")
        else:   # the CM projection of the SOCP point can break CI in a few slots: restore them
            X, tstar = init_x(scn, ch_d, phi)
            X = polish_cm_slots(scn, ch_d, phi, X)
        return DesignA.build(scn, ch_d, X, phi, method=method, seed=seed, extra={"t_star": tstar})
    return run


RUNNERS = {name: _make(name) for name in ("init", "init-radar-only", "init-random-ris", "init-no-ris")}


def run_named(method: str, scenario: ScenarioA, seed: int, channels: ChannelsA | None = None):
    """Registry entry point of the starting-design methods (catalogue: :mod:`isac_opt.paper_a.catalog`)."""
    return RUNNERS[method](scenario, seed, channels)
