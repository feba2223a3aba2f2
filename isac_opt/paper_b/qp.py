"""Convex sub-problems of paper B's algorithm [spec B.7 step 3 (38), step 4 (65)], real-valued.

Both the x-step and the phi-projection are instances of the structured QP

    minimise   1/2 c0 ||u||^2 + 1/2 ||F^T u||^2 + q^T u
    subject to |u_{b,i} + j u_{b,m+i}| <= radius   (per complex entry; u is (B, 2m) = [Re, Im] blocks)
               K_b u_b >= l_b                       (per block b: linear CI rows, (B, rows, 2m))

Two solvers:

* :func:`admm_qp` - numpy first-order (OSQP-style ADMM with over-relaxation and adaptive rho); the linear
  system P + sigma I + rho (I + K^T K) is block-diagonal plus the rank-2Q term F F^T, solved by batched
  block inverses and Woodbury (spec D.3 "fast path").
* :class:`CvxXStep` / :func:`cvx_qp` - cvxpy + Clarabel reference, real-valued and DPP-parametrised:
  built once per realisation and re-solved (performance_notes section 5).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..errors import IsacError


@dataclass
class QP:
    """Data of the structured QP above. ``F`` is (B*2m, r) or None; ``Kc`` (B, rows, 2m) or None."""

    c0: float
    F: np.ndarray | None
    q: np.ndarray           # (B, 2m)
    Kc: np.ndarray | None   # (B, rows, 2m)
    l: np.ndarray | None    # (B, rows)
    radius: float

    _ktk: np.ndarray | None = None

    def KtK(self) -> np.ndarray:
        """K_b^T K_b per block, cached (B, 2m, 2m)."""
        if self._ktk is None:
            self._ktk = np.matmul(self.Kc.transpose(0, 2, 1), self.Kc)
        return self._ktk

    def objective(self, u: np.ndarray) -> float:
        v = 0.5 * self.c0 * np.sum(u * u) + np.sum(self.q * u)
        if self.F is not None and self.F.shape[1]:
            v += 0.5 * np.sum((u.reshape(-1) @ self.F) ** 2)
        return float(v)

    def violation(self, u: np.ndarray) -> float:
        """Max constraint violation (modulus and linear), in the QP's units."""
        m = u.shape[1] // 2
        viol = float(np.max(np.hypot(u[:, :m], u[:, m:])) - self.radius)
        if self.Kc is not None and self.Kc.shape[1]:
            viol = max(viol, float(np.max(self.l - np.einsum("bri,bi->br", self.Kc, u))))
        return max(viol, 0.0)


@dataclass
class AdmmState:
    u: np.ndarray
    z_box: np.ndarray
    z_lin: np.ndarray | None
    y_box: np.ndarray
    y_lin: np.ndarray | None
    rho: float


def _project_box(v: np.ndarray, radius: float) -> np.ndarray:
    m = v.shape[1] // 2
    mag = np.hypot(v[:, :m], v[:, m:])
    s = np.where(mag > radius, radius / np.maximum(mag, 1e-300), 1.0)
    return v * np.concatenate([s, s], axis=1)


class _Solver:
    """Factorisation of P + (sigma + rho) I + rho K^T K for one rho."""

    def __init__(self, qp: QP, rho: float, sigma: float):
        B, m2 = qp.q.shape
        D = np.broadcast_to(np.eye(m2) * (qp.c0 + sigma + rho), (B, m2, m2)).copy()
        if qp.Kc is not None and qp.Kc.shape[1]:
            D += rho * qp.KtK()
        self.Dinv = np.linalg.inv(D)
        self.F = qp.F if (qp.F is not None and qp.F.shape[1]) else None
        if self.F is not None:
            r = self.F.shape[1]
            Fb = self.F.T.reshape(r, B, m2).transpose(1, 2, 0)                  # (B, 2m, r)
            self.DF = np.matmul(self.Dinv, Fb).transpose(2, 0, 1).reshape(r, -1)  # (r, B*2m) = (D^-1 F)^T
            self.S = np.linalg.inv(np.eye(r) + self.F.T @ self.DF.T)

    def solve(self, rhs: np.ndarray) -> np.ndarray:
        x = np.matmul(self.Dinv, rhs[:, :, None])[:, :, 0]
        if self.F is not None:
            c = self.S @ (self.F.T @ x.reshape(-1))
            x = x - (self.DF.T @ c).reshape(x.shape)
        return x


def admm_qp(qp: QP, warm: AdmmState | None = None, eps_abs: float = 1e-7, eps_rel: float = 1e-7,
            max_iter: int = 4000, alpha: float = 1.6, sigma: float = 1e-6, rho0: float = 0.1,
            adapt_every: int = 25) -> tuple[np.ndarray, AdmmState, dict]:
    """Solve the structured QP by ADMM (OSQP splitting z = [u; K u]) [spec D.3].

    Returns (u, state, info) with ``u`` the box-feasible iterate (the projected copy z_box; the linear
    constraints hold to the tolerance), ``state`` for warm starts and ``info`` = {iters, r_prim, r_dual}.
    """
    B, m2 = qp.q.shape
    lin = qp.Kc is not None and qp.Kc.shape[1] > 0
    if warm is None:
        u = np.zeros((B, m2))
        zb, yb = u.copy(), np.zeros_like(u)
        zl = np.einsum("bri,bi->br", qp.Kc, u) if lin else None
        yl = np.zeros_like(zl) if lin else None
        rho = rho0
    else:
        u, zb, yb, rho = warm.u.copy(), warm.z_box.copy(), warm.y_box.copy(), warm.rho
        if lin:
            zl = np.maximum(np.einsum("bri,bi->br", qp.Kc, u), qp.l)
            yl = warm.y_lin.copy() if (warm.y_lin is not None and warm.y_lin.shape == zl.shape) \
                else np.zeros_like(zl)
        else:
            zl = yl = None
    solver = _Solver(qp, rho, sigma)
    if lin:
        KcT = np.ascontiguousarray(qp.Kc.transpose(0, 2, 1))
        Kt = lambda v: np.matmul(KcT, v[:, :, None])[:, :, 0]
        Kx = lambda v: np.matmul(qp.Kc, v[:, :, None])[:, :, 0]
    else:
        Kt = Kx = None

    def Pu(v):
        out = qp.c0 * v
        if solver.F is not None:
            out = out + (qp.F @ (qp.F.T @ v.reshape(-1))).reshape(v.shape)
        return out

    it = 0
    r_prim = r_dual = np.inf
    for it in range(1, max_iter + 1):
        rhs = sigma * u - qp.q + rho * zb - yb
        if lin:
            rhs = rhs + Kt(rho * zl - yl)
        ut = solver.solve(rhs)
        u_new = alpha * ut + (1 - alpha) * u
        vb = alpha * ut + (1 - alpha) * zb
        zb_new = _project_box(vb + yb / rho, qp.radius)
        yb = yb + rho * (vb - zb_new)
        if lin:
            Ku = Kx(ut)
            vl = alpha * Ku + (1 - alpha) * zl
            zl_new = np.maximum(vl + yl / rho, qp.l)
            yl = yl + rho * (vl - zl_new)
            zl = zl_new
        u, zb = u_new, zb_new
        if it % 10 == 0 or it == max_iter:
            Pux = Pu(u)
            ATy = yb + (Kt(yl) if lin else 0.0)
            r_prim = float(np.max(np.abs(u - zb)))
            nAx = float(np.max(np.abs(u)))
            nz = float(np.max(np.abs(zb)))
            if lin:
                Ku = Kx(u)
                r_prim = max(r_prim, float(np.max(np.abs(Ku - zl))))
                nAx = max(nAx, float(np.max(np.abs(Ku))))
                nz = max(nz, float(np.max(np.abs(zl))))
            r_dual = float(np.max(np.abs(Pux + qp.q + ATy)))
            sc_d = max(float(np.max(np.abs(Pux))), float(np.max(np.abs(ATy))), float(np.max(np.abs(qp.q))))
            if r_prim <= eps_abs + eps_rel * max(nAx, nz) and r_dual <= eps_abs + eps_rel * sc_d:
                break
            if it % adapt_every == 0:
                ratio = np.sqrt((r_prim / max(nAx, nz, 1e-30)) / max(r_dual / max(sc_d, 1e-30), 1e-30))
                new_rho = float(np.clip(rho * ratio, 1e-6, 1e6))
                if new_rho > 5 * rho or new_rho < rho / 5:
                    yb_scaled = yb    # y is unscaled in this form; keep it
                    rho = new_rho
                    solver = _Solver(qp, rho, sigma)
                    yb = yb_scaled
    state = AdmmState(u, zb, zl, yb, yl, rho)
    return zb.copy(), state, {"iters": it, "r_prim": r_prim, "r_dual": r_dual}


# --------------------------------------------------------------------------------------------------
# cvxpy reference path
# --------------------------------------------------------------------------------------------------
class CvxQP:
    """cvxpy + Clarabel reference model of the structured QP (real-valued), built once per size and re-solved.

    DPP parameters: c0 (scalar), q (B, 2m), F (B*2m, r) and one (rows, 2m) block K_b plus bound l_b per
    block (the block-diagonal CI structure stays sparse). Build one instance per realisation and call
    :meth:`solve` with new :class:`QP` data each iteration (performance_notes section 5).
    """

    def __init__(self, B: int, m: int, rows: int, r: int):
        import cvxpy as cp
        self.cp = cp
        self.B, self.m, self.rows, self.r = B, m, rows, r
        n = B * 2 * m
        self.u = cp.Variable((B, 2 * m))
        self.c0 = cp.Parameter(nonneg=True)
        self.q = cp.Parameter((B, 2 * m))
        self.radius = cp.Parameter(nonneg=True)
        obj = 0.5 * self.c0 * cp.sum_squares(self.u) + cp.sum(cp.multiply(self.q, self.u))
        if r:
            self.F = cp.Parameter((n, r))
            obj = obj + 0.5 * cp.sum_squares(self.F.T @ cp.vec(self.u.T, order="F"))
        cons = [cp.SOC(self.radius * np.ones(B * m), cp.vstack([cp.vec(self.u[:, :m].T, order="F"),
                                                                cp.vec(self.u[:, m:].T, order="F")]), axis=0)]
        self.K = []
        self.l = []
        if rows:
            for b in range(B):
                Kb = cp.Parameter((rows, 2 * m))
                lb = cp.Parameter(rows)
                cons.append(Kb @ self.u[b] >= lb)
                self.K.append(Kb)
                self.l.append(lb)
        self.prob = cp.Problem(cp.Minimize(obj), cons)

    def solve(self, qp: QP) -> np.ndarray:
        cp = self.cp
        self.c0.value = float(qp.c0)
        self.q.value = qp.q
        self.radius.value = float(qp.radius)
        if self.r:
            self.F.value = qp.F
        for b in range(len(self.K)):
            self.K[b].value = qp.Kc[b]
            self.l[b].value = qp.l[b]
        import warnings
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", message=".*too many parameters.*")
            try:
                self.prob.solve(solver=cp.CLARABEL, warm_start=False)  # results must not depend on history
            except cp.error.SolverError:
                self.prob.solve(solver=cp.SCS, eps=1e-9)
        if self.prob.status not in ("optimal", "optimal_inaccurate"):
            raise IsacError(f"cvxpy QP failed: status {self.prob.status}")
        return np.asarray(self.u.value)


def clarabel_qp(qp: QP) -> np.ndarray:
    """Solve a single-block structured QP (B = 1, small) with Clarabel directly (no cvxpy canonicalisation).

    Used for the phi-projection SOCP of the active-RIS step [spec B.7 step 4]; P = c0 I + F F^T is
    assembled densely, so keep 2m small (<= a few hundred).
    """
    import clarabel
    import scipy.sparse as sp
    B, m2 = qp.q.shape
    if B != 1:
        raise ValueError("clarabel_qp: single-block problems only")
    m = m2 // 2
    P = qp.c0 * np.eye(m2)
    if qp.F is not None and qp.F.shape[1]:
        P = P + qp.F @ qp.F.T
    P = sp.triu(sp.csc_matrix(P), format="csc")
    rows_A, b, cones = [], [], []
    if qp.Kc is not None and qp.Kc.shape[1]:
        rows_A.append(sp.csc_matrix(-qp.Kc[0]))
        b.append(-qp.l[0])
        cones.append(clarabel.NonnegativeConeT(qp.Kc.shape[1]))
    # per complex entry i: (radius, u_re_i, u_im_i) in SOC(3)
    idx = np.arange(m)
    r = np.repeat(np.arange(m) * 3, 2) + np.tile([1, 2], m)
    c = np.stack([idx, idx + m], axis=1).reshape(-1)
    rows_A.append(sp.csc_matrix((-np.ones(2 * m), (r, c)), shape=(3 * m, m2)))
    bs = np.zeros(3 * m)
    bs[0::3] = qp.radius
    b.append(bs)
    cones += [clarabel.SecondOrderConeT(3)] * m
    A = sp.vstack(rows_A, format="csc")
    settings = clarabel.DefaultSettings()
    settings.verbose = False
    settings.tol_gap_abs = settings.tol_gap_rel = 1e-10
    settings.tol_feas = 1e-10
    sol = clarabel.DefaultSolver(P, qp.q[0].copy(), A, np.concatenate(b), cones, settings).solve()
    status = str(sol.status)
    if "Solved" not in status:
        raise IsacError(f"Clarabel QP failed: {status}")
    return np.asarray(sol.x)[None, :]
