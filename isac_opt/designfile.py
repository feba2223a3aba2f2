"""Design files: the on-disk hand-over from the optimiser to the blocks and the RIS driver.

Paper A layout (``format = "ris-isac-testbed/paper-a-design"``, ``version = 1``), one ``.npz``:

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

Loading checks the format, every shape, dtype and finiteness, and the meta/scenario consistency, and
rejects a damaged, truncated or foreign file with :class:`~isac_opt.errors.DesignFileError`.
Paper B designs have their own layout (:mod:`isac_opt.paper_b.designfile`); :func:`load_design` dispatches.
"""
from __future__ import annotations

import datetime as _dt
import hashlib
import json
import zipfile
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from . import __version__
from .channels import CHANNEL_FIELDS, ChannelsA, effective_user_channels
from .ci import ber_analytic_qpsk, ci_margins, ci_thresholds, ser_analytic
from .config import ScenarioA, ScenarioError
from .crb import crb_doa
from .errors import DesignFileError
from .radar import echo, mvdr_filter, pd_from_pfa, sinr_mvdr, sinr_of_filter

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

    def meta(self) -> dict:
        s = self.scenario
        return {
            "format": FORMAT_A, "version": VERSION,
            "M": s.M, "N": s.N, "K": s.K, "L": s.L, "Q": s.Q, "psk_order": s.psk_order,
            "power_w": s.power_w, "noise_radar_w": s.noise_radar_w, "noise_comm_w": list(s.noise_comm_w),
            "gamma_db": list(s.gamma_db), "xi0_sq": s.xi0_sq, "xi_q_sq": list(s.xi_q_sq),
            "clutter_bins": list(s.clutter_bins), "theta0_rad": s.theta0_rad,
            "theta_ris_rad": s.theta_ris_rad, "ris_leg_model": s.ris_leg_model,
            "method": self.method, "seed": self.seed, "metrics": _jsonable(self.metrics),
            "extra": _jsonable(self.extra), "scenario": s.to_dict(),
            "software_version": __version__,
            "created_utc": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
        }

    def save(self, path) -> None:
        arrays = self.channels.arrays()
        arrays.update(X=self.X, phi=self.phi, w=self.w)
        with open(path, "wb") as f:
            np.savez(f, meta=np.array(json.dumps(self.meta())), **arrays)


def _jsonable(d):
    if isinstance(d, dict):
        return {k: _jsonable(v) for k, v in d.items()}
    if isinstance(d, (list, tuple)):
        return [_jsonable(v) for v in d]
    if isinstance(d, np.generic):
        return d.item()
    if isinstance(d, float) and not np.isfinite(d):
        return None
    return d


MAX_META_BYTES = 4 << 20        # the JSON meta of a design is a few kB
MAX_ARRAY_BYTES = 256 << 20     # all arrays, uncompressed: far above any design within config.SIZE_LIMITS


def _check_member_sizes(path: Path) -> None:
    """Refuse a design whose zip members would decompress to more than the limits (checked on the zip's
    declared sizes, before decompressing anything; zipfile never inflates beyond the declared size)."""
    try:
        with zipfile.ZipFile(path) as zf:
            infos = zf.infolist()
    except (zipfile.BadZipFile, OSError, EOFError, ValueError) as e:
        raise DesignFileError(f"{path}: not a readable design file (damaged or truncated: {e})") from None
    for i in infos:
        if i.filename == "meta.npy" and i.file_size > MAX_META_BYTES:
            raise DesignFileError(f"{path}: 'meta' would decompress to {i.file_size} bytes "
                                  f"(at most {MAX_META_BYTES} expected)")
    total = sum(i.file_size for i in infos)
    if total > MAX_ARRAY_BYTES:
        big = max(infos, key=lambda i: i.file_size)
        raise DesignFileError(f"{path}: arrays would decompress to {total} bytes (largest "
                              f"'{big.filename}' {big.file_size}); at most {MAX_ARRAY_BYTES} expected")


def read_meta(path) -> tuple[dict, dict]:
    """Open a design ``.npz``: returns (meta dict, arrays dict); DesignFileError on damage."""
    path = Path(path)
    if not path.is_file():
        raise DesignFileError(f"{path}: no such design file")
    _check_member_sizes(path)
    try:
        with np.load(path, allow_pickle=False) as z:
            arrays = {k: np.asarray(z[k]) for k in z.files}
    except (zipfile.BadZipFile, ValueError, OSError, EOFError) as e:
        raise DesignFileError(f"{path}: not a readable design file (damaged or truncated: {e})") from None
    if "meta" not in arrays:
        raise DesignFileError(f"{path}: no 'meta' entry — not a ris-isac-testbed design file")
    try:
        meta = json.loads(str(arrays.pop("meta")))
    except json.JSONDecodeError as e:
        raise DesignFileError(f"{path}: 'meta' is not valid JSON ({e})") from None
    if not isinstance(meta, dict) or "format" not in meta:
        raise DesignFileError(f"{path}: 'meta' has no 'format' — not a ris-isac-testbed design file")
    if not isinstance(meta["format"], str):
        raise DesignFileError(f"{path}: meta 'format' expected a string, got {type(meta['format']).__name__}")
    return meta, arrays


def _meta_typed(path, meta: dict, key: str, types: tuple, what: str, default=None):
    """meta[key] if it is one of ``types`` (a bool never passes as an int), else DesignFileError."""
    v = meta.get(key, default)
    if v is None:
        return default
    if (isinstance(v, bool) and bool not in types) or not isinstance(v, types):
        raise DesignFileError(f"{path}: meta '{key}' expected {what}, got {type(v).__name__} {str(v)[:60]!r}")
    return v


def _load_a(path, meta: dict, arrays: dict) -> DesignA:
    if meta.get("version") != VERSION:
        raise DesignFileError(f"{path}: unsupported design-file version {meta.get('version')!r} "
                              f"(this software reads version {VERSION})")
    if "scenario" not in meta:
        raise DesignFileError(f"{path}: meta has no 'scenario'")
    sd = _meta_typed(path, meta, "scenario", (dict,), "an object (the scenario's fields)")
    if sd is None:
        raise DesignFileError(f"{path}: meta 'scenario' expected an object (the scenario's fields), got null")
    method = _meta_typed(path, meta, "method", (str,), "a string", "?")
    seed = _meta_typed(path, meta, "seed", (int,), "an integer", -1)
    metrics = _meta_typed(path, meta, "metrics", (dict,), "an object", {})
    extra = _meta_typed(path, meta, "extra", (dict,), "an object", {})
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


def load_design(path):
    """Load any design file (paper A or B), dispatching on ``meta.format``."""
    meta, arrays = read_meta(path)
    fmt = meta["format"]
    if fmt == FORMAT_A:
        return _load_a(path, meta, arrays)
    if fmt.startswith("ris-isac-testbed/paper-b"):
        from .paper_b import designfile as bdf
        return bdf.load(path)
    raise DesignFileError(f"{path}: unknown design format {fmt!r} (expected {FORMAT_A!r} or a paper-B format)")


def file_hash(path) -> str:
    """SHA-256 of a design file (recorded in SigMF metadata and run reports)."""
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()
