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
import zipfile
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


MAX_JSON_BYTES = 4 << 20          # a calibration's JSON is a few kB
MAX_ARRAY_BYTES = 256 << 20       # all arrays, uncompressed
_NPY_HEADER = 4096                # generous bound of an .npy header [bytes]


def _array_specs(doc: dict, jpath) -> dict:
    """``doc["arrays"]`` checked: {name: (dtype, shape)} with a numeric dtype and non-negative int shape."""
    specs = doc.get("arrays", {})
    if not isinstance(specs, dict):
        raise CalibrationError("arrays", "an object {name: {dtype, shape}}", f"{type(specs).__name__} in {jpath}")
    out = {}
    for k, spec in specs.items():
        if not isinstance(spec, dict) or not isinstance(spec.get("shape"), list) or \
                not all(isinstance(n, int) and not isinstance(n, bool) and n >= 0 for n in spec["shape"]):
            raise CalibrationError(f"arrays.{k}", "{dtype, shape: [non-negative integers]}", repr(spec)[:80])
        try:
            dt = np.dtype(spec.get("dtype", "complex128"))
        except TypeError:
            raise CalibrationError(f"arrays.{k}.dtype", "a numpy dtype name", repr(spec.get("dtype"))[:40]) from None
        if not (np.issubdtype(dt, np.number) or dt == bool):
            raise CalibrationError(f"arrays.{k}.dtype", "a numeric dtype", str(dt))
        out[k] = (dt, tuple(spec["shape"]))
    return out


def _check_npz_sizes(npz, specs: dict) -> None:
    """Refuse members that would decompress beyond their declared shape (or the total limit), before
    decompressing anything (zipfile never inflates past a member's declared size)."""
    try:
        with zipfile.ZipFile(npz) as zf:
            infos = {i.filename: i.file_size for i in zf.infolist()}
    except (zipfile.BadZipFile, OSError, EOFError, ValueError) as exc:
        raise CalibrationError("npz", "a readable .npz (damaged or truncated?)", f"{npz}: {exc}") from None
    if sum(infos.values()) > MAX_ARRAY_BYTES:
        raise CalibrationError("npz", f"at most {MAX_ARRAY_BYTES} bytes of arrays", f"{sum(infos.values())} in {npz}")
    for k, (dt, shape) in specs.items():
        size = infos.get(k + ".npy")
        if size is not None and size > math.prod(shape) * dt.itemsize + _NPY_HEADER:
            raise CalibrationError(f"arrays.{k}", f"shape {list(shape)} {dt} as declared",
                                   f"{size} bytes in {npz}")


def load(path, *, expect_key: dict | None = None, max_age_days: float | None = None):
    """Read ``(doc, arrays)``; check format, version, array shapes and dtypes and (optionally) the key.

    Every failure (missing, truncated or damaged files, wrong types in the JSON, arrays that disagree
    with their declaration) is a :class:`CalibrationError` naming the field: never a traceback.
    """
    stem = _stem(path)
    jpath = stem.with_suffix(".json")
    if not jpath.is_file():
        raise CalibrationError("path", "an existing calibration .json file", str(jpath))
    if jpath.stat().st_size > MAX_JSON_BYTES:
        raise CalibrationError("path", f"a calibration .json of at most {MAX_JSON_BYTES} bytes", str(jpath))
    try:
        doc = json.loads(jpath.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise CalibrationError("path", "valid JSON", f"{jpath}: {exc}") from None
    if not isinstance(doc, dict):
        raise CalibrationError("path", "a JSON object", f"{type(doc).__name__} in {jpath}")
    for field, typ in (("key", dict), ("params", dict), ("residual", dict), ("meta", dict), ("npz", str),
                       ("kind", str)):
        if field in doc and not isinstance(doc[field], typ):
            raise CalibrationError(field, f"a JSON {'object' if typ is dict else 'string'}",
                                   f"{type(doc[field]).__name__} in {jpath}")
    if doc.get("format") != FORMAT:
        raise CalibrationError("format", repr(FORMAT), repr(doc.get("format")))
    if doc.get("version") != VERSION:
        raise CalibrationError("version", f"{VERSION} (this code)", doc.get("version"))
    if expect_key is not None or max_age_days is not None:
        check_key(doc.get("key", {}), expect_key or {}, max_age_days=max_age_days)
    specs = _array_specs(doc, jpath)
    npz = jpath.with_name(Path(doc.get("npz", stem.name + ".npz")).name)    # next to the .json, never elsewhere
    if not npz.is_file():
        raise CalibrationError("npz", "the .npz file next to the .json", str(npz))
    _check_npz_sizes(npz, specs)
    try:
        with np.load(npz, allow_pickle=False) as z:
            arrays = {k: z[k] for k in z.files}
    except (zipfile.BadZipFile, ValueError, OSError, EOFError) as exc:
        raise CalibrationError("npz", "a readable .npz (damaged or truncated?)", f"{npz}: {exc}") from None
    for k, (dt, shape) in specs.items():
        if k not in arrays:
            raise CalibrationError(f"arrays.{k}", "present in the .npz", "missing")
        if arrays[k].shape != shape:
            raise CalibrationError(f"arrays.{k}", f"shape {list(shape)}", f"shape {list(arrays[k].shape)}")
        if arrays[k].dtype != dt:
            raise CalibrationError(f"arrays.{k}", f"dtype {dt} (as the .json declares)", f"dtype {arrays[k].dtype}")
    return doc, arrays
