"""Per-frame symbol-level-precoding design engine for a live link [issue 13; spec A.3, A.4, A.6, A.10].

A *link state* — scenario, channels and the RIS state φ actually applied — is fixed over a coherence block.
The CI constraints of slot l involve only x_l and that slot's K symbols [spec A.3], so for Ω-PSK there are
only Ω^K distinct per-slot constraint sets per block. :class:`LinkEngine` therefore

1. once per block, solves the worst-case-margin SOCP of A.10 for every per-slot symbol tuple (a cvxpy
   problem over Ω^K "slots", chunked), projects to constant modulus, repairs the slots the projection broke
   (:func:`isac_opt.paper_a.detect.core.polish_cm_slots`) and verifies every entry in float64 — the
   *codebook* (Ω^K, M) of CI-feasible CM per-slot waveforms;
   It also keeps a *radar-aware* copy (:meth:`LinkEngine._radar_ascent`: each entry moved up the target's
   transmit gain while every CI margin of its tuple stays ≥ 1), then *distilled* (:meth:`LinkEngine._distill`:
   per tuple the highest-gain slot of 512 random frames designed with the polish), whose lookup is a
   candidate of every frame;
2. per batch of frames S (B, K, L), assembles each frame's start X⁰ by codebook lookup (no cvxpy per frame),
   then polishes the radar output SINR with the x-block of the unfolded ADMM machinery
   (:mod:`isac_opt.paper_a.unfold`, the shipped detection network's step sizes when they fit the scenario,
   the classical solver otherwise — the same x-block as ``refit_waveform``), batched over frames, by
   :class:`_FusedXBlock` (same iterates as ``admm_layer``; shared channel matrices precomputed, real-stacked
   feature-major tensors, one wide GEMM per channel product) — ``layers`` (default ``DEFAULT_LAYERS`` = 0:
   with the distilled codebook below the lookup alone is within measurement of refit);
3. at every check point (every ``check_every`` layers and the last) passes the iterate through the networks'
   CI feasibility layer (as ``refit_waveform`` does) and a per-slot repair towards the start, then keeps per
   frame the best candidate (plain start, radar lookup, polished iterates) among those certified in float64:
   CM-projected, every m_{k,l}/γ_k ≥ 1 by :func:`isac_opt.ci.ci_margins`, failing slots repaired towards the
   start (the bisection of :func:`~isac_opt.paper_a.unfold.repair_ci`, on the failing slots only) or
   replaced by it — so every returned frame is CI-feasible and CM, and its SINR is ≥ its start's.

The radar receive filter of each frame is the MVDR filter w = C⁻¹s/(sᴴC⁻¹s) by Woodbury
(:meth:`LinkEngine.mvdr_filters`, batched; the per-design reference is :func:`isac_opt.paper_a.radar.mvdr_filter`).

Pure torch/numpy; CPU or CUDA (``device``); float32 or float64 (``dtype``) for the polish — the codebook,
the certification and the fall-backs are float64, the returned waveforms complex128 (exactly CM). Candidate
SINRs use the structured (Q+1)² Gram form (:meth:`LinkEngine.sinr`). ``design`` keeps no state between
calls (concurrent calls on one engine are safe).
"""
from __future__ import annotations

import dataclasses
import math
import time
from dataclasses import dataclass

import numpy as np
import torch

from ..ci import ci_margins, ci_rows, ci_thresholds, psk_constellation, worst_case_margin_init
from ..errors import IsacError
from ..paper_a.channels import ChannelsA, effective_user_channels
from ..paper_a.scenario import ScenarioA
from ..projections import project_cm

__all__ = ["LinkEngine", "FrameDesigns", "symbol_indices", "MAX_CODEBOOK", "DEFAULT_LAYERS", "DISTILL_FRAMES"]

MAX_CODEBOOK = 1 << 14     # Ω^K tuples; beyond this a per-block codebook is no longer the cheap option
FEAS_STEPS = 30            # the networks' CI feasibility layer (paper_a.detect.unfolded.FEAS_STEPS), as in refit
FEAS_RELAX = 2.0           # its over-relaxation (paper_a.detect.unfolded.FEAS_RELAX)
DISTILL_FRAMES = 512       # random training frames per block whose polished slots refine the radar codebook
DISTILL_LAYERS = 3         # their polish depth: the fewest layers within 0.5 dB of refit on the tuning channels
DEFAULT_LAYERS = 0         # per-frame polish depth: with the distilled codebook the lookup alone is ≈ refit
_CHUNK = 64                # tuples per worst-case-margin SOCP (the cvxpy problem is cached per shape)


def symbol_indices(S, order: int) -> np.ndarray:
    """Constellation indices (int64, same shape) of PSK symbols S (complex) or pass-through of indices.

    Complex input must lie on the constellation of :func:`isac_opt.ci.psk_constellation` (|error| ≤ 1e-6);
    integer input must be in [0, Ω).
    """
    S = np.asarray(S)
    if np.iscomplexobj(S):
        idx = np.rint((np.angle(S) - math.pi / order) / (2 * math.pi / order)).astype(np.int64) % order
        if S.size and np.max(np.abs(psk_constellation(order)[idx] - S)) > 1e-6:
            raise IsacError(f"symbols: expected {order}-PSK points e^(j(pi/{order} + 2 pi i/{order})), "
                            f"got values off the constellation")
        return idx
    if not np.issubdtype(S.dtype, np.integer):
        raise IsacError(f"symbols: expected complex PSK symbols or integer indices, got dtype {S.dtype}")
    if S.size and (S.min() < 0 or S.max() >= order):
        raise IsacError(f"symbols: expected indices in [0, {order}), got range [{S.min()}, {S.max()}]")
    return S.astype(np.int64)


@dataclass
class FrameDesigns:
    """Designs of a batch of B frames.

    X : complex128 (B, M, L) waveforms (|x| = amp exactly); S : complex128 (B, K, L) symbols;
    sinr : float64 (B,) MVDR radar output SINR (linear) of X; sinr_start : float64 (B,) that of the
    codebook start; min_margin : float64 (B,) min_{k,l} m_{k,l}/γ_k (≥ 1: every CI constraint holds);
    fallback_slots : int64 (B,) slots of the chosen polished iterate repaired towards (or replaced by) their
    codebook start (0 when a start or the radar lookup was chosen);
    ok : bool (B,) certified (CM and every CI constraint, contract tolerance); seconds : wall time of the batch.
    """

    X: np.ndarray
    S: np.ndarray
    sinr: np.ndarray
    sinr_start: np.ndarray
    min_margin: np.ndarray
    fallback_slots: np.ndarray
    ok: np.ndarray
    seconds: float

    @property
    def sinr_db(self) -> np.ndarray:
        return 10.0 * np.log10(self.sinr)


def _cblock(A, dtype, device) -> torch.Tensor:
    """Real form (2m, 2n) of a complex (m, n) matrix acting on real-stacked columns [Re z; Im z] (2n,):
    [[Re A, −Im A], [Im A, Re A]] @ [Re z; Im z] = [Re(Az); Im(Az)]."""
    A = torch.as_tensor(A)
    top = torch.cat([A.real, -A.imag], dim=1)
    bot = torch.cat([A.imag, A.real], dim=1)
    return torch.cat([top, bot], dim=0).to(dtype=dtype, device=device).contiguous()


class _FusedXBlock:
    """The x-block of :func:`isac_opt.paper_a.unfold.admm_layer` (φ fixed, ALM handler, identity DFP —
    the shipped network's and the classical solver's configuration), fused for one link state
    [spec A.6 (25)–(31), (37); A.7 closed-form gradients].

    Same iterates as ``admm_layer`` on the expanded :class:`~isac_opt.paper_a.unfold.DetectProblem`
    (tested to rounding), but

    * every channel quantity is shared by the frames and precomputed once per block: the legs a, b
      (Q+1, M), their Gram aᴴa and the normalised user rows h̃';
    * the waveform is real-stacked and feature-major, u (2M, B, L) = [Re u; Im u], so every product with a
      channel matrix is ONE wide real GEMM (2m × 2M) @ (2M × B·L) (:func:`_cblock`), every elementwise
      step is a real contiguous op (torch's CPU complex kernels — abs, division — are many times slower)
      and the range delays are slices along L (no gather);
    * the per-frame Woodbury quantities are (Q+1)×(Q+1): the Gram of the transmit-leg sequences by one
      small batched GEMM, the solve in complex on (B, Q, Q).
    """

    def __init__(self, base, phi, ci_scale: float, cfg, params):
        dev, rdt, cdt = base.device, base.dtype, base.A0.dtype
        ph = torch.as_tensor(phi, dtype=cdt, device=dev)[None]
        a, b = base.legs(ph)                                   # (1, I, M) normalised legs
        a, b = a[0], b[0]
        I, M = a.shape
        ht = base.htil(ph)[0] * ci_scale                       # (K, M) normalised user rows (safety factor)
        K = ht.shape[0]
        self.M, self.I, self.K, self.Q, self.L = M, I, K, I - 1, base.scn.L
        self.Bt = _cblock(b, rdt, dev)                          # (2I, 2M): T = b u
        self.Ag = a.conj() @ a.transpose(0, 1)                  # (I, I) complex, aᵢᴴaⱼ
        self.AgT = self.Ag.transpose(0, 1).contiguous()
        self.Ht = _cblock(ht, rdt, dev)                         # (2K, 2M): z = h̃ u
        # gradient map (2M, 2I + 2K): [G_t; W_c] ↦ bᴴG_t + h̃ᴴW_c
        self.GH = torch.cat([_cblock(b.conj().transpose(0, 1), rdt, dev),
                             _cblock(ht.conj().transpose(0, 1), rdt, dev)], dim=1).contiguous()
        d = [int(x) for x in base.bins]
        self.delays = [(r, d[r % I]) for r in range(2 * I) if d[r % I] > 0]     # real-stacked rows to delay
        self.eye = torch.eye(self.Q, dtype=cdt, device=dev)
        th = math.pi / base.scn.psk_order
        self.sin, self.cos = math.sin(th), math.cos(th)
        self.cfg, self.params = cfg, params
        self.N = base.scn.N
        self.cdt, self.rdt, self.dev = cdt, rdt, dev

    # -- layout helpers -------------------------------------------------------------------------------
    def from_complex(self, X):
        """complex (B, M, L) → real-stacked feature-major (2M, B, L)."""
        X = torch.as_tensor(X, device=self.dev)
        return torch.cat([X.real, X.imag], dim=1).to(self.rdt).permute(1, 0, 2).contiguous()

    def to_complex(self, u):
        """real-stacked (2M, B, L) → complex (B, M, L)."""
        M = u.shape[0] // 2
        return torch.complex(u[:M], u[M:]).permute(1, 0, 2)

    def _gemm(self, A, u):
        return (A @ u.reshape(u.shape[0], -1)).reshape(A.shape[0], *u.shape[1:])

    def _cm(self, z, ref):
        """Unit-modulus projection per complex entry of real-stacked z; where z = 0 the phase of ref."""
        M = z.shape[0] // 2
        m2 = z[:M].square() + z[M:].square()
        if bool((m2 > 0).all()):
            return (z.view(2, M, *z.shape[1:]) * torch.rsqrt(m2)).view(z.shape)
        r2 = ref[:M].square() + ref[M:].square()
        one = torch.ones_like(m2)
        zu = (z.view(2, M, *z.shape[1:]) * torch.rsqrt(torch.where(m2 > 0, m2, one))).view(z.shape)
        ru = (ref.view(2, M, *z.shape[1:]) * torch.rsqrt(torch.where(r2 > 0, r2, one))).view(z.shape)
        ru = torch.where(torch.cat([r2, r2]) > 0, ru, torch.cat([one, torch.zeros_like(m2)]))
        return torch.where(torch.cat([m2, m2]) > 0, zu, ru)

    def _delay(self, T, sign: int):
        """Rows of T (2I, B, L) delayed by their range bin d (sign +1: t[l] = T[l − d]; −1: the adjoint)."""
        if not self.delays:
            return T
        t = T.clone()
        L = T.shape[2]
        for r, d in self.delays:
            if sign > 0:
                t[r, :, d:] = T[r, :, :L - d]
                t[r, :, :d] = 0
            else:
                t[r, :, :L - d] = T[r, :, d:]
                t[r, :, L - d:] = 0
        return t

    # -- objective F (MVDR SINR*, linear) and its gradient G = 2∂f/∂u* of f = −F·fscale -------------
    def _F(self, t):
        I = self.I
        tb = t.permute(1, 0, 2).contiguous()                               # (B, 2I, L)
        R = tb @ tb.transpose(1, 2)                                        # (B, 2I, 2I) real Gram
        Tm = torch.complex(R[:, :I, :I] + R[:, I:, I:], R[:, :I, I:] - R[:, I:, :I])   # tᵢᴴtⱼ
        P = self.Ag * Tm                                                   # P_ij = (aᵢᴴaⱼ)(tᵢᴴtⱼ)
        if self.Q == 0:
            return P[:, 0, 0].real, P, None
        r = P[:, 1:, 0]
        w = torch.linalg.solve(self.eye + P[:, 1:, 1:], r.unsqueeze(-1)).squeeze(-1)
        return P[:, 0, 0].real - (r.conj() * w).sum(-1).real, P, w

    def sinr(self, u):
        """F (B,) of real-stacked u (2M, B, L): the MVDR SINR* itself (linear)."""
        return self._F(self._delay(self._gemm(self.Bt, u), +1))[0]

    def _obj(self, u, fscale):
        """f (B,) and the delayed-back leg gradient G_t (2I, B, L) (G_u = bᴴG_t, applied by the caller)."""
        t = self._delay(self._gemm(self.Bt, u), +1)
        F, P, w = self._F(t)
        B = u.shape[1]
        one = torch.ones(B, 1, dtype=self.cdt, device=self.dev)
        if self.Q > 0:
            uq = P[:, 0, 1:] - (w.conj().unsqueeze(1) @ P[:, 1:, 1:]).squeeze(1)
            cm = torch.cat([one, -w], dim=1)
            cg = torch.cat([one, -uq], dim=1)
        else:
            cm = cg = one
        cg = (-2.0 * fscale).to(self.cdt)[:, None] * cg
        Mf = cg[:, :, None] * self.Ag * cm[:, None, :]                    # (B, I, I): G_t = Mf t
        Mr, Mi = Mf.real, Mf.imag
        M2 = torch.cat([torch.cat([Mr, -Mi], 2), torch.cat([Mi, Mr], 2)], 1)   # real form (B, 2I, 2I)
        Gt = (M2 @ t.permute(1, 0, 2)).permute(1, 0, 2)                   # (2I, B, L)
        return -F * fscale, self._delay(Gt, -1)

    # -- CI constraints g̃ (K, B, L) ≤ 0 [spec A.3 (19)] ------------------------------------------------
    def _g(self, u, Scr, Sci, gscale):
        z = self._gemm(self.Ht, u)                                         # (2K, B, L)
        K = self.K
        zr, zi = z[:K], z[K:]
        ztr = zr * Scr - zi * Sci                                          # z̃ = z·e^{−j∠s}
        zti = zr * Sci + zi * Scr
        return gscale[None, :, None] * (1.0 - (self.sin * ztr - self.cos * zti.abs())), zti

    def feasibility(self, u, Scr, Sci, gscale, steps: int, margin: float = 1e-2, relax: float = 2.0):
        """The networks' final CI feasibility layer (:func:`isac_opt.paper_a.unfold.feasibility_layer`, the one
        ``refit_waveform`` ends with), fused: up to ``steps`` simultaneous Kaczmarz steps on the violated rows,
        Δx_l = −relax·Σ_k (g̃_{k,l} + margin·c_s)₊ G_{k,l}/‖G_{k,l}‖², each followed by the CM projection; slots
        that hold (with the margin) are not moved — so only the initially violated slots are carried.
        u (2M, B, L) real-stacked → u."""
        K = self.K
        gs = gscale[None, :, None]
        g, _ = self._g(u, Scr, Sci, gscale)
        bad = (g + margin * gs > 0).any(dim=0)                            # (B, L)
        if steps <= 0 or not bool(bad.any()):
            return u
        bi, li = bad.nonzero(as_tuple=True)
        x = u[:, bi, li]                                                   # (2M, n)
        Sr, Si, gsn = Scr[:, bi, li], Sci[:, bi, li], gscale[bi][None]
        c_norm2 = (self.Ht[:K].square().sum(1) + self.Ht[K:].square().sum(1))[:, None] / 2 * gsn ** 2   # ‖G_k‖² (K, n)
        Hc = self.GH[:, 2 * self.I:]                                       # (2M, 2K): W_c ↦ h̃ᴴW_c
        for _ in range(steps):
            z = self.Ht @ x
            ztr = z[:K] * Sr - z[K:] * Si
            zti = z[:K] * Si + z[K:] * Sr
            viol = torch.clamp(gsn * (1.0 - (self.sin * ztr - self.cos * zti.abs())) + margin * gsn, min=0.0)
            active = (viol > 0).any(dim=0)                                 # (n,)
            if not bool(active.any()):
                break
            Wb = relax * viol / c_norm2 * gsn
            sg = torch.sign(zti)
            Wc = torch.cat([Wb * (-self.sin * Sr + self.cos * sg * Si), Wb * (self.sin * Si + self.cos * sg * Sr)])
            x = torch.where(active, self._cm(x - Hc @ Wc, x), x)
        u = u.clone()
        u[:, bi, li] = x
        return u

    def repair(self, u, u0, Scr, Sci, n_bisect: int = 12):
        """Per-slot CI restoration in the polish precision (before the float64 certification):
        every slot of u (2M, B, L) whose (safety-scaled) CI constraints fail is replaced by
        CM((1 − α)u_l + α u⁰_l) with the smallest feasible α (bisection, ``n_bisect`` steps, on the failing
        slots only) — the repair of :func:`isac_opt.paper_a.unfold.repair_ci`. u⁰ must be CI-feasible.
        The float64 check of :meth:`LinkEngine._certify` stays the final word; this only spares it the work.
        Returns (u repaired, α (B, L): 0 where the slot was feasible, else in (0, 1])."""
        ones = torch.ones(u.shape[1], dtype=self.rdt, device=self.dev)
        g, _ = self._g(u, Scr, Sci, ones)
        bad = (g > 0).any(dim=0)                                           # (B, L)
        alpha = torch.zeros(bad.shape, dtype=self.rdt, device=self.dev)
        if not bool(bad.any()):
            return u, alpha
        bi, li = bad.nonzero(as_tuple=True)
        x, x0 = u[:, bi, li], u0[:, bi, li]                                # (2M, n)
        d = x0 - x
        Sr, Si = Scr[:, bi, li], Sci[:, bi, li]
        K = self.K

        def feas(al):
            xm = self._cm(x + al * d, x0)
            z = self.Ht @ xm
            ztr = z[:K] * Sr - z[K:] * Si
            zti = z[:K] * Si + z[K:] * Sr
            return (self.sin * ztr - self.cos * zti.abs() >= 1.0).all(dim=0), xm

        lo = torch.zeros(bi.shape[0], dtype=self.rdt, device=self.dev)
        hi = torch.ones_like(lo)
        for _ in range(n_bisect):
            mid = 0.5 * (lo + hi)
            f, _ = feas(mid)
            hi, lo = torch.where(f, mid, hi), torch.where(f, lo, mid)
        u = u.clone()
        u[:, bi, li] = self._cm(x + hi * d, x0)
        alpha[bi, li] = hi
        return u, alpha

    def start(self, u0, Sc):
        """State at u0 (2M, B, L) real-stacked, Sc = e^{−j∠s} complex (B, K, L):
        :meth:`AdmmState.start` + :meth:`DetectProblem.set_scale`."""
        B, L, M = u0.shape[1], u0.shape[2], u0.shape[0] // 2
        Sc = torch.as_tensor(Sc, device=self.dev).permute(1, 0, 2)
        Scr, Sci = Sc.real.to(self.rdt).contiguous(), Sc.imag.to(self.rdt).contiguous()
        fscale = 1.0 / self.sinr(u0)
        g1, _ = self._g(u0, Scr, Sci, torch.ones(B, dtype=self.rdt, device=self.dev))
        gscale = 1.0 / (1.0 - g1).abs().sum(0).sum(-1).div(g1.shape[0] * g1.shape[2]).clamp(min=1.0)
        rho = torch.full((B,), 1.0 / (M * L + self.N * L), dtype=self.rdt, device=self.dev)
        beta = torch.zeros(self.K, B, L, dtype=self.rdt, device=self.dev)
        return dict(u=u0, v=self._cm(u0, u0), mu=torch.zeros_like(u0), beta=beta, rho=rho,
                    fscale=fscale, gscale=gscale, Scr=Scr, Sci=Sci)

    def layer(self, st, t: int):
        """ADMM layer t, x-block only: J ALM iterations of R projected-gradient steps, then v and μ."""
        cfg, params = self.cfg, self.params
        z, aux, mu, rho = st["u"], st["v"], st["mu"], st["rho"]
        fscale, gscale, Scr, Sci = st["fscale"], st["gscale"], st["Scr"], st["Sci"]
        beta = torch.zeros_like(st["beta"]) if cfg.reset_beta else st["beta"]
        rc = rho[None, :, None]
        off = mu / rc - aux                                                # dz = z + off
        gsc = gscale[None, :, None]
        for j in range(cfg.J):
            gval, _ = self._g(z, Scr, Sci, gscale)
            eta = params.dual("x", t, j, gval, beta)
            beta = torch.clamp(beta + eta * gval, min=0.0)
            Wb = beta * gsc
            # W ⊙ c ⊙ conj(Sc), c = −sinΘ + j cosΘ sgn(Im z̃): the sgn-free and the sgn parts, per ALM iteration
            Wa_r, Wa_i = Wb * (-self.sin * Scr), Wb * (self.sin * Sci)
            Wb_r, Wb_i = Wb * (self.cos * Sci), Wb * (self.cos * Scr)

            def lagr(zz):
                f, Gt = self._obj(zz, fscale)
                g, zti = self._g(zz, Scr, Sci, gscale)
                sg = torch.sign(zti)
                dz = zz + off
                Lv = f + 0.5 * rho * dz.square().sum(0).sum(-1) + (beta * g).sum(0).sum(-1)
                GW = torch.cat([Gt, Wa_r + sg * Wb_r, Wa_i + sg * Wb_i], dim=0)   # (2I + 2K, B, L)
                return Lv, self._gemm(self.GH, GW) + rc * dz

            Lv, G = lagr(z)
            for r in range(cfg.R):
                gn = torch.sqrt(G.square().sum(0).sum(-1))
                tau = params.step("x", t, j, r, gn, Lv)
                znew = self._cm(z - tau[None, :, None] * G, z)
                if r == cfg.R - 1:
                    z = znew
                    break
                Lv, G = lagr(znew)
                z = znew
        v = self._cm(rc * z + mu, z)
        return dict(st, u=z, v=v, mu=mu + rc * (z - v), beta=beta)


class LinkEngine:
    """Per-frame design engine for one coherence block (see the module docstring).

    Parameters
    ----------
    scn, ch : scenario and channel realisation (``ch.S`` is ignored: symbols come per frame)
    phi : complex (N,) RIS state applied during the block
    dtype : torch.float32 or torch.float64 — precision of the batched polish
    device : torch device ("cpu", "cuda", ...)
    layers : x-block layers of the per-frame polish (default :data:`DEFAULT_LAYERS` = 0: codebook lookup only;
        None: all of the network's / solver's T)
    check_every : the best CI-feasible iterate is sought every this many layers (and at the end)
    net : "auto" (shipped detection network if it fits, else classical steps), None (classical), or a net
    radar_codebook : refine each codebook entry for the target/clutter transmit gain (CI kept), see
        :meth:`_radar_ascent`; False keeps the plain A.10 worst-case-margin entries
    distill_frames : random frames polished once per block to refine the radar-aware codebook (:meth:`_distill`,
        default :data:`DISTILL_FRAMES`; 0: off)
    fused : polish with :class:`_FusedXBlock` (default; same iterates as the general ``admm_layer`` machinery,
        which ``fused=False`` runs — the reference); configurations it does not cover (φ-block, PHR handler,
        DFP matrices) fall back to the general machinery by themselves
    """

    def __init__(self, scn: ScenarioA, ch: ChannelsA, phi, *, dtype=torch.float64, device="cpu",
                 layers: int | None = DEFAULT_LAYERS, check_every: int = 5, net="auto", radar_codebook: bool = True,
                 fused: bool = True, distill_frames: int = DISTILL_FRAMES):
        from ..paper_a.unfold import DetectProblem
        if dtype not in (torch.float32, torch.float64):
            raise IsacError(f"dtype: expected torch.float32 or torch.float64, got {dtype}")
        ch.check(scn)
        phi = np.asarray(phi, dtype=np.complex128)
        if phi.shape != (scn.N,) or not np.all(np.isfinite(phi)):
            raise IsacError(f"phi: expected {scn.N} finite complex RIS coefficients, got shape {phi.shape}")
        self.scn, self.ch, self.phi = scn, ch, phi
        self.radar_codebook = bool(radar_codebook)
        self._clutter_weight = 0.0     # target-only surrogate: measured best of 0, 0.3, 1, 3 (docs/link.md)
        self.dtype, self.device = dtype, torch.device(device)
        self.order, self.K, self.M, self.L = scn.psk_order, scn.K, scn.M, scn.L
        self.n_tuples = self.order ** self.K
        if self.n_tuples > MAX_CODEBOOK:
            raise IsacError(f"link engine: {self.order}-PSK with K = {self.K} users gives {self.n_tuples} "
                            f"per-slot symbol tuples, more than the codebook limit {MAX_CODEBOOK}")
        self.gamma = ci_thresholds(scn.noise_comm_w, scn.gamma_db, scn.psk_order)
        self.Htil = effective_user_channels(ch, phi)                           # (K, M), rows h̃_kᴴ
        t0 = time.perf_counter()
        self._build_codebook()
        self.codebook_seconds = time.perf_counter() - t0
        # normalised torch problem of ONE realisation; frames share every channel tensor (expanded views)
        base = dataclasses.replace(ch, S=np.ones((scn.K, scn.L), dtype=np.complex128) * psk_constellation(self.order)[0])
        self._base = DetectProblem.from_channels(scn, [base], dtype=dtype, device=self.device)
        # a safety factor on the CI thresholds of the polish so that its feasible points stay feasible
        # after rounding (float32) — the float64 check below is the one that certifies
        self._ci_safety = 1e-4 if dtype == torch.float32 else 1e-9
        self._setup_solver(layers, check_every, net)
        from ..paper_a.channels import legs
        self._legs = legs(ch, phi, scn.ris_leg_model)                           # (a, b), each (Q+1, M)
        kap = np.r_[1.0, np.sqrt(np.asarray(scn.xi_q_sq, dtype=np.float64))] / math.sqrt(scn.noise_radar_w)
        a = self._legs[0]
        self._agram = kap[:, None] * kap[None, :] * (np.conj(a) @ a.T)        # κᵢκⱼ aᵢᴴaⱼ (Q+1, Q+1)
        self._bins = np.array((scn.target_bin,) + tuple(scn.clutter_bins), dtype=np.int64)
        self._xb = None
        if fused and self.cfg.handler == "alm" and self.cfg.dfp_variant == "identity" and not self.cfg.update_phi:
            from ..paper_a.unfold.model import _MLPParams
            params = _MLPParams(self.net.layers) if self.net is not None else self.params
            self._xb = _FusedXBlock(self._base, phi, 1.0 / (1.0 + self._ci_safety), self.cfg, params)
        self.fused = self._xb is not None
        self.repair_first = True     # fused path: per-slot CI repair in the polish dtype before the float64 check
        self.feas_steps = FEAS_STEPS  # fused path: steps of the networks' CI feasibility layer before the repair
        self.distill_seconds = 0.0
        self.distilled_tuples = 0
        if self.radar_codebook and int(distill_frames) > 0:
            self._distill(int(distill_frames))

    # ------------------------------------------------------------------------------------------
    # codebook [spec A.10 per slot]
    def tuples(self) -> np.ndarray:
        """Symbol-index tuples (Ω^K, K): row j holds the digits of j in base Ω (user 0 least significant)."""
        j = np.arange(self.n_tuples)
        return np.stack([(j // self.order ** k) % self.order for k in range(self.K)], axis=1)

    def _build_codebook(self) -> None:
        from ..paper_a.detect.core import polish_cm_slots
        scn, amp = self.scn, self.scn.amp
        S_all = psk_constellation(self.order)[self.tuples().T]                  # (K, Ω^K)
        n = self.n_tuples
        C = np.empty((self.M, n), dtype=np.complex128)
        tstar = np.empty(n)
        # a small margin above 1 for the CM repair, so that rounding can never take an entry below 1
        sc_safe = dataclasses.replace(scn, L=_CHUNK, gamma_db=tuple(float(g) + 20 * math.log10(1 + 1e-6)
                                                                   for g in np.broadcast_to(scn.gamma_db, (self.K,))))
        for c0 in range(0, n, _CHUNK):
            cols = np.arange(c0, c0 + _CHUNK) % n                                   # pad the last chunk
            Sc = S_all[:, cols]
            X, t = worst_case_margin_init(self.Htil, Sc, self.gamma, amp, self.order)
            Xc = project_cm(X, amp)
            ch_c = dataclasses.replace(self.ch, S=Sc)
            Xc = polish_cm_slots(sc_safe, ch_c, self.phi, Xc)
            m = min(_CHUNK, n - c0)
            C[:, c0:c0 + m] = Xc[:, :m]
            tstar[c0:c0 + m] = t[:m]
        C = project_cm(C, amp)
        # linear CI rows per tuple, normalised by γ: margin_j/γ = Re{rows[t, j] x} [spec A.3]
        self._rows = ci_rows(self.Htil, S_all, self.order) / np.concatenate([self.gamma, self.gamma])[None, :, None]
        marg = lambda C: (ci_margins(self.Htil @ C, S_all, self.order) / self.gamma[:, None]).min(axis=0)
        mn = marg(C)
        self.codebook = C.T.copy()                                              # (Ω^K, M) worst-case-margin
        self.codebook_margin = mn                                               # (Ω^K,) min_k m/γ
        self.codebook_tstar = tstar                                             # SOCP optimum per tuple
        self.codebook_ok = mn >= 1.0
        self.codebook_radar = None
        if self.radar_codebook:
            Cr = self._radar_ascent(self.codebook)
            okr = marg(Cr.T) >= 1.0
            self.codebook_radar = np.where((okr & self.codebook_ok)[:, None], Cr, self.codebook)

    def _radar_ascent(self, C, iters: int = 300, floor: float = 1.0 + 1e-6) -> np.ndarray:
        """Radar-aware codebook: from each CI-feasible CM entry x (rows of C, (T, M)), projected gradient
        ascent on the CM torus of the per-slot transmit-gain surrogate of A.10's radar-only start,
        f(x) = |b0ᵀx|² − Σ_q |b_qᵀx|² (target minus clutter transmit legs) [spec A.10, RECON], accepting a
        step only while every CI margin of the tuple stays ≥ ``floor`` (backtracking per tuple). The
        result is as CI-feasible as the start and has a larger f; the polish does the rest."""
        from ..paper_a.channels import legs
        _, b = legs(self.ch, self.phi, self.scn.ris_leg_model)
        sign = np.r_[1.0, -self._clutter_weight * np.ones(self.scn.Q)]
        P = (sign[:, None, None] * (np.conj(b)[:, :, None] * b[:, None, :])).sum(axis=0)     # xᴴPx = f
        amp = self.scn.amp
        R = self._rows
        f = lambda X: np.real(np.sum(np.conj(X) * (X @ P.T), axis=1))
        feas = lambda X: (R * X[:, None, :]).sum(axis=2).real.min(axis=1) >= floor
        X = np.array(C, dtype=np.complex128)
        ok0 = feas(X)
        fx = f(X)
        step = np.full(X.shape[0], 0.5 * amp / max(np.abs(P).sum(axis=1).max() * amp, 1e-300))
        for _ in range(iters):
            G = X @ P.T                                               # ∂f/∂x* direction
            Xn = amp * np.exp(1j * np.angle(X + step[:, None] * G))
            fn = f(Xn)
            acc = ok0 & feas(Xn) & (fn > fx)
            X[acc], fx[acc] = Xn[acc], fn[acc]
            step = np.where(acc, step * 1.5, step * 0.5)
            if np.all(step < 1e-12 * amp):
                break
        return X

    def _distill(self, frames: int, seed: int = 0, chunk: int = 256) -> None:
        """Refine the radar-aware codebook from polished designs, once per block [RECON, issue 13].

        ``frames`` random symbol frames (``np.random.default_rng(seed)``: the same for every block) are designed
        with the polish (:data:`DISTILL_LAYERS` layers, feasibility layer, certification). Every slot of a
        certified design is a CI-feasible CM waveform of its symbol tuple (the CI constraints of a slot involve
        only that slot), so each tuple gets, among the radar ascent's entry and all polished slots of that
        tuple, the one with the largest target transmit gain |b0ᵀx|² — the per-slot surrogate the radar ascent
        climbs, but from the polish's better basins (the ascent stalls in local maxima). Entries are verified
        in float64 with ``ci_margins`` (a failing one keeps the previous entry). Measured on the tuning
        channels (seeds 1, 2): the lookup alone went from −1.36 / −0.88 dB to +0.00 / +0.01 dB vs refit."""
        t0 = time.perf_counter()
        S = np.random.default_rng(seed).integers(0, self.order, size=(frames, self.K, self.L))
        layers = min(DISTILL_LAYERS, self.cfg.T) if self.net is not None else DISTILL_LAYERS
        designs = [self._design(S[i:i + chunk], layers) for i in range(0, frames, chunk)]
        ok = np.concatenate([d.ok for d in designs])
        X = np.concatenate([d.X for d in designs])[ok]                             # certified frames only
        code = self._codes(np.swapaxes(S[ok], 1, 2)).reshape(-1)                   # (n·L,)
        Xs = np.swapaxes(X, 1, 2).reshape(-1, self.M)
        b0 = self._legs[1][0]
        gain = np.abs(Xs @ b0) ** 2
        order = np.lexsort((-gain, code))                                          # by tuple, best gain first
        first = order[np.r_[True, code[order][1:] != code[order][:-1]]] if len(order) else order
        C = self.codebook_radar.copy()
        cc = code[first]
        better = gain[first] > np.abs(C[cc] @ b0) ** 2
        C[cc[better]] = project_cm(Xs[first][better], self.scn.amp)
        S_all = psk_constellation(self.order)[self.tuples().T]
        okc = (ci_margins(self.Htil @ C.T, S_all, self.order) / self.gamma[:, None]).min(axis=0) >= 1.0
        self.codebook_radar = np.where(okc[:, None], C, self.codebook_radar)
        self.distilled_tuples = int((okc & np.isin(np.arange(self.n_tuples), cc[better])).sum())
        self.distill_seconds = time.perf_counter() - t0

    # ------------------------------------------------------------------------------------------
    def _setup_solver(self, layers, check_every, net) -> None:
        from ..paper_a.detect.methods import get_net
        from ..paper_a.detect.unfolded import DEFAULT_INIT, LITE_CFG
        from ..paper_a.unfold import ConstantParams
        if isinstance(net, str) and net == "auto":
            net = get_net(self.scn, required=False)
        if net is not None:                          # a private copy in the polish dtype (the cached net is shared)
            import copy
            net = copy.deepcopy(net).to(device=self.device, dtype=self.dtype)
        self.net = net
        if net is not None:
            self.cfg = dataclasses.replace(net.cfg, update_phi=False)
            self.params = None
            self.engine_name = "unfolded network x-block (shipped weights)"
        else:
            self.cfg = dataclasses.replace(LITE_CFG, update_phi=False)
            self.params = ConstantParams(**DEFAULT_INIT)
            self.engine_name = "classical ADMM-ALM x-block"
        T = self.cfg.T if layers is None else int(layers)
        if T < 0:
            raise IsacError(f"layers: expected an integer >= 0, got {layers}")
        self.layers = min(T, self.cfg.T) if net is not None else T
        self.check_every = max(1, int(check_every))

    # ------------------------------------------------------------------------------------------
    def _codes(self, idx_or_sym) -> np.ndarray:
        """Tuple index Σ_k i_k Ω^k of symbols (..., K) (indices or PSK points)."""
        i = symbol_indices(idx_or_sym, self.order)
        return i @ (self.order ** np.arange(self.K))

    def start_waveforms(self, idx: np.ndarray) -> np.ndarray:
        """Codebook start X⁰ (B, M, L) complex128 of symbol indices idx (B, K, L), and the codes (B, L)."""
        code = np.tensordot(self.order ** np.arange(self.K), idx, axes=([0], [1]))   # (B, L)
        return np.transpose(self.codebook[code], (0, 2, 1)), code

    def _problem(self, Sc_np):
        """The base problem expanded to B frames (views), with the frames' symbols and the CI safety factor."""
        from ..paper_a.unfold import DetectProblem
        b = self._base
        B = Sc_np.shape[0]
        cdt = b.A0.dtype
        ex = lambda t: t.expand((B,) + tuple(t.shape[1:]))
        s = 1.0 / (1.0 + self._ci_safety)
        return DetectProblem(self.scn, ex(b.A0), ex(b.Ar), ex(b.Ga), ex(b.B0), ex(b.Br), ex(b.Gb),
                             ex(b.Hk) * s, ex(b.Hrk) * s, ex(b.Gu),
                             torch.as_tensor(Sc_np, dtype=cdt, device=self.device),
                             torch.ones(B, dtype=self.dtype, device=self.device),
                             torch.ones(B, dtype=self.dtype, device=self.device), b.bins,
                             b.idx_r, b.ok_r, b.idx_l, b.ok_l)

    def design(self, S) -> FrameDesigns:
        """Waveforms for a batch of symbol frames S (B, K, L) (complex PSK symbols or indices) or (K, L)."""
        return self._design(S, self.layers)

    def _design(self, S, layers: int) -> FrameDesigns:
        t0 = time.perf_counter()
        idx = symbol_indices(S, self.order)
        if idx.ndim == 2:
            idx = idx[None]
        if idx.ndim != 3 or idx.shape[1:] != (self.K, self.L):
            raise IsacError(f"symbols: expected shape (B, {self.K}, {self.L}), got {tuple(np.shape(S))}")
        B = idx.shape[0]
        Ssym = psk_constellation(self.order)[idx]                                    # (B, K, L)
        X0, code = self.start_waveforms(idx)
        sinr0 = self.sinr(X0)
        best_X, best_s = X0.copy(), sinr0.copy()
        best_fb = np.zeros(B, np.int64)
        amp = self.scn.amp
        if self.codebook_radar is not None:        # the radar-aware lookup is a candidate of its own
            Xr = np.transpose(self.codebook_radar[code], (0, 2, 1))
            sr = self.sinr(Xr)
            better = sr > best_s
            best_X[better], best_s[better] = Xr[better], sr[better]

        def offer(Xc_raw, touched=None, anchor=X0):
            # best feasible iterate: certify in float64 (CM, per-slot repair towards the CI-feasible anchor),
            # keep if better
            Xc, fb = self._certify(Xc_raw, anchor, Ssym, touched)
            sc = self.sinr(Xc)
            better = sc > best_s
            best_X[better], best_s[better], best_fb[better] = Xc[better], sc[better], fb[better]

        if layers > 0 and B > 0:
            with torch.no_grad():
                if self._xb is not None:
                    self._polish_fused(X0, Ssym, offer, layers)
                else:
                    self._polish_generic(X0, Ssym, offer, layers)
        marg = self._margins(best_X, Ssym).min(axis=(1, 2))
        cm = np.abs(np.abs(best_X) - amp).max(axis=(1, 2)) <= 1e-6 * amp
        from ..contract import CI_TOL
        ok = cm & (marg >= 1.0 - CI_TOL)
        return FrameDesigns(X=best_X, S=Ssym, sinr=best_s, sinr_start=sinr0, min_margin=marg,
                            fallback_slots=best_fb, ok=ok, seconds=time.perf_counter() - t0)

    def _checkpoint(self, t: int, layers: int) -> bool:
        return (t + 1) % self.check_every == 0 or t + 1 == layers

    def _polish_fused(self, X0, Ssym, offer, layers: int) -> None:
        """The polish by :class:`_FusedXBlock` (real-stacked feature-major tensors); at every check point the
        iterate, repaired per slot towards the start X0 in the polish dtype, is offered for certification.
        (Repairing towards the radar lookup instead was measured no better on the tuning seeds.)"""
        xb, amp = self._xb, self.scn.amp
        u0 = xb.from_complex(X0 / amp)
        st = xb.start(u0, np.conj(Ssym))
        for t in range(layers):
            st = xb.layer(st, t)
            if not self._checkpoint(t, layers):
                continue
            if self.repair_first:
                u = xb.feasibility(st["u"], st["Scr"], st["Sci"], st["gscale"], self.feas_steps, relax=FEAS_RELAX)
                u, alpha = xb.repair(u, u0, st["Scr"], st["Sci"])
                touched = (alpha > 0).cpu().numpy()
            else:
                u, touched = st["u"], None
            offer(xb.to_complex(u).cpu().to(torch.complex128).numpy() * amp, touched)

    def _polish_generic(self, X0, Ssym, offer, layers: int) -> None:
        """The polish by the general unfold machinery (``admm_layer`` on the expanded DetectProblem) —
        the reference the fused x-block is tested against (``fused=False``)."""
        from ..paper_a.unfold import AdmmState, CIConstraint, SinrObjective, admm_layer, feasibility_layer
        B, amp = X0.shape[0], self.scn.amp
        prob = self._problem(np.conj(Ssym))
        cdt = prob.A0.dtype
        u0 = torch.as_tensor(X0 / amp, dtype=cdt, device=self.device)
        phi0 = torch.as_tensor(self.phi, dtype=cdt, device=self.device).expand(B, -1)
        prob.set_scale(u0, phi0)
        obj, cons = SinrObjective(prob), CIConstraint(prob)
        st = AdmmState.start(u0, phi0, obj.value(u0, phi0), self.K, self.L)
        for t in range(layers):
            if self.net is not None:
                st = self.net(st, obj, cons, cfg=self.cfg, layers=range(t, t + 1))
            else:
                st = admm_layer(st, t, obj, cons, self.params, self.cfg)
            if self._checkpoint(t, layers):
                x = feasibility_layer(cons, st.x, phi0, steps=self.feas_steps, relax=FEAS_RELAX) if self.feas_steps else st.x
                offer(x.detach().cpu().to(torch.complex128).numpy() * amp)

    def _certify(self, X, X0, S, touched=None, n_bisect: int = 12):
        """CM projection of X (B, M, L), then every slot whose CI constraints fail (float64) is moved towards
        its codebook start: x_l ← CM((1 − α)x_l + α x⁰_l) with the smallest feasible α found by ``n_bisect``
        bisection steps (α to 2^−n_bisect; only the failing slots; the repair of
        :func:`isac_opt.paper_a.unfold.repair_ci`, in float64); a slot still failing takes x⁰_l.
        ``touched`` (B, L) bool: slots already repaired upstream (counted with the ones repaired here).
        Returns (X certified, slots touched per frame)."""
        amp = self.scn.amp
        X = project_cm(X, amp, X0)
        bad = self._margins(X, S).min(axis=1) < 1.0                                  # (B, L)
        n_touched = (bad if touched is None else (bad | touched)).sum(axis=1).astype(np.int64)
        if not bad.any():
            return X, n_touched
        bi, li = np.nonzero(bad)
        x, x0 = X[bi, :, li], X0[bi, :, li]                                          # (n, M)
        R = self._rows[self._codes(S[bi, :, li])]                                    # (n, 2K, M)
        Rr, Ri = R.real[:, :, None, :], R.imag[:, :, None, :]                         # (n, 2K, 1, M)
        xr, xi, dr, di = x.real, x.imag, (x0 - x).real, (x0 - x).imag

        def feas(al):                                 # al (n, c): c candidate α per slot at once
            mr, mi = xr[:, None, :] + al[..., None] * dr[:, None, :], xi[:, None, :] + al[..., None] * di[:, None, :]
            m2 = mr * mr + mi * mi                    # 0 only where x and x⁰ are opposite and α = ½: x⁰'s phase
            inv = np.where(m2 > 0, amp / np.sqrt(np.where(m2 > 0, m2, 1.0)), 0.0)
            zero = m2 <= 0
            mr = np.where(zero, x0.real[:, None, :], mr * inv)
            mi = np.where(zero, x0.imag[:, None, :], mi * inv)
            marg = (Rr * mr[:, None] - Ri * mi[:, None]).sum(axis=3).min(axis=1)   # (n, c)
            return marg >= 1.0

        # bisection, 3 points per step (quartering the bracket: n_bisect/2 steps of 2 bits each)
        lo, hi = np.zeros(len(bi)), np.ones(len(bi))
        for _ in range((n_bisect + 1) // 2):
            q = (hi - lo)[:, None] * np.array([0.25, 0.5, 0.75])[None] + lo[:, None]
            f = feas(q)                                                               # (n, 3)
            first = np.where(f.any(axis=1), f.argmax(axis=1), 3)                      # smallest feasible quarter
            q4 = np.concatenate([lo[:, None], q, hi[:, None]], axis=1)
            hi = q4[np.arange(len(bi)), first + 1]
            lo = q4[np.arange(len(bi)), first]
        xm = x + hi[:, None] * (x0 - x)
        mag = np.abs(xm)
        xm = np.where(mag > 0, amp * xm / np.where(mag > 0, mag, 1.0), x0)         # CM, x⁰'s phase at 0
        # the final word is ci_margins (float64, the contract's function)
        f = (ci_margins(xm @ self.Htil.T, S[bi, :, li], self.order) / self.gamma[None, :]).min(axis=1) >= 1.0
        X[bi, :, li] = np.where(f[:, None], xm, x0)
        return X, n_touched

    # ------------------------------------------------------------------------------------------
    def _margins(self, X, S) -> np.ndarray:
        """m_{k,l}/γ_k (B, K, L), float64 [spec A.3]."""
        Z = self.Htil @ X                                                          # (B, K, L)
        return ci_margins(Z, S, self.order) / self.gamma[None, :, None]

    def _echo_parts(self, X):
        """Target echo s (B, ML), clutter columns U = [ξ_q c_q] (B, ML, Q), float64/complex128 numpy."""
        from ..paper_a.channels import legs
        scn = self.scn
        a, b = legs(self.ch, self.phi, scn.ris_leg_model)                          # (Q+1, M)
        bins = (scn.target_bin,) + tuple(scn.clutter_bins)
        X = np.asarray(X, dtype=np.complex128)
        B = X.shape[0]
        cols = []
        for i, d in enumerate(bins):
            t = b[i] @ X                                                            # (B, L)
            t = np.concatenate([np.zeros((B, d), complex), t[:, :self.L - d]], axis=1) if d else t
            e = a[i][None, :, None] * t[:, None, :]                                # (B, M, L)
            cols.append(np.transpose(e, (0, 2, 1)).reshape(B, -1))                # vec, antenna fastest
        xi = np.sqrt(np.asarray(scn.xi_q_sq, dtype=np.float64))
        U = np.stack([xi[q] * cols[q + 1] for q in range(scn.Q)], axis=2) if scn.Q else np.zeros((B, cols[0].shape[1], 0))
        return cols[0], U

    def _cinv(self, s, U):
        nz = self.scn.noise_radar_w
        Q = U.shape[2]
        if Q == 0:
            return s / nz
        Uh = np.conj(np.swapaxes(U, 1, 2))                                          # (B, Q, ML)
        core = nz * np.eye(Q) + Uh @ U
        Us = Uh @ s[..., None]
        return (s - (U @ np.linalg.solve(core, Us))[..., 0]) / nz

    def sinr(self, X) -> np.ndarray:
        """MVDR SINR* = ξ0² sᴴC⁻¹s (linear) per frame, X (B, M, L); float64 [spec A.4 (20)].

        Fully structured (spec performance notes §4.1): with tᵢ = J_{dᵢ}(bᵢᵀX) (L,) and the rank-one echo
        columns vᵢ = κᵢ aᵢ ⊗ tᵢ (κ₀ = 1/σ, κ_q = ξ_q/σ), every inner product factorises,
        P_ij = vᵢᴴvⱼ = κᵢκⱼ(aᵢᴴaⱼ)(tᵢᴴtⱼ), and by Woodbury ξ0²sᴴC⁻¹s = ξ0²(P₀₀ − rᴴ(I + Γ)⁻¹r) with
        Γ = P[1:, 1:], r = P[1:, 0] — a (Q+1)² Gram and a Q×Q solve per frame, never an ML-vector.
        :meth:`_sinr_woodbury` is the ML-vector form it is tested against."""
        X = np.asarray(X, dtype=np.complex128)
        B, L = X.shape[0], self.L
        T = np.matmul(np.swapaxes(X, 1, 2), self._legs[1].T)                      # (B, L, Q+1): bᵢᵀx_l
        t = np.zeros_like(T)
        for i, d in enumerate(self._bins):                                        # J_d: delay by d slots
            t[:, d:, i] = T[:, :L - d, i]
        P = self._agram * np.matmul(np.conj(np.swapaxes(t, 1, 2)), t)             # (B, Q+1, Q+1)
        F = P[:, 0, 0].real
        if self.scn.Q:
            r = P[:, 1:, 0]
            w = np.linalg.solve(np.eye(self.scn.Q) + P[:, 1:, 1:], r[..., None])[..., 0]
            F = F - np.real(np.sum(np.conj(r) * w, axis=1))
        return self.scn.xi0_sq * F

    def _sinr_woodbury(self, X) -> np.ndarray:
        """MVDR SINR* by Woodbury on the ML-vectors s, U (the reference of :meth:`sinr`)."""
        s, U = self._echo_parts(X)
        return self.scn.xi0_sq * np.real(np.sum(s.conj() * self._cinv(s, U), axis=1))

    def mvdr_filters(self, X) -> np.ndarray:
        """Per-frame MVDR filters w = C⁻¹s/(sᴴC⁻¹s), complex128 (B, M·L), wᴴs = 1 [spec A.4 (20), Woodbury]."""
        s, U = self._echo_parts(X)
        m = self._cinv(s, U)
        return m / np.sum(s.conj() * m, axis=1)[:, None]

    def info(self) -> dict:
        return {"engine": self.engine_name, "layers": self.layers, "dtype": str(self.dtype).replace("torch.", ""),
                "device": str(self.device), "tuples": self.n_tuples,
                "codebook_feasible": int(self.codebook_ok.sum()),
                "codebook_min_margin": float(self.codebook_margin.min()),
                "codebook_seconds": self.codebook_seconds, "distill_seconds": self.distill_seconds,
                "distilled_tuples": self.distilled_tuples}
