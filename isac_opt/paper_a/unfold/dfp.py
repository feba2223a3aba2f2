"""Compact low-rank DFP inverse-Hessian approximation [spec A.6 (27)–(29a), V-12].

Starting from H₀ = h₀·I (h₀ > 0 per sample; A: h₀ = 1) and with H reset at every ALM iteration (t, j),
R DFP steps make at most R − 1 updates, each adding two rank-one terms:

    paper (29a):  H⁺ = H − (Hy)(Hy)ᵀ/(yᵀHy) + (yᵀHy)/(yᵀδ)² · δδᵀ
    standard:     H⁺ = H − (Hy)(Hy)ᵀ/(yᵀHy) + δδᵀ/(yᵀδ)

so H = h₀ I + U diag(s) Uᵀ with U (B, n, k), k ≤ 2(R − 1), kept as factors: applying H costs O(n k),
the n × n matrix is never formed. The skip rule (28) — update only where (yᵀδ)/‖δ‖² > ‖ḡ_prev‖ (and the
guards ‖δ‖ > 0, yᵀHy > 0 of the dense :func:`~.step.dfp_update`) — is applied per sample: a skipped
sample appends a zero coefficient (its H is unchanged). Everything is batched, autograd-friendly and
follows the dtype/device of its inputs (CPU or CUDA).
"""
from __future__ import annotations

import torch

__all__ = ["CompactDFP"]


class CompactDFP:
    """H = h₀ I + U diag(s) Uᵀ for a batch (B, n) of real vectors [spec A.6 (29a)].

    Parameters
    ----------
    B, n : batch size and dimension (n = 2·block size, real stacking [Re; Im]).
    h0 : scale of H₀ — a float or a (B,) tensor (default 1, A's B⁽⁰⁾ = I).
    variant : "paper" (29a) or "standard" DFP.
    dtype, device : of h₀ when it is given as a float (pass the dtype/device of the vectors).
    """

    def __init__(self, B: int, n: int, h0=1.0, variant: str = "paper", dtype=None, device=None):
        if variant not in ("paper", "standard"):
            raise ValueError(f"variant: expected 'paper' or 'standard', got {variant!r}")
        self.variant = variant
        self.B, self.n = B, n
        self._unit = not torch.is_tensor(h0) and float(h0) == 1.0          # H₀ = I: skip the scaling
        self.h0 = h0 if torch.is_tensor(h0) else torch.full((B,), float(h0), dtype=dtype, device=device)
        self.U = None                 # factor columns (B, n, k)
        self.s = None                 # their coefficients (B, k)
        self.updates = torch.zeros(B, dtype=torch.long, device=device)   # non-skipped updates per sample

    @property
    def rank(self) -> int:
        """Number of factor columns k: 2 per ``update`` call (a skipped sample carries zero coefficients)."""
        return 0 if self.U is None else self.U.shape[-1]

    def apply(self, v: torch.Tensor) -> torch.Tensor:
        """H v for v (B, n): h₀ v + U (s ⊙ Uᵀ v) — O(n k)."""
        out = v if self._unit else self.h0[:, None] * v
        if self.U is None:
            return out
        c = torch.bmm(v[:, None, :], self.U)[:, 0, :] * self.s              # (B, k)
        return torch.baddbmm(out[:, :, None], self.U, c[:, :, None])[:, :, 0]

    def update(self, delta: torch.Tensor, y: torch.Tensor, gnorm: torch.Tensor, Hy: torch.Tensor | None = None
               ) -> torch.Tensor:
        """Cautious DFP update with the pair (δ, y) and skip threshold ‖ḡ_prev‖ (B,) [spec (28), (29a)].

        ``Hy``: H y if the caller already has it (saves one application). Returns the (B,) bool mask of
        the samples that were updated. Written with few torch calls: at these sizes the per-call dispatch
        cost, not the O(nR) arithmetic, is what the benchmark measures.
        """
        yd = torch.linalg.vecdot(y, delta)
        dd = torch.linalg.vecdot(delta, delta)
        if Hy is None:
            Hy = self.apply(y)
        yHy = torch.linalg.vecdot(y, Hy)
        ok = (dd > 0) & (yd > gnorm * dd) & (yHy > 0)             # (28) + the dense update's guards
        yd_s = torch.where(ok, yd, 1.0)                           # guarded denominators: no NaN, also in backward
        yHy_s = torch.where(ok, yHy, 1.0)
        okf = ok.to(yd.dtype)
        c2 = okf * yHy_s / (yd_s * yd_s) if self.variant == "paper" else okf / yd_s
        snew = torch.stack([-okf / yHy_s, c2], dim=-1)                       # skipped sample: zero coefficients
        Unew = torch.stack([Hy, delta], dim=-1)                              # (B, n, 2)
        self.U = Unew if self.U is None else torch.cat([self.U, Unew], dim=-1)
        self.s = snew if self.s is None else torch.cat([self.s, snew], dim=-1)
        self.updates = self.updates + ok.long()
        return ok

    def dense(self) -> torch.Tensor:
        """The n × n matrix (B, n, n) — for tests only."""
        I = torch.eye(self.n, dtype=self.h0.dtype, device=self.h0.device)
        H = self.h0[:, None, None] * I
        if self.U is not None:
            H = H + torch.einsum("bik,bk,bjk->bij", self.U, self.s, self.U)
        return H
