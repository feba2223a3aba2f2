"""Keyed, checksummed resume store for reproduction chunks (issue 16 item 2).

One JSON file per chunk, ``<dir>/<chunk name>_<key digest>.json``::

    {"format": 1, "key": {target, seed, params, chunk, software}, "sha256": <digest of the result>,
     "result": <the chunk's result>}

* The **key** holds everything a chunk's result depends on: the target name, its root seed, the chunk's
  parameters (scenario, sweep point, realisation indices, methods, solver settings, …), the chunk name
  (index) and the software fingerprint (package version, a digest of the package's source and shipped
  weights, the numeric libraries' versions). Its SHA-256 is in the file name, so a change of any of them
  is a different file: a fresh computation, never a mix of runs.
* **Content checksum**: ``sha256`` of the canonical JSON of ``result``; a file whose result does not match
  it (edited or damaged), that does not parse (truncated), or whose stored key is not the expected one
  (stale or copied from elsewhere) is reported in one line on stderr naming the file, and recomputed.
* **Atomic writes**: a unique temporary file in the same directory (``tempfile.mkstemp``), flushed and
  ``fsync``-ed, then ``os.replace``-d onto the final name, so a reader never sees a partial file and two
  writers never share a temporary name (the last complete write wins; both hold the same result).

JSON only (no deserialiser that can run code).
"""
from __future__ import annotations

import dataclasses
import functools
import hashlib
import json
import os
import sys
import tempfile
from importlib import metadata
from pathlib import Path
from typing import Any, Callable

import numpy as np

FORMAT = 1
_PKG_ROOT = Path(__file__).resolve().parents[1]          # the isac_opt package
_LIBS = ("ris-isac-testbed", "numpy", "scipy", "torch", "cvxpy", "clarabel")


def _plain(o):
    """JSON encoder fallback: numpy scalars/arrays, dataclasses and scenarios as plain values."""
    if isinstance(o, np.generic):
        return o.item()
    if isinstance(o, np.ndarray):
        return o.tolist()
    if hasattr(o, "to_dict"):
        return o.to_dict()
    if dataclasses.is_dataclass(o) and not isinstance(o, type):
        return dataclasses.asdict(o)
    if isinstance(o, (set, frozenset)):
        return sorted(o)
    raise TypeError(f"not JSON-serialisable in a chunk key/result: {type(o).__name__}")


def canonical(obj) -> str:
    """Canonical JSON text (sorted keys, no spaces): equal values give equal text."""
    return json.dumps(obj, sort_keys=True, separators=(",", ":"), default=_plain, allow_nan=True)


def digest(obj) -> str:
    return hashlib.sha256(canonical(obj).encode()).hexdigest()


@functools.lru_cache(maxsize=1)
def software_fingerprint() -> dict:
    """What the results depend on besides the inputs: library versions and a SHA-256 over the package's
    source files (``*.py``) and shipped weights (``weights/*.pt``), so any code or weight change is a new
    key. Computed once per process (0.5 s measured on the shared 2-core VM, ~22 MB of weights)."""
    vers = {}
    for lib in _LIBS:
        try:
            vers[lib] = metadata.version(lib)
        except metadata.PackageNotFoundError:
            vers[lib] = None
    h = hashlib.sha256()
    files = sorted(p for p in _PKG_ROOT.rglob("*") if p.is_file() and (
        p.suffix == ".py" or (p.suffix == ".pt" and p.parent.name == "weights"))
        and "__pycache__" not in p.parts)
    for p in files:
        h.update(str(p.relative_to(_PKG_ROOT)).encode() + b"\0")
        h.update(hashlib.sha256(p.read_bytes()).digest())
    return {"versions": vers, "source_sha256": h.hexdigest()}


def _warn(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


def atomic_write_text(path, text: str) -> None:
    """Write ``text`` to ``path`` atomically through a unique temporary file in the same directory."""
    path = Path(path)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=path.name + ".", suffix=".tmp")
    try:
        with os.fdopen(fd, "w") as f:
            f.write(text)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise


class ChunkStore:
    """Resume files of one target run: ``store.load(name, params)`` / ``store.save(name, params, result)``.

    ``directory``: where the files live (created). ``target``, ``seed``: the target's name and root seed.
    ``software``: the fingerprint (default :func:`software_fingerprint`; tests pass their own).
    ``warn``: one-line reporter of bad files (default: stderr).
    """

    def __init__(self, directory, target: str, seed, *, software: dict | None = None,
                 warn: Callable[[str], None] = _warn):
        self.dir = Path(directory)
        self.dir.mkdir(parents=True, exist_ok=True)
        self.target, self.seed = str(target), seed
        self.software = software_fingerprint() if software is None else software
        self.warn = warn

    def key(self, name: str, params) -> dict:
        # round-trip through canonical JSON so the stored key compares equal to the expected one
        return json.loads(canonical({"target": self.target, "seed": self.seed, "params": params,
                                     "chunk": str(name), "software": self.software}))

    def path(self, name: str, params) -> Path:
        return self.dir / f"{name}_{digest(self.key(name, params))[:20]}.json"

    def load(self, name: str, params) -> tuple[bool, Any]:
        """``(True, result)`` for a valid stored chunk; ``(False, None)`` when absent or bad (reported)."""
        p = self.path(name, params)
        if not p.exists():
            return False, None
        why = None
        try:
            doc = json.loads(p.read_text())
        except (OSError, UnicodeDecodeError, json.JSONDecodeError) as e:
            why = f"unreadable or truncated ({type(e).__name__}: {str(e).splitlines()[0][:80]})"
        else:
            if not isinstance(doc, dict) or doc.get("format") != FORMAT or "result" not in doc:
                why = "not a chunk file of this format"
            elif doc.get("key") != self.key(name, params):
                why = "stale (its stored key is not this run's target/seed/parameters/software)"
            elif doc.get("sha256") != digest(doc["result"]):
                why = "checksum mismatch (its result changed after it was written)"
        if why is not None:
            self.warn(f"reproduce {self.target}: chunk {p}: {why}; recomputing it")
            return False, None
        return True, doc["result"]

    def save(self, name: str, params, result):
        """Store ``result``; returns it as a reader of the file will see it (JSON round trip: tuples become
        lists, numpy scalars Python numbers; key order kept), so a fresh and a resumed run aggregate the
        same values."""
        p = self.path(name, params)
        result = json.loads(json.dumps(result, default=_plain))
        doc = {"format": FORMAT, "key": self.key(name, params), "sha256": digest(result), "result": result}
        atomic_write_text(p, json.dumps(doc))
        return result
