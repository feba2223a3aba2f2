"""SigMF recordings of raw calibration measurements (bench notes §6).

``write_recording(dir, name, samples, ...)`` writes ``<dir>/<name>.sigmf-data`` (cf32_le, sample-major
interleaved channels) and ``.sigmf-meta`` with the calibration id, the seed (sim), hardware ids and, per
capture segment, the RIS pattern as a hex string (``ris:pattern_hex``) in a declared ``ris`` extension.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

from .errors import CalibrationError
from .store import now_iso


def pattern_hex(states) -> str:
    """1-bit states (N,) → hex string, element 0 in the MSB of the first byte."""
    s = np.asarray(states).astype(np.uint8).ravel()
    return np.packbits(s).tobytes().hex()


def write_recording(directory, name: str, samples: np.ndarray, *, sample_rate: float = 1.0,
                    frequency: float | None = None, description: str = "", global_extra: dict | None = None,
                    segments: list | None = None) -> str:
    """Write a SigMF recording; returns the path of the ``.sigmf-meta`` file.

    Parameters
    ----------
    samples : complex array, shape (n_samples, n_channels) or (n_samples,)
    segments : list of (start, dict) capture segments (e.g. one per RIS pattern), optional
    """
    try:
        from sigmf import SigMFFile
    except ImportError as exc:  # pragma: no cover - sigmf is a dependency
        raise CalibrationError("sigmf", "the 'sigmf' package (pip install sigmf)", "not installed") from exc
    d = Path(directory)
    d.mkdir(parents=True, exist_ok=True)
    x = np.asarray(samples)
    if x.ndim == 1:
        x = x[:, None]
    if x.ndim != 2:
        raise CalibrationError("samples", "shape (n_samples, n_channels)", f"shape {x.shape}")
    data_path = d / f"{name}.sigmf-data"
    x.astype("<c8").tofile(data_path)                   # explicit little-endian: what cf32_le promises
    gi = {"core:datatype": "cf32_le", "core:sample_rate": float(sample_rate), "core:num_channels": int(x.shape[1]),
          "core:description": description or f"ris-isac-testbed calibration measurement {name}",
          "core:recorder": "ris-isac-testbed calibration",
          "core:extensions": [{"name": "ris", "version": "0.1.0", "optional": True}]}
    for k, v in (global_extra or {}).items():
        gi[k if ":" in k else f"ris:{k}"] = v
    meta = SigMFFile(data_file=str(data_path), global_info=gi)
    segs = segments or [(0, {})]
    for start, info in segs:
        cap = {"core:datetime": now_iso()}
        if frequency is not None:
            cap["core:frequency"] = float(frequency)
        cap.update(info)
        meta.add_capture(int(start), metadata=cap)
    meta.validate()
    meta.tofile(str(d / f"{name}.sigmf-meta"))
    return str(d / f"{name}.sigmf-meta")
