"""One ADMM-ALM-DFP layer, written once [spec A.6 (25)–(37), A.9; style point 8].

:func:`admm_layer` is the single step function. The classical solver (:func:`isac_opt.paper_a.unfold.model.solve`)
drives it with constant step sizes (:class:`ConstantParams`) and an early stop; the unfolded network
(:class:`isac_opt.paper_a.unfold.model.UnfoldedAdmm`) drives it with per-layer learnable step-size MLPs. Both
go through exactly the same code, so at equal parameters they give identical iterates.

Pluggable parts
---------------
* ``objective``: any object with ``prep(phi) -> pre`` (φ-only quantities, may return None) and
  ``value_grad(x, phi, wrt, pre=None) -> (f (B,), G_x or None, G_phi or None)`` where G = 2∂f/∂z*.
  :class:`AutogradObjective` wraps a plain differentiable ``f(x, phi) -> (B,)`` (e.g. a CRB).
* ``constraint`` (or None): ``prep(phi)``, ``g(x, phi, pre=None) -> (B, K, L)`` (≤ 0 feasible) and
  ``vjp(x, phi, W, wrt, pre=None) -> (Σ W∇_x g, Σ W∇_φ g)``; optionally the fused
  ``g_vjp(x, phi, weights_fn, wrt, pre=None) -> (g, penalty value, Σ W∇_x g, Σ W∇_φ g)``.
* ``handler``: "alm" (A's (25): Σ β g, dual update (26a)) or "phr" (A.9 (46): (η/2)max(g+β/η,0)²).
* ``params``: ``dual(block, t, j, g, beta) -> (B, K, L)`` step sizes η/κ and
  ``step(block, t, j, r, gnorm, lval) -> (B,)`` DFP step sizes τ/ζ; block ∈ {"x", "phi"}.

Variables are complex tensors, batch first: x (B, ...) with |x_i| = ``amp_x`` on the CM set, φ (B, N) unit
modulus. DFP works on the real stacking [Re; Im] of the flattened block.
"""
from __future__ import annotations

from dataclasses import dataclass, fields, replace
from typing import TYPE_CHECKING

import torch

if TYPE_CHECKING:   # the Protocols of the pluggable parts (isac_opt.paper_a.unfold.protocols)
    from .protocols import Constraint, Objective, StepParams

__all__ = ["AdmmConfig", "AdmmState", "ConstantParams", "AutogradObjective", "admm_layer", "dfp_update",
           "project_modulus", "repair_ci", "feasibility_layer", "alm_penalty", "phr_penalty", "DFP_VARIANTS", "HANDLERS"]

DFP_VARIANTS = ("paper", "standard", "identity")


@dataclass(frozen=True)
class AdmmConfig:
    """Layer counts and variants.

    T, J, R : ADMM layers, ALM iterations per block, DFP iterations per ALM iteration (A: 75, 8, 10).
    dfp_variant : "paper" (29a, scaled secant), "standard" DFP, or "identity" — the cheap option:
        B ≡ I, i.e. projected gradient steps (no 2n×2n matrix; NOT the paper's algorithm).
    handler : "alm" (detection, A.6) or "phr" (DoA, A.9).
    update_phi : False for the random-RIS / no-RIS variants (x-block only) [spec A.11.3–4].
    reset_beta : reset the multipliers to 0 at every layer instead of carrying them [spec A.6 RECON].
    amp_x : modulus of the x entries on the CM set (1 in normalised units).
    """

    T: int = 75
    J: int = 8
    R: int = 10
    dfp_variant: str = "paper"
    handler: str = "alm"
    update_phi: bool = True
    reset_beta: bool = False
    amp_x: float = 1.0

    def __post_init__(self):
        for k in ("T", "J", "R"):
            v = getattr(self, k)
            if not isinstance(v, int) or v < 1:
                raise ValueError(f"{k}: expected a positive integer, got {v!r}")
        if self.dfp_variant not in DFP_VARIANTS:
            raise ValueError(f"dfp_variant: expected one of {DFP_VARIANTS}, got {self.dfp_variant!r}")
        if self.handler not in HANDLERS:
            raise ValueError(f"handler: expected one of {tuple(HANDLERS)}, got {self.handler!r}")

    @property
    def steps(self) -> int:
        """Gradient steps per design (x and φ blocks)."""
        return self.T * self.J * self.R * (2 if self.update_phi else 1)


@dataclass
class AdmmState:
    """ADMM state carried between layers [spec A.6]. rho (B,) real; betas (B, K, L) real."""

    x: torch.Tensor
    phi: torch.Tensor
    v: torch.Tensor
    vphi: torch.Tensor
    mu1: torch.Tensor
    mu2: torch.Tensor
    beta_x: torch.Tensor
    beta_phi: torch.Tensor
    rho: torch.Tensor

    def detach(self) -> "AdmmState":
        return AdmmState(**{f.name: getattr(self, f.name).detach() for f in fields(self)})

    def select(self, idx) -> "AdmmState":
        return AdmmState(**{f.name: getattr(self, f.name)[idx] for f in fields(self)})

    @staticmethod
    def cat(states) -> "AdmmState":
        return AdmmState(**{f.name: torch.cat([getattr(s, f.name) for s in states]) for f in fields(AdmmState)})

    @classmethod
    def start(cls, x0, phi0, f0, K: int, L: int, amp_x: float = 1.0) -> "AdmmState":
        """Initial state [spec A.6]: v = amp e^{j∠x0}, ϕ = e^{j∠φ0}, μ = 0, β = 0,
        ρ = |f(x0, φ0)| / (‖x0‖² + N L) per sample [RECON from R25]."""
        B = x0.shape[0]
        rdt = x0.real.dtype
        N = phi0.shape[1]
        rho = f0.detach().abs() / ((x0.abs() ** 2).reshape(B, -1).sum(1) + N * L)
        z = torch.zeros(B, K, L, dtype=rdt, device=x0.device)
        return cls(x0, phi0, project_modulus(x0, amp_x), project_modulus(phi0, 1.0),
                   torch.zeros_like(x0), torch.zeros_like(phi0), z, z.clone(), rho.to(rdt))


class ConstantParams:
    """Classical (non-learned) step sizes: η, κ (dual), τ, ζ (DFP), the same at every layer."""

    def __init__(self, eta=0.1, kappa=0.1, tau=1.0, zeta=1.0):
        self.v = {"x": (float(eta), float(tau)), "phi": (float(kappa), float(zeta))}

    def dual(self, block, t, j, g, beta):
        return torch.full_like(g, self.v[block][0])

    def step(self, block, t, j, r, gnorm, lval):
        return torch.full_like(gnorm, self.v[block][1])


class AutogradObjective:
    """Wrap a differentiable ``fn(x, phi) -> (B,)`` as an objective; gradients by torch autograd.

    Inside a training graph (``torch.is_grad_enabled()``) the gradient keeps its graph
    (``create_graph=True``) so the unfolded network can be trained through it.
    """

    def __init__(self, fn):
        self.fn = fn

    def prep(self, phi):
        return None

    def value_grad(self, x, phi, wrt=("x",), pre=None):
        train = torch.is_grad_enabled()
        with torch.enable_grad():
            xs = x if x.requires_grad else x.detach().requires_grad_("x" in wrt)
            ps = phi if phi.requires_grad else phi.detach().requires_grad_("phi" in wrt)
            f = self.fn(xs, ps)
            ins = [z for w, z in (("x", xs), ("phi", ps)) if w in wrt]
            gr = torch.autograd.grad(f.sum(), ins, create_graph=train, allow_unused=True)
        # torch's complex gradient of a real function is ∂f/∂Re + j∂f/∂Im = G (spec 0.3)
        out = dict(zip([w for w in ("x", "phi") if w in wrt], gr))
        fv = f if train else f.detach()
        return fv, out.get("x"), out.get("phi")


def project_modulus(z, amp: float, ref=None):
    """amp·z/|z| elementwise [spec A.6 (30), (35)]; where z = 0 the phase of ``ref`` is kept (or 0)."""
    mag = z.abs()
    nz = mag > 0
    unit = z / torch.where(nz, mag, torch.ones_like(mag))
    if ref is not None:
        rm = ref.abs()
        rnz = rm > 0
        fallback = torch.where(rnz, ref / torch.where(rnz, rm, torch.ones_like(rm)), torch.ones_like(ref))
    else:
        fallback = torch.ones_like(z)
    return amp * torch.where(nz, unit, fallback)


def alm_penalty(g, beta, eta):
    """Plain Lagrangian term Σ β g and its weights β (A.6 (25))."""
    return (beta * g).sum(dim=(-1, -2)), beta


def phr_penalty(g, beta, eta):
    """PHR term Σ (η/2) max(g + β/η, 0)² = Σ max(ηg + β, 0)²/(2η), weights max(ηg + β, 0) (A.9 (46))."""
    h = torch.clamp(eta * g + beta, min=0.0)
    return (h * h / (2.0 * eta)).sum(dim=(-1, -2)), h


HANDLERS = {"alm": alm_penalty, "phr": phr_penalty}


def _rs(z):
    B = z.shape[0]
    return torch.cat([z.real.reshape(B, -1), z.imag.reshape(B, -1)], dim=1)


def _cs(v, shape):
    n = v.shape[1] // 2
    return torch.complex(v[:, :n], v[:, n:]).reshape(shape)


def dfp_update(H, delta, y, gnorm, variant: str = "paper"):
    """Cautious DFP update of the inverse-Hessian approximation H (B, n, n) [spec A.6 (28), (29a)].

    Updated only where (yᵀδ)/‖δ‖² > ‖ḡ_prev‖ (skip rule (28)); elsewhere H is returned unchanged.
    paper (29a):  H⁺ = H − Hyyᵀ H/(yᵀHy) + (yᵀHy)/(yᵀδ)² δδᵀ  (scaled secant H⁺y = (yᵀHy/yᵀδ) δ)
    standard:     H⁺ = H + δδᵀ/(yᵀδ) − Hyyᵀ H/(yᵀHy)        (secant H⁺y = δ)
    Denominators are guarded so that a skipped sample never produces NaN (also in backward).
    """
    yd = (y * delta).sum(-1)
    dd = (delta * delta).sum(-1)
    Hy = (H @ y.unsqueeze(-1)).squeeze(-1)
    yHy = (y * Hy).sum(-1)
    ok = (dd > 0) & (yd > gnorm * dd) & (yHy > 0)
    one = torch.ones_like(yd)
    yd_s = torch.where(ok, yd, one)
    yHy_s = torch.where(ok, yHy, one)
    t1 = Hy[:, :, None] * Hy[:, None, :] / yHy_s[:, None, None]
    dD = delta[:, :, None] * delta[:, None, :]
    if variant == "paper":
        Hn = H - t1 + (yHy_s / yd_s ** 2)[:, None, None] * dD
    else:
        Hn = H + dD / yd_s[:, None, None] - t1
    return torch.where(ok[:, None, None], Hn, H)


def quasi_newton_block(z, lagr, step_fn, R: int, variant: str, amp: float):
    """R projected (DFP-)quasi-Newton steps on one block [spec A.6 (27)–(30)].

    lagr(z) -> (L (B,), G complex like z); step_fn(r, gnorm (B,), L (B,)) -> τ (B,).
    H starts at I; with ``variant="identity"`` it stays I (projected gradient, no matrix). The DFP
    variants keep H in the compact low-rank form of :class:`~.dfp.CompactDFP` (O(nR) per step, never
    n × n; equal to the dense :func:`dfp_update` up to rounding, tested).
    """
    from .dfp import CompactDFP
    B = z.shape[0]
    Lv, G = lagr(z)
    g = _rs(G)
    zr = _rs(z)
    H = None
    d = g
    for r in range(R):
        gn = g.norm(dim=1)
        tau = step_fn(r, gn, Lv)
        znew = project_modulus(_cs(zr - tau[:, None] * d, z.shape), amp, z)
        if r == R - 1:
            return znew
        Lv1, G1 = lagr(znew)
        g1 = _rs(G1)
        zr1 = _rs(znew)
        if variant != "identity":
            if H is None:
                H = CompactDFP(B, g.shape[1], 1.0, variant, dtype=g.dtype, device=g.device)
            Hg1 = H.apply(g1)
            H.update(zr1 - zr, g1 - g, gn, Hy=Hg1 - d)          # H y = H g1 − H g, d = H g
            U2, s2 = H.U[:, :, -2:], H.s[:, -2:]                 # next direction H⁺ g1: rank-2 correction
            d = torch.baddbmm(Hg1[:, :, None], U2, (torch.bmm(g1[:, None, :], U2)[:, 0, :] * s2)[:, :, None])[:, :, 0]
        else:
            d = g1
        z, zr, g, Lv = znew, zr1, g1, Lv1
    return z


def _block(st: AdmmState, blk: str, t: int, objective, constraint, params, cfg: AdmmConfig):
    """ALM loop (J dual updates, each followed by R DFP steps) for block "x" or "phi"."""
    pen = HANDLERS[cfg.handler]
    x, phi = st.x, st.phi
    if blk == "x":
        z, aux, mu, amp = x, st.v, st.mu1, cfg.amp_x
        beta = torch.zeros_like(st.beta_x) if cfg.reset_beta else st.beta_x
        opre = objective.prep(phi)
        cpre = constraint.prep(phi) if constraint is not None else None
    else:
        z, aux, mu, amp = phi, st.vphi, st.mu2, 1.0
        beta = torch.zeros_like(st.beta_phi) if cfg.reset_beta else st.beta_phi
        opre = cpre = None
    rho = st.rho
    rdims = tuple(range(1, z.dim()))
    rho_c = rho.reshape((-1,) + (1,) * (z.dim() - 1))
    wrt = (blk,)
    for j in range(cfg.J):
        eta = None
        if constraint is not None:
            gval = constraint.g(z, phi, cpre) if blk == "x" else constraint.g(x, z)
            eta = params.dual(blk, t, j, gval, beta)
            beta = torch.clamp(beta + eta * gval, min=0.0)                          # (26a)/(33a)

        def lagr(zz, beta=beta, eta=eta):
            xx, pp = (zz, phi) if blk == "x" else (x, zz)
            f, gx, gp = objective.value_grad(xx, pp, wrt, opre)
            G = gx if blk == "x" else gp
            dz = zz - aux + mu / rho_c
            Lv = f + 0.5 * rho * (dz.abs() ** 2).sum(dim=rdims)
            G = G + rho_c * (zz - aux) + mu
            if constraint is not None:
                if hasattr(constraint, "g_vjp"):
                    _, pv, cgx, cgp = constraint.g_vjp(xx, pp, lambda gz: pen(gz, beta, eta), wrt, cpre)
                else:
                    gz = constraint.g(xx, pp, cpre)
                    pv, W = pen(gz, beta, eta)
                    cgx, cgp = constraint.vjp(xx, pp, W, wrt, cpre)
                Lv = Lv + pv
                G = G + (cgx if blk == "x" else cgp)
            return Lv, G

        z = quasi_newton_block(z, lagr, lambda r, gn, lv, j=j: params.step(blk, t, j, r, gn, lv),
                               cfg.R, cfg.dfp_variant, amp)
    return z, beta


def admm_layer(st: AdmmState, t: int, objective: "Objective", constraint: "Constraint | None",
               params: "StepParams", cfg: AdmmConfig) -> AdmmState:
    """ADMM layer t: x-block (25)–(30), v (31), φ-block (32)–(35), ϕ (36), duals μ (37) [spec A.6]."""
    x, beta_x = _block(st, "x", t, objective, constraint, params, cfg)
    v = project_modulus(st.rho.reshape((-1,) + (1,) * (x.dim() - 1)) * x + st.mu1, cfg.amp_x, x)
    st = replace(st, x=x, v=v, beta_x=beta_x)
    if cfg.update_phi:
        phi, beta_phi = _block(st, "phi", t, objective, constraint, params, cfg)
        vphi = project_modulus(st.rho[:, None] * phi + st.mu2, 1.0, phi)
        st = replace(st, phi=phi, vphi=vphi, beta_phi=beta_phi)
    rx = st.rho.reshape((-1,) + (1,) * (x.dim() - 1))
    return replace(st, mu1=st.mu1 + rx * (st.x - st.v), mu2=st.mu2 + st.rho[:, None] * (st.phi - st.vphi))


def repair_ci(constraint, x, phi, x_safe, amp: float = 1.0, n_bisect: int = 30):
    """Per-slot feasibility restoration after the network [RECON, not in paper A].

    For every sample b and slot l whose CI constraints are violated, replace x[l] by the CM projection
    of (1 − α) x[l] + α x_safe[l] with the smallest α ∈ [0, 1] (bisection) that satisfies all K
    constraints of that slot. ``x_safe`` must be CI-feasible at φ (e.g. the A.10 starting waveform,
    whose worst-case margin is t* ≥ 1). x (B, M, L) → (x_repaired, α (B, L)).
    Slots where even x_safe is infeasible get α = 1 (the violation stays and is reported).
    """
    with torch.no_grad():
        pre = constraint.prep(phi)

        def mix(al):
            return project_modulus((1 - al[:, None, :]) * x + al[:, None, :] * x_safe, amp, x)

        def ok(al):
            return (constraint.g(mix(al), phi, pre) <= 0).all(dim=1)          # (B, L)

        rdt = x.real.dtype
        zero = torch.zeros(x.shape[0], x.shape[-1], dtype=rdt, device=x.device)
        good = ok(zero)
        lo, hi = zero.clone(), torch.ones_like(zero)
        for _ in range(n_bisect):
            mid = 0.5 * (lo + hi)
            f = ok(mid)
            hi = torch.where(f, mid, hi)
            lo = torch.where(f, lo, mid)
        al = torch.where(good, zero, hi)
        return mix(al), al


def feasibility_layer(constraint, x, phi, steps: int = 20, margin: float = 1e-2, amp: float = 1.0,
                      relax: float = 1.0):
    """Final CI feasibility layer of the networks (x-block only, φ fixed) [RECON, documented network part].

    The CI constraints of one slot depend only on that slot's waveform column, and each g̃_{k,l} is
    piecewise linear in x[:, l]. The layer takes ``steps`` simultaneous Newton (Kaczmarz) steps on the
    violated rows only — Δx_l = −Σ_k (g̃_{k,l} + margin·c_s)₊ G_{k,l}/‖G_{k,l}‖² with G = 2∂g̃/∂x* — each
    followed by the CM projection (30). Slots whose constraints hold (with the margin) are not moved,
    so the SINR/CRB cost is that of the minimal move of the violated slots. ``margin`` (in units of the
    normalised constraint, i.e. of γ) aims slightly inside the feasible set so that the CM projection
    does not push the slot back out. Differentiable (autograd) like the other layers.

    x (B, M, L) → x (B, M, L).
    """
    p = constraint.p
    ht = constraint.prep(phi)                                                  # (B, K, M)
    gs = p.gscale[:, None, None]
    c_norm2 = (ht.abs() ** 2).sum(-1, keepdim=True) * gs ** 2                  # ‖G_{k,l}‖² (B, K, 1)
    for _ in range(steps):
        g = constraint.g(x, phi, ht)
        viol = torch.clamp(g + margin * gs, min=0.0)
        if not bool((viol > 0).any()):
            break
        W = relax * viol / c_norm2.clamp(min=1e-300)
        G, _ = constraint.vjp(x, phi, W, ("x",), ht)                           # Σ_k W_{k,l} G_{k,l}
        active = (viol > 0).any(dim=1, keepdim=True)                           # (B, 1, L)
        x = torch.where(active, project_modulus(x - G, amp, x), x)
    return x
