"""SigMF sidecars for bench recordings (not a block): radar and user streams written by file sinks.

What a recording says must be true of the data (issue 15):

* ``core:datatype`` names the byte order of the samples as written (GNU Radio's file sink writes the host's
  native complex64; ``cf32_le`` on little-endian hosts, ``cf32_be`` otherwise);
* ``core:sample_rate`` / ``core:frequency`` are the radio's sample rate and centre frequency (the simulated
  front end has no carrier: no ``core:frequency``, the nominal ``--fs-hz`` as rate);
* the capture's ``core:datetime`` is the start of the streams (taken before the flowgraph starts; on a
  USRP the device-time start ``t0`` set from UTC), not the end of the run;
* the end-marker sample of a finite paper-A run is cut off the data files, so the file holds exactly
  ``frames * F`` samples, and each frame is one annotation (``isac:frame_id``, ``isac:target_present``,
  ``isac:design_id``);
* the design is named by its SHA-256 and its path relative to the recording (never a local absolute path).
"""
from __future__ import annotations

import datetime as _dt
import os
import sys
from pathlib import Path

import numpy as np


def sigmf_cf32() -> str:
    """SigMF datatype of native complex64 samples on this host."""
    return "cf32_le" if sys.byteorder == "little" else "cf32_be"


def utc_iso(t: float | None = None) -> str:
    """ISO-8601 UTC with microseconds and a 'Z' (SigMF core:datetime); ``t`` [s since the epoch], default now."""
    d = _dt.datetime.now(_dt.timezone.utc) if t is None else _dt.datetime.fromtimestamp(t, _dt.timezone.utc)
    return d.strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _clean(v):
    if isinstance(v, np.ndarray):
        v = v.tolist()
    if isinstance(v, complex):
        return [v.real, v.imag]
    if isinstance(v, (list, tuple)):
        return [_clean(x) for x in v]
    if isinstance(v, dict):
        return {str(k): _clean(x) for k, x in v.items()}
    if isinstance(v, (np.generic,)):
        return v.item()
    return v if isinstance(v, (int, float, str, bool)) or v is None else str(v)


def trim_samples(data_path, n_channels: int, n_samples: int) -> int:
    """Cut a cf32 file of ``n_channels`` interleaved channels to ``n_samples`` samples; returns the count kept
    (fewer when the file is shorter, e.g. a run stopped early)."""
    item = 8 * int(n_channels)
    size = os.path.getsize(data_path)
    keep = min(size // item, int(n_samples))
    if keep * item != size:
        os.truncate(data_path, keep * item)
    return keep


def write_sigmf_meta(data_path, n_channels: int, description: str, extra: dict, sample_rate: float = 1.0, *,
                     frequency: float | None = None, datetime: str | None = None, frames=None,
                     frame_len: int | None = None, design_id: str | None = None) -> str:
    """Write ``<stem>.sigmf-meta`` next to a native cf32 interleaved data file; returns the meta path.

    ``extra`` keys go to the global object under the ``isac:`` namespace. ``frames``: iterable of
    (frame_id, target_present (bool or None if unknown)) in file order, each ``frame_len`` samples,
    annotated from sample ``i * frame_len``. The recording is validated with the ``sigmf`` package.
    """
    from sigmf import SigMFFile
    from gnuradio import gr

    gi = {"core:datatype": sigmf_cf32(), "core:sample_rate": float(sample_rate), "core:num_channels": int(n_channels),
          "core:description": description, "core:recorder": f"GNU Radio {gr.version()} (risisac bench)",
          "core:extensions": [{"name": "isac", "version": "0.2.0", "optional": True}]}
    for k, v in extra.items():
        gi[f"isac:{k}"] = _clean(v)
    meta = SigMFFile(data_file=str(data_path), global_info=gi)
    cap = {"core:datetime": datetime or utc_iso()}
    if frequency is not None:
        cap["core:frequency"] = float(frequency)
    meta.add_capture(0, metadata=cap)
    if frames is not None:
        F = int(frame_len)
        for i, (fid, present) in enumerate(frames):
            md = {"isac:frame_id": int(fid), "isac:target_present": None if present is None else bool(present),
                  "core:label": f"frame {int(fid)}"}
            if design_id:
                md["isac:design_id"] = design_id
            meta.add_annotation(i * F, F, metadata=md)
    meta.validate()
    stem = str(data_path)[: -len(".sigmf-data")] if str(data_path).endswith(".sigmf-data") else str(data_path)
    meta.tofile(stem, overwrite=True)
    return stem + ".sigmf-meta"


def finish_recording(record, *, design, design_path, work, frames: int, frame_len: int, det: dict,
                     backend: str, fs_hz: float, lo_hz: float, start_utc: str, extra: dict) -> list:
    """After a ``run --record``: trim the end marker, annotate every frame, write both sidecars.

    ``det``: the detector's results (``frame``, ``target`` per frame; target < 0 or absent = unknown, as on
    hardware without an emulated target). Returns the two meta paths.
    """
    from isac_opt.bench.framing import design_id as _design_id
    from isac_opt.designfile import file_hash

    scn = design.scenario
    n = int(frames) * int(frame_len)
    kept = [trim_samples(record[0], scn.M, n), trim_samples(record[1], scn.K, n)]
    truth = {}
    fr_, tg = np.asarray(det.get("frame", [])), np.asarray(det.get("target", []))
    for f, t in zip(fr_.tolist(), tg.tolist()):
        truth[int(f)] = None if (t is None or int(t) < 0) else bool(t)
    from isac_opt.designfile import load_design
    fresh = load_design(design_path)                  # the id the source's design tags carry (file content)
    did = _design_id(fresh.X, fresh.phi)
    g = dict(extra)
    g.update(design_hash=file_hash(design_path), design_id=did,
             design_file=os.path.relpath(Path(design_path).resolve(), Path(work).resolve()),
             frame_len=int(frame_len), frames=int(frames))
    g.pop("target_schedule", None)
    rate = float(fs_hz)
    freq = float(lo_hz) if backend != "sim" else None
    out = []
    for path, nch, what, k in ((record[0], scn.M, "radar receive streams (units of xi_z)", kept[0]),
                               (record[1], scn.K, "user receive streams (units of sigma_k)", kept[1])):
        nf = k // int(frame_len)
        out.append(write_sigmf_meta(path, nch, f"{what}; backend {backend}", g, rate, frequency=freq,
                                    datetime=start_utc, frames=[(i, truth.get(i)) for i in range(nf)],
                                    frame_len=frame_len, design_id=did))
    return out
