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


def meta_typed(path, meta: dict, key: str, types: tuple, what: str, default=None):
    """meta[key] if it is one of ``types`` (a bool never passes as an int), else DesignFileError."""
    v = meta.get(key, default)
    if v is None:
        return default
    if (isinstance(v, bool) and bool not in types) or not isinstance(v, types):
        raise DesignFileError(f"{path}: meta '{key}' expected {what}, got {type(v).__name__} {str(v)[:60]!r}")
    return v


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
