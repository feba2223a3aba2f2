"""Versioned calibration files: ``<stem>.json`` (metadata, key, residual) + ``<stem>.npz`` (arrays).

Format ``ris-isac-calibration`` version 1 (documented in ``docs/calibration.md``)::

    {"format": "ris-isac-calibration", "version": 1, "kind": "RisStateCal",
     "id": "<sha1 of key+arrays, 12 hex>", "created": "2026-11-23T12:00:00Z",
     "params": {...constructor arguments...},
     "key": {"hardware_ids": {...}, "lo_hz": 5.8e9, "fs_hz": 2e6, "gains_db": [...], "date": "..."},
     "residual": {"rms": ..., ...}, "arrays": {"table": {"dtype": "complex128", "shape": [16, 2]}},
     "npz": "<stem>.npz", "meta": {...}}

``load(path, expect_key=...)`` refuses the file (:class:`StaleCalibrationError`) when a key field in
``expect_key`` differs from the stored one (floats compared to 1e-9 relative); ``date`` is informative
only, use ``max_age_days`` to bound the age.
"""
from __future__ import annotations

import datetime as _dt
import hashlib
import json
import math
import os
import subprocess
from pathlib import Path

import numpy as np

from .errors import CalibrationError, StaleCalibrationError

FORMAT = "ris-isac-calibration"
VERSION = 1
KEY_FIELDS = ("hardware_ids", "lo_hz", "fs_hz", "gains_db", "date")


def now_iso() -> str:
    return _dt.datetime.now(_dt.timezone.utc).replace(microsecond=0).isoformat().replace("+00:00", "Z")


def make_key(*, hardware_ids=None, lo_hz=None, fs_hz=None, gains_db=None, date=None, **extra) -> dict:
    """Build the key a calibration is valid for (JSON-able: dicts, lists, numbers, strings).

    Parameters
    ----------
    hardware_ids : dict or list of str
        Device serials / URIs / firmware (e.g. ``{"sdr": "ip:192.168.2.1", "ris": "sim://"}``).
    lo_hz, fs_hz : float
        Carrier (LO) frequency [Hz] and sample rate [Hz].
    gains_db : list of float
        TX/RX gains or attenuations [dB], one per chain.
    date : str
        ISO-8601 UTC; defaults to now.
    extra : more key fields (filter bandwidth, temperature...).
    """
    key = {"hardware_ids": hardware_ids if hardware_ids is not None else {},
           "lo_hz": None if lo_hz is None else float(lo_hz),
           "fs_hz": None if fs_hz is None else float(fs_hz),
           "gains_db": None if gains_db is None else [float(g) for g in np.atleast_1d(gains_db)],
           "date": date or now_iso()}
    key.update(extra)
    return _jsonable(key)


def _jsonable(v):
    if isinstance(v, dict):
        return {str(k): _jsonable(x) for k, x in v.items()}
    if isinstance(v, (list, tuple)):
        return [_jsonable(x) for x in v]
    if isinstance(v, np.ndarray):
        return _jsonable(v.tolist())
    if isinstance(v, np.generic):
        return v.item()
    if isinstance(v, complex):
        return [v.real, v.imag]
    return v


def _stem(path) -> Path:
    p = Path(path)
    if p.suffix in (".json", ".npz"):
        p = p.with_suffix("")
    return p


def _git_describe() -> str | None:
    try:
        out = subprocess.run(["git", "describe", "--always", "--dirty"], cwd=Path(__file__).parent,
                             capture_output=True, text=True, timeout=5)
        return out.stdout.strip() or None
    except Exception:  # noqa: BLE001 - git is optional
        return None


def save(path, *, kind: str, params: dict, coefs: dict, key: dict, residual: dict, meta: dict) -> str:
    """Write the calibration files; returns the JSON path."""
    stem = _stem(path)
    if stem.parent and not stem.parent.exists():
        stem.parent.mkdir(parents=True, exist_ok=True)
    arrays = {k: np.asarray(v) for k, v in coefs.items()}
    h = hashlib.sha1(json.dumps(_jsonable(key), sort_keys=True).encode())
    for k in sorted(arrays):
        h.update(k.encode())
        h.update(np.ascontiguousarray(arrays[k]).tobytes())
    doc = {"format": FORMAT, "version": VERSION, "kind": kind, "id": h.hexdigest()[:12],
           "created": now_iso(), "git": _git_describe(), "params": _jsonable(params),
           "key": _jsonable(key or {}), "residual": _jsonable(residual or {}),
           "arrays": {k: {"dtype": str(a.dtype), "shape": list(a.shape)} for k, a in arrays.items()},
           "npz": stem.name + ".npz", "meta": _jsonable(meta or {})}
    tmp = stem.with_name(stem.name + ".tmp.npz")
    np.savez(tmp, **arrays)
    os.replace(tmp, stem.with_suffix(".npz"))
    jpath = stem.with_suffix(".json")
    jtmp = stem.with_name(stem.name + ".tmp.json")
    jtmp.write_text(json.dumps(doc, indent=2, allow_nan=False) + "\n")
    os.replace(jtmp, jpath)
    return str(jpath)


def _same(a, b) -> bool:
    if isinstance(a, (int, float)) and isinstance(b, (int, float)) and not isinstance(a, bool):
        return math.isclose(float(a), float(b), rel_tol=1e-9, abs_tol=1e-12)
    if isinstance(a, (list, tuple)) and isinstance(b, (list, tuple)):
        return len(a) == len(b) and all(_same(x, y) for x, y in zip(a, b))
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(_same(a[k], b[k]) for k in a)
    return a == b


def check_key(stored: dict, expect: dict, *, max_age_days: float | None = None) -> None:
    """Raise :class:`StaleCalibrationError` naming the first key field that differs."""
    expect = _jsonable(expect)
    for field, want in expect.items():
        if field == "date":
            continue
        if field not in stored:
            raise StaleCalibrationError(field, "<missing>", want)
        if isinstance(want, dict) and isinstance(stored[field], dict):
            for sub, w in want.items():
                if sub not in stored[field] or not _same(stored[field][sub], w):
                    raise StaleCalibrationError(f"{field}.{sub}", stored[field].get(sub, "<missing>"), w)
        elif not _same(stored[field], want):
            raise StaleCalibrationError(field, stored[field], want)
    if max_age_days is not None:
        made = _dt.datetime.fromisoformat(str(stored.get("date", "1970-01-01T00:00:00Z")).replace("Z", "+00:00"))
        age = (_dt.datetime.now(_dt.timezone.utc) - made).total_seconds() / 86400.0
        if age > max_age_days:
            raise StaleCalibrationError("date", stored.get("date"), f"newer than {max_age_days} days")


def load(path, *, expect_key: dict | None = None, max_age_days: float | None = None):
    """Read ``(doc, arrays)``; check format, version, array shapes and (optionally) the key."""
    stem = _stem(path)
    jpath = stem.with_suffix(".json")
    if not jpath.exists():
        raise CalibrationError("path", "an existing calibration .json file", str(jpath))
    try:
        doc = json.loads(jpath.read_text())
    except json.JSONDecodeError as exc:
        raise CalibrationError("path", "valid JSON", f"{jpath}: {exc}") from exc
    if doc.get("format") != FORMAT:
        raise CalibrationError("format", repr(FORMAT), repr(doc.get("format")))
    if doc.get("version") != VERSION:
        raise CalibrationError("version", f"{VERSION} (this code)", doc.get("version"))
    if expect_key is not None or max_age_days is not None:
        check_key(doc.get("key", {}), expect_key or {}, max_age_days=max_age_days)
    npz = jpath.with_name(doc.get("npz", stem.name + ".npz"))
    if not npz.exists():
        raise CalibrationError("npz", "the .npz file next to the .json", str(npz))
    with np.load(npz, allow_pickle=False) as z:
        arrays = {k: z[k] for k in z.files}
    for k, spec in doc.get("arrays", {}).items():
        if k not in arrays:
            raise CalibrationError(f"arrays.{k}", "present in the .npz", "missing")
        if list(arrays[k].shape) != list(spec["shape"]):
            raise CalibrationError(f"arrays.{k}", f"shape {spec['shape']}", f"shape {list(arrays[k].shape)}")
    return doc, arrays
