"""Deep-unfolded ADMM machinery (torch) shared by paper A's detection and DoA tasks [spec A.6, A.9].

Modules
-------
:mod:`.problem`  batched normalised detection problem: :class:`DetectProblem` (from ``ChannelsA``),
                 :class:`SinrObjective` (f = −SINR/SINR0, closed-form structured gradients, A.7) and
                 :class:`CIConstraint` (normalised CI g̃ = g/γ ≤ 0 and its vector-Jacobian product).
:mod:`.step`     the ONE step function :func:`admm_layer` (x-block, v, φ-block, ϕ, μ), the DFP update
                 (:func:`dfp_update`, variants "paper" (29a) / "standard" / "identity" = projected gradient,
                 the cheap non-paper option), the CM/UM projection, and the constraint handlers
                 ("alm": Σβg, "phr": (η/2)max(g+β/η,0)²).
:mod:`.protocols` the typed interfaces the step is written against: ``Objective``, ``Constraint`` /
                 ``FusedConstraint``, ``StepParams`` (typing.Protocol, runtime-checkable).
:mod:`.model`    :func:`solve` (classical: constant steps, early stop) and :class:`UnfoldedAdmm`
                 (``nn.Module``: learnable step-size MLPs per layer) — both drive :func:`admm_layer`.
:mod:`.dfp`      the compact low-rank DFP (29a) inverse-Hessian factor.
:mod:`.fastnet`  CPU inference of the same iterates without torch dispatch: a numba kernel
                 (:mod:`.fastnet_jit`, detection SINR and DoA CRB objectives) and numpy fallbacks;
                 used by ``run_batch`` / ``DoaNet.infer`` (``engine="auto"``).

API for a new task (e.g. the DoA network of ``isac_opt.paper_a.doa``)
--------------------------------------------------------------
1. Write an objective with ``prep(phi)`` and ``value_grad(x, phi, wrt, pre=None) -> (f, G_x, G_phi)``
   (G = 2∂f/∂z*, batch first, f of shape (B,)) — or wrap a differentiable function:
   ``obj = AutogradObjective(lambda x, phi: crb(x, phi))``.
2. Reuse :class:`CIConstraint` (or any object with ``prep``, ``g``, ``vjp``), or pass ``None`` (no CI).
3. ``cfg = AdmmConfig(T=60, J=10, R=10, handler="phr")`` and a start state
   ``st = AdmmState.start(x0, phi0, f0, K, L)`` (x normalised to |x_i| = 1, f0 = f(x0, φ0)).
4. Classical: ``solve(st, obj, cons, cfg, ConstantParams(...), tol, monitor)``;
   unfolded: ``net = UnfoldedAdmm(cfg, init={...}); st = net(st, obj, cons)``; train layer by layer by
   calling ``net(st, obj, cons, layers=[t])`` on cached detached states.

All code is device- and dtype-agnostic (float64/complex128 or float32/complex64; CPU or CUDA): tensors
follow the dtype/device of the problem tensors and the network (``net.to(dtype)``).
"""
from .model import StackedMLP, UnfoldedAdmm, softplus_inv, solve
from .problem import CIConstraint, DetectProblem, SinrObjective, complex_dtype
from .step import (AdmmConfig, AdmmState, AutogradObjective, ConstantParams, admm_layer, alm_penalty,
                   dfp_update, feasibility_layer, phr_penalty, project_modulus, quasi_newton_block,
                   repair_ci)

__all__ = ["AdmmConfig", "AdmmState", "AutogradObjective", "CIConstraint", "ConstantParams", "DetectProblem",
           "SinrObjective", "StackedMLP", "UnfoldedAdmm", "admm_layer", "alm_penalty", "complex_dtype",
           "dfp_update", "feasibility_layer", "phr_penalty", "project_modulus", "quasi_newton_block", "repair_ci",
           "softplus_inv", "solve"]
