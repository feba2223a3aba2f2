"""Paper B's design algorithm: MVDR + Dinkelbach + MM + ADMM, prox-linear active-RIS step [spec B.7, B.8].

Entry point :func:`design` runs one design on one realisation (:class:`~isac_opt.paper_b.model.ChannelsB`)
and returns a :class:`DesignResult`; :mod:`isac_opt.paper_b.design` wraps it as a saveable
:class:`~isac_opt.paper_b.design.DesignB`. The baselines of B.8 are options of the same loop:

* ``optimise_phi=False`` with a fixed phi: "random RIS" (and "w/o RIS" on ``ch.without_ris()``);
* ``spatial_only=True``: the "[22]" approximation (reduced-dimension spatial MVDR, fixed iterations);
* ``ci=False``: the radar-only variant of each (no CI constraints, beam initialisation).

Scaling: the radar model is normalised to unit receiver noise (see :mod:`.model`); the waveform enters
the QPs as u = x / sqrt(P/N_t) so |u_i| <= 1, and every QP objective is divided by its curvature scale.

Certified output (issue 12): the constant-modulus split runs in scaled form (d = mu/rho kept when rho
grows, which fixed the rho blow-up), and with ``Options.certify`` the returned point is the best feasible
one (:mod:`.certify`) among the start, the iterates, the final point and its CI restoration
(:func:`restore_ci`). See :func:`design` and docs/paper_b.md.
"""
from __future__ import annotations

import time
from dataclasses import dataclass, field, replace

import numpy as np

from ..errors import IsacError
from ..ci import ci_margins, ci_rows, ci_thresholds, worst_case_margin_init
from ..projections import admm_aux_update, project_ball, project_cm
from .certify import constraint_status, normalised_margins
from .model import ChannelsB, Model, effective_channels, poly_eval, poly_grad
from .qp import QP, CvxQP, admm_qp


@dataclass
class Options:
    """Algorithm switches [spec B.7, B.8]; defaults follow the scenario's fields."""

    ci: bool = True                 # CI-SLP constraints on (ISAC) / off (radar-only)
    optimise_phi: bool = True       # run the phi-step
    cm: bool = True                 # ADMM constant-modulus split; False = relaxed |x_i| <= amp (V-15)
    spatial_only: bool = False      # "[22]" reduced-dimension spatial filter
    x_solver: str = "admm"          # "admm" | "cvxpy"
    max_outer: int = 50
    min_outer: int = 2
    fixed_iters: int | None = None  # run exactly this many iterations (spatial-only: 30)
    tol: float = 1e-4
    cm_tol: float = 1e-4
    phi_inner: int = 1
    x_passes: int = 1
    rho_growth: float = 1.25
    rho_max_factor: float = 1e4
    polish_iters: int = 30          # final rho-doubling x-passes (phi, w fixed) so that y_a meets x [RECON]
    polish_tol: float = 1e-6
    admm_eps: float = 1e-6           # x-step ADMM tolerance (1e-7: +0.0 dB, 1.5-2x slower)
    admm_max_iter: int = 4000
    dual_rescale: bool = True       # keep mu/rho when rho grows (False: the pre-issue-12 damped dual)
    phi_proj: str = "exact"         # "exact" CI cap ball projection | "frozen": keep z = E phi (inner approx.)
    phi_exact_every: int = 1        # with phi_proj="frozen": every n-th phi-step still projects exactly (0: never)
    certify: bool = True            # best feasible iterate, CI restoration of the output, never below the start

    @classmethod
    def from_scenario(cls, scn, **kw) -> "Options":
        base = dict(x_solver=scn.x_solver, max_outer=scn.max_outer, tol=scn.tol, cm_tol=scn.cm_tol,
                    phi_inner=scn.phi_inner, x_passes=scn.x_passes, rho_growth=scn.rho_growth,
                    rho_max_factor=scn.rho_max_factor)
        base.update(kw)
        return cls(**base)


@dataclass
class DesignResult:
    """Output of :func:`design`.

    X (P_c, L, N_t) final waveform (constant modulus when ``cm``), phi (R, N), W (P_c, L_r, N_r) final
    filter with w^H t = 1, ``scnr`` its SCNR (linear), ``history`` SCNR per outer iteration (lambda_i,
    at the relaxed iterate), ``history_out`` SCNR of the output point per iteration, ``timings`` seconds
    per sub-step, ``ci_min_margin`` min_{k,n} m_{k,n} / gamma_k at the output, ``init_margin`` t* of (67).
    """

    X: np.ndarray
    phi: np.ndarray
    W: np.ndarray
    scnr: float
    history: list
    history_out: list
    timings: dict
    iterations: int
    ci_min_margin: float
    init_margin: float
    feasible: bool
    info: dict = field(default_factory=dict)


# --------------------------------------------------------------------------------------------------
# initialisation (66), (67) and radar-only beam
# --------------------------------------------------------------------------------------------------
def init_phi_aligned(ch: ChannelsB) -> np.ndarray:
    """phi^(0) = a_max e^{-j angle(g_r)}, g_r the BS->RIS_r->target cascade profile [spec B.7 (66)].

    g_{r,n} = (E_tx[target, r] column-sum direction) = a'_N(theta_rt) (.) a_N(vartheta_rb): makes
    |a'^T(theta_rt) Theta_r a_N(vartheta_rb)| = N (reciprocal: e^{-j pi n (sin theta_rt + sin vartheta_rb)}).
    """
    phi = np.zeros((ch.R, ch.N), complex)
    for r in range(ch.R):
        # E_tx[r] = beta diag(a'_rt) G_r, G_r = beta a_rb a'^T_br  ->  row profile = E_tx[r] @ conj(a'_br)
        prof = ch.target.E_tx[r] @ np.conj(ch.G[r][0] / np.abs(ch.G[r][0]))
        phi[r] = ch.a_max * np.exp(-1j * np.angle(prof))
    return phi


def init_phi_random(ch: ChannelsB, rng: np.random.Generator) -> np.ndarray:
    """Random RIS: phi = a_max e^{j psi}, psi ~ U[0, 2 pi) [spec B.8]."""
    return ch.a_max * np.exp(1j * rng.uniform(0.0, 2 * np.pi, size=(ch.R, ch.N)))


def init_x_beam(ch: ChannelsB) -> np.ndarray:
    """Radar-only start x_n = amp e^{-j angle tx_b} (= amp a^*(theta_bt) when reciprocal) [spec B.8]."""
    beam = ch.amp * np.exp(-1j * np.angle(ch.target.tx_b))
    return np.broadcast_to(beam, (ch.Pc, ch.L, ch.Nt)).copy()


def gamma_ci(ch: ChannelsB) -> np.ndarray:
    return ci_thresholds(ch.noise_comm_w, 10 * np.log10(ch.gamma_lin), ch.psk_order)


def init_x_ci(ch: ChannelsB, phi) -> tuple[np.ndarray, np.ndarray]:
    """Worst-case-margin waveform (67), slot-separable; returns (X (P_c, L, N_t), t (P_c L,))."""
    Xm, t = worst_case_margin_init(effective_channels(ch, phi), ch.S, gamma_ci(ch), ch.amp, ch.psk_order)
    return Xm.T.reshape(ch.Pc, ch.L, ch.Nt), t


def ci_min_margin(ch: ChannelsB, X, phi) -> float:
    """min_{k,n} m_{k,n}/gamma_k at (X, phi) [spec B.5]; >= 1 means every CI constraint holds."""
    Z = effective_channels(ch, phi) @ X.reshape(-1, ch.Nt).T
    return float(np.min(ci_margins(Z, ch.S, ch.psk_order) / gamma_ci(ch)[:, None]))


# --------------------------------------------------------------------------------------------------
# filters
# --------------------------------------------------------------------------------------------------
def spatial_filter(model: Model, X, phi, t=None, C=None):
    """"[22]" spatial-only filter w = m (x) u, m the LoS temporal matched filter [spec B.8].

    Returns (W, scnr) with W (P_c, L_r, N_r) and SCNR_sp = sigma_t^2 t^H B (B^H R B)^{-1} B^H t.
    """
    ch = model.ch
    t = model.target(X, phi) if t is None else t
    C = model.clutter(X, phi) if C is None else C
    tx = ch.target.tx_b / np.abs(ch.target.tx_b).max()
    m = np.zeros((ch.Pc, ch.Lr), complex)
    m[:, :ch.L] = ch.target.doppler[0][:, None] * (X @ tx)
    Bt = np.einsum("pj,pji->i", np.conj(m), t)
    Bc = np.einsum("pj,qpji->qi", np.conj(m), C)
    BRB = np.sum(np.abs(m) ** 2) * model.noise_block(phi) + \
        np.einsum("q,qi,qj->ij", ch.sigma_q_sq, Bc, np.conj(Bc))
    u = np.linalg.solve(BRB, Bt)
    W = m[:, :, None] * u[None, None, :]
    return W, float(ch.sigma_t_sq * np.real(np.vdot(Bt, u)))


def _normalise_filter(model: Model, W, X, phi, t, C):
    num, den = model.scnr_parts(W, X, phi, t, C)
    return W / np.sqrt(den), num / den


# --------------------------------------------------------------------------------------------------
# x-step QP assembly (38)
# --------------------------------------------------------------------------------------------------
def _ci_rows_x(ch: ChannelsB, phi, gamma):
    """Real CI rows per slot, scaled for u = x/amp and normalised: (B, 2K, 2N_t), l (B, 2K)."""
    rows = ci_rows(effective_channels(ch, phi), ch.S, ch.psk_order)            # (B, 2K, Nt) complex
    rows = rows * (ch.amp / np.concatenate([gamma, gamma]))[None, :, None]
    Kc = np.concatenate([rows.real, -rows.imag], axis=2)
    nr = np.linalg.norm(Kc, axis=2)
    nr = np.where(nr > 0, nr, 1.0)
    return Kc / nr[:, :, None], 1.0 / nr


def build_x_qp(model: Model, W, phi, X, lam, ci_rows_l, v=None, rho=0.0) -> tuple[QP, float]:
    """QP of the x-step (38) in u = x/amp: lambda sum sigma_q^2 |e_q^H x|^2 - 2 Re{b^H x}
    + rho/2 ||x - v||^2, b = sigma_t^2 a (a^H x_i) [spec B.7 step 3]. Returns (qp, scale)."""
    ch = model.ch
    amp = ch.amp
    Bn = ch.Pc * ch.L
    a = model.target_adj(W, phi)
    E = model.clutter_adj(W, phi)
    b = ch.sigma_t_sq * a * np.vdot(a, X)
    cols = []
    for q in range(ch.Q):
        s = np.sqrt(2 * amp ** 2 * lam * ch.sigma_q_sq[q])
        e = E[q].reshape(Bn, ch.Nt)
        cols.append(s * np.concatenate([e.real, e.imag], axis=1).reshape(-1))
        cols.append(s * np.concatenate([-e.imag, e.real], axis=1).reshape(-1))
    F = np.stack(cols, axis=1) if cols else np.zeros((Bn * 2 * ch.Nt, 0))
    bb = b.reshape(Bn, ch.Nt)
    q = -2 * amp * np.concatenate([bb.real, bb.imag], axis=1)
    c0 = rho * amp ** 2
    if rho > 0:
        vv = (v / amp).reshape(Bn, ch.Nt)
        q = q - rho * amp ** 2 * np.concatenate([vv.real, vv.imag], axis=1)
    lmax = float(np.linalg.eigvalsh(F.T @ F).max()) if F.shape[1] else 0.0
    scale = max(c0 + lmax, 1e-300)
    Kc, l = ci_rows_l if ci_rows_l is not None else (None, None)
    return QP(c0 / scale, F / np.sqrt(scale), q / scale, Kc, l, 1.0), scale


def _u_to_X(ch, u):
    m = ch.Nt
    return (ch.amp * (u[:, :m] + 1j * u[:, m:])).reshape(ch.Pc, ch.L, ch.Nt)


def _X_to_u(ch, X):
    Xf = X.reshape(-1, ch.Nt) / ch.amp
    return np.concatenate([Xf.real, Xf.imag], axis=1)


# --------------------------------------------------------------------------------------------------
# phi-step (42)-(65): prox-linear majoriser with backtracking
# --------------------------------------------------------------------------------------------------
class PhiObjective:
    """F(phi) = -sigma_t^2 |u_t|^2 + lam (sum_q sigma_q^2 |u_q|^2 + phi^H Lambda_w phi) [spec B.7 step 4]."""

    def __init__(self, model: Model, W, X, lam):
        ch = model.ch
        self.ch = ch
        self.lam = lam
        self.pt = model.poly(ch.target, W, X)
        self.pq = [model.poly(c, W, X) for c in ch.clutter]
        self.Lw = model.ris_noise_weights(W)

    def value(self, phi) -> float:
        ch = self.ch
        v = -ch.sigma_t_sq * abs(poly_eval(*self.pt, phi)) ** 2
        for q, p in enumerate(self.pq):
            v += self.lam * ch.sigma_q_sq[q] * abs(poly_eval(*p, phi)) ** 2
        v += self.lam * float(np.sum(self.Lw * np.abs(phi) ** 2))
        return float(v)

    def grad(self, phi) -> np.ndarray:
        """G = 2 dF/dphi^* (R, N) [spec 0.3]."""
        ch = self.ch
        ut = poly_eval(*self.pt, phi)
        g = -2 * ch.sigma_t_sq * ut * np.conj(poly_grad(self.pt[1], self.pt[2], phi))
        for q, p in enumerate(self.pq):
            uq = poly_eval(*p, phi)
            g += 2 * self.lam * ch.sigma_q_sq[q] * uq * np.conj(poly_grad(p[1], p[2], phi))
        g += 2 * self.lam * self.Lw * phi
        return g


class PhiCIFactor:
    """Low-rank factor of the CI rows in phi [spec B.5 (61)-(64)], fixed per realisation.

    With G_r = U_r S_r V_r^H (numerical rank rho_r; 1 for the LoS BS->RIS link), b_{k,n,r}^T phi_r =
    (h_{r,k}^* (.) G_r x_n)^T phi_r = sum_j w_{r,n,j} z_{r,k,j} with w_{r,n} = S_r V_r^H x_n and
    z_{r,k,j} = (h_{r,k}^* (.) U_r[:, j])^T phi_r. So all 2 K P_c L CI rows act on phi only through the
    Z = K sum_r rho_r complex numbers z = E phi: the phi-projection becomes a QP whose CI block is
    2 K P_c L x 2Z (2 R rho_r non-zeros a row) instead of 2 K P_c L x 2 R N dense.
    """

    def __init__(self, ch: ChannelsB, rtol: float = 1e-12):
        self.ch = ch
        E_blocks, self.SV, self.index = [], [], []     # index: (r, k, j) of each z entry
        for r in range(ch.R):
            U, s, Vh = np.linalg.svd(ch.G[r], full_matrices=False)
            rk = int(np.sum(s > rtol * s[0])) if s.size and s[0] > 0 else 0
            self.SV.append(s[:rk, None] * Vh[:rk])                              # (rho_r, Nt)
            for k in range(ch.K):
                for j in range(rk):
                    row = np.zeros(ch.R * ch.N, complex)
                    row[r * ch.N:(r + 1) * ch.N] = ch.hr_H[r, k] * U[:, j]
                    E_blocks.append(row)
                    self.index.append((r, k, j))
        self.E = np.array(E_blocks).reshape(-1, ch.R * ch.N)                  # (Z, R N) complex
        self.Z = self.E.shape[0]
        Er, Ei = self.E.real * ch.a_max, self.E.imag * ch.a_max
        # z = a_max E f, f = phi / a_max, u = [Re f; Im f]  ->  [Re z; Im z] = Ereal u
        self.Ereal = np.block([[Er, -Ei], [Ei, Er]])                           # (2Z, 2RN)

    def z_of(self, phi) -> np.ndarray:
        """[Re z; Im z] at phi (R, N)."""
        z = self.E @ np.asarray(phi).reshape(-1)
        return np.concatenate([z.real, z.imag])


class PhiProjector:
    """Projection onto {|phi_n| <= a_max} cap {CI(phi | x)} [spec B.7 step 4]; clip when CI stays valid.

    All 2 K P_c L CI rows are imposed exactly, through the low-rank factor :class:`PhiCIFactor`
    (u = phi/a_max, auxiliary z = E phi): one Clarabel SOCP with R N + Z complex variables, sparse.
    The rows are normalised in z-space; rows that the reference point phi_ref violates (within the
    solvers' tolerances) are relaxed to its value, so phi_ref is always feasible.
    """

    def __init__(self, ch: ChannelsB, X, gamma, ci: bool, solver: str, phi_ref, factor: PhiCIFactor | None = None,
                 mode: str = "exact"):
        self.ch, self.ci, self.solver = ch, ci, solver
        self.M = self.l = None
        self.phi_ref = np.asarray(phi_ref, complex)
        self.mode = mode
        self.fails = 0
        self.admm_iters = []          # kept for the info dict: number of CI rows per solve
        if ci and ch.R:
            fac = factor if factor is not None else PhiCIFactor(ch)
            self.fac = fac
            Xf = X.reshape(-1, ch.Nt)                                          # (B, Nt)
            Bn = Xf.shape[0]
            a0 = ch.hd_H @ Xf.T                                                # (K, B)
            c2 = ci_rows(np.ones((ch.K, 1)), ch.S, ch.psk_order)[:, :, 0]     # (B, 2K): c^{+-}_{k,n}
            W = [sv @ Xf.T for sv in fac.SV]                                   # per r: (rho_r, B)
            Z = fac.Z
            rows, lo = [], []
            for sgn in range(2):
                c = c2[:, sgn * ch.K:(sgn + 1) * ch.K].T                       # (K, B)
                A = np.zeros((ch.K, Bn, Z), complex)                           # alpha_{k,n,z}
                for zi, (r, k, j) in enumerate(fac.index):
                    A[k, :, zi] = c[k] * W[r][j] / gamma[k]
                rows.append(np.concatenate([A.real, -A.imag], axis=2).reshape(-1, 2 * Z))
                lo.append((1.0 - np.real(c * a0) / gamma[:, None]).reshape(-1))
            M = np.concatenate(rows)
            l = np.concatenate(lo)
            nr = np.linalg.norm(M, axis=1)
            nr = np.where(nr > 0, nr, 1.0)
            self.M, self.l = M / nr[:, None], l / nr
            self.z_ref = fac.z_of(phi_ref)
            # never demand more than the reference point (feasible up to solver tolerance) satisfies
            self.l = np.minimum(self.l, self.M @ self.z_ref)

    def feasible(self, phi, slack: float = 1e-9) -> bool:
        if self.M is None:
            return True
        return bool(np.all(self.M @ self.fac.z_of(phi) >= self.l - slack))

    def _solve(self, vu: np.ndarray) -> np.ndarray:
        import clarabel
        import scipy.sparse as sp
        ch, fac = self.ch, self.fac
        n = 2 * ch.R * ch.N
        nz = 2 * fac.Z
        P = sp.diags(np.concatenate([np.ones(n), np.zeros(nz)]), format="csc")
        q = np.concatenate([-vu, np.zeros(nz)])
        A_eq = sp.hstack([sp.csc_matrix(-fac.Ereal), sp.identity(nz, format="csc")], format="csc")
        frozen = self.mode == "frozen"
        if frozen:    # z = z_ref: every CI row keeps its value at phi_ref (an inner approximation)
            A_eq = sp.csc_matrix(-fac.Ereal)
            nz = 0
            P = sp.identity(n, format="csc")
            q = -vu
        A_ci = sp.csc_matrix((0, n)) if frozen else \
            sp.hstack([sp.csc_matrix((self.M.shape[0], n)), sp.csc_matrix(-self.M)], format="csc")
        m = n // 2
        idx = np.arange(m)
        r = np.repeat(idx * 3, 2) + np.tile([1, 2], m)
        c = np.stack([idx, idx + m], axis=1).reshape(-1)
        A_soc = sp.csc_matrix((-np.ones(2 * m), (r, c)), shape=(3 * m, n + nz))
        bs = np.zeros(3 * m)
        bs[0::3] = 1.0
        if frozen:
            A = sp.vstack([A_eq, A_soc], format="csc")
            b = np.concatenate([-self.z_ref, bs])
            cones = [clarabel.ZeroConeT(A_eq.shape[0])] + [clarabel.SecondOrderConeT(3)] * m
        else:
            A = sp.vstack([A_eq, A_ci, A_soc], format="csc")
            b = np.concatenate([np.zeros(nz), -self.l, bs])
            cones = [clarabel.ZeroConeT(nz), clarabel.NonnegativeConeT(self.M.shape[0])] + \
                [clarabel.SecondOrderConeT(3)] * m
        settings = clarabel.DefaultSettings()
        settings.verbose = False
        settings.tol_gap_abs = settings.tol_gap_rel = 1e-8
        settings.tol_feas = 1e-8
        sol = clarabel.DefaultSolver(P, q, A, b, cones, settings).solve()
        if "Solved" not in str(sol.status):
            raise IsacError(f"Clarabel phi-projection failed: {sol.status}")
        return np.asarray(sol.x)[:n]

    def __call__(self, v):
        ch = self.ch
        p = project_ball(v, ch.a_max)
        if self.feasible(p):
            return p, False
        f = v.reshape(-1) / ch.a_max
        self.admm_iters.append(int(self.M.shape[0]))
        try:
            u = self._solve(np.concatenate([f.real, f.imag]))
        except IsacError:      # numerical failure on a badly scaled step: a null step (phi_ref is feasible)
            self.fails += 1
            return self.phi_ref.copy(), True
        n = ch.R * ch.N
        # the interior-point solution may leave the ball by ~1e-10: clip (moves CI rows by as little)
        return project_ball((ch.a_max * (u[:n] + 1j * u[n:])).reshape(ch.R, ch.N), ch.a_max), True


def phi_step(model: Model, W, X, lam, phi, gamma, opts: Options, L_prev: float | None, shrink: bool = True,
             factor: PhiCIFactor | None = None):
    """Prox-linear MM steps on phi (B.7 step 4): returns (phi, L_F, info).

    The curvature estimate starts at 0.5 L_prev when ``shrink`` (the caller passes True when the previous
    phi-step needed no backtracking), else at L_prev, and doubles until the majoriser bound holds.
    """
    ch = model.ch
    obj = PhiObjective(model, W, X, lam)
    proj = PhiProjector(ch, X, gamma, opts.ci, opts.x_solver, phi_ref=phi, factor=factor, mode=opts.phi_proj)
    f = obj.value(phi)
    info = {"accepted": 0, "backtracks": 0, "qp_projections": 0, "bound_ok": True}
    Lf = L_prev
    for inner in range(opts.phi_inner):
        g = obj.grad(phi)
        gn = np.linalg.norm(g)
        if gn == 0:
            break
        if Lf is None:   # secant estimate of the curvature along -g
            d = -g / gn * (0.01 * ch.a_max)
            Lf = max(np.linalg.norm(obj.grad(phi + d) - g) / np.linalg.norm(d), 1e-12)
        if inner == 0 and shrink:
            Lf = 0.5 * Lf       # let the curvature estimate shrink, then backtrack up
        for _bt in range(60):
            cand, used_qp = proj(phi - g / Lf)
            info["qp_projections"] += int(used_qp)
            dlt = cand - phi
            fc = obj.value(cand)
            bound = f + float(np.real(np.vdot(g, dlt))) + 0.5 * Lf * float(np.sum(np.abs(dlt) ** 2))
            if fc <= bound + 1e-12 * max(abs(f), 1.0):
                break
            Lf *= 2.0
            info["backtracks"] += 1
        else:
            info["bound_ok"] = False
            break
        if fc > f:      # cannot happen when the bound holds and the projection is exact
            break
        phi, f = cand, fc
        info["accepted"] += 1
    info["F"] = f
    info["proj_admm_iters"] = proj.admm_iters
    info["proj_fails"] = proj.fails
    return phi, Lf, info


def restore_ci(ch: ChannelsB, X, phi, gamma, admm_iters: int = 200, lift: float = 1e-4,
               rng: np.random.Generator | None = None):
    """Constant-modulus CI restoration at fixed phi [RECON]: returns (X', n_slots, how) or (None, n, how).

    Only the slots whose CI constraints fail at the CM waveform X change (CI is slot-separable at fixed
    phi). Two stages, each stopping as soon as every repaired slot satisfies CI with the bounds lifted by
    ``lift`` (relative), so it moves the waveform only as far as needed:

    1. ``"admm"``: the objective-free ADMM of the x-step (fixed rho, scaled dual d) from y = X:
       x <- Proj_{CI cap box}(y - d), y <- CM(x + d), d <- d + x - y. (Alternating projections, d = 0,
       stall at a non-zero gap between the CI polytope and the torus.)
    2. ``"phase-ascent"``: for the slots still infeasible, ascent of the soft-min CI margin over the
       phases of the CM entries, from X and from 15 random phase vectors (``rng``, default seed 0).
    """
    X = np.asarray(X)
    Xf = X.reshape(-1, ch.Nt)
    m = normalised_margins(ch, X, phi).min(axis=0)
    bad = np.where(m < 1.0)[0]
    if bad.size == 0:
        return X.copy(), 0, "none"
    out = Xf.copy()
    H = effective_channels(ch, phi)
    g = gamma[:, None]
    target = 1.0 + lift

    def ok_slots(Y, idx):
        return np.all(ci_margins(H @ Y.T, ch.S[:, idx], ch.psk_order) / g >= target, axis=0)

    # stage 1: feasibility ADMM
    Kc, l = _ci_rows_x(ch, phi, gamma)
    Kc, l = Kc[bad], l[bad] * (1.0 + 2 * lift)
    y = np.concatenate([Xf[bad].real, Xf[bad].imag], axis=1) / ch.amp
    d = np.zeros_like(y)
    warm = None
    for it in range(1, admm_iters + 1):
        x, warm, _ = admm_qp(QP(1.0, None, -(y - d), Kc, l, 1.0), warm=warm, eps_abs=1e-9, eps_rel=1e-9,
                             max_iter=500)
        y = _cm_u(x + d)
        d = d + x - y
        if it % 5 == 0:
            Y = ch.amp * (y[:, :ch.Nt] + 1j * y[:, ch.Nt:])
            if np.all(ok_slots(Y, bad)):
                out[bad] = Y
                return out.reshape(X.shape), int(bad.size), "admm"
    # stage 2: soft-min phase ascent, multi-start
    rng = np.random.default_rng(0) if rng is None else rng
    rows = ci_rows(H, ch.S[:, bad], ch.psk_order) * ch.amp / np.concatenate([gamma, gamma])[None, :, None]
    n_starts = 16
    th0 = np.concatenate([np.angle(Xf[bad])[None], rng.uniform(0, 2 * np.pi, (n_starts - 1, bad.size, ch.Nt))])
    th = phase_ascent(np.broadcast_to(rows, (n_starts,) + rows.shape), th0, target)
    mg = np.real(np.einsum("sbji,sbi->sbj", np.broadcast_to(rows, (n_starts,) + rows.shape),
                           np.exp(1j * th))).min(axis=2)                       # (starts, slots)
    good = mg >= target
    if not np.all(good.any(axis=0)):
        return None, int(bad.size), "failed"
    first = np.argmax(good, axis=0)       # the first start that works (start 0 = X itself: smallest move)
    out[bad] = ch.amp * np.exp(1j * th[first, np.arange(bad.size)])
    return out.reshape(X.shape), int(bad.size), "phase-ascent"


def phase_ascent(rows, th, target: float, iters: int = 3000, step: float = 0.02, tau: float = 0.05):
    """Maximise min_j Re{rows_j e^{j theta}} over phases theta, batched [RECON].

    rows (..., J, n) complex (margins normalised so that the bound is 1), th (..., n) start phases.
    Normalised soft-min gradient steps; a problem stops moving once its smallest margin reaches
    ``target``. Returns the phases (..., n).
    """
    th = np.array(th, dtype=np.float64)
    for _ in range(iters):
        e = np.exp(1j * th)
        m = np.real(np.einsum("...ji,...i->...j", rows, e))                     # (..., J)
        mn = m.min(axis=-1)
        act = mn < target
        if not act.any():
            break
        w = np.exp(-(m - mn[..., None]) / tau)
        w /= w.sum(axis=-1, keepdims=True)
        grad = np.einsum("...j,...ji->...i", w, -np.imag(rows * e[..., None, :]))
        gn = np.max(np.abs(grad), axis=-1, keepdims=True)
        th = th + np.where(act[..., None], step * grad / np.where(gn > 0, gn, 1.0), 0.0)
    return th


def _cm_u(u):
    """Constant-modulus projection in the real [Re | Im] block layout (|u_i| = 1)."""
    m = u.shape[1] // 2
    mag = np.hypot(u[:, :m], u[:, m:])
    s = np.where(mag > 0, 1.0 / np.where(mag > 0, mag, 1.0), 1.0)
    re = np.where(mag > 0, u[:, :m] * s, 1.0)
    im = np.where(mag > 0, u[:, m:] * s, 0.0)
    return np.concatenate([re, im], axis=1)


# --------------------------------------------------------------------------------------------------
# main loop
# --------------------------------------------------------------------------------------------------
def design(ch: ChannelsB, opts: Options, phi0=None, X0=None) -> DesignResult:
    """Run B.7 (or a B.8 baseline through ``opts``) on one realisation [spec B.7].

    ``phi0`` defaults to the aligned profile (66); ``X0`` to the worst-case-margin waveform (67) under
    CI or the beam under radar-only.

    ADMM of the constant-modulus split in scaled form (d = mu/rho): when rho grows, d is kept
    (``dual_rescale``), so the split stays an ADMM. The old form kept mu, which divides d by the growth
    factor at every increase: with rho growing geometrically the iteration degenerates into alternating
    projections between the CI polytope and the CM torus, which stall at a non-zero gap; rho then grew to
    1e9-1e10 in the polish and the CM output broke CI (issue 12).

    With ``certify`` (default) every outer iterate's output point (y_a, phi) is checked against all
    constraints of the problem (:mod:`.certify`); the output is the best feasible one by the method's own
    objective (SCNR of its filter), among the start, the iterates, the final point and, if the final
    point breaks CI, its restoration (:func:`restore_ci`). ``info`` records which one was returned.
    """
    t_start = time.perf_counter()
    tm = {"init": 0.0, "w_step": 0.0, "x_step": 0.0, "phi_step": 0.0, "other": 0.0, "certify": 0.0}
    model = Model(ch)
    gamma = gamma_ci(ch)
    phi = init_phi_aligned(ch) if phi0 is None else np.asarray(phi0, complex).reshape(ch.R, ch.N)
    t0 = time.perf_counter()
    init_margin = np.inf
    slot_lb = None
    if X0 is not None:
        X = np.asarray(X0, complex).reshape(ch.Pc, ch.L, ch.Nt)
    elif opts.ci:
        X, tslots = init_x_ci(ch, phi)
        init_margin = float(tslots.min())
        if init_margin < 1.0:          # CI-infeasible instance: relax the failing slots (spec D.5)
            slot_lb = np.minimum(tslots, 1.0) * 0.999
    else:
        X = init_x_beam(ch)
    feasible = init_margin >= 1.0 or not opts.ci
    ya = admm_aux_update(X, 0, 1.0, ch.amp) if opts.cm else X.copy()
    tm["init"] += time.perf_counter() - t0
    objective = (lambda Xc, ph: spatial_filter(model, Xc, ph)[1]) if opts.spatial_only else \
        (lambda Xc, ph: model.mvdr(Xc, ph)[1])

    cert = {"best": None, "n_feasible": 0, "n_checked": 0}

    def consider(Xc, ph, scnr, label):
        """Keep (Xc, ph) if it satisfies every constraint and beats the best so far; returns feasibility."""
        t_c = time.perf_counter()
        st = constraint_status(ch, Xc, ph, ci=opts.ci, cm=opts.cm)
        cert["n_checked"] += 1
        ok = st["feasible"]
        if ok:
            cert["n_feasible"] += 1
            if cert["best"] is None or scnr > cert["best"][0]:
                cert["best"] = (float(scnr), Xc.copy(), ph.copy(), label)
        tm["certify"] += time.perf_counter() - t_c
        return ok, st

    start_info = {"start_restored_slots": 0}
    if opts.certify and opts.ci and opts.cm and feasible:
        # the CM start must itself be CI-feasible (it is the method's own feasible start)
        t_c = time.perf_counter()
        st0 = constraint_status(ch, ya, phi, ci=True, cm=True)
        if not st0["feasible"]:
            Xr, nsl, how = restore_ci(ch, ya, phi, gamma)
            start_info["start_restore"] = how
            if Xr is not None:
                X, ya = Xr.copy(), Xr.copy()
                start_info["start_restored_slots"] = nsl
        tm["certify"] += time.perf_counter() - t_c

    rho = None
    shrink = True
    admm_iters = []
    x_solve_times = []
    rho0 = None
    Lf = None
    history, history_out = [], []
    n_outer = opts.fixed_iters or opts.max_outer
    solver_state = {"cvx": None, "warm": None}
    d = np.zeros_like(X)            # scaled dual mu / rho of the CM split
    factor = PhiCIFactor(ch) if (opts.ci and ch.R and opts.optimise_phi) else None
    proj_fails = 0

    def ci_rows_now():
        if not opts.ci:
            return None
        Kc, l = _ci_rows_x(ch, phi, gamma)
        l = l + 10 * opts.admm_eps   # absorb the first-order solver's feasibility tolerance (unit-norm rows)
        if slot_lb is not None:
            l = l * slot_lb[:, None]
        return Kc, l

    def x_pass(W, lam, X, ya, d, rho, rows):
        """One MM + ADMM pass of the x-step (38)-(41) in scaled form; returns (x, y_a, d)."""
        if opts.cm:
            qp, _sc = build_x_qp(model, W, phi, X, lam, rows, v=ya - d, rho=rho)
        else:
            qp, _sc = build_x_qp(model, W, phi, X, lam, rows)
        t_solve = time.perf_counter()
        if opts.x_solver == "cvxpy":
            if solver_state["cvx"] is None:
                solver_state["cvx"] = CvxQP(ch.Pc * ch.L, ch.Nt, 2 * ch.K if opts.ci else 0, qp.F.shape[1])
            u = solver_state["cvx"].solve(qp)
        else:
            u, solver_state["warm"], inf = admm_qp(qp, warm=solver_state["warm"], eps_abs=opts.admm_eps,
                                                   eps_rel=opts.admm_eps, max_iter=opts.admm_max_iter)
            admm_iters.append(inf["iters"])
        x_solve_times.append(time.perf_counter() - t_solve)
        X = _u_to_X(ch, u)
        if opts.cm:
            ya = project_cm(X + d, ch.amp)           # (39)-(40): CM point nearest to x + mu/rho
            d = d + (X - ya)                         # (41) divided by rho
        return X, ya, d

    def grow_rho(rho, new):
        """Change rho; the scaled dual is kept (``dual_rescale``) or, legacy, mu = rho d is kept."""
        nonlocal d
        if not opts.dual_rescale:
            d = d * (rho / new)
        return new

    it = 0
    for it in range(1, n_outer + 1):
        # ---- w-step (29) and lambda-step (31)
        t0 = time.perf_counter()
        t = model.target(X, phi)
        C = model.clutter(X, phi)
        if opts.spatial_only:
            W, _ = spatial_filter(model, X, phi, t, C)
        else:
            W, _ = model.mvdr(X, phi, t, C)
        W, lam = _normalise_filter(model, W, X, phi, t, C)
        history.append(lam)
        if opts.cm:
            so = objective(ya, phi)
            history_out.append(so)
        else:
            so = lam
            history_out.append(lam)
        tm["w_step"] += time.perf_counter() - t0
        if opts.certify:
            consider(ya if opts.cm else X, phi, so, "start" if it == 1 else f"iterate {it}")
        if it > opts.min_outer and opts.fixed_iters is None:
            rel = abs(history[-1] - history[-2]) / max(abs(history[-2]), 1e-300)
            gap = np.linalg.norm(X - ya) / max(np.linalg.norm(X), 1e-300) if opts.cm else 0.0
            if rel < opts.tol and gap < opts.cm_tol:
                break
        if it == n_outer:
            break
        # ---- x-step (32)-(41)
        t0 = time.perf_counter()
        rows = ci_rows_now()
        if opts.cm and rho is None:
            a = model.target_adj(W, phi)
            rho0 = rho = ch.sigma_t_sq * abs(np.vdot(a, X)) ** 2 / (ch.amp ** 2 * X.size)
        for _ in range(opts.x_passes):
            X, ya, d = x_pass(W, lam, X, ya, d, rho, rows)
        if opts.cm:
            rho = grow_rho(rho, min(rho * opts.rho_growth, rho0 * opts.rho_max_factor))
        if not opts.cm:
            ya = X
        tm["x_step"] += time.perf_counter() - t0
        # ---- phi-step (42)-(65)
        if opts.optimise_phi and ch.R and opts.phi_inner:
            t0 = time.perf_counter()
            popts = opts
            if opts.phi_proj == "frozen" and opts.phi_exact_every and it % opts.phi_exact_every == 0:
                popts = replace(opts, phi_proj="exact")
            phi, Lf, pinfo = phi_step(model, W, X, lam, phi, gamma, popts, Lf, shrink, factor)
            shrink = pinfo["backtracks"] == 0
            proj_fails += pinfo["proj_fails"]
            tm["phi_step"] += time.perf_counter() - t0

    # ---- polish [RECON]: with phi and w fixed, continue the ADMM x-iterations with rho doubling until the
    # constant-modulus copy y_a meets x (which satisfies CI), so the CM output keeps the CI margins
    n_polish = 0
    if opts.cm and rho is not None and opts.polish_iters:
        t0 = time.perf_counter()
        rows = ci_rows_now()
        for n_polish in range(1, opts.polish_iters + 1):
            if np.linalg.norm(X - ya) <= opts.polish_tol * np.linalg.norm(X):
                n_polish -= 1
                break
            rho = grow_rho(rho, 2.0 * rho)
            X, ya, d = x_pass(W, lam, X, ya, d, rho, rows)
        tm["x_step"] += time.perf_counter() - t0
    t0 = time.perf_counter()
    X_fin = ya if opts.cm else X
    scnr_fin = objective(X_fin, phi)
    tm["other"] += time.perf_counter() - t0
    out = {"output": "final", "final_feasible": None, "restored_slots": 0, "restore": "none",
           "fallback": False, "best_earlier": False}
    X_out, phi_out = X_fin, phi
    if opts.certify:
        ok, st = consider(X_fin, phi, scnr_fin, "final")
        out["final_feasible"] = bool(ok)
        out["final_ci_min_margin"] = st["ci_min_margin"]
        if not ok and opts.ci and st["cm_violated"] == 0 and st["ris_violated"] == 0:
            t_c = time.perf_counter()
            Xr, nsl, how = restore_ci(ch, X_fin, phi, gamma)
            out["restored_slots"], out["restore"] = nsl, how
            tm["certify"] += time.perf_counter() - t_c
            if Xr is not None:
                consider(Xr, phi, objective(Xr, phi), "restored")
        if cert["best"] is not None:
            _s, X_out, phi_out, label = cert["best"]
            out["output"] = label
            out["fallback"] = not ok and label != "restored"
            out["best_earlier"] = ok and label != "final"
        else:
            out["output"] = "final (no feasible point found)"
    t0 = time.perf_counter()
    if opts.spatial_only:
        W_out, scnr = spatial_filter(model, X_out, phi_out)
    else:
        W_out, scnr = _mvdr(model, X_out, phi_out)
    t = model.target(X_out, phi_out)
    W_out = W_out / np.conj(np.vdot(W_out, t))      # w^H t = 1
    margin = ci_min_margin(ch, X_out, phi_out)
    tm["other"] += time.perf_counter() - t0
    tm["total"] = time.perf_counter() - t_start
    info = {"admm_iters_mean": float(np.mean(admm_iters)) if admm_iters else 0.0, "polish_passes": n_polish,
            "x_solve_times": x_solve_times, "rho_final": rho, "rho_final_rel": (rho / rho0) if rho0 else None,
            "lipschitz_final": Lf, "phi_proj_fails": proj_fails, "feasible_iterates": cert["n_feasible"],
            "checked_iterates": cert["n_checked"], **start_info, **out}
    return DesignResult(X_out, phi_out, W_out, scnr, history, history_out, tm, it, margin,
                        init_margin, bool(feasible), info)


def _mvdr(model, X, phi):
    return model.mvdr(X, phi)
