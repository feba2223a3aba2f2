"""Certified, multi-start CRB minimisation for paper A's DoA task [spec A.9; issue 12].

A method that minimises the CRB must not lose on the CRB to a method that does not (the SINR-maximising
detection design), and must return a CI-feasible design that is never worse than its own feasible start.
Paper A's Algorithm 2 guarantees neither: from the A.10 start it often stops in a worse local point than
the detection design (measured on held-out seeds: 8 of 10), and its last iterate can violate CI. This
module wraps any ADMM-PHR runner (the unfolded network or the classical solver) in

* **several starts** per realisation (``"a10"``: the A.10 start; ``"detection"``: the detection design of
  the same realisation, :func:`isac_opt.paper_a.detect.methods.detection_designs`; ``"radar"``: the radar-only
  DoA design with its slots pulled into CI by the feasibility layer + repair), run as one batch;
* **best feasible iterate**: after every layer the CRB of the (CM/UM) iterate is recorded where all CI
  constraints hold; the start itself is the first candidate;
* the network's **final CI feasibility layer** (:func:`isac_opt.paper_a.unfold.step.feasibility_layer`) and the
  per-slot repair (:func:`isac_opt.paper_a.doa.model.repair_ci`) on the last iterate;

and returns, per realisation, the feasible candidate of smallest CRB. Shapes: lists of X (M, L) complex
(physical units, |x_i| = sqrt(P/M)), φ (N,) unit modulus; CRB in rad².
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from ..scenario import ScenarioA
from ..unfold import feasibility_layer
from .model import DoaBatch, DoaStart, repair_ci, start_points

START_KINDS = ("a10", "detection", "radar")
FEAS_STEPS = 20


@dataclass
class Candidate:
    X: np.ndarray
    phi: np.ndarray
    crb: float
    feasible: bool
    source: str


def _ci_ok(scn: ScenarioA, ch, X, phi, tol: float = 0.0) -> bool:
    from ..channels import effective_user_channels
    from ...ci import ci_margins, ci_thresholds
    gam = ci_thresholds(scn.noise_comm_w, scn.gamma_db, scn.psk_order)
    m = ci_margins(effective_user_channels(ch, phi) @ X, ch.S, scn.psk_order) / gam[:, None]
    return bool(m.min() >= 1.0 - tol)


def _crb(scn, ch, X, phi) -> float:
    from ..crb import crb_doa
    return float(crb_doa(scn, ch, X, phi))


def _cm(scn, X, phi):
    return scn.amp * np.exp(1j * np.angle(X)), np.exp(1j * np.angle(phi))


def build_starts(scn: ScenarioA, chs, kinds, seed: int, seeds=None) -> list[list[DoaStart]]:
    """Start points per kind: list over kinds of lists over realisations (:class:`DoaStart`).

    ``seeds``: per-realisation seeds of the detection design (default ``seed + i``; the ``design`` method
    passes its own seed so that the start is exactly the ``unfolded`` method's design).
    """
    a10 = start_points(scn, chs, "ris", seed)
    out = []
    for k in kinds:
        if k == "a10":
            out.append(a10)
        elif k == "detection":
            from ..detect.methods import detection_designs
            sd = list(seeds) if seeds is not None else [seed + i for i in range(len(chs))]
            dd = detection_designs(scn, chs, sd)
            out.append([DoaStart(X, p, s.t_star) for (X, p), s in zip(dd, a10)])
        elif k == "radar":
            out.append(radar_projected_starts(scn, chs, seed, a10))
        else:
            raise ValueError(f"starts: expected kinds from {START_KINDS}, got {k!r}")
    return out


def radar_projected_starts(scn: ScenarioA, chs, seed: int, a10=None) -> list[DoaStart]:
    """Radar-only DoA design (classical solver, no CI) pulled into the CI set: feasibility layer, then
    the per-slot repair towards the A.10 start (φ kept)."""
    from .weights import load_net
    from .model import run_classical
    net = load_net("unfolded-doa")
    a10 = a10 if a10 is not None else start_points(scn, chs, "ris", seed)
    rs = start_points(scn, chs, "radar-only", seed)
    b = DoaBatch(scn, chs, rs, net.cfg, "radar-only")
    X, P = b.designs(run_classical(b))
    X, P = map(list, zip(*[_cm(scn, x, p) for x, p in zip(X, P)]))
    bc = DoaBatch(scn, chs, [DoaStart(x, p, s.t_star) for x, p, s in zip(X, P, a10)], net.cfg, "ris")
    with torch.no_grad():
        u = feasibility_layer(bc.ci, bc.u0, bc.phi0, steps=4 * FEAS_STEPS)
    X = [scn.amp * np.exp(1j * np.angle(x)) for x in u.numpy()]
    X, _ = repair_ci(scn, chs, X, P, a10, safe_at_phi=True)
    return [DoaStart(x, p, s.t_star) for x, p, s in zip(X, P, a10)]


def run_certified(scn: ScenarioA, chs, start_sets, runner, cfg, feas_steps: int = FEAS_STEPS,
                  a10=None, info: dict | None = None):
    """Run ``runner(batch, trace)`` (→ final AdmmState; calls ``trace(state)`` after every layer) from every
    start set, keep per realisation the feasible candidate of smallest CRB.

    start_sets : list (kinds) of lists (realisations) of :class:`DoaStart`; ``a10`` (list of DoaStart) is the
    safe waveform of the repair (default: the first set). Returns (X list, φ list); ``info`` (dict) gets
    ``source`` (which start/candidate won), ``crb``, ``crb_start_best`` per realisation, ``viol_raw`` and
    ``viol_pre_repair`` (violated (k, l) of the last iterate before/after the feasibility layer).
    """
    n = len(chs)
    kinds = len(start_sets)
    a10 = a10 if a10 is not None else start_sets[0]
    flat = [s for ss in start_sets for s in ss]
    chs_f = list(chs) * kinds
    b = DoaBatch(scn, chs_f, flat, cfg, "ris")
    B = b.batch
    rdt = b.u0.real.dtype
    best_crb = torch.full((B,), float("inf"), dtype=rdt)
    best_u, best_phi = b.u0.clone(), b.phi0.clone()

    def trace(st):
        with torch.no_grad():
            ok = (b.ci.g(st.x, st.phi) <= 0).all(dim=2).all(dim=1)
            c = b.crb(st.x, st.phi)
            better = ok & (c < best_crb) & torch.isfinite(c)
            best_crb.copy_(torch.where(better, c, best_crb))
            best_u.copy_(torch.where(better[:, None, None], st.x, best_u))
            best_phi.copy_(torch.where(better[:, None], st.phi, best_phi))
        return None

    trace(b.state0())                       # the start itself is a candidate (if feasible)
    st = runner(b, trace)
    with torch.no_grad():
        viol_raw = (b.ci.g(st.x, st.phi) > 0).sum(dim=(1, 2))
        x = feasibility_layer(b.ci, st.x, st.phi, steps=feas_steps) if feas_steps else st.x
        viol_pre = (b.ci.g(x, st.phi) > 0).sum(dim=(1, 2))
    Xl = list((x.numpy() * scn.amp).astype(np.complex128))
    Pl = list(st.phi.numpy().astype(np.complex128))
    Xl, Pl = map(list, zip(*[_cm(scn, a, p) for a, p in zip(Xl, Pl)]))
    Xr, _ = repair_ci(scn, chs_f, Xl, Pl, list(a10) * kinds)
    Xb = list((best_u.numpy() * scn.amp).astype(np.complex128))
    Pb = list(best_phi.numpy().astype(np.complex128))
    outX, outP, src, crbs = [], [], [], []
    names = [f"start{k}" for k in range(kinds)]
    for i in range(n):
        cands = []
        for k in range(kinds):
            j = k * n + i
            for X, p, tag in ((Xr[j], Pl[j], "final"), (*_cm(scn, Xb[j], Pb[j]), "best-iterate"),
                              (*_cm(scn, flat[j].X0, flat[j].phi0), "start")):
                cands.append(Candidate(X, p, _crb(scn, chs[i], X, p), _ci_ok(scn, chs[i], X, p),
                                       f"{names[k]}:{tag}"))
        feas = [c for c in cands if c.feasible and np.isfinite(c.crb)]
        pool = feas if feas else cands
        w = min(pool, key=lambda c: c.crb)
        outX.append(w.X)
        outP.append(w.phi)
        src.append(w.source)
        crbs.append(w.crb)
    if info is not None:
        info.update(source=src, crb=crbs, viol_raw=viol_raw.numpy().reshape(kinds, n),
                    viol_pre_repair=viol_pre.numpy().reshape(kinds, n))
    return outX, outP


def certify_single(scn: ScenarioA, chs, X, P, starts, info: dict | None = None):
    """Per realisation, the feasible one of {(X, φ), the start} with the smaller CRB (X, φ CM/UM-projected)."""
    oX, oP, src = [], [], []
    for ch, x, p, s in zip(chs, X, P, starts):
        c = [Candidate(*_cm(scn, x, p), 0.0, False, "final"), Candidate(*_cm(scn, s.X0, s.phi0), 0.0, False, "start")]
        for a in c:
            a.crb, a.feasible = _crb(scn, ch, a.X, a.phi), _ci_ok(scn, ch, a.X, a.phi)
        pool = [a for a in c if a.feasible and np.isfinite(a.crb)] or c
        w = min(pool, key=lambda a: a.crb)
        oX.append(w.X)
        oP.append(w.phi)
        src.append(w.source)
    if info is not None:
        info.update(source=src)
    return oX, oP
