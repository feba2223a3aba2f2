"""Compiled (numba) batch-1 forward of the detection network / classical solver [spec A.6 (25)–(37), A.7].

The same iterates as :class:`~isac_opt.paper_a.unfold.fastnet.NumpyNet` (and hence as the torch
:func:`~isac_opt.paper_a.unfold.step.admm_layer`), for one realisation, written as explicit loops over the
tiny matrices of the detection problem (M × L waveform, Q + 1 legs, K users, N RIS elements), compiled once
by numba (``cache=True``: later processes load the machine code). At batch 1 the numpy engine is bound by
≈ 1 µs per array call (≈ 50 calls per inner step); here an inner step is a few thousand flops.

Used by :class:`~isac_opt.paper_a.unfold.fastnet.NumpyNet` (one realisation at a time) when numba is
installed (``isac_opt.paper_a.unfold.fastnet.HAVE_JIT``); otherwise the batched numpy code runs (detection
only). Tested against the torch step function layer by layer (tests/test_fastnet.py).

Conventions: complex128 / float64; z flattened per block (x: M·L, φ: N); real inner products of the
[Re; Im] stacking = Σ Re(conj(a) b). MLP tables per (t, j[, r]): W1 (H, 2), b1 (H), W2 (H), b2, and a
``const`` table (NaN = evaluate the MLP, else its exact constant output when W2 = 0).
"""
from __future__ import annotations

import math

import numpy as np
from numba import njit

__all__ = ["forward1"]


@njit(cache=True)
def _softplus(x):
    return x if x > 20.0 else math.log1p(math.exp(x))


@njit(cache=True)
def _mlp(W1, b1, W2, b2, f0, f1):
    o = b2
    acc = 0.0
    for h in range(W1.shape[0]):
        acc += math.tanh(f0 * W1[h, 0] + f1 * W1[h, 1] + b1[h]) * W2[h]
    return _softplus(acc + o)


@njit(cache=True)
def _rdot(a, b):
    s = 0.0
    for i in range(a.size):
        s += a[i].real * b[i].real + a[i].imag * b[i].imag
    return s


@njit(cache=True)
def _sgn(v):
    return 1.0 if v > 0 else (-1.0 if v < 0 else 0.0)


@njit(cache=True)
def _leg(X0, Xr, G, phi):
    """X0 + (Xr ⊙ φ) G : (R, M)."""
    R, M = X0.shape
    N = Xr.shape[1]
    out = X0.copy()
    for i in range(R):
        for n in range(N):
            c = Xr[i, n] * phi[n]
            for m in range(M):
                out[i, m] += c * G[n, m]
    return out


@njit(cache=True)
def _gram(a):
    """A[i, j] = Σ_m conj(a[i, m]) a[j, m] (Gram of the rows)."""
    Q1, M = a.shape
    A = np.empty((Q1, Q1), dtype=np.complex128)
    for i in range(Q1):
        for j in range(Q1):
            s = 0j
            for m in range(M):
                s += a[i, m].conjugate() * a[j, m]
            A[i, j] = s
    return A


@njit(cache=True)
def _solve_i_plus(Gm, Rhs):
    """X = (I + Gm)⁻¹ Rhs for a Hermitian PSD Gm (Q × Q) and Rhs (Q × k): I + Gm is Hermitian PD, so Gaussian
    elimination needs no pivoting (the small solves of the MVDR SINR, A.7, and of the CRB's Woodbury form, A.8)."""
    Q = Gm.shape[0]
    k = Rhs.shape[1]
    Aug = np.empty((Q, Q + k), dtype=np.complex128)
    for i in range(Q):
        for j in range(Q):
            Aug[i, j] = Gm[i, j] + (1.0 if i == j else 0.0)
        for j in range(k):
            Aug[i, Q + j] = Rhs[i, j]
    for c in range(Q):
        inv = 1.0 / Aug[c, c]
        for i in range(c + 1, Q):
            f = Aug[i, c] * inv
            for jj in range(c, Q + k):
                Aug[i, jj] -= f * Aug[c, jj]
    X = np.zeros((Q, k), dtype=np.complex128)
    for col in range(k):
        for i in range(Q - 1, -1, -1):
            acc = Aug[i, Q + col]
            for jj in range(i + 1, Q):
                acc -= Aug[i, jj] * X[jj, col]
            X[i, col] = acc / Aug[i, i]
    return X


@njit(cache=True)
def _core(u, a, b, A, bins, cs2):
    """SinrObjective.value_grad pieces for u (M, L): F, t (Q1, L), M_m (M, L), cg (Q1), J_dᵀG_t (Q1, L)."""
    Q1, M = a.shape
    L = u.shape[1]
    Q = Q1 - 1
    t = np.zeros((Q1, L), dtype=np.complex128)
    for i in range(Q1):
        d = bins[i]
        for l in range(d, L):
            s = 0j
            for m in range(M):
                s += b[i, m] * u[m, l - d]
            t[i, l] = s
    P = A * _gram(t)
    # w = (I + Γ)⁻¹ r, Γ = P[1:, 1:] Hermitian PSD: elimination without pivoting
    w = _solve_i_plus(P[1:, 1:], P[1:, :1])[:, 0]
    F = P[0, 0].real
    for i in range(Q):
        F -= (P[i + 1, 0].conjugate() * w[i]).real
    coef_m = np.empty(Q1, dtype=np.complex128)
    cg = np.empty(Q1, dtype=np.complex128)
    coef_m[0] = 1.0
    cg[0] = cs2
    for q in range(Q):
        acc = P[0, q + 1]
        for i in range(Q):
            acc -= w[i].conjugate() * P[i + 1, q + 1]
        coef_m[q + 1] = -w[q]
        cg[q + 1] = -cs2 * acc
    Mm = np.zeros((M, L), dtype=np.complex128)
    for i in range(Q1):
        for m in range(M):
            c = a[i, m] * coef_m[i]
            for l in range(L):
                Mm[m, l] += c * t[i, l]
    Gts = np.zeros((Q1, L), dtype=np.complex128)
    for i in range(Q1):
        d = bins[i]
        for l in range(L - d):
            s = 0j
            for m in range(M):
                s += a[i, m].conjugate() * Mm[m, l + d]
            Gts[i, l] = cg[i] * s
    return F, t, Mm, cg, Gts


@njit(cache=True)
def _zt_g(uz, ht, Sc, gs, sn, cs):
    """z̃ = (h̃'u) ⊙ S (K, L) and the scaled CI constraints g̃ = gs(1 − (sinΘ Re z̃ − cosΘ |Im z̃|)) [spec A.3]."""
    K, M = ht.shape
    L = uz.shape[1]
    zt = np.empty((K, L), dtype=np.complex128)
    g = np.empty((K, L))
    for k in range(K):
        for l in range(L):
            s = 0j
            for m in range(M):
                s += ht[k, m] * uz[m, l]
            z = s * Sc[k, l]
            zt[k, l] = z
            g[k, l] = gs * (1.0 - (sn * z.real - cs * abs(z.imag)))
    return zt, g


@njit(cache=True)
def _ci(uz, ht, Sc, beta, eta, alm, gs, sn, cs):
    """CI penalty value and weights Wc (K, L) = W·gs·(−sinΘ + j cosΘ sgn Im z̃)·conj(S) at u (zt = (h̃'u)⊙S)."""
    zt, g = _zt_g(uz, ht, Sc, gs, sn, cs)
    K, L = g.shape
    val = 0.0
    Wc = np.empty((K, L), dtype=np.complex128)
    for k in range(K):
        for l in range(L):
            if alm:
                W = beta[k, l]
                val += W * g[k, l]
            else:
                h = max(eta[k, l] * g[k, l] + beta[k, l], 0.0)
                val += h * h / (2.0 * eta[k, l])
                W = h
            Wc[k, l] = (W * gs) * complex(-sn, cs * _sgn(zt[k, l].imag)) * Sc[k, l].conjugate()
    return val, Wc


@njit(cache=True)
def _gvals(uz, ht, Sc, gs, sn, cs):
    return _zt_g(uz, ht, Sc, gs, sn, cs)[1]


@njit(cache=True)
def _crb_vg(u, ax, bx, A, crbd, bins, ridge, want_u, want_phi):
    """CRB_θ and G = 2∂CRB/∂z* (u and/or the receive/transmit stacks) [spec A.8; the closed-form reverse mode
    of isac_opt.paper_a.doa.crb_torch.crb_value_grad, written as loops for one realisation].

    ax, bx (Q+3, M): receive stack [a_0..a_Q | ∂a_R | ∂a_0], transmit stack [b_0..b_Q | ∂b_0 | ∂b_R];
    A (Q+5, Q+5): Gram of the leg atoms α_i = ax[aidx_i]; crbd = (…, aidx, tsrc, tshift).
    Returns (crb, G_u (M, L) or empty, G_ax (Q+3, M) or empty, G_bx (Q+3, M) or empty)."""
    aidx, tsrc, tshift = crbd[4], crbd[5], crbd[6]
    R3, M = bx.shape
    L = u.shape[1]
    na = aidx.size
    Q = na - 5
    bu = np.zeros((R3, L), dtype=np.complex128)
    for r in range(R3):
        for m in range(M):
            c = bx[r, m]
            for l in range(L):
                bu[r, l] += c * u[m, l]
    tau = np.zeros((na, L), dtype=np.complex128)
    for i in range(na):
        d = tshift[i]
        for l in range(d, L):
            tau[i, l] = bu[tsrc[i], l - d]
    T = _gram(tau)
    P = A * T
    # Z = (I + P_cc)⁻¹ P_cy (Q × 5), W5 = P_yy − P_cyᴴ Z; I + P_cc is Hermitian PD: no pivoting
    Z = np.zeros((Q, 5), dtype=np.complex128)
    W5 = P[Q:, Q:].copy()
    if Q > 0:
        Z = _solve_i_plus(P[:Q, :Q], P[:Q, Q:])
        for a in range(5):
            for b in range(5):
                s = 0j
                for i in range(Q):
                    s += P[i, Q + a].conjugate() * Z[i, b]
                W5[a, b] -= s
    # W = Eᵀ W5 E with E rows [1,0,0],[0,1,0],[0,1,0],[0,0,1],[0,0,1]
    ei = np.array([0, 1, 1, 2, 2])
    W = np.zeros((3, 3), dtype=np.complex128)
    for a in range(5):
        for b in range(5):
            W[ei[a], ei[b]] += W5[a, b]
    w = W[0, 0].real
    b1, b2 = W[1, 0], W[2, 0]
    F00 = 2.0 * (W[1, 1] - b1 * b1.conjugate() / w).real
    F11 = 2.0 * (W[2, 2] - b2 * b2.conjugate() / w).real
    F01 = 2.0 * (W[1, 2] - b1 * b2.conjugate() / w).real
    F10 = 2.0 * (W[2, 1] - b2 * b1.conjugate() / w).real
    F01 = 0.5 * (F01 + F10)
    if ridge != 0.0:
        rr = ridge * (F00 + F11)
        F00 += rr
        F11 += rr
    det = F00 * F11 - F01 * F01
    I00, I11, I01 = F11 / det, F00 / det, -F01 / det
    crb = I00 + I11
    e = np.zeros((0, 0), dtype=np.complex128)
    if not (want_u or want_phi):
        return crb, e, e, e
    K00 = I00 * I00 + I01 * I01
    K11 = I01 * I01 + I11 * I11
    K01 = I00 * I01 + I01 * I11
    tr = K00 + K11 if ridge != 0.0 else 0.0
    G00, G11, G01 = -(K00 + ridge * tr), -(K11 + ridge * tr), -K01
    # C = [−bvᴴ/w; I₂] (3 × 2), EC = E C (5 × 2), D = [−Z EC; EC] (Q+5 × 2)
    C = np.zeros((3, 2), dtype=np.complex128)
    C[0, 0] = -b1.conjugate() / w
    C[0, 1] = -b2.conjugate() / w
    C[1, 0] = 1.0
    C[2, 1] = 1.0
    D = np.zeros((na, 2), dtype=np.complex128)
    for a in range(5):
        D[Q + a, 0] = C[ei[a], 0]
        D[Q + a, 1] = C[ei[a], 1]
    for i in range(Q):
        for k in range(2):
            s = 0j
            for a in range(5):
                s += Z[i, a] * D[Q + a, k]
            D[i, k] = -s
    # YP = 2 D Gf Dᴴ
    DG = np.empty((na, 2), dtype=np.complex128)
    for i in range(na):
        DG[i, 0] = D[i, 0] * G00 + D[i, 1] * G01
        DG[i, 1] = D[i, 0] * G01 + D[i, 1] * G11
    YP = np.empty((na, na), dtype=np.complex128)
    for i in range(na):
        for j in range(na):
            YP[i, j] = 2.0 * (DG[i, 0] * D[j, 0].conjugate() + DG[i, 1] * D[j, 1].conjugate())
    # G_τ_i = 2 Σ_j YP[j, i] conj(A[j, i]) τ_j, scattered back through the shifts onto bx U
    Gtt = np.zeros((R3, L), dtype=np.complex128)
    for i in range(na):
        d = tshift[i]
        ri = tsrc[i]
        for j in range(na):
            c = 2.0 * YP[j, i] * A[j, i].conjugate()
            if c != 0:
                for l in range(d, L):
                    Gtt[ri, l - d] += c * tau[j, l]
    Gu = e
    if want_u:
        Gu = np.zeros((M, L), dtype=np.complex128)
        _addH(Gu, bx, Gtt)
    Gax = e
    Gbx = e
    if want_phi:
        Gax = np.zeros((R3, M), dtype=np.complex128)
        for i in range(na):
            ai = aidx[i]
            for j in range(na):
                c = 2.0 * YP[j, i] * T[j, i].conjugate()
                if c != 0:
                    for m in range(M):
                        Gax[ai, m] += c * ax[aidx[j], m]
        Gbx = np.zeros((R3, M), dtype=np.complex128)
        for r in range(R3):
            for m in range(M):
                s = 0j
                for l in range(L):
                    s += Gtt[r, l] * u[m, l].conjugate()
                Gbx[r, m] = s
    return crb, Gu, Gax, Gbx


@njit(cache=True)
def _alpha_gram(ax, aidx):
    """Gram of the leg atoms α_i = ax[aidx_i]."""
    return _gram(ax[aidx])


@njit(cache=True)
def _addH(G, X, Y):
    """G (M, L) += Xᴴ Y for X (R, M), Y (R, L) (adjoint of a leg product; in place)."""
    R, M = X.shape
    L = Y.shape[1]
    for r in range(R):
        for m in range(M):
            c = X[r, m].conjugate()
            for l in range(L):
                G[m, l] += c * Y[r, l]


@njit(cache=True)
def _x_ci(f, G, u, ht, Sc, beta, eta, use_ci, alm, gs, sn, cs):
    """x-block: add the CI penalty at u to the value f (returned) and its gradient h̃'ᴴWc to G (in place)."""
    if not use_ci:
        return f
    pv, Wc = _ci(u, ht, Sc, beta, eta, alm, gs, sn, cs)
    _addH(G, ht, Wc)
    return f + pv


@njit(cache=True)
def _ci_grad_phi(Gf, Hrk, Wc, GuU):
    """Gf (N,) += Σ_k conj(H_rk[k, n]) (Wc (G u)ᴴ)[k, n]: the CI term's gradient in φ."""
    K, N = Hrk.shape
    L = Wc.shape[1]
    for n in range(N):
        s = 0j
        for k in range(K):
            acc = 0j
            for l in range(L):
                acc += Wc[k, l] * GuU[n, l].conjugate()
            s += Hrk[k, n].conjugate() * acc
        Gf[n] += s


@njit(cache=True)
def _legs_grad_phi(Xa, Ga, Ar, Xb, Gb, Br, scale):
    """Σ_i conj(Ar[i, n]) (Xa Gaᴴ)[i, n] + conj(Br[i, n]) (Xb Gbᴴ)[i, n], times ``scale``: the gradient in φ
    through the legs a = A0 + (Ar ⊙ φ) Ga, b = B0 + (Br ⊙ φ) Gb given G_a = Xa, G_b = Xb."""
    R, M = Xa.shape
    N = Ga.shape[0]
    Gf = np.zeros(N, dtype=np.complex128)
    for n in range(N):
        s = 0j
        for r in range(R):
            sa = 0j
            sb = 0j
            for m in range(M):
                sa += Xa[r, m] * Ga[n, m].conjugate()
                sb += Xb[r, m] * Gb[n, m].conjugate()
            s += Ar[r, n].conjugate() * sa + Br[r, n].conjugate() * sb
        Gf[n] = s * scale
    return Gf


@njit(cache=True)
def _phi_ci(f, Gf, u, phi, prob, GuU, beta, eta, use_ci, alm, gs, sn, cs):
    """φ-block: add the CI penalty at φ to the value f (returned) and its gradient to Gf (in place)."""
    if not use_ci:
        return f
    Hk, Hrk, Gu, Sc = prob[6], prob[7], prob[8], prob[9]
    pv, Wc = _ci(u, _leg(Hk, Hrk, Gu, phi), Sc, beta, eta, alm, gs, sn, cs)
    _ci_grad_phi(Gf, Hrk, Wc, GuU)
    return f + pv


@njit(cache=True)
def _quad(zf, Gf, aux, mu, rho):
    quad = 0.0
    for i in range(zf.size):
        d0 = zf[i] - aux[i]
        dz = d0 + mu[i] / rho
        quad += dz.real * dz.real + dz.imag * dz.imag
        Gf[i] += rho * d0 + mu[i]
    return 0.5 * rho * quad


@njit(cache=True)
def _lagr_crb(mode, zf, shape0, shape1, prob, fix, beta, eta, use_ci, alm, aux, mu, rho, sc, gs, sn, cs,
              crbd, ridge):
    """_lagr for the DoA objective f = CRB·cscale (sc = cscale)."""
    A0, Ar, Ga, B0, Br, Gb, Hk, Hrk, Gu, Sc, bins = prob
    A0x, Arx, B0x, Brx, aidx = crbd[0], crbd[1], crbd[2], crbd[3], crbd[4]
    if mode == 0:
        ax, bx, ht, A = fix[0], fix[1], fix[2], fix[3]
        u = zf.reshape((shape0, shape1))
        crb, Gu_, _, _ = _crb_vg(u, ax, bx, A, crbd, bins, ridge, True, False)
        M, L = u.shape
        G = Gu_ * sc
        f = _x_ci(crb * sc, G, u, ht, Sc, beta, eta, use_ci, alm, gs, sn, cs)
        Gf = G.reshape(zf.size)
    else:
        u, GuU = fix[0], fix[2]
        phi = zf
        ax = _leg(A0x, Arx, Ga, phi)
        bx = _leg(B0x, Brx, Gb, phi)
        crb, _, Gax, Gbx = _crb_vg(u, ax, bx, _alpha_gram(ax, aidx), crbd, bins, ridge, False, True)
        Gf = _legs_grad_phi(Gax, Ga, Arx, Gbx, Gb, Brx, sc)
        f = _phi_ci(crb * sc, Gf, u, phi, prob, GuU, beta, eta, use_ci, alm, gs, sn, cs)
    return f + _quad(zf, Gf, aux, mu, rho), Gf


@njit(cache=True)
def _lagr(mode, zf, shape0, shape1, prob, fix, beta, eta, use_ci, alm, aux, mu, rho, sc, cs2, gs, sn, cs,
          obj, crbd, ridge):
    """Lagrangian value and gradient G = 2∂/∂z* of block ``mode`` (0: x with φ fixed, 1: φ with x fixed);
    objective ``obj`` 0: −SINR·fscale (detection, sc = −fscale), 1: CRB·cscale (DoA, sc = cscale)."""
    A0, Ar, Ga, B0, Br, Gb, Hk, Hrk, Gu, Sc, bins = prob
    if obj == 1:
        return _lagr_crb(mode, zf, shape0, shape1, prob, fix, beta, eta, use_ci, alm, aux, mu, rho, sc, gs, sn,
                         cs, crbd, ridge)
    if mode == 0:
        a, b, ht, A = fix[0], fix[1], fix[2], fix[3]
        u = zf.reshape((shape0, shape1))
        F, t, Mm, cg, Gts = _core(u, a, b, A, bins, cs2)
        Q1, M = b.shape
        L = u.shape[1]
        G = np.zeros((M, L), dtype=np.complex128)
        _addH(G, b, Gts)
        f = _x_ci(F * sc, G, u, ht, Sc, beta, eta, use_ci, alm, gs, sn, cs)
        Gf = G.reshape(zf.size)
    else:
        u, uH_unused, GuU = fix[0], fix[1], fix[2]
        phi = zf
        a = _leg(A0, Ar, Ga, phi)
        b = _leg(B0, Br, Gb, phi)
        F, t, Mm, cg, Gts = _core(u, a, b, _gram(a), bins, cs2)
        Q1, M = a.shape
        L = u.shape[1]
        N = phi.size
        Ga_ = np.empty((Q1, M), dtype=np.complex128)
        Gb_ = np.empty((Q1, M), dtype=np.complex128)
        for i in range(Q1):
            for m in range(M):
                s1 = 0j
                s2 = 0j
                for l in range(L):
                    s1 += t[i, l].conjugate() * Mm[m, l]
                    s2 += Gts[i, l] * u[m, l].conjugate()
                Ga_[i, m] = cg[i] * s1
                Gb_[i, m] = s2
        Gf = _legs_grad_phi(Ga_, Ga, Ar, Gb_, Gb, Br, 1.0)
        f = _phi_ci(F * sc, Gf, u, phi, prob, GuU, beta, eta, use_ci, alm, gs, sn, cs)
    return f + _quad(zf, Gf, aux, mu, rho), Gf


@njit(cache=True)
def _proj(z, amp, ref):
    out = np.empty_like(z)
    for i in range(z.size):
        mag = abs(z[i])
        if mag > 0:
            out[i] = (amp / mag) * z[i] if amp != 1.0 else z[i] / mag
        else:
            rm = abs(ref[i])
            out[i] = amp * (ref[i] / rm if rm > 0 else 1.0 + 0j)
    return out


@njit(cache=True)
def _qn(mode, z, shape0, shape1, prob, fix, beta, eta, use_ci, alm, aux, mu, rho, sc, cs2, gs, sn, cs,
        R, variant, amp, sconst, sW1, sb1, sW2, sb2, obj, crbd, ridge):
    """R projected DFP (29a) steps (quasi_newton_block) with the compact factor H = I + Σ s_k U_k U_kᵀ."""
    n = z.size
    Lv, g = _lagr(mode, z, shape0, shape1, prob, fix, beta, eta, use_ci, alm, aux, mu, rho, sc, cs2, gs, sn, cs,
                  obj, crbd, ridge)
    d = g.copy()
    kmax = 2 * (R - 1) if R > 1 else 1
    U = np.zeros((kmax, n), dtype=np.complex128)
    s = np.zeros(kmax)
    k = 0
    for r in range(R):
        gn = math.sqrt(_rdot(g, g))
        tau = sconst[r]
        if tau != tau:                               # NaN: evaluate the MLP of step r
            tau = _mlp(sW1[r], sb1[r], sW2[r], sb2[r], math.log10(gn + 1e-30), math.log10(abs(Lv) + 1e-30))
        znew = _proj(z - tau * d, amp, z)
        if r == R - 1:
            return znew
        Lv1, g1 = _lagr(mode, znew, shape0, shape1, prob, fix, beta, eta, use_ci, alm, aux, mu, rho, sc, cs2,
                        gs, sn, cs, obj, crbd, ridge)
        if variant > 0:
            Hg1 = g1.copy()
            for kk in range(k):
                c = s[kk] * _rdot(U[kk], g1)
                if c != 0.0:
                    Hg1 += c * U[kk]
            Hy = Hg1 - d
            delta = znew - z
            y = g1 - g
            yd = _rdot(y, delta)
            dd = _rdot(delta, delta)
            yHy = _rdot(y, Hy)
            U[k] = Hy
            U[k + 1] = delta
            if dd > 0 and yd > gn * dd and yHy > 0:
                c1 = -1.0 / yHy
                c2 = yHy / (yd * yd) if variant == 1 else 1.0 / yd
                s[k] = c1
                s[k + 1] = c2
                d = Hg1 + (c1 * _rdot(Hy, g1)) * Hy + (c2 * _rdot(delta, g1)) * delta
            else:
                d = Hg1
            k += 2
        else:
            d = g1
        z, g, Lv = znew, g1, Lv1
    return z


@njit(cache=True)
def forward1(prob, x, phi, v, vphi, mu1, mu2, beta_x, beta_phi, rho, layers, J, R, variant, alm, update_phi,
             use_ci, amp_x, sc, gs, sn, cs,
             dconst_x, dW1_x, db1_x, dW2_x, db2_x, dconst_p, dW1_p, db1_p, dW2_p, db2_p,
             sconst_x, sW1_x, sb1_x, sW2_x, sb2_x, sconst_p, sW1_p, sb1_p, sW2_p, sb2_p, obj, crbd, ridge):
    """Run ``layers`` (int array of layer indices) from the state; returns the new state arrays.
    x (M, L), φ (N,), β (K, L) for one realisation; MLP tables indexed [t, j(, r)]; ``obj`` 0 detection
    (sc = −fscale), 1 DoA (sc = cscale; ``crbd`` = (A0x, Arx, B0x, Brx, aidx, tsrc, tshift) stacks, ``ridge``)."""
    A0, Ar, Ga, B0, Br, Gb, Hk, Hrk, Gu, Sc, bins = prob
    M, L = x.shape
    K = Hk.shape[0]
    cs2 = 2.0 * sc
    for t in layers:
        # ---- x-block (φ fixed): legs, Gram and h̃' once
        ht = _leg(Hk, Hrk, Gu, phi)
        if obj == 1:
            ax = _leg(crbd[0], crbd[1], Ga, phi)
            fixx = (ax, _leg(crbd[2], crbd[3], Gb, phi), ht, _alpha_gram(ax, crbd[4]))
        else:
            a = _leg(A0, Ar, Ga, phi)
            fixx = (a, _leg(B0, Br, Gb, phi), ht, _gram(a))
        z = x.reshape(M * L).copy()
        aux = v.reshape(M * L).copy()
        mu = mu1.reshape(M * L).copy()
        beta = beta_x.copy()
        for j in range(J):
            eta = np.zeros((K, L))
            if use_ci:
                gval = _gvals(z.reshape((M, L)), ht, Sc, gs, sn, cs)
                for k in range(K):
                    for l in range(L):
                        e = dconst_x[t, j]
                        if e != e:
                            bb = beta[k, l]
                            e = _mlp(dW1_x[t, j], db1_x[t, j], dW2_x[t, j], db2_x[t, j], gval[k, l], bb)
                        eta[k, l] = e
                        beta[k, l] = max(beta[k, l] + e * gval[k, l], 0.0)
            act = use_ci and ((not alm) or np.any(beta != 0.0))
            z = _qn(0, z, M, L, prob, fixx, beta, eta, act, alm, aux, mu, rho, sc,
                    cs2, gs, sn, cs, R, variant, amp_x, sconst_x[t, j], sW1_x[t, j], sb1_x[t, j], sW2_x[t, j],
                    sb2_x[t, j], obj, crbd, ridge)
        x = z.reshape((M, L)).copy()
        beta_x = beta
        v = _proj((rho * x + mu1).reshape(M * L), amp_x, x.reshape(M * L)).reshape((M, L))
        # ---- φ-block (x fixed)
        if update_phi:
            N = phi.size
            GuU = np.zeros((N, L), dtype=np.complex128)
            for nn in range(N):
                for m in range(M):
                    c = Gu[nn, m]
                    for l in range(L):
                        GuU[nn, l] += c * x[m, l]
            fixp = (x, x, GuU, GuU[:1, :1].copy())
            z = phi.copy()
            beta = beta_phi.copy()
            for j in range(J):
                eta = np.zeros((K, L))
                if use_ci:
                    gval = _gvals(x, _leg(Hk, Hrk, Gu, z), Sc, gs, sn, cs)
                    for k in range(K):
                        for l in range(L):
                            e = dconst_p[t, j]
                            if e != e:
                                e = _mlp(dW1_p[t, j], db1_p[t, j], dW2_p[t, j], db2_p[t, j], gval[k, l], beta[k, l])
                            eta[k, l] = e
                            beta[k, l] = max(beta[k, l] + e * gval[k, l], 0.0)
                act = use_ci and ((not alm) or np.any(beta != 0.0))
                z = _qn(1, z, N, 1, prob, fixp, beta, eta, act, alm, vphi, mu2, rho, sc, cs2, gs, sn, cs, R,
                        variant, 1.0, sconst_p[t, j], sW1_p[t, j], sb1_p[t, j], sW2_p[t, j], sb2_p[t, j], obj,
                        crbd, ridge)
            phi = z
            beta_phi = beta
            vphi = _proj(rho * phi + mu2, 1.0, phi)
        mu1 = mu1 + rho * (x - v)
        mu2 = mu2 + rho * (phi - vphi)
    return x, phi, v, vphi, mu1, mu2, beta_x, beta_phi


def warm() -> float:
    """Compile (or load from numba's cache) :func:`forward1` for the argument types the engine uses, on a
    tiny synthetic problem (both objectives); returns the seconds it took. ``make setup`` runs it so that the first design
    of a fresh install does not pay the compilation (≈ 100 s on the project's VM)."""
    import time
    t0 = time.perf_counter()
    rng = np.random.default_rng(0)

    def c(*s):
        return np.ascontiguousarray(rng.standard_normal(s) + 1j * rng.standard_normal(s))
    Q1, M, N, K, L, T, J, R, H = 2, 2, 3, 1, 4, 1, 1, 2, 1
    prob = (c(Q1, M), c(Q1, N), c(N, M), c(Q1, M), c(Q1, N), c(N, M), c(K, M), c(K, N), c(N, M), c(K, L),
            np.array([0, 1], dtype=np.int64))
    x, phi = np.exp(1j * rng.uniform(0, 6, (M, L))), np.exp(1j * rng.uniform(0, 6, N))

    def tab(shape):
        return (np.full(shape, np.nan), np.zeros(shape + (H, 2)), np.zeros(shape + (H,)), np.zeros(shape + (H,)),
                np.zeros(shape))
    tabs = tab((T, J)) + tab((T, J)) + tab((T, J, R)) + tab((T, J, R))
    crbd = (c(Q1 + 2, M), c(Q1 + 2, N), c(Q1 + 2, M), c(Q1 + 2, N), np.array([1, 0, 3, 0, 2, 0], dtype=np.int64),
            np.array([1, 0, 0, 2, 0, 3], dtype=np.int64), np.array([1, 0, 0, 0, 0, 0], dtype=np.int64))
    for obj in (0, 1):
        forward1(prob, x, phi, x.copy(), phi.copy(), np.zeros((M, L), complex), np.zeros(N, complex),
                 np.zeros((K, L)), np.zeros((K, L)), 0.1, np.arange(T, dtype=np.int64), J, R, 1, True, True, True,
                 1.0, -1.0, 1.0, 0.7, 0.7, *tabs, obj, crbd, 1e-12)
    return time.perf_counter() - t0


if __name__ == "__main__":
    print(f"fastnet_jit: kernel (detection and DoA objectives) compiled/loaded in {warm():.1f} s")
