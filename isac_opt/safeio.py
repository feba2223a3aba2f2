"""Output files that are checked before the work and never overwritten by surprise.

Every command that writes a user-named file calls :func:`check_output_file` (or
:func:`check_output_dir`) *before* its long computation, so a path that is a directory, lies under a
file, is not writable, or already exists (without ``--force``) fails in one line at once instead of a
traceback after minutes of designing. The file itself is then written through :func:`atomic_output`:
a unique temporary name in the same directory, renamed over the target only when complete, so an
interrupted write never leaves half a file under the final name.
"""
from __future__ import annotations

import contextlib
import os
import tempfile
from pathlib import Path

from .errors import IsacError

__all__ = ["OutputError", "check_output_file", "check_output_dir", "atomic_output"]


class OutputError(IsacError, ValueError):
    """An output path cannot (or must not) be written."""


def _writable_parent(p: Path, what: str) -> None:
    """The nearest existing ancestor of ``p`` must be a writable directory (it is created later)."""
    anc = p.parent
    while not anc.exists():
        if anc == anc.parent:
            break
        anc = anc.parent
    if not anc.is_dir():
        raise OutputError(f"{what} {p}: {anc} is not a directory")
    if not os.access(anc, os.W_OK | os.X_OK):
        raise OutputError(f"{what} {p}: directory {anc} is not writable")


def check_output_file(path, *, force: bool = False, what: str = "--out") -> Path:
    """Check that ``path`` can be written as a file; returns it as a Path.

    Raises :class:`OutputError` (one line naming ``what`` and the path) when ``path`` is a directory,
    exists and ``force`` is false, exists but is not writable, or its directory cannot be created or
    written. Nothing is created.
    """
    p = Path(path)
    if str(path) == "" or p.name in ("", ".", ".."):
        raise OutputError(f"{what}: expected a file name, got {str(path)!r}")
    if p.is_dir():
        raise OutputError(f"{what} {p}: is a directory (expected a file name)")
    if p.exists() or p.is_symlink():
        if not force:
            raise OutputError(f"{what} {p}: file exists; pass --force to overwrite it")
        if not p.is_file():
            raise OutputError(f"{what} {p}: exists and is not a regular file")
        if not os.access(p, os.W_OK):
            raise OutputError(f"{what} {p}: file is not writable")
    _writable_parent(p, what)
    return p


def check_output_dir(path, *, force: bool = False, what: str = "--out") -> Path:
    """Check that ``path`` can serve as an output directory; returns it as a Path.

    A missing directory (under a writable ancestor) or an empty one is fine; a non-empty one is
    refused unless ``force``; a file is refused always. Nothing is created.
    """
    p = Path(path)
    if str(path) == "":
        raise OutputError(f"{what}: expected a directory name, got ''")
    if p.exists():
        if not p.is_dir():
            raise OutputError(f"{what} {p}: exists and is not a directory")
        if any(p.iterdir()) and not force:
            raise OutputError(f"{what} {p}: directory exists and is not empty; pass --force to write into it")
        if not os.access(p, os.W_OK | os.X_OK):
            raise OutputError(f"{what} {p}: directory is not writable")
        return p
    _writable_parent(p, what)
    return p


@contextlib.contextmanager
def atomic_output(path):
    """Yield a unique temporary path next to ``path``; rename it onto ``path`` when the block succeeds.

    The temporary file is removed when the block raises (including KeyboardInterrupt), so a failed or
    interrupted write leaves ``path`` as it was.
    """
    p = Path(path)
    p.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{p.name}.", suffix=".tmp", dir=p.parent)
    os.close(fd)
    mask = os.umask(0)
    os.umask(mask)
    os.chmod(tmp, 0o666 & ~mask)          # mkstemp makes 0600; the final file gets the usual mode
    try:
        yield Path(tmp)
        os.replace(tmp, p)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
