"""Design files: the on-disk hand-over from the optimiser to the blocks and the RIS driver.

A design file is one ``.npz`` with a JSON ``meta`` entry whose ``format`` names its layout. This module is
the generic container: it opens the file safely (no pickle), parses ``meta`` and dispatches on ``format``
to the layout's loader (:data:`FORMATS`, looked up lazily so that no paper's code is imported here).
Layouts: paper A :mod:`isac_opt.paper_a.design`, paper B :mod:`isac_opt.paper_b.designfile`.
A damaged, truncated or foreign file raises :class:`~isac_opt.errors.DesignFileError` (one line).
"""
from __future__ import annotations

import hashlib
import json
import zipfile
from pathlib import Path

import numpy as np

from .errors import DesignFileError

# format prefix -> "module:attr" of ``load(path, meta, arrays)``
FORMATS = {
    "ris-isac-testbed/paper-a-design": "isac_opt.paper_a.design:load",
    "ris-isac-testbed/paper-b": "isac_opt.paper_b.design:load_parsed",
}


def jsonable(d):
    """``d`` with numpy scalars as Python numbers and non-finite floats as ``None`` (strict JSON)."""
    if isinstance(d, dict):
        return {k: jsonable(v) for k, v in d.items()}
    if isinstance(d, (list, tuple)):
        return [jsonable(v) for v in d]
    if isinstance(d, np.generic):
        return d.item()
    if isinstance(d, float) and not np.isfinite(d):
        return None
    return d


def read_meta(path) -> tuple[dict, dict]:
    """Open a design ``.npz``: returns (meta dict, arrays dict); DesignFileError on damage."""
    path = Path(path)
    if not path.is_file():
        raise DesignFileError(f"{path}: no such design file")
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
    return meta, arrays


_CACHE: dict = {}
_CACHE_MAX = 8


def load_design(path):
    """Load any design file, dispatching on ``meta.format`` (paper A or B).

    A file is parsed once per process: the blocks of one flowgraph (source, channel, tagger, detector)
    and the run orchestration all open the same design, so the loaded object is kept, keyed by the
    file's identity (resolved path, inode, size, modification time) — a rewritten file is read again.
    Treat the returned design as read-only.
    """
    try:
        st = Path(path).stat()
        key = (str(Path(path).resolve()), st.st_ino, st.st_size, st.st_mtime_ns)
    except OSError:
        key = None
    if key is not None and key in _CACHE:
        return _CACHE[key]
    d = _load_design(path)
    if key is not None:
        if len(_CACHE) >= _CACHE_MAX:
            _CACHE.pop(next(iter(_CACHE)))
        _CACHE[key] = d
    return d


def _load_design(path):
    from .registry import resolve
    meta, arrays = read_meta(path)
    fmt = meta["format"]
    for prefix, entry in FORMATS.items():
        if isinstance(fmt, str) and fmt.startswith(prefix):
            return resolve(entry)(path, meta, arrays)
    raise DesignFileError(f"{path}: unknown design format {fmt!r} (expected one of: {', '.join(FORMATS)})")


def file_hash(path) -> str:
    """SHA-256 of a design file (recorded in SigMF metadata and run reports)."""
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()
