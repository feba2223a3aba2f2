"""The detection network (unfolded ADMM-ALM-DFP, A.6) for paper A: weights, inference, variants.

Weights file (``torch.save`` dict, loaded with ``weights_only=True``): ``state_dict`` and ``meta`` (JSON
string: format, cfg (T, J, R, dfp_variant, handler), init step sizes, hidden width, training scenario,
training command and data sizes). Shipped weights: ``isac_opt/weights/detect_paper-a.pt``.

A network fits a scenario when M, L, Q, the PSK order and the leg model equal the training scenario's
(the feature MLPs are K- and N-agnostic, and the normalisation makes them scale-free in P and Γ);
otherwise :func:`load_net` raises :class:`~isac_opt.errors.MethodError` naming the mismatch.
"""
from __future__ import annotations

import json
import time
from dataclasses import asdict, replace
from pathlib import Path

import numpy as np
import torch

from ..scenario import ScenarioA
from ...errors import MethodError
from ..unfold import AdmmConfig, UnfoldedAdmm, feasibility_layer, repair_ci, solve
from ..unfold import ConstantParams
from ..unfold.model import DEFAULT_INIT as UNFOLD_DEFAULT_INIT
from .core import Batch, make_batch, sinr_db, updates_phi
from ..unfold.fastnet import NumpyNet, engine_for

ENGINES = ("auto", "torch", "numpy")

FORMAT = "ris-isac-testbed/detect-unfolded-weights"
WEIGHTS_DIR = Path(__file__).resolve().parents[2] / "weights"
FIT_FIELDS = ("M", "L", "Q", "psk_order", "ris_leg_model")

# classical step sizes the network starts from (tuned by hand on 8 realisations, see docs/detection.md)
DEFAULT_INIT = {"eta": 0.1, "kappa": 0.1, "tau": 0.3, "zeta": 0.2}
# "lite" shipped configuration (trainable on 2 CPU cores) and the paper's
LITE_CFG = AdmmConfig(T=20, J=2, R=5, dfp_variant="identity", handler="alm")
LITE_LAYERS = 4     # "unfolded-lite": the first 4 trained layers (5x fewer steps than the shipped 20)
FEAS_STEPS = 30   # Newton steps of the final CI feasibility layer (part of the network, docs/detection.md)
FEAS_RELAX = 2.0  # its over-relaxation (measured: 1.0 left 6 % of the slots violated after 20 steps, 2.0 none)
PAPER_CFG = AdmmConfig(T=75, J=8, R=10, dfp_variant="paper", handler="alm")
# weights kinds: "paper-a" = the shipped default network (LITE_CFG trained); "paper-a_paper" = the paper-size
# network (PAPER_CFG, compact DFP (29a)), trained layer-wise for its first ``layers_trained`` layers (meta)
KINDS = {"unfolded": "paper-a", "unfolded-paper": "paper-a_paper"}


def default_weights_path(kind: str = "paper-a") -> Path:
    return WEIGHTS_DIR / f"detect_{kind}.pt"


def save_net(net: UnfoldedAdmm, path, scn: ScenarioA, info: dict | None = None) -> None:
    meta = {"format": FORMAT, "version": 1, "cfg": asdict(net.cfg), "init": net.init_values,
            "hidden": net.hidden, "scenario": scn.to_dict(), "info": info or {}}
    torch.save({"state_dict": net.state_dict(), "meta": json.dumps(meta)}, path)


def load_net(path=None, scn: ScenarioA | None = None, kind: str = "paper-a") -> tuple[UnfoldedAdmm, dict]:
    """Load a detection network (default: the shipped weights of ``kind``, see ``KINDS``); refuse
    (MethodError, one line) a file that is missing, foreign or does not fit ``scn``."""
    path = Path(path) if path is not None else default_weights_path(kind)
    if not path.is_file():
        raise MethodError(f"unfolded detection network: no weights file at {path} "
                          f"(train one with `isac-testbed train detect --out DIR`)")
    try:
        d = torch.load(path, map_location="cpu", weights_only=True)
        meta = json.loads(d["meta"])
    except Exception as e:  # damaged / foreign file
        raise MethodError(f"{path}: not a readable detection-weights file ({type(e).__name__}: {e})") from None
    if meta.get("format") != FORMAT:
        raise MethodError(f"{path}: format {meta.get('format')!r}, expected {FORMAT!r}")
    if scn is not None:
        tr = meta["scenario"]
        bad = [f"{k}: trained {tr.get(k)!r}, scenario {getattr(scn, k)!r}" for k in FIT_FIELDS
               if (list(getattr(scn, k)) if isinstance(getattr(scn, k), tuple) else getattr(scn, k)) != tr.get(k)]
        if bad:
            raise MethodError(f"{path}: these weights do not fit the scenario ({'; '.join(bad)}); "
                              f"retrain with `isac-testbed train detect --scenario FILE --out DIR`")
    net = UnfoldedAdmm(AdmmConfig(**meta["cfg"]), init=meta["init"], hidden=meta["hidden"])
    net.load_state_dict(d["state_dict"])
    net.eval()
    return net, meta


def run_batch(batch: Batch, variant: str, net: UnfoldedAdmm | None = None, cfg: AdmmConfig | None = None,
              params=None, repair: bool = True, tol: float = 0.0, n_layers: int | None = None,
              feas_steps: int = FEAS_STEPS, stats: dict | None = None, engine: str = "auto"):
    """Run the unfolded network (``net``) or the classical solver (``params``/``cfg``) on a batch.

    ``n_layers``: run only the first n layers of ``net`` (the "lite" network: e.g. 4 of 20 layers).
    The network ends with the CI feasibility layer (:func:`~isac_opt.paper_a.unfold.step.feasibility_layer`,
    ``feas_steps`` Newton steps on the violated slots; 0 disables it); ``repair`` then applies the
    per-slot restoration (safety net) and :func:`guard_start` returns the start where the result would be
    infeasible or worse than it. ``stats`` (dict, optional) receives per-sample counts: ``viol_raw``
    (violated (k, l) after the ADMM layers), ``viol_pre_repair`` (after the feasibility layer),
    ``slots_pre_repair`` (violated slots there), ``repaired_slots``, ``sinr_pre_repair_db``,
    ``sinr_db`` (final), ``fallback`` (start returned).

    ``engine``: "torch" (the step function :func:`~isac_opt.paper_a.unfold.step.admm_layer`), "numpy" (the
    same iterates in :mod:`isac_opt.paper_a.unfold.fastnet`, up to rounding; float64 CPU only, no early stop) or "auto" (numpy when
    it applies: float64 on the CPU, ``tol`` = 0, multipliers carried; else torch).

    Returns (x (B, M, L) normalised, φ (B, N), α repair fractions (B, L) or None, seconds).
    """
    if engine not in ENGINES:
        raise ValueError(f"engine: expected one of {ENGINES}, got {engine!r}")
    t0 = time.perf_counter()
    with torch.no_grad():
        c = replace(net.cfg if net is not None else (cfg or LITE_CFG), update_phi=updates_phi(variant))
        fits = (batch.problem.dtype == torch.float64 and batch.problem.device.type == "cpu" and tol == 0
                and not c.reset_beta)
        if engine == "numpy" and not fits:
            raise ValueError("engine: 'numpy' needs float64 on the CPU, tol = 0 and reset_beta = False")
        use_np = engine == "numpy" or (engine == "auto" and fits)
        if net is not None:
            lay = None if n_layers is None else range(min(int(n_layers), net.cfg.T))
            if use_np:
                st = engine_for(c, net=net).forward(batch, layers=lay)
            else:
                st = net(batch.state0, batch.objective, batch.constraint, cfg=c, layers=lay)
        elif use_np:
            st = NumpyNet(c, params=params or ConstantParams(**UNFOLD_DEFAULT_INIT)).forward(batch)
        else:
            mon = (lambda s: batch.problem.sinr(s.x, s.phi)) if tol > 0 else None
            st, _ = solve(batch.state0, batch.objective, batch.constraint, c, params, tol=tol, monitor=mon)
        x, phi = st.x, st.phi
        al = None
        info = {}
        if batch.constraint is not None:
            info["viol_raw"] = (batch.constraint.g(x, phi) > 0).sum(dim=(1, 2))
            if feas_steps:
                x = feasibility_layer(batch.constraint, x, phi, steps=feas_steps, relax=FEAS_RELAX)
            g = batch.constraint.g(x, phi)
            info["viol_pre_repair"] = (g > 0).sum(dim=(1, 2))
            info["slots_pre_repair"] = (g > 0).any(dim=1).sum(dim=1)
            info["sinr_pre_repair_db"] = torch.as_tensor(sinr_db(batch.problem, x, phi))
        if repair and batch.constraint is not None:
            x, al = repair_ci(batch.constraint, x, phi, batch.state0.x)
            x = _polish_left(batch, x, phi)
            info["repaired_slots"] = (al > 0).sum(dim=1)
        x, phi, fb = guard_start(batch, x, phi)
        info["fallback"] = fb
        info["sinr_db"] = torch.as_tensor(sinr_db(batch.problem, x, phi))
    if stats is not None:
        for k, v in info.items():
            stats[k] = v.detach().cpu().numpy()
    return x, phi, al, time.perf_counter() - t0


def guard_start(batch: Batch, x, phi, tol: float = 0.0):
    """Keep the (feasible) start where the result is CI-infeasible or has a lower SINR than the start.

    Feasible = every normalised CI constraint ≤ ``tol`` (none for radar-only). The start of the ``ris``,
    ``random-ris`` and ``no-ris`` variants is the A.10 worst-case-margin waveform (CI-polished), so the
    returned design is never worse than the method's own feasible start. Returns (x, φ, fallback (B,) bool).
    """
    s = batch.state0
    F = batch.problem.sinr(x, phi)
    F0 = batch.problem.sinr(s.x, s.phi)
    if batch.constraint is not None:
        ok = (batch.constraint.g(x, phi) <= tol).all(dim=2).all(dim=1)
        ok0 = (batch.constraint.g(s.x, s.phi) <= tol).all(dim=2).all(dim=1)
    else:
        ok = ok0 = torch.ones_like(F, dtype=torch.bool)
    fb = ok0 & (~ok | (F < F0))
    x = torch.where(fb[:, None, None], s.x, x)
    phi = torch.where(fb[:, None], s.phi, phi)
    return x, phi, fb


def _polish_left(batch: Batch, x, phi):
    """Slots still violated after :func:`repair_ci` (the start waveform itself violates CI at the final φ):
    CM margin ascent of :func:`~isac_opt.paper_a.detect.core.polish_cm_slots` (numpy, rare)."""
    from .core import polish_cm_slots
    bad = (batch.constraint.g(x, phi) > 0).any(dim=1).any(dim=1)
    if not bool(bad.any()):
        return x
    scn = batch.problem.scn
    x = x.clone()
    for i in torch.nonzero(bad).flatten().tolist():
        s = batch.starts[i]
        X = x[i].detach().cpu().to(torch.complex128).numpy() * scn.amp
        ph = phi[i].detach().cpu().to(torch.complex128).numpy()
        Xp = polish_cm_slots(scn, s.channels, ph, X)
        x[i] = torch.as_tensor(Xp / scn.amp, dtype=x.dtype, device=x.device)
    return x


def to_numpy_designs(batch: Batch, x, phi) -> list:
    """Unnormalised (X (M, L), φ (N,)) per sample, exactly CM/UM."""
    amp = batch.problem.scn.amp
    xs = (x.detach().cpu().to(torch.complex128).numpy()) * amp
    ps = phi.detach().cpu().to(torch.complex128).numpy()
    out = []
    for X, p in zip(xs, ps):
        out.append((amp * np.exp(1j * np.angle(X)), np.exp(1j * np.angle(p))))
    return out


def design_starts(scn: ScenarioA, starts: list, variant: str, net=None, dtype=torch.float64, **kw):
    """Designs for a list of start points (batched)."""
    b = make_batch(scn, starts, variant, dtype=dtype)
    x, phi, al, dt = run_batch(b, variant, net=net, **kw)
    return to_numpy_designs(b, x, phi), al, dt
