"""Calibration base class: estimate (``run``) / correct (``apply``) / impose (``embed``), save / load.

The contract follows scikit-rf's ``Calibration`` (style guide point 7):

* ``run(measurements) -> coefs``: estimate the error model from measurements of known stimuli; the
  coefficients are a dict of named float64/complex128 arrays with physical names (``gain``, ``delay``...).
* ``apply(x)``: remove the estimated error model from data.
* ``embed(x)``: impose the error model on ideal data (used by the tests and by :mod:`calibration.sim_bench`
  to create realistic impairments); ``apply(embed(x)) == x`` up to rounding.
* ``save(path)`` / ``load(path, expect_key=...)``: versioned JSON + NPZ (see :mod:`calibration.store`).
* ``from_coefs(coefs, **params)``: build a calibration with known coefficients (the hidden truth).
"""
from __future__ import annotations

import numpy as np

from . import store
from .errors import CalibrationError, NotCalibratedError


def as_array(name: str, x, *, ndim: int | None = None, shape: tuple | None = None,
             dtype=np.complex128, finite: bool = True) -> np.ndarray:
    """Convert ``x`` to an array of ``dtype`` and check it, raising :class:`CalibrationError` naming ``name``.

    ``shape`` entries may be ``None`` (any length). NaN/inf are refused when ``finite``.
    """
    try:
        a = np.asarray(x)
    except Exception as exc:  # noqa: BLE001 - re-raised with the field name
        raise CalibrationError(name, "an array", type(x).__name__) from exc
    if a.dtype == object or not (np.issubdtype(a.dtype, np.number) or a.dtype == bool):
        raise CalibrationError(name, "a numeric array", f"dtype {a.dtype}")
    if np.iscomplexobj(a) and not np.issubdtype(np.dtype(dtype), np.complexfloating):
        raise CalibrationError(name, f"a real array ({np.dtype(dtype).name})", "complex values")
    a = a.astype(dtype, copy=False)
    if ndim is not None and a.ndim != ndim:
        raise CalibrationError(name, f"a {ndim}-D array", f"shape {a.shape}")
    if shape is not None:
        if a.ndim != len(shape) or any(s is not None and s != t for s, t in zip(shape, a.shape)):
            want = "(" + ", ".join("any" if s is None else str(s) for s in shape) + ")"
            raise CalibrationError(name, f"shape {want}", f"shape {a.shape}")
    if finite and a.size and not np.all(np.isfinite(a)):
        raise CalibrationError(name, "finite values (no NaN/inf)", f"{int(np.sum(~np.isfinite(a)))} non-finite")
    return a


class Calibration:
    """Base class of every estimator. Subclasses set ``kind`` and implement ``_run``, ``apply``, ``embed``.

    Attributes
    ----------
    coefs : dict[str, ndarray] or None
        Estimated (or imposed) coefficients; ``None`` before ``run``.
    residual : dict[str, float]
        Fit residuals of the last ``run`` (e.g. ``rms``, ``nmse_db``), stored in the file.
    key : dict
        Hardware/setting key the calibration is valid for (see :func:`calibration.store.make_key`).
    """

    kind = "Calibration"

    def __init__(self, **params):
        self.params = dict(params)
        self.coefs: dict[str, np.ndarray] | None = None
        self.residual: dict[str, float] = {}
        self.key: dict = {}
        self.meta: dict = {}

    # -- estimate ---------------------------------------------------------------------------------
    def run(self, measurements, **kw) -> dict[str, np.ndarray]:
        """Estimate the coefficients from ``measurements`` and store them in ``self.coefs``."""
        coefs, residual = self._run(measurements, **kw)
        self.coefs = {k: np.asarray(v) for k, v in coefs.items()}
        self.residual = {k: float(v) for k, v in residual.items()}
        return self.coefs

    def _run(self, measurements, **kw):  # pragma: no cover - abstract
        raise NotImplementedError

    def _need(self) -> dict[str, np.ndarray]:
        if self.coefs is None:
            raise NotCalibratedError(f"{self.kind}: no coefficients yet; call run(measurements) or from_coefs(...)")
        return self.coefs

    @classmethod
    def from_coefs(cls, coefs: dict, **params) -> "Calibration":
        """Build a calibration with the given coefficients (e.g. a hidden truth for ``embed``)."""
        cal = cls(**params)
        cal.coefs = {k: np.asarray(v) for k, v in cal._check_coefs(coefs).items()}
        return cal

    def _check_coefs(self, coefs: dict) -> dict:
        return dict(coefs)

    # -- apply / embed ----------------------------------------------------------------------------
    def apply(self, x, **kw):  # pragma: no cover - abstract
        raise NotImplementedError

    def embed(self, x, **kw):  # pragma: no cover - abstract
        raise NotImplementedError

    # -- files ------------------------------------------------------------------------------------
    def save(self, path, *, key: dict | None = None, meta: dict | None = None) -> str:
        """Write ``<stem>.json`` + ``<stem>.npz``; returns the JSON path."""
        coefs = self._need()
        if key is not None:
            self.key = dict(key)
        if meta:
            self.meta.update(meta)
        return store.save(path, kind=self.kind, params=self.params, coefs=coefs, key=self.key,
                          residual=self.residual, meta=self.meta)

    @classmethod
    def load(cls, path, *, expect_key: dict | None = None, max_age_days: float | None = None) -> "Calibration":
        """Read a calibration file; refuse it (``StaleCalibrationError``) when a field of ``expect_key``
        differs from the stored key, or when it is older than ``max_age_days``."""
        doc, arrays = store.load(path, expect_key=expect_key, max_age_days=max_age_days)
        if doc["kind"] != cls.kind and cls is not Calibration:
            raise CalibrationError("kind", f"a {cls.kind} file", doc["kind"])
        klass = cls if cls is not Calibration else KINDS[doc["kind"]]
        cal = klass.from_coefs(arrays, **doc.get("params", {}))
        cal.residual = dict(doc.get("residual", {}))
        cal.key = dict(doc.get("key", {}))
        cal.meta = dict(doc.get("meta", {}))
        return cal

    # -- display ----------------------------------------------------------------------------------
    def _summary_rows(self) -> list[tuple[str, str]]:
        rows = []
        for k, v in (self.coefs or {}).items():
            v = np.asarray(v)
            if v.size <= 8:
                if np.iscomplexobj(v):
                    txt = ", ".join(f"{abs(c):.3g}∠{np.degrees(np.angle(c)):+.1f}°" for c in v.ravel())
                else:
                    txt = np.array2string(v.ravel(), precision=4, separator=", ")
            else:
                txt = f"{v.dtype} array {v.shape}, |.| in [{np.abs(v).min():.3g}, {np.abs(v).max():.3g}]"
            rows.append((k, txt))
        return rows

    def __repr__(self) -> str:
        lines = [f"{self.kind}({', '.join(f'{k}={v!r}' for k, v in self.params.items())})"]
        if self.coefs is None:
            lines.append("  (not calibrated)")
        for name, txt in self._summary_rows():
            lines.append(f"  {name:<14} {txt}")
        if self.residual:
            lines.append("  residual       " + ", ".join(f"{k}={v:.4g}" for k, v in self.residual.items()))
        if self.key:
            lines.append("  key            " + ", ".join(f"{k}={v}" for k, v in self.key.items()))
        return "\n".join(lines[:24])


KINDS: dict[str, type] = {}


def register(cls):
    """Class decorator: make ``Calibration.load`` able to build this kind from a file."""
    KINDS[cls.kind] = cls
    return cls
