"""Paper A's DoA task: ADMM-PHR-ALM-DFP on the CRB, classical and unfolded [spec A.8, A.9, A.11].

Everything runs through the shared step function :func:`isac_opt.paper_a.unfold.step.admm_layer`
(``handler="phr"`` for A.9, ``handler="alm"`` for the "ALM" ablation of Fig. 9) with

* objective :class:`~isac_opt.paper_a.doa.crb_torch.CrbObjective` — f2 = CRB_θ/CRB_θ(x⁰, φ⁰) (autograd, structured);
* constraint :class:`~isac_opt.paper_a.unfold.problem.CIConstraint` — the normalised CI constraints g̃ = g/γ,
  scaled per sample through the problem's shared ``gscale`` = 1/s with s the worst-case margin t* of the
  A.10 start (so ‖∇g̃‖ = O(1) like ‖∇f2‖). Dividing a constraint g ≤ 0 by s > 0 does not change the
  feasible set; it only conditions the PHR term [RECON]. All reported violations are in
  units of γ (max(g/γ, 0)), never in the scaled units.

Variants (``VARIANTS``): ``ris`` (A.10 start, both blocks), ``random-ris`` (random fixed φ, x-block only,
A.11.3), ``radar-only`` (no CI constraint, radar-only x⁰, A.11.2).
"""
from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch

from ..channels import realisation_rng
from ..scenario import ScenarioA
from ...errors import IsacError
from ..starting import init_phi, init_x, init_x_radar_only
from ..unfold import AdmmConfig, AdmmState, CIConstraint, ConstantParams, UnfoldedAdmm, solve
from .crb_torch import CrbObjective, DoaProblem

__all__ = ["VARIANTS", "DoaConfig", "DoaStart", "start_points", "DoaBatch", "DoaNet",
           "run_classical", "WeightsError", "repair_ci"]

VARIANTS = ("ris", "random-ris", "radar-only")


class WeightsError(IsacError):
    """Shipped/loaded weights do not fit the scenario or are damaged."""


@dataclass(frozen=True)
class DoaConfig:
    """Algorithm 2 configuration [spec A.9, A.12]. Step-size values are the classical constants and
    the initial values of the unfolded network's MLP outputs (η, κ: PHR/dual; τ, ζ: DFP steps)."""

    T: int = 60
    J: int = 10
    R: int = 10
    handler: str = "phr"
    dfp_variant: str = "paper"
    eta: float = 1.0
    kappa: float = 1.0
    tau: float = 0.1
    zeta: float = 0.3
    ridge: float = 1e-12

    def admm(self, update_phi: bool = True, T: int | None = None) -> AdmmConfig:
        return AdmmConfig(T=int(T or self.T), J=self.J, R=self.R, dfp_variant=self.dfp_variant,
                          handler=self.handler, update_phi=update_phi)

    def params(self) -> ConstantParams:
        return ConstantParams(self.eta, self.kappa, self.tau, self.zeta)

    def init(self) -> dict:
        return {"eta": self.eta, "kappa": self.kappa, "tau": self.tau, "zeta": self.zeta}


@dataclass
class DoaStart:
    """Starting point of one realisation (numpy, unnormalised): X0 (M, L) CM, φ0 (N,), t* (nan: radar-only)."""

    X0: np.ndarray
    phi0: np.ndarray
    t_star: float


def start_points(scn: ScenarioA, channels, variant: str, seed: int) -> list[DoaStart]:
    """A.10 starts for ``variant``; realisation i uses ``realisation_rng(seed, 100000 + i)``."""
    if variant not in VARIANTS:
        raise ValueError(f"variant: expected one of {VARIANTS}, got {variant!r}")
    out = []
    for i, ch in enumerate(channels):
        rng = realisation_rng(seed, 100000 + i)
        if variant == "random-ris":
            phi = np.exp(2j * np.pi * rng.uniform(size=scn.N))
        else:
            phi = init_phi(scn, ch, rng)
        if variant == "radar-only":
            out.append(DoaStart(init_x_radar_only(scn, ch, phi, rng), phi, float("nan")))
        else:
            X, t = init_x(scn, ch, phi)
            out.append(DoaStart(X, phi, t))
    return out


class DoaBatch:
    """Torch batch of the DoA problem: problem, objective, (scaled) constraint and ADMM start state."""

    def __init__(self, scn: ScenarioA, channels, starts, cfg: DoaConfig, variant: str = "ris",
                 dtype=torch.float64):
        self.scn, self.cfg, self.variant = scn, cfg, variant
        self.prob = DoaProblem.from_channels(scn, list(channels), dtype=dtype)
        det = self.prob.det
        self.u0 = det.u_from_numpy([s.X0 for s in starts])
        self.phi0 = det.phi_from_numpy([s.phi0 for s in starts])
        self.prob.set_scale(self.u0, self.phi0, cfg.ridge)
        self.objective = CrbObjective(self.prob, cfg.ridge)
        if variant != "radar-only":
            t = torch.as_tensor([s.t_star for s in starts], dtype=det.dtype)
            det.gscale = 1.0 / torch.clamp(torch.nan_to_num(t, nan=1.0), min=1.0)
        self.ci = CIConstraint(det)
        self.constraint = None if variant == "radar-only" else self.ci
        self.update_phi = variant != "random-ris"

    @property
    def batch(self) -> int:
        return self.prob.batch

    def state0(self) -> AdmmState:
        with torch.no_grad():
            f0 = self.objective.value(self.u0, self.phi0)
        return AdmmState.start(self.u0, self.phi0, f0.detach(), self.scn.K, self.scn.L)

    def crb(self, u, phi) -> torch.Tensor:
        with torch.no_grad():
            return self.prob.crb(u, phi, 0.0)

    def violation(self, u, phi) -> torch.Tensor:
        """max over (k, l) of max(g/γ, 0) per sample (B,) — in units of γ."""
        with torch.no_grad():
            g = self.ci.g(u, phi) / self.prob.det.gscale[:, None, None]     # undo the conditioning scale
            return torch.clamp(g, min=0).amax(dim=(1, 2))

    def designs(self, st: AdmmState):
        """(X list (M, L), φ list) in physical units."""
        X = (st.x.detach() * self.scn.amp).cpu().numpy()
        P = st.phi.detach().cpu().numpy()
        return list(X.astype(np.complex128)), list(P.astype(np.complex128))


def _use_jit(batch: DoaBatch, engine: str) -> bool:
    """Whether inference goes through the compiled kernel (see :meth:`DoaNet.infer`)."""
    from ..unfold.fastnet import HAVE_JIT
    if engine not in ("auto", "torch", "jit"):
        raise ValueError(f"engine: expected one of ('auto', 'torch', 'jit'), got {engine!r}")
    fits = HAVE_JIT and batch.prob.det.dtype == torch.float64 and batch.prob.det.device.type == "cpu"
    if engine == "jit" and not fits:
        raise ValueError("engine: 'jit' needs numba and a float64 batch on the CPU")
    return engine == "jit" or (engine == "auto" and fits)


def run_classical(batch: DoaBatch, T: int | None = None, tol: float = 0.0, engine: str = "auto"):
    """Classical ADMM-(PHR-)ALM-DFP with the constant steps of ``batch.cfg`` [spec A.9]. Returns the state.
    ``engine`` as in :meth:`DoaNet.infer` (the compiled kernel only without the early stop, ``tol`` = 0)."""
    cfg = batch.cfg.admm(batch.update_phi, T)
    if tol == 0 and _use_jit(batch, engine):
        from ..unfold.fastnet import engine_for
        with torch.no_grad():
            return engine_for(cfg, params=batch.cfg.params()).forward(batch)
    with torch.no_grad():
        st, _ = solve(batch.state0(), batch.objective, batch.constraint, cfg, batch.cfg.params(), tol,
                      monitor=(lambda s: batch.crb(s.x, s.phi)) if tol > 0 else None)
    return st


def repair_ci(scn: ScenarioA, chs, X, P, starts, safe_at_phi: bool = False):
    """Per-slot CI restoration of final designs (A's networks do not guarantee feasibility) [RECON].

    Uses the detection task's :func:`isac_opt.paper_a.detect.admm_mm.repair_slots`: slot l of X is pulled along a
    CM-projected segment towards a safe waveform until its K constraints hold, then polished. The safe
    waveform is the A.10 start (default) or, with ``safe_at_phi``, the A.10 worst-case-margin waveform at
    the final φ (computed only for designs with a broken slot; CRB differences were < 0.1 %).
    Returns (X list, number of repaired slots per design).
    """
    from ...ci import ci_margins, ci_thresholds
    from ..channels import effective_user_channels
    from ..detect.admm_mm import repair_slots
    gam = ci_thresholds(scn.noise_comm_w, scn.gamma_db, scn.psk_order)
    out, nrep = [], []
    for ch, x, p, st in zip(chs, X, P, starts):
        m = ci_margins(effective_user_channels(ch, p) @ x, ch.S, scn.psk_order) / gam[:, None]
        bad = int(np.sum(np.any(m < 1.0, axis=0)))
        if bad:
            from ..detect.core import polish_cm_slots
            safe = polish_cm_slots(scn, ch, p, init_x(scn, ch, p)[0]) if safe_at_phi else st.X0
            x = repair_slots(scn, ch, x, p, safe)
        out.append(x)
        nrep.append(bad)
    return out, nrep


# ------------------------------------------------------------------------------------------------
FIT_KEYS = ("M", "L", "Q", "psk_order", "ris_leg_model")


class DoaNet:
    """Unfolded ADMM-PHR-ALM-DFP network for the DoA task [spec A.9]: :class:`UnfoldedAdmm` + metadata.

    The step-size MLPs are shared over (k, l) and take scale-free features (option (a) of A.6), so one
    network runs for any K (the K→K* transfer test) and any N; it is refused for a scenario whose
    M, L, Q, PSK order or leg model differ from the training scenario (its steps are tuned to them).
    """

    def __init__(self, cfg: DoaConfig, train_scn: ScenarioA, hidden: int = 10, seed: int = 0,
                 meta: dict | None = None):
        self.cfg = cfg
        self.train_scn = train_scn
        self.net = UnfoldedAdmm(cfg.admm(True), init=cfg.init(), hidden=hidden, seed=seed)
        self.hidden = hidden
        self.meta = dict(meta or {})

    def check_fits(self, scn: ScenarioA) -> None:
        bad = [f"{k}={getattr(scn, k)!r} (trained with {getattr(self.train_scn, k)!r})" for k in FIT_KEYS
               if getattr(scn, k) != getattr(self.train_scn, k)]
        if bad:
            raise WeightsError("DoA network weights do not fit this scenario: " + ", ".join(bad)
                               + "; retrain with `isac-testbed train doa --scenario FILE.toml --out DIR`")

    def forward(self, batch: DoaBatch, T: int | None = None, layers=None, state=None) -> AdmmState:
        self.check_fits(batch.scn)
        cfg = batch.cfg.admm(batch.update_phi, T or self.cfg.T)
        st = state if state is not None else batch.state0()
        return self.net(st, batch.objective, batch.constraint, layers=layers, cfg=cfg)

    def infer(self, batch: DoaBatch, T: int | None = None, engine: str = "auto") -> AdmmState:
        """Inference without graph. ``engine``: "torch" (the step function), "jit" (the compiled kernel of
        :mod:`isac_opt.paper_a.unfold.fastnet`, same iterates up to rounding) or "auto" (jit when numba is
        installed and the batch is float64 on the CPU)."""
        with torch.no_grad():
            if _use_jit(batch, engine):
                from ..unfold.fastnet import engine_for
                self.check_fits(batch.scn)
                cfg = batch.cfg.admm(batch.update_phi, T or self.cfg.T)
                return engine_for(cfg, net=self.net).forward(batch, layers=range(cfg.T))
            return self.forward(batch, T)

    # ---- persistence --------------------------------------------------------------------------
    def save(self, path) -> None:
        path = Path(path)
        meta = {"format": "ris-isac-testbed/doa-unfolded", "version": 1, "cfg": asdict(self.cfg),
                "hidden": self.hidden, "train_scenario": self.train_scn.to_dict(), **self.meta}
        torch.save({"meta": json.dumps(meta), "state_dict": self.net.state_dict()}, path)

    @classmethod
    def load(cls, path) -> "DoaNet":
        path, blob, meta = read_weights(path, "DoA weights file")
        if meta.get("format") != "ris-isac-testbed/doa-unfolded":
            raise WeightsError(f"{path}: format {meta.get('format')!r}, expected 'ris-isac-testbed/doa-unfolded'")
        cfg = DoaConfig(**meta["cfg"])
        net = cls(cfg, ScenarioA.from_dict(meta["train_scenario"]), meta.get("hidden", 10),
                  meta={k: v for k, v in meta.items() if k not in ("cfg", "hidden", "train_scenario",
                                                                   "format", "version")})
        try:
            net.net.load_state_dict(blob["state_dict"])
        except RuntimeError as e:
            raise WeightsError(f"{path}: weights do not match the recorded configuration ({e})") from None
        return net


def read_weights(path, what: str = "weights file"):
    """Open a ``torch.save``'d {meta (JSON), state_dict} weights file; WeightsError if missing/damaged."""
    path = Path(path)
    if not path.is_file():
        raise WeightsError(f"{path}: no such weights file")
    try:
        blob = torch.load(path, map_location="cpu", weights_only=True)
        meta = json.loads(blob["meta"])
    except Exception as e:  # damaged / foreign file
        raise WeightsError(f"{path}: not a readable {what} ({type(e).__name__}: {e})") from None
    return path, blob, meta


def extend_layers(net: DoaNet, T: int) -> DoaNet:
    """The network with T layers: the first T trained layers; beyond the trained depth, further layers
    reuse the step-size MLPs of the last trained layer (measured on held-out seeds: a lower CRB than
    appending layers at the classical constant steps, e.g. 1.33e-4 vs 1.41e-4 rad² at T = 200)."""
    if T <= net.cfg.T:
        return net
    cache = net.__dict__.setdefault("_extended", {})      # not in meta: meta is saved as JSON
    if T in cache:
        return cache[T]
    from dataclasses import replace
    big = DoaNet(replace(net.cfg, T=T), net.train_scn, net.hidden)
    for t in range(T):
        big.net.layers[t].load_state_dict(net.net.layers[min(t, net.cfg.T - 1)].state_dict())
    cache[T] = big
    return big
