"""The reproduction harness shared by every ``isac-testbed reproduce`` target (paper A detection and DoA,
paper B): sweep points × chunks with per-chunk seeds → executor → keyed resume store → CSV + PNG.

A target builds a list of :class:`Chunk` (``name`` unique within the target, ``task`` = the argument of
the chunk function, ``params`` = a JSON-able description of everything the chunk's result depends on
besides the target name, root seed and software), and calls :func:`run_chunked`. Stored chunks whose key
matches are reused (:class:`isac_opt.repro.store.ChunkStore`); the others run on
:func:`isac_opt.executor.run_chunks` (joblib loky with ``workers`` processes, or Dask) and are stored by
the calling process as each completes, so an interrupted run (even ``kill -9``) resumes to the same
numbers. Seeds: a chunk carries its own (:func:`spawn_seed` / ``np.random.SeedSequence`` spawn keys), so
results depend neither on the executor nor on the chunking.

Writers: :func:`write_table` (header + rows), :func:`write_records` (dicts; the union of their keys,
private ``_``-prefixed keys skipped) and :func:`figure` / :func:`line_plot` (matplotlib Agg PNG).
"""
from __future__ import annotations

import csv
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Sequence

import numpy as np

from .store import ChunkStore


@dataclass(frozen=True)
class Chunk:
    """One unit of work: ``fn(task)`` → a JSON-able result. ``name``: file-name stem, unique within the
    target (e.g. ``p0_i0-9``); ``params``: JSON-able, everything the result depends on (part of the key)."""

    name: str
    task: Any
    params: Any


def spawn_seed(root: int, *key: int) -> int:
    """A 32-bit seed from ``SeedSequence(root, spawn_key=key)`` (independent streams per key)."""
    return int(np.random.SeedSequence(root, spawn_key=tuple(key)).generate_state(1)[0])


def split(n: int, size: int) -> list[list[int]]:
    """Realisation indices 0..n-1 in consecutive chunks of at most ``size``."""
    return [list(range(c0, min(c0 + size, n))) for c0 in range(0, n, size)]


def run_chunked(target: str, fn: Callable[[Any], Any], chunks: Sequence[Chunk], store_dir, seed, *,
                executor: str = "local", workers: int = 1, scheduler=None, desc: str | None = None,
                progress: bool = True) -> list:
    """Results of ``fn(c.task)`` for every chunk, in order: stored ones reused, the rest computed on the
    executor and stored as they complete. Every result is returned as stored (JSON round trip), so a
    fresh run and a resumed one aggregate identical values."""
    from ..executor import run_chunks
    store = ChunkStore(store_dir, target, seed)
    names = [c.name for c in chunks]
    if len(set(names)) != len(names):
        raise ValueError(f"{target}: chunk names must be unique")
    out: list = [None] * len(chunks)
    todo = []
    for i, c in enumerate(chunks):
        ok, r = store.load(c.name, c.params)
        if ok:
            out[i] = r
        else:
            todo.append(i)

    def saved(k, r):
        c = chunks[todo[k]]
        out[todo[k]] = store.save(c.name, c.params, r)

    run_chunks(fn, [chunks[i].task for i in todo], executor=executor, workers=workers, scheduler=scheduler,
               desc=desc or target, on_result=saved, progress=progress)
    return out


# ------------------------------------------------------------------------------------------------ writers
def write_table(path, header: Sequence, rows: Sequence[Sequence]) -> Path:
    """CSV with a header row (``csv.writer``; floats as Python's ``repr``)."""
    path = Path(path)
    with open(path, "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(header)
        w.writerows(rows)
    return path


def write_records(path, records: Sequence[dict], fieldnames: Sequence[str] | None = None) -> Path:
    """Dicts → CSV; columns: ``fieldnames`` or the union of the keys in first-seen order, keys starting
    with ``_`` (per-realisation arrays kept for later statistics) not written."""
    if fieldnames is None:
        fieldnames = []
        for r in records:
            for k in r:
                if k not in fieldnames and not k.startswith("_"):
                    fieldnames.append(k)
    path = Path(path)
    with open(path, "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=list(fieldnames), extrasaction="ignore")
        w.writeheader()
        w.writerows(records)
    return path


@contextmanager
def figure(path, figsize=(6, 4.2), dpi=120, tight=True):
    """``with figure(path) as (fig, ax): ...`` → a PNG at ``path`` (matplotlib Agg; closed afterwards)."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    fig, ax = plt.subplots(figsize=figsize)
    try:
        yield fig, ax
        if tight:
            fig.tight_layout()
        fig.savefig(path, dpi=dpi)
    finally:
        plt.close(fig)


def line_plot(path, series: Sequence[tuple], xlabel: str, ylabel: str, title: str = "", *,
              figsize=(6, 4.2), dpi=120, logx=False, logy=False, title_size=9, legend_size=7,
              grid: dict | None = None) -> Path:
    """One PNG of lines: ``series`` = ``[(label, x, y, fmt, kwargs), ...]`` (``fmt``/``kwargs`` optional)."""
    with figure(path, figsize, dpi) as (fig, ax):
        for s in series:
            lab, x, y = s[:3]
            fmt = s[3] if len(s) > 3 else "-"
            kw = s[4] if len(s) > 4 else {}
            ax.plot(x, y, fmt, label=lab, **kw)
        if logx:
            ax.set_xscale("log")
        if logy:
            ax.set_yscale("log")
        ax.set_xlabel(xlabel)
        ax.set_ylabel(ylabel)
        ax.set_title(title, fontsize=title_size)
        ax.grid(True, **(grid if grid is not None else {"alpha": 0.3}))
        ax.legend(fontsize=legend_size)
    return Path(path)
