"""Paper-B design files (``format = "ris-isac-testbed/paper-b-design"``, ``version = 1``).

One ``.npz`` (no pickles) holding the design and the realisation it was made for, normalised to unit
radar-receiver noise (receive legs divided by sigma_r, spec B.2 / model docstring):

============  ======================  ===================================================================
key           dtype, shape            meaning [spec B.1-B.5]
============  ======================  ===================================================================
X             complex (P_c, L, N_t)   waveform, X[p, l] = x_p[l]; x = X.reshape(-1)
phi           complex (R, N)          active-RIS coefficients, |phi| <= a_max
W             complex (P_c, L_r, N_r) STAP filter, w^H t = 1
history       float (n_iter,)         SCNR (linear) per outer iteration
S             complex (K, P_c L)      PSK symbols s_{k,n}, n = p L + l
hd_H          complex (K, N_t)        rows h_k^H;  hr_H (R, K, N) rows h_{r,k}^H;  G (R, N, N_t) BS->RIS
Gn            complex (R, N_r, N)     (sigma_v / sigma_r) G~_r (RIS noise to the BS)
t_rx, t_tx    complex (N_r,), (N_t,)  target direct legs;  t_Erx (R, N_r, N), t_Etx (R, N, N_t) RIS legs
t_delay       int64 (1+3R,)           target path delays [samples]; t_doppler complex (1+3R, P_c); t_freq (1+3R,)
c_rx, c_tx    complex (Q, N_r), (Q, N_t); c_Erx (Q, R, N_r, N), c_Etx (Q, R, N, N_t); c_delay int64 (Q, 1+3R);
              c_doppler complex (Q, 1+3R, P_c); c_freq (Q, 1+3R)
meta          str (JSON)              see below
============  ======================  ===================================================================

``meta`` keys: ``format``, ``version``, ``Nt``, ``Nr``, ``N``, ``R``, ``K``, ``Q``, ``Pc``, ``L``, ``Lr``,
``psk_order``, ``amp``, ``a_max``, ``sigma_t_sq``, ``sigma_q_sq`` (Q), ``noise_comm_w`` (K), ``gamma_lin`` (K),
``noise_ris_w``, ``ris_noise_to_users``, ``leg_model``, ``method``, ``seed``, ``metrics``, ``extra``,
``scenario`` (the full ScenarioB dict; for ``no-ris`` the scenario without RISs, R = 0 and the same L_r
through ``lr_extra``), ``problem`` ({"ci", "cm"}: the constraint families of the method's problem),
``tolerances`` ({"ci", "cm", "ris"}, :data:`isac_opt.paper_b.certify.TOLERANCES`; what
:meth:`DesignB.violations` uses), ``software_version``, ``created_utc``. Files without ``problem`` /
``tolerances`` get the method's families and the default tolerances.

:func:`load` checks format, version, every shape, dtype and finiteness and the meta/scenario
consistency, and raises :class:`~isac_opt.errors.DesignFileError` on a damaged, truncated or foreign file.
"""
from __future__ import annotations

import datetime as _dt
import json

import numpy as np

from .. import __version__
from ..designfile import jsonable
from ..errors import DesignFileError, ScenarioError
from .certify import TOLERANCES, check_tolerances
from .model import ChannelsB, Scatterer
from .scenario import ScenarioB

FORMAT = "ris-isac-testbed/paper-b-design"
VERSION = 1


def _shapes(m: dict) -> dict:
    """Expected (shape, kind) per array, kind 'c' complex, 'f' float, 'i' integer."""
    Nt, Nr, N, R, K, Q, Pc, L, Lr = (m[k] for k in ("Nt", "Nr", "N", "R", "K", "Q", "Pc", "L", "Lr"))
    P = 1 + 3 * R
    return {
        "X": ((Pc, L, Nt), "c"), "phi": ((R, N), "c"), "W": ((Pc, Lr, Nr), "c"), "history": (None, "f"),
        "S": ((K, Pc * L), "c"), "hd_H": ((K, Nt), "c"), "hr_H": ((R, K, N), "c"), "G": ((R, N, Nt), "c"),
        "Gn": ((R, Nr, N), "c"),
        "t_rx": ((Nr,), "c"), "t_tx": ((Nt,), "c"), "t_Erx": ((R, Nr, N), "c"), "t_Etx": ((R, N, Nt), "c"),
        "t_delay": ((P,), "i"), "t_doppler": ((P, Pc), "c"), "t_freq": ((P,), "f"),
        "c_rx": ((Q, Nr), "c"), "c_tx": ((Q, Nt), "c"), "c_Erx": ((Q, R, Nr, N), "c"),
        "c_Etx": ((Q, R, N, Nt), "c"), "c_delay": ((Q, P), "i"), "c_doppler": ((Q, P, Pc), "c"),
        "c_freq": ((Q, P), "f"),
    }


def channel_arrays(ch: ChannelsB) -> dict:
    t, cl = ch.target, ch.clutter
    Q, R = ch.Q, ch.R
    st = lambda f, shp, dt: np.stack([getattr(c, f) for c in cl]).astype(dt) if Q else np.zeros(shp, dt)
    P = 1 + 3 * R
    return {
        "S": ch.S, "hd_H": ch.hd_H, "hr_H": ch.hr_H, "G": ch.G, "Gn": ch.Gn,
        "t_rx": t.rx_b, "t_tx": t.tx_b, "t_Erx": t.E_rx, "t_Etx": t.E_tx,
        "t_delay": t.delay.astype(np.int64), "t_doppler": t.doppler, "t_freq": t.freq.astype(np.float64),
        "c_rx": st("rx_b", (0, ch.Nr), complex), "c_tx": st("tx_b", (0, ch.Nt), complex),
        "c_Erx": st("E_rx", (0, R, ch.Nr, ch.N), complex), "c_Etx": st("E_tx", (0, R, ch.N, ch.Nt), complex),
        "c_delay": st("delay", (0, P), np.int64), "c_doppler": st("doppler", (0, P, ch.Pc), complex),
        "c_freq": st("freq", (0, P), np.float64),
    }


def _meta(d) -> dict:
    ch = d.channels
    return {
        "format": FORMAT, "version": VERSION,
        "Nt": ch.Nt, "Nr": ch.Nr, "N": ch.N, "R": ch.R, "K": ch.K, "Q": ch.Q, "Pc": ch.Pc, "L": ch.L,
        "Lr": ch.Lr, "psk_order": ch.psk_order, "amp": ch.amp, "a_max": ch.a_max,
        "sigma_t_sq": ch.sigma_t_sq, "sigma_q_sq": [float(v) for v in ch.sigma_q_sq],
        "noise_comm_w": [float(v) for v in ch.noise_comm_w], "gamma_lin": [float(v) for v in ch.gamma_lin],
        "noise_ris_w": ch.noise_ris_w, "ris_noise_to_users": bool(ch.ris_noise_to_users),
        "leg_model": ch.leg_model, "method": d.method, "seed": d.seed,
        "metrics": jsonable(d.metrics), "extra": jsonable(d.extra), "scenario": d.scenario.to_dict(),
        "problem": {"ci": bool(d.problem["ci"]), "cm": bool(d.problem["cm"])},
        "tolerances": dict(d.tolerances),
        "software_version": __version__,
        "created_utc": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
    }


def save(d, path) -> None:
    """Write design ``d`` (:class:`~isac_opt.paper_b.design.DesignB`) to ``path`` (.npz)."""
    arrays = channel_arrays(d.channels)
    arrays.update(X=d.X, phi=d.phi, W=d.W, history=np.asarray(d.history, np.float64))
    with open(path, "wb") as f:
        np.savez(f, meta=np.array(json.dumps(_meta(d))), **arrays)


def _check(path, arrays: dict, meta: dict) -> None:
    for k, (shp, kind) in _shapes(meta).items():
        if k not in arrays:
            raise DesignFileError(f"{path}: missing array '{k}'")
        a = arrays[k]
        if kind == "c" and not (np.iscomplexobj(a) or (a.size == 0 and a.dtype.kind in "fc")):
            raise DesignFileError(f"{path}: array '{k}' has dtype {a.dtype}, expected complex")
        if kind == "f" and a.dtype.kind != "f":
            raise DesignFileError(f"{path}: array '{k}' has dtype {a.dtype}, expected float")
        if kind == "i" and a.dtype.kind not in "iu":
            raise DesignFileError(f"{path}: array '{k}' has dtype {a.dtype}, expected integer")
        if shp is not None and a.shape != shp:
            raise DesignFileError(f"{path}: array '{k}' has shape {a.shape}, expected {shp}")
        if shp is None and a.ndim != 1:
            raise DesignFileError(f"{path}: array '{k}' has shape {a.shape}, expected one dimension")
        if kind != "i" and not np.all(np.isfinite(a)):
            raise DesignFileError(f"{path}: array '{k}' contains NaN or Inf")


def parse(path, meta: dict, arrays: dict) -> tuple:
    """Check an opened file (``meta``, ``arrays`` from :func:`~isac_opt.designfile.read_meta`) and return the
    positional fields of :class:`~isac_opt.paper_b.design.DesignB`; DesignFileError on damage."""
    if meta.get("format") != FORMAT:
        raise DesignFileError(f"{path}: format {meta.get('format')!r} is not {FORMAT!r}")
    if meta.get("version") != VERSION:
        raise DesignFileError(f"{path}: unsupported design-file version {meta.get('version')!r} "
                              f"(this software reads version {VERSION})")
    try:
        scn = ScenarioB.from_dict(meta["scenario"])
    except KeyError:
        raise DesignFileError(f"{path}: meta has no 'scenario'") from None
    except (ScenarioError, TypeError) as e:
        raise DesignFileError(f"{path}: invalid scenario in meta: {e}") from None
    for k in ("Nt", "Nr", "N", "R", "K", "Q", "Pc", "L", "psk_order"):
        if meta.get(k) != getattr(scn, k):
            raise DesignFileError(f"{path}: meta '{k}' = {meta.get(k)!r} disagrees with its scenario "
                                  f"({getattr(scn, k)!r})")
    try:
        for k in ("Lr",):
            if not isinstance(meta.get(k), int) or meta[k] < scn.L:
                raise DesignFileError(f"{path}: meta '{k}' = {meta.get(k)!r} is not an integer >= L")
        _check(path, arrays, meta)
        Q = meta["Q"]
        sq, nc, gl = (np.asarray(meta[k], np.float64) for k in ("sigma_q_sq", "noise_comm_w", "gamma_lin"))
        if sq.shape != (Q,) or nc.shape != (meta["K"],) or gl.shape != (meta["K"],):
            raise DesignFileError(f"{path}: meta sigma_q_sq / noise_comm_w / gamma_lin have wrong lengths")
        c = lambda k: arrays[k].astype(np.complex128)
        tgt = Scatterer(c("t_rx"), c("t_tx"), c("t_Erx"), c("t_Etx"), arrays["t_delay"].astype(int),
                        c("t_doppler"), arrays["t_freq"].astype(np.float64))
        cl = [Scatterer(c("c_rx")[q], c("c_tx")[q], c("c_Erx")[q], c("c_Etx")[q],
                        arrays["c_delay"][q].astype(int), c("c_doppler")[q],
                        arrays["c_freq"][q].astype(np.float64)) for q in range(Q)]
        ch = ChannelsB(Nt=meta["Nt"], Nr=meta["Nr"], N=meta["N"], R=meta["R"], K=meta["K"], Q=Q,
                       Pc=meta["Pc"], L=meta["L"], Lr=meta["Lr"], amp=float(meta["amp"]),
                       a_max=float(meta["a_max"]), psk_order=meta["psk_order"],
                       sigma_t_sq=float(meta["sigma_t_sq"]), sigma_q_sq=sq, target=tgt, clutter=cl,
                       Gn=c("Gn"), hd_H=c("hd_H"), hr_H=c("hr_H"), G=c("G"), S=c("S"), noise_comm_w=nc,
                       gamma_lin=gl, noise_ris_w=float(meta.get("noise_ris_w", 0.0)),
                       ris_noise_to_users=bool(meta.get("ris_noise_to_users", True)),
                       leg_model=str(meta.get("leg_model", scn.ris_leg_model)))
    except (KeyError, TypeError, ValueError) as e:
        if isinstance(e, DesignFileError):
            raise
        raise DesignFileError(f"{path}: inconsistent paper-B design file ({type(e).__name__}: {e})") from None
    try:
        tol = check_tolerances(meta.get("tolerances", TOLERANCES), "meta 'tolerances'")
    except ValueError as e:
        raise DesignFileError(f"{path}: {e}") from None
    problem = meta.get("problem")
    if problem is not None:
        if not (isinstance(problem, dict) and set(problem) == {"ci", "cm"}
                and all(isinstance(v, bool) for v in problem.values())):
            raise DesignFileError(f"{path}: meta 'problem' = {problem!r}, expected {{\"ci\": bool, \"cm\": bool}}")
        problem = dict(problem)
    return (scn, ch, c("X"), c("phi"), c("W"), str(meta.get("method", "?")), int(meta.get("seed", -1)),
                   arrays["history"].astype(np.float64), dict(meta.get("metrics") or {}),
                   dict(meta.get("extra") or {}), problem, tol)
