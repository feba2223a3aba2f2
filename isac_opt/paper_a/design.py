"""Paper A's design: scenario, realisation, waveform X, RIS φ, MVDR filter w, metrics, and its file layout.

Layout (``format = "ris-isac-testbed/paper-a-design"``, ``version = 1``), one ``.npz``:

=========  ==================  =====================================================================
key        dtype, shape        meaning [spec A.1–A.4]
=========  ==================  =====================================================================
X          complex128 (M, L)   transmit waveform; x = vec(X), slot-major (antenna index fastest)
phi        complex128 (N,)     RIS coefficients (|φ_n| = 1 for a final design)
S          complex128 (K, L)   PSK symbols s_k[l]
G          complex128 (N, M)   BS→RIS channel
h_bt       complex128 (M,)     BS–target LoS;  h_rt (N,) RIS–target LoS
h_bq       complex128 (Q, M)   BS–clutter;     h_rq (Q, N) RIS–clutter
h_k        complex128 (K, M)   BS→user (used as h_kᴴ); h_rk (K, N) RIS→user (used as h_{r,k}ᴴ)
w          complex128 (M·L,)   space-time receive filter (MVDR at save time, wᴴs = 1)
meta       str (JSON)          see below
=========  ==================  =====================================================================

``meta`` keys: ``format``, ``version``, ``M``, ``N``, ``K``, ``L``, ``Q``, ``psk_order``, ``power_w``,
``noise_radar_w``, ``noise_comm_w`` (K), ``gamma_db`` (K), ``xi0_sq``, ``xi_q_sq`` (Q), ``clutter_bins`` (Q),
``theta0_rad``, ``theta_ris_rad``, ``ris_leg_model``, ``method``, ``seed``, ``metrics`` (``sinr_db``, ``crb``,
``ci_min_margin``, ``ci_violation_max``, ``ser``, …), ``scenario`` (the full scenario dict), ``extra``,
``software_version``, ``created_utc``. Conventions are the spec's literally:
H0 = (h_bt + GᴴΦh_rt)(h_btᴴ + h_rtᴴΦG) in the literal leg model.

:func:`load` checks the version, every shape, dtype and finiteness, and the meta/scenario consistency;
the generic container (:mod:`isac_opt.designfile`) opens the file and dispatches here.
"""
from __future__ import annotations

import datetime as _dt
import json
from dataclasses import dataclass, field

import numpy as np

from .. import __version__
from ..ci import ber_analytic_qpsk, ci_margins, ci_thresholds, ser_analytic
from ..designfile import jsonable, meta_typed
from ..errors import DesignFileError, ScenarioError
from .radar import echo, mvdr_filter, sinr_mvdr, sinr_of_filter
from ..radar import pd_from_pfa
from .channels import CHANNEL_FIELDS, ChannelsA, effective_user_channels
from .crb import crb_doa
from .scenario import ScenarioA


FORMAT_A = "ris-isac-testbed/paper-a-design"
VERSION = 1


def evaluate_a(scn: ScenarioA, ch: ChannelsA, X, phi, w=None, pfa: float = 1e-3) -> dict:
    """Metrics of a paper-A design: SINR (MVDR, and of ``w`` if given), CRB, CI margins, SER, Pd."""
    e = echo(scn, ch, X, phi)
    sinr = sinr_mvdr(e)
    Z = effective_user_channels(ch, phi) @ X
    gamma = ci_thresholds(scn.noise_comm_w, scn.gamma_db, scn.psk_order)
    mnorm = ci_margins(Z, ch.S, scn.psk_order) / gamma[:, None]
    ser = ser_analytic(Z, ch.S, np.asarray(scn.noise_comm_w), scn.psk_order)
    out = {
        "sinr_db": 10 * np.log10(sinr),
        "crb": crb_doa(scn, ch, X, phi),
        "ci_min_margin": float(mnorm.min()),
        "ci_violation_max": float(max(0.0, 1.0 - mnorm.min())),
        "ci_satisfied_frac": float(np.mean(mnorm >= 1.0 - 1e-9)),
        "ser": float(ser.mean()),
        "ser_per_user": [float(v) for v in ser.mean(axis=1)],
        "pfa": pfa,
        "pd": float(pd_from_pfa(pfa, sinr)),
    }
    if scn.psk_order == 4:
        out["ber"] = float(ber_analytic_qpsk(Z, ch.S, np.asarray(scn.noise_comm_w)).mean())
    if w is not None:
        out["sinr_filter_db"] = 10 * np.log10(sinr_of_filter(e, w))
    return out


@dataclass
class DesignA:
    """A paper-A design: scenario, realisation, waveform, RIS, filter, metrics."""

    scenario: ScenarioA
    channels: ChannelsA
    X: np.ndarray
    phi: np.ndarray
    w: np.ndarray
    method: str
    seed: int
    metrics: dict = field(default_factory=dict)
    extra: dict = field(default_factory=dict)

    kind = "paper-a"

    @classmethod
    def build(cls, scn, ch, X, phi, method: str, seed: int, extra: dict | None = None) -> "DesignA":
        """Compute the MVDR filter and the metrics of (X, φ) and wrap them as a design."""
        X = np.asarray(X, dtype=np.complex128)
        phi = np.asarray(phi, dtype=np.complex128)
        w = mvdr_filter(echo(scn, ch, X, phi))
        d = cls(scn, ch, X, phi, w, method, int(seed), {}, dict(extra or {}))
        d.metrics = evaluate_a(scn, ch, X, phi, w)
        return d

    def report(self, pfa: float = 1e-3) -> dict:
        """Re-evaluate from the stored arrays (never trusts the saved metrics)."""
        r = {"scenario": self.kind, "method": self.method, "seed": self.seed}
        r.update(evaluate_a(self.scenario, self.channels, self.X, self.phi, self.w, pfa))
        return r

    def violations(self) -> list[str]:
        """Violated constraints of the design's problem [spec A.5]: CM |x_i| = √(P/M), |φ_n| = 1, and CI
        m_{k,l}/γ_k ≥ 1 unless the method is radar-only (:mod:`isac_opt.contract` tolerances)."""
        from ..contract import ci_violation, has_ci, modulus_violation
        s, ch = self.scenario, self.channels
        v = modulus_violation(self.X, s.amp, "CM (|x| = sqrt(P/M))")
        v += modulus_violation(self.phi, 1.0, "RIS unit modulus")
        if has_ci(self.method):
            Z = effective_user_channels(ch, self.phi) @ self.X
            gamma = ci_thresholds(s.noise_comm_w, s.gamma_db, s.psk_order)
            v += ci_violation(ci_margins(Z, ch.S, s.psk_order) / gamma[:, None])
        return v

    def meta(self) -> dict:
        s = self.scenario
        return {
            "format": FORMAT_A, "version": VERSION,
            "M": s.M, "N": s.N, "K": s.K, "L": s.L, "Q": s.Q, "psk_order": s.psk_order,
            "power_w": s.power_w, "noise_radar_w": s.noise_radar_w, "noise_comm_w": list(s.noise_comm_w),
            "gamma_db": list(s.gamma_db), "xi0_sq": s.xi0_sq, "xi_q_sq": list(s.xi_q_sq),
            "clutter_bins": list(s.clutter_bins), "theta0_rad": s.theta0_rad,
            "theta_ris_rad": s.theta_ris_rad, "ris_leg_model": s.ris_leg_model,
            "method": self.method, "seed": self.seed, "metrics": jsonable(self.metrics),
            "extra": jsonable(self.extra), "scenario": s.to_dict(),
            "software_version": __version__,
            "created_utc": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
        }

    def save(self, path) -> None:
        arrays = self.channels.arrays()
        arrays.update(X=self.X, phi=self.phi, w=self.w)
        with open(path, "wb") as f:
            np.savez(f, meta=np.array(json.dumps(self.meta())), **arrays)


def load(path, meta: dict, arrays: dict) -> DesignA:
    if meta.get("version") != VERSION:
        raise DesignFileError(f"{path}: unsupported design-file version {meta.get('version')!r} "
                              f"(this software reads version {VERSION})")
    if "scenario" not in meta:
        raise DesignFileError(f"{path}: meta has no 'scenario'")
    sd = meta_typed(path, meta, "scenario", (dict,), "an object (the scenario's fields)")
    if sd is None:
        raise DesignFileError(f"{path}: meta 'scenario' expected an object (the scenario's fields), got null")
    method = meta_typed(path, meta, "method", (str,), "a string", "?")
    seed = meta_typed(path, meta, "seed", (int,), "an integer", -1)
    metrics = meta_typed(path, meta, "metrics", (dict,), "an object", {})
    extra = meta_typed(path, meta, "extra", (dict,), "an object", {})
    try:
        scn = ScenarioA.from_dict(sd)
    except (ScenarioError, TypeError) as e:
        raise DesignFileError(f"{path}: invalid scenario in meta: {e}") from None
    for k in ("M", "N", "K", "L", "Q", "psk_order"):
        if meta.get(k) != getattr(scn, k):
            raise DesignFileError(f"{path}: meta '{k}' = {meta.get(k)!r} disagrees with its scenario "
                                  f"({getattr(scn, k)!r})")
    shapes = {k: f(scn) for k, f in CHANNEL_FIELDS.items()}
    shapes.update(X=(scn.M, scn.L), phi=(scn.N,), w=(scn.M * scn.L,))
    for k, shp in shapes.items():
        if k not in arrays:
            raise DesignFileError(f"{path}: missing array '{k}'")
        a = arrays[k]
        if a.shape != shp:
            raise DesignFileError(f"{path}: array '{k}' has shape {a.shape}, expected {shp}")
        if not np.iscomplexobj(a):
            raise DesignFileError(f"{path}: array '{k}' has dtype {a.dtype}, expected complex")
        if not np.all(np.isfinite(a)):
            raise DesignFileError(f"{path}: array '{k}' contains NaN or Inf")
    ch = ChannelsA(**{k: arrays[k].astype(np.complex128) for k in CHANNEL_FIELDS})
    return DesignA(scn, ch, arrays["X"].astype(np.complex128), arrays["phi"].astype(np.complex128),
                   arrays["w"].astype(np.complex128), method, int(seed), dict(metrics), dict(extra))
