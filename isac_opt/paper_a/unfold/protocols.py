"""Typed interfaces of the pluggable parts of the ADMM step [spec A.6, A.9; style point 8].

:func:`~isac_opt.paper_a.unfold.step.admm_layer` is written once against these Protocols; the detection
task plugs in :class:`~.problem.SinrObjective` / :class:`~.problem.CIConstraint`, the DoA task its CRB
objective, and the classical solver and the unfolded network their step sizes
(:class:`~.step.ConstantParams`, the per-layer MLPs of :class:`~.model.UnfoldedAdmm`). Shapes are batch
first: x (B, M, L) complex, φ (B, N) complex, constraint values (B, K, L) real; G = 2∂f/∂z* (Wirtinger).
"""
from __future__ import annotations

from typing import Any, Callable, Optional, Protocol, Sequence, Tuple, runtime_checkable

from torch import Tensor


@runtime_checkable
class Objective(Protocol):
    """f(x, φ) to minimise (batched) with its Wirtinger gradients."""

    def prep(self, phi: Tensor) -> Any:
        """φ-only quantities reused by every ``value_grad`` of an x-block (may return None)."""

    def value_grad(self, x: Tensor, phi: Tensor, wrt: Sequence[str], pre: Any = None
                   ) -> Tuple[Tensor, Optional[Tensor], Optional[Tensor]]:
        """(f (B,), G_x or None, G_φ or None) for the blocks named in ``wrt`` ⊆ {"x", "phi"}."""


@runtime_checkable
class Constraint(Protocol):
    """Inequality constraints g(x, φ) ≤ 0 (e.g. the normalised CI constraints g̃ = g/γ)."""

    def prep(self, phi: Tensor) -> Any:
        """φ-only quantities (may return None)."""

    def g(self, x: Tensor, phi: Tensor, pre: Any = None) -> Tensor:
        """Constraint values (B, K, L); feasible where ≤ 0."""

    def vjp(self, x: Tensor, phi: Tensor, W: Tensor, wrt: Sequence[str], pre: Any = None
            ) -> Tuple[Optional[Tensor], Optional[Tensor]]:
        """(Σ W ∇_x g, Σ W ∇_φ g) as Wirtinger gradients, for weights W (B, K, L)."""


@runtime_checkable
class FusedConstraint(Constraint, Protocol):
    """A constraint that also evaluates g, the penalty and its gradients in one pass (faster)."""

    def g_vjp(self, x: Tensor, phi: Tensor, weights_fn: Callable[[Tensor], Tuple[Tensor, Tensor]],
              wrt: Sequence[str], pre: Any = None) -> Tuple[Tensor, Tensor, Optional[Tensor], Optional[Tensor]]:
        """(g, penalty value (B,), Σ W∇_x g, Σ W∇_φ g) with (penalty, W) = weights_fn(g)."""


@runtime_checkable
class StepParams(Protocol):
    """Step sizes of layer t: dual steps η/κ and DFP steps τ/ζ (constant, or learned per layer)."""

    def dual(self, block: str, t: int, j: int, g: Tensor, beta: Tensor) -> Tensor:
        """Dual step sizes (B, K, L) for ``block`` ∈ {"x", "phi"}, ALM iteration j."""

    def step(self, block: str, t: int, j: int, r: int, gnorm: Tensor, lval: Tensor) -> Tensor:
        """DFP step sizes (B,) at DFP iteration r, given the gradient norm and Lagrangian value."""


#: the penalty of a constraint handler: (g, β, η) -> (penalty value (B,), weights W (B, K, L))
PenaltyFn = Callable[[Tensor, Tensor, Optional[Tensor]], Tuple[Tensor, Tensor]]
