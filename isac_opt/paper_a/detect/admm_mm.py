"""ADMM-MM reference solver of paper A's detection problem ([25] = R25 ``get_x_phi_CI``) [spec A.11.1].

Per iteration i (starting from A.10, v = x⁰, ϕ = φ⁰, μ = 0, ρ as in A.6):

1. m = C⁻¹s at (x_i, φ_i) (numpy Woodbury, :mod:`isac_opt.radar`).
2. x-step, a convex QP/SOCP solved by Clarabel through cvxpy:
   min_u  c_mm Σ_q ξ_q² |g_qᴴx|² − 2Re{hᴴx}  (MM minoriser of sᴴC⁻¹s, tight for c_mm = 1)
          + (ρ/2)‖u − v + μ1/ρ‖²
   s.t.   Re{c^± h̃_kᴴ u[l]}·amp/γ_k ≥ 1 (CI, linear),  |u_i| ≤ 1,
   with x = amp·u, h = H̃0ᴴm, g_q = H̃_qᴴm. REAL-valued formulation (z = [Re u; Im u]) built ONCE per
   problem shape with cvxpy Parameters and re-solved [performance_notes §5].
3. φ-step: proximal-linear MM with backtracking on L_φ [spec A.11.1 step 4, RECON]: closed-form clip
   when the CI constraints hold at the clipped point, otherwise a small SOCP (projection onto
   {|φ_n| ≤ 1} ∩ {CI linear in φ}), also built once per shape.
4. v = e^{j∠(ρu + μ1)}, ϕ = e^{j∠(ρφ + μ2)}, μ1 += ρ(u − v), μ2 += ρ(φ − ϕ).
5. Stop when |1 − SINR_i/SINR_{i−1}| < res_th (SINR in dB, [R25]) or, after 20 iterations, against the
   mean of the last 20 values; or after n_max iterations.
6. Final projection u → e^{j∠u}, φ → e^{j∠φ}; the CI constraints are re-checked and reported.

Objective scaling: f = −SINR/SINR⁰ (a positive rescaling of f1), so ρ = 1/(ML + NL).
"""
from __future__ import annotations

import math
import time
from dataclasses import dataclass, field
from functools import lru_cache

import numpy as np

from ..channels import ChannelsA, effective_user_channels
from ...ci import ci_margins, ci_rows, ci_thresholds
from ..scenario import ScenarioA
from ...errors import IsacError
from ...projections import project_cm, project_um
from ..radar import echo, objective_gradients, sinr_mvdr
from ...radar import shift_slots_left, unvec, vec


@dataclass
class MMResult:
    """Output of :func:`admm_mm` (unnormalised X (M, L), φ (N,), after the final projection)."""

    X: np.ndarray
    phi: np.ndarray
    iterations: int
    sinr_db_history: list
    converged: bool
    time_s: float
    ci_min_margin: float          # min normalised CI margin after the final projection (≥ 1: feasible)
    ci_violations: int            # number of (k, l) with margin < 1 after the final projection
    solver_failures: int = 0
    info: dict = field(default_factory=dict)


@lru_cache(maxsize=32)
def _x_problem(M: int, L: int, nq: int, k2: int):
    """min ‖P z‖² + (ρ/2)‖z‖² + qᵀz  s.t.  A_l z_l ≥ 1 per slot (if k2 > 0), ‖(Re u_i, Im u_i)‖ ≤ 1.

    z = [Re u; Im u] (u in vec order, antenna index fastest); the CI rows are per-slot parameters
    A_l (2K × 2M) so the solver sees the block-sparse structure. Built once per shape.
    """
    import cvxpy as cp
    n = M * L
    z = cp.Variable(2 * n)
    P = cp.Parameter((nq, 2 * n))
    q = cp.Parameter(2 * n)
    hr = cp.Parameter(nonneg=True)
    obj = cp.sum_squares(P @ z) + hr * cp.sum_squares(z) + q @ z
    cons = [cp.norm(cp.vstack([z[:n], z[n:]]), 2, axis=0) <= 1]
    A = []
    for l in range(L if k2 else 0):
        Al = cp.Parameter((k2, 2 * M))
        cons.append(Al @ cp.hstack([z[l * M:(l + 1) * M], z[n + l * M:n + (l + 1) * M]]) >= 1)
        A.append(Al)
    return cp.Problem(cp.Minimize(obj), cons), z, P, q, hr, A


@lru_cache(maxsize=32)
def _phi_problem(N: int, nci: int):
    """min ‖φ − c‖²  s.t.  A φ̄ + a0 ≥ 1, |φ_n| ≤ 1 (real form) — built once per shape."""
    import cvxpy as cp
    z = cp.Variable(2 * N)
    c = cp.Parameter(2 * N)
    A = cp.Parameter((nci, 2 * N))
    a0 = cp.Parameter(nci)
    cons = [cp.norm(cp.vstack([z[:N], z[N:]]), 2, axis=0) <= 1, A @ z + a0 >= 1]
    return cp.Problem(cp.Minimize(cp.sum_squares(z - c)), cons), z, c, A, a0


def _solve(prob):
    import warnings

    import cvxpy as cp
    try:
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", message=".*too many parameters.*")
            prob.solve(solver=cp.CLARABEL, warm_start=False)  # results must not depend on history
    except cp.error.SolverError:
        prob.solve(solver=cp.SCS, eps=1e-9)
    return prob.status in ("optimal", "optimal_inaccurate")


def _ci_matrix_x(scn, ch, phi):
    """Normalised CI rows per slot in real form [Re R_l, −Im R_l] acting on [Re u[l]; Im u[l]]: (L, 2K, 2M)."""
    gam = ci_thresholds(scn.noise_comm_w, scn.gamma_db, scn.psk_order)
    rows = ci_rows(effective_user_channels(ch, phi), ch.S, scn.psk_order) \
        * (scn.amp / np.concatenate([gam, gam]))[None, :, None]              # (L, 2K, M)
    return np.concatenate([rows.real, -rows.imag], axis=2)


def _ci_affine_phi(scn, ch, X):
    """CI in φ: Re{α + wφ} ≥ 1 per (±, k, l) → (A (2KL, 2N), a0 (2KL)) real form [spec A.3]."""
    gam = ci_thresholds(scn.noise_comm_w, scn.gamma_db, scn.psk_order)
    th = math.pi / scn.psk_order
    ph = np.conj(ch.S) / np.abs(ch.S)                                          # (K, L)
    GX = ch.G @ X                                                              # (N, L)
    direct = np.conj(ch.h_k) @ X                                               # (K, L)
    Ws, al = [], []
    for sgn in (+1, -1):
        c = ph * (math.sin(th) - sgn * 1j * math.cos(th)) * (1.0 / gam)[:, None]   # (K, L)
        w = c[:, :, None] * (np.conj(ch.h_rk)[:, None, :] * GX.T[None, :, :])       # (K, L, N)
        Ws.append(w.reshape(-1, scn.N))
        al.append((c * direct).reshape(-1))
    W = np.concatenate(Ws)
    a0 = np.concatenate(al).real
    return np.concatenate([W.real, -W.imag], axis=1), a0


def _norm_margins(scn, ch, X, phi):
    gam = ci_thresholds(scn.noise_comm_w, scn.gamma_db, scn.psk_order)
    Z = effective_user_channels(ch, phi) @ X
    return ci_margins(Z, ch.S, scn.psk_order) / gam[:, None]


def x_step(scn: ScenarioA, ch: ChannelsA, u, phi, v, mu1, rho: float, sinr0: float, ci: bool = True,
           c_mm: float = 1.0):
    """ADMM-MM x-step [spec A.11.1 step 2] in normalised units (x = amp·u, objective /SINR⁰).

    min_u (ξ0²/SINR⁰)[c_mm Σ_q ξ_q² amp²|g_qᴴu|² − 2 amp Re{hᴴu}] + (ρ/2)‖u − v + μ1/ρ‖²
    s.t. CI (if ``ci``), |u_i| ≤ 1;  h = H̃0ᴴm, g_q = H̃_qᴴm, m = C⁻¹s at (amp·u, φ).
    u, v, mu1 : (M·L,) complex in vec order. Returns (u_new, solver_ok).
    """
    M, L, Q = scn.M, scn.L, scn.Q
    n = M * L
    amp = scn.amp
    xi2 = np.asarray(scn.xi_q_sq, dtype=np.float64)
    bins = (scn.target_bin,) + tuple(scn.clutter_bins)
    qp, z, Pp, qpar, hr, Aci = _x_problem(M, L, 2 * Q, 2 * scn.K if ci else 0)
    hr.value = rho / 2.0
    e = echo(scn, ch, unvec(u * amp, M, L), phi)
    m = e.cinv(vec(e.s))
    Mm = unvec(m, M, L)
    adj = [vec(shift_slots_left(np.outer(np.conj(e.b[i]), np.conj(e.a[i]) @ Mm), bins[i])) for i in range(Q + 1)]
    sc = scn.xi0_sq / sinr0
    rowsP = []
    for q in range(Q):      # rows [Re g, Im g], [−Im g, Re g] give (Re, Im) of gᴴu
        g = adj[q + 1] * amp * math.sqrt(c_mm * xi2[q] * sc)
        rowsP.append(np.r_[g.real, g.imag])
        rowsP.append(np.r_[-g.imag, g.real])
    Pp.value = np.array(rowsP).reshape(2 * Q, 2 * n)
    h = adj[0] * amp * sc
    if rho > 0:
        cvec = v - mu1 / rho
        lin = -2.0 * np.r_[h.real, h.imag] - rho * np.r_[cvec.real, cvec.imag]
    else:
        lin = -2.0 * np.r_[h.real, h.imag]
    qpar.value = lin
    if ci:
        for Al, val in zip(Aci, _ci_matrix_x(scn, ch, phi)):
            Al.value = val
    if _solve(qp):
        return z.value[:n] + 1j * z.value[n:], True
    return u, False


def phi_step(scn: ScenarioA, ch: ChannelsA, X, phi, vphi, mu2, rho: float, sinr0: float, L_prev: float,
             ci: bool = True):
    """Prox-linear MM φ-step with backtracking [spec A.11.1 step 4, RECON].

    φ⁺ = argmin_{φ∈𝒞} Re{Gᴴ(φ − φ_i)} + (L/2)‖φ − φ_i‖² + (ρ/2)‖φ − ϕ + μ2/ρ‖², 𝒞 = {|φ_n| ≤ 1} ∩ CI(φ),
    with f = −SINR/SINR⁰ and G its gradient at φ_i (closed form, A.7). Closed-form clip when CI holds at
    the clipped point, else a small SOCP. L starts at L_prev/2 and doubles until
    f(φ⁺) ≤ f(φ_i) + Re{GᴴΔ} + (L/2)‖Δ‖² (V-14(iii)). Returns (φ⁺, L, solver failures).
    """
    N = scn.N
    F, _, Gp = objective_gradients(scn, ch, X, phi)
    f_i = -scn.xi0_sq * F / sinr0
    G = -scn.xi0_sq * Gp / sinr0
    Lphi = max(L_prev / 2.0, 1e-8)
    cons_phi = None
    fails = 0
    cand = phi
    for _ in range(60):
        c = (Lphi * phi - G + rho * vphi - mu2) / (Lphi + rho)
        cand = np.where(np.abs(c) > 1, c / np.maximum(np.abs(c), 1e-300), c)
        if ci and np.min(_norm_margins(scn, ch, X, cand)) < 1.0:
            if cons_phi is None:
                cons_phi = _ci_affine_phi(scn, ch, X)
            pp, zp, cp_, Ap, a0p = _phi_problem(N, cons_phi[0].shape[0])
            cp_.value = np.r_[c.real, c.imag]
            Ap.value, a0p.value = cons_phi
            if _solve(pp):
                cand = zp.value[:N] + 1j * zp.value[N:]
            else:
                fails += 1
                cand = phi
        d = cand - phi
        f_new = -sinr_mvdr(echo(scn, ch, X, cand)) / sinr0
        if f_new <= f_i + np.real(np.vdot(G, d)) + 0.5 * Lphi * np.real(np.vdot(d, d)) + 1e-12 * abs(f_i):
            break
        Lphi *= 2.0
    return cand, Lphi, fails


def admm_mm(scn: ScenarioA, ch: ChannelsA, X0, phi0, *, ci: bool = True, update_phi: bool = True,
            c_mm: float = 1.0, rho: float | None = None, res_th: float = 5e-4, n_max: int = 2000,
            n_min: int = 2, L_phi0: float = 1.0, rho_growth: float = 1.3, rho_max: float = 1e3,
            res_primal: float = 1e-2, repair: bool = True, feas_steps: int = 30) -> MMResult:
    """Run ADMM-MM from (X0, φ0) [spec A.11.1]; ``ci=False`` is the radar-only variant (A.11.2),
    ``update_phi=False`` keeps φ fixed (random-RIS / no-RIS variants, A.11.3–4).

    [RECON] ρ grows by ``rho_growth`` per iteration (capped at ``rho_max``) and the stopping rule also
    requires the primal residual max|u − v|, max|φ − ϕ| < ``res_primal``: with A's fixed small ρ the
    SINR rule stops after a few iterations while u is still far from the CM set, and the final
    projection then breaks the CI constraints. ``rho_growth=1`` and ``res_primal=inf`` give the
    literal rule.

    After the final projection the networks' CI feasibility layer (``feas_steps`` Newton steps on the
    violated slots, :func:`feasibility_layer_np`) restores the slots the projection broke; ``repair``
    then pulls any slot still violated back towards X0 (:func:`repair_slots`, safety net). Violations
    after the projection / before the repair are in ``info["ci_violations_after_projection"]`` /
    ``info["ci_violations_before_repair"]``. Finally the start (X0, φ0) is returned instead
    (``info["fallback_to_start"]``) where the result is CI-infeasible or has a lower SINR than the start.

    Returns the final CM/UM-projected design and the per-iteration SINR (dB) history.
    """
    t0 = time.perf_counter()
    M, L, N = scn.M, scn.L, scn.N
    n = M * L
    amp = scn.amp
    u = vec(np.asarray(X0, dtype=np.complex128)) / amp
    phi = np.asarray(phi0, dtype=np.complex128).copy()
    sinr0 = sinr_mvdr(echo(scn, ch, unvec(u * amp, M, L), phi))
    rho = 1.0 / (n + N * L) if rho is None else float(rho)       # |f(x0)| = 1 in normalised units
    v, vphi = project_cm(u, 1.0), project_um(phi)
    mu1 = np.zeros(n, complex)
    mu2 = np.zeros(N, complex)
    hist = [10 * np.log10(sinr0)]
    Lphi = L_phi0
    fails = 0
    converged = False
    it = 0
    for it in range(1, n_max + 1):
        un, ok = x_step(scn, ch, u, phi, v, mu1, rho, sinr0, ci=ci, c_mm=c_mm)
        if ok:
            u = un
        else:
            fails += 1
        # φ-step (prox-linear MM with backtracking)
        if update_phi:
            phi, Lphi, nf = phi_step(scn, ch, unvec(u * amp, M, L), phi, vphi, mu2, rho, sinr0, Lphi, ci=ci)
            fails += nf
        v = project_cm(rho * u + mu1, 1.0, u)
        mu1 = mu1 + rho * (u - v)
        rp = float(np.max(np.abs(u - v)))
        if update_phi:
            vphi = project_um(rho * phi + mu2, phi)
            mu2 = mu2 + rho * (phi - vphi)
            rp = max(rp, float(np.max(np.abs(phi - vphi))))
        s_db = 10 * np.log10(sinr_mvdr(echo(scn, ch, unvec(u * amp, M, L), phi)))
        hist.append(s_db)
        if rp < res_primal and it >= n_min:
            if abs(1 - hist[-1] / hist[-2]) < res_th or \
                    (it > 20 and abs(1 - hist[-1] / np.mean(hist[-21:-1])) < res_th):
                converged = True
                break
        if rho_growth != 1.0:
            new = min(rho * rho_growth, rho_max)
            mu1, mu2 = mu1 * (new / rho), mu2 * (new / rho)     # keep the scaled duals μ/ρ
            rho = new
    Xf = project_cm(unvec(u * amp, M, L), amp)
    phif = project_um(phi) if update_phi else phi
    mg = _norm_margins(scn, ch, Xf, phif)
    viol_proj = int(np.sum(mg < 1.0))
    if ci and viol_proj and feas_steps:
        Xf = feasibility_layer_np(scn, ch, Xf, phif, feas_steps)
        mg = _norm_margins(scn, ch, Xf, phif)
    viol0 = int(np.sum(mg < 1.0))
    if repair and ci and viol0:
        Xf = repair_slots(scn, ch, Xf, phif, np.asarray(X0, dtype=np.complex128))
        mg = _norm_margins(scn, ch, Xf, phif)
    # keep the (feasible) start if the result is infeasible or worse than it [issue 12: best feasible iterate]
    X0c = project_cm(np.asarray(X0, dtype=np.complex128), amp)
    phi0c = project_um(np.asarray(phi0, dtype=np.complex128)) if update_phi else np.asarray(phi0, complex)
    ok0 = (not ci) or float(_norm_margins(scn, ch, X0c, phi0c).min()) >= 1.0
    s_f = sinr_mvdr(echo(scn, ch, Xf, phif))
    s_0 = sinr_mvdr(echo(scn, ch, X0c, phi0c))
    fallback = bool(ok0 and ((ci and float(mg.min()) < 1.0) or s_f < s_0))
    if fallback:
        Xf, phif = X0c, phi0c
        mg = _norm_margins(scn, ch, Xf, phif)
    return MMResult(Xf, phif, it, hist, converged, time.perf_counter() - t0, float(mg.min()),
                    int(np.sum(mg < 1.0)), fails, {"c_mm": c_mm, "rho": rho, "res_th": res_th, "n_max": n_max,
                     "ci_violations_after_projection": viol_proj,
                     "ci_violations_before_repair": viol0, "fallback_to_start": fallback})


def feasibility_layer_np(scn: ScenarioA, ch: ChannelsA, X, phi, steps: int = 30):
    """The networks' final CI feasibility layer (:func:`isac_opt.paper_a.unfold.step.feasibility_layer`) applied
    to one numpy design (X (M, L) CM, φ (N,)): Newton steps on the violated slots + CM projection."""
    import torch

    from ..unfold import CIConstraint, DetectProblem, feasibility_layer
    prob = DetectProblem.from_channels(scn, [ch])
    u = prob.u_from_numpy([X])
    ph = prob.phi_from_numpy([phi])
    with torch.no_grad():
        u = feasibility_layer(CIConstraint(prob), u, ph, steps=steps, relax=2.0)
    return scn.amp * np.exp(1j * np.angle(u[0].numpy()))


def repair_slots(scn: ScenarioA, ch: ChannelsA, X, phi, X_safe, n_bisect: int = 30):
    """Per-slot CI restoration (numpy): X[:, l] ← CM projection of (1−α)X[:, l] + αX_safe[:, l] with the
    smallest α ∈ [0, 1] (bisection) that satisfies the slot's K constraints [RECON]."""
    X = np.array(X, dtype=np.complex128)
    gam = ci_thresholds(scn.noise_comm_w, scn.gamma_db, scn.psk_order)
    Ht = effective_user_channels(ch, phi)

    def ok(col, l):
        return bool(np.all(ci_margins((Ht @ col)[:, None], ch.S[:, l:l + 1], scn.psk_order)[:, 0] / gam >= 1.0))

    for l in range(scn.L):
        if ok(X[:, l], l):
            continue
        mix = lambda a: project_cm((1 - a) * X[:, l] + a * X_safe[:, l], scn.amp, X[:, l])
        lo, hi = 0.0, 1.0
        for _ in range(n_bisect):
            mid = 0.5 * (lo + hi)
            if ok(mix(mid), l):
                hi = mid
            else:
                lo = mid
        X[:, l] = mix(hi)
    from .core import polish_cm_slots
    return polish_cm_slots(scn, ch, phi, X)


def check_feasible_start(t_star: float, where: str = "ADMM-MM") -> None:
    if np.isfinite(t_star) and t_star < 1.0:
        raise IsacError(f"{where}: the instance is CI-infeasible (worst-case normalised margin t* = "
                        f"{t_star:.3g} < 1 at the starting point)")
