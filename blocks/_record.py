"""SigMF sidecars for bench recordings (not a block): radar and user streams written by file sinks."""
from __future__ import annotations

import datetime as _dt

import numpy as np


def write_sigmf_meta(data_path, n_channels: int, description: str, extra: dict, sample_rate: float = 1.0) -> str:
    """Write ``<stem>.sigmf-meta`` next to a cf32 interleaved data file; returns the meta path.

    ``extra`` keys go to the global object under the ``isac:`` namespace (design hash, scenario, RIS state,
    software version, ...); values that are not JSON scalars/lists are stringified.
    """
    from sigmf import SigMFFile
    from gnuradio import gr

    def clean(v):
        if isinstance(v, np.ndarray):
            v = v.tolist()
        if isinstance(v, complex):
            return [v.real, v.imag]
        if isinstance(v, (list, tuple)):
            return [clean(x) for x in v]
        if isinstance(v, dict):
            return {str(k): clean(x) for k, x in v.items()}
        if isinstance(v, (np.generic,)):
            return v.item()
        return v if isinstance(v, (int, float, str, bool)) or v is None else str(v)

    gi = {"core:datatype": "cf32_le", "core:sample_rate": float(sample_rate), "core:num_channels": int(n_channels),
          "core:description": description, "core:recorder": f"GNU Radio {gr.version()} (risisac bench)",
          "core:extensions": [{"name": "isac", "version": "0.1.0", "optional": True}]}
    for k, v in extra.items():
        gi[f"isac:{k}"] = clean(v)
    meta = SigMFFile(data_file=str(data_path), global_info=gi)
    meta.add_capture(0, metadata={"core:datetime": _dt.datetime.now(_dt.timezone.utc)
                                  .strftime("%Y-%m-%dT%H:%M:%S.%fZ")})
    stem = str(data_path)[: -len(".sigmf-data")] if str(data_path).endswith(".sigmf-data") else str(data_path)
    meta.tofile(stem, overwrite=True)
    return stem + ".sigmf-meta"
