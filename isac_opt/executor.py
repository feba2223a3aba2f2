"""Pluggable executor for chunked Monte Carlo sweeps (performance notes §6).

One call, :func:`run_chunks`, maps a function over a list of *chunks* (each chunk = a few realisations of
one sweep point, lasting seconds, carrying its own seed) and returns the results in input order:

* ``executor="local"`` (default): ``workers`` ≤ 1 runs the chunks in this process; ``workers`` > 1 uses
  joblib's loky process pool on this machine.
* ``executor="dask"``: a Dask distributed cluster. ``scheduler="tcp://host:8786"`` connects to a running
  scheduler (``dask scheduler`` + ``dask worker tcp://host:8786`` on each machine); ``scheduler=None``
  starts a temporary loopback ``LocalCluster`` with ``workers`` single-threaded worker processes.

Results do not depend on the executor, the number of workers or the completion order: the seeds are
carried by the chunks and every chunk runs with one BLAS/OpenMP/torch thread (``threadpoolctl``), so the
floating-point results are bit-identical everywhere (the same library versions assumed). Chunk functions
that call cvxpy should run inside :func:`cold_solves` (warm-started re-solves depend on process history);
ones that import torch themselves should call ``torch.set_num_threads(1)``.

Workers never touch the caller's file system: each result comes back to the calling process and
``on_result(i, result)`` is called there as soon as chunk ``i`` completes (the reproduction harness,
:func:`isac_opt.repro.run_chunked`, stores the chunk in its keyed resume store there), so remote workers
need no shared disk, only the same ``ris-isac-testbed``
installation (``pip install -c constraints.txt -e .``) and the same Python/numpy/torch/cvxpy versions.
"""
from __future__ import annotations

import threading
import uuid
from contextlib import ExitStack, contextmanager
from typing import Any, Callable, Sequence

from .errors import IsacError

EXECUTORS = ("local", "dask")


class ExecutorError(IsacError, ValueError):
    """Bad executor settings or an unreachable Dask scheduler (one line naming the option)."""


_COLD = {"lock": threading.Lock(), "depth": 0, "orig": None}


@contextmanager
def cold_solves():
    """Force ``warm_start=False`` in every ``cvxpy.Problem.solve`` inside the block.

    With cvxpy's default ``warm_start=True`` a re-solve of a cached (DPP, ``lru_cache``) problem updates the
    existing Clarabel solver instead of building it anew, and its result differs from the first solve's
    where the optimum is not unique (measured: the A.10 start point moves by up to 0.06 in |x|). A design
    then depends on what the process solved before, i.e. on chunking and on the executor. Cold solves cost
    nothing measurable here and make each realisation a function of its seed only. Stopgap until the
    solver calls (``isac_opt/ci.py``, ``isac_opt/paper_a/detect/admm_mm.py``, ``isac_opt/paper_b/qp.py``) pass
    ``warm_start=False`` themselves. Chunk functions of the reproduction targets run inside this block.
    Thread-safe (re-entrant count); the original method is restored when the last block exits.
    """
    import cvxpy as cp
    with _COLD["lock"]:
        if _COLD["depth"] == 0:
            orig = _COLD["orig"] = cp.Problem.solve

            def solve(self, *a, **k):
                k["warm_start"] = False
                return orig(self, *a, **k)
            cp.Problem.solve = solve
        _COLD["depth"] += 1
    try:
        yield
    finally:
        with _COLD["lock"]:
            _COLD["depth"] -= 1
            if _COLD["depth"] == 0:
                cp.Problem.solve = _COLD["orig"]


def _check(executor, workers) -> int:
    if executor not in EXECUTORS:
        raise ExecutorError(f"executor: expected one of {', '.join(EXECUTORS)}, got {executor!r}")
    try:
        w = int(workers)
    except (TypeError, ValueError):
        raise ExecutorError(f"workers (--workers): expected a positive integer, got {workers!r}") from None
    if w < 1 or w != float(workers):
        raise ExecutorError(f"workers (--workers): expected a positive integer, got {workers!r}")
    return w


def _indexed(fn, i, chunk):
    """Run one chunk with one BLAS/OpenMP/torch thread, whatever the executor (identical floating-point
    results in-process, in loky workers and in Dask workers)."""
    import sys

    from threadpoolctl import threadpool_limits
    torch = sys.modules.get("torch")
    nt = torch.get_num_threads() if torch is not None else None
    try:
        with threadpool_limits(limits=1):
            if torch is not None:
                torch.set_num_threads(1)
            return i, fn(chunk)
    finally:
        if torch is not None and nt is not None:
            torch.set_num_threads(nt)


def _probe(addr: str, timeout: float) -> None:
    """TCP-connect to a ``tcp://host:port`` scheduler address (other protocols are left to the Client)."""
    import socket

    from distributed.comm import parse_address
    from distributed.comm.addressing import parse_host_port
    proto, loc = parse_address(addr)
    if proto != "tcp":
        return
    host, port = parse_host_port(loc)
    with socket.create_connection((host, port), timeout=timeout):
        pass


def connect(scheduler, timeout: float = 10.0):
    """A ``distributed.Client`` for ``scheduler`` (address string or Client); clear one-line errors."""
    try:
        from distributed import Client
    except ImportError:                                  # pragma: no cover - it is a dependency
        raise ExecutorError("executor='dask' needs the 'distributed' package: pip install distributed") from None
    if isinstance(scheduler, Client):
        return scheduler
    if not isinstance(scheduler, str) or not scheduler.strip():
        raise ExecutorError(f"--scheduler: expected an address such as tcp://127.0.0.1:8786, "
                            f"got {scheduler!r}")
    addr = scheduler.strip()
    try:
        _probe(addr, min(timeout, 3.0))               # fail fast (a failed Client lingers ~20 s on exit)
        return Client(addr, timeout=timeout, set_as_default=False)
    except (OSError, TimeoutError, ValueError, TypeError) as e:
        msg = str(e).splitlines()[0] if str(e) else type(e).__name__
        raise ExecutorError(f"--scheduler {addr}: cannot connect to a Dask scheduler ({msg[:160]}); "
                            f"start one with `dask scheduler` and workers with `dask worker {addr}`, "
                            f"or leave scheduler unset for a local cluster") from None


def run_chunks(fn: Callable[[Any], Any], chunks: Sequence, *, executor: str = "local", workers: int = 1,
               scheduler=None, progress: bool = True, desc: str = "chunks",
               on_result: Callable[[int, Any], None] | None = None) -> list:
    """Map ``fn`` over ``chunks``; results in input order.

    Parameters
    ----------
    fn : callable(chunk) -> result
        Picklable (a module-level function or a closure over picklable values; cloudpickle is used for
        both backends). It must draw its randomness only from seeds inside the chunk.
    chunks : sequence
        Task descriptions (seeds, indices, scenario, …), each picklable.
    executor : {"local", "dask"}
    workers : int
        local: process count (1 = in this process). dask without ``scheduler``: worker processes of the
        temporary loopback cluster. Ignored when connecting to an existing scheduler.
    scheduler : str or distributed.Client, optional
        Dask scheduler address (``tcp://host:port``) or an open Client (not closed here).
    progress : bool
        tqdm bar over completed chunks.
    on_result : callable(i, result), optional
        Called in the calling process as each chunk completes (any order), e.g. to save a resume file.

    Returns
    -------
    list
        ``[fn(c) for c in chunks]``, computed by the chosen executor.
    """
    w = _check(executor, workers)
    if executor == "local" and scheduler not in (None, ""):
        raise ExecutorError("--scheduler: only used with executor=dask; "
                            "add --set executor=dask or drop the scheduler")
    chunks = list(chunks)
    out: list = [None] * len(chunks)
    if not chunks:
        return out
    from tqdm import tqdm
    with ExitStack() as stack:
        client = stack.enter_context(_dask_client(w, scheduler)) if executor == "dask" else None
        bar = stack.enter_context(tqdm(total=len(chunks), desc=desc, unit="chunk", disable=not progress))

        def done(i, r):
            out[i] = r
            if on_result is not None:
                on_result(i, r)
            bar.update(1)

        if client is not None:
            _run_dask(client, fn, chunks, done)
        elif w == 1 or len(chunks) == 1:
            for i, c in enumerate(chunks):
                done(*_indexed(fn, i, c))
        else:
            from joblib import Parallel, delayed
            par = Parallel(n_jobs=min(w, len(chunks)), backend="loky", return_as="generator_unordered")
            for i, r in par(delayed(_indexed)(fn, i, c) for i, c in enumerate(chunks)):
                done(i, r)
    return out


@contextmanager
def _dask_client(w, scheduler):
    """Client to ``scheduler`` (closed afterwards unless passed in), or to a temporary loopback cluster."""
    cluster = None
    try:
        if scheduler in (None, ""):
            from distributed import LocalCluster
            cluster = LocalCluster(n_workers=w, threads_per_worker=1, processes=True, host="127.0.0.1",
                                   dashboard_address=None)
            client = connect(cluster.scheduler_address)
        else:
            client = connect(scheduler)
        try:
            yield client
        finally:
            if client is not scheduler:
                client.close()
    finally:
        if cluster is not None:
            cluster.close()


def _run_dask(client, fn, chunks, done) -> None:
    from distributed import as_completed
    tag = uuid.uuid4().hex[:12]
    futs = [client.submit(_indexed, fn, i, c, pure=False, key=f"chunk-{i}-{tag}") for i, c in enumerate(chunks)]
    try:
        for fut in as_completed(futs, loop=client.loop):
            i, r = fut.result()                          # re-raises a worker's exception here
            done(i, r)
    finally:
        for fut in futs:
            fut.release()
