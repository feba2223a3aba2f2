"""Pluggable sweep executor (isac_opt/executor.py): local (in-process, joblib loky) vs Dask distributed on a
loopback LocalCluster — identical results for the same seeds, resume, clear errors."""
import csv
import math
import time

import numpy as np
import pytest

from isac_opt.executor import ExecutorError, run_chunks

distributed = pytest.importorskip("distributed")


@pytest.fixture(scope="module")
def scheduler():
    """Two single-threaded worker processes on 127.0.0.1; always closed."""
    cluster = distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True, host="127.0.0.1",
                                       dashboard_address=None)
    try:
        yield cluster.scheduler_address
    finally:
        cluster.close()


def _mc_chunk(task):
    """Monte Carlo chunk: (chunk id, seed, n) -> (id, Σ|z|², Σ|z|⁴, n, eigen-sum of a random Hermitian matrix)."""
    cid, seed, n = task
    rng = np.random.default_rng(np.random.SeedSequence(seed, spawn_key=(cid,)))
    z = (rng.standard_normal(n) + 1j * rng.standard_normal(n)) / math.sqrt(2)
    A = rng.standard_normal((40, 40)) + 1j * rng.standard_normal((40, 40))
    ev = np.linalg.eigvalsh(A @ A.conj().T)               # LAPACK/BLAS path: sensitive to thread count
    return cid, float(np.sum(np.abs(z) ** 2)), float(np.sum(np.abs(z) ** 4)), n, float(ev.sum())


def _boom(task):
    if task == 2:
        raise ValueError("chunk 2 failed on purpose")
    return task


CHUNKS = [(i, 7, 2000) for i in range(6)]


def test_local_and_dask_bit_identical(scheduler):
    seen = []
    serial = run_chunks(_mc_chunk, CHUNKS, progress=False, on_result=lambda i, r: seen.append(i))
    loky = run_chunks(_mc_chunk, CHUNKS, workers=2, progress=False)
    dask = run_chunks(_mc_chunk, CHUNKS, executor="dask", scheduler=scheduler, progress=False)
    assert sorted(seen) == list(range(len(CHUNKS)))                  # on_result once per chunk, in the caller
    assert [r[0] for r in dask] == [c[0] for c in CHUNKS]             # input order kept
    assert serial == loky == dask                                     # bit-identical floats
    # the pooled estimate is right: E|z|² = 1 for z ~ CN(0, 1), Var|z|² = E|z|⁴ − 1 = 1
    n = sum(r[3] for r in dask)
    m = sum(r[1] for r in dask) / n
    sd = math.sqrt(sum(r[2] for r in dask) / n - m * m) / math.sqrt(n)
    assert abs(m - 1.0) < 5 * sd, f"E|z|² = {m:.4f}, 5σ = {5 * sd:.4f}"
    # trace identity, independent of eigvalsh: Σλ(AAᴴ) = ‖A‖_F², recomputed from the same seed
    cid, seed, nn = CHUNKS[3]
    rng = np.random.default_rng(np.random.SeedSequence(seed, spawn_key=(cid,)))
    rng.standard_normal(nn), rng.standard_normal(nn)
    A = rng.standard_normal((40, 40)) + 1j * rng.standard_normal((40, 40))
    assert abs(dask[3][4] - np.sum(np.abs(A) ** 2)) < 1e-9 * np.sum(np.abs(A) ** 2)


def test_worker_error_propagates(scheduler):
    with pytest.raises(ValueError, match="chunk 2 failed"):
        run_chunks(_boom, range(4), executor="dask", scheduler=scheduler, progress=False)


def test_bad_settings_clear_errors():
    t0 = time.perf_counter()
    with pytest.raises(ExecutorError, match=r"--scheduler tcp://127.0.0.1:1: cannot connect"):
        run_chunks(_mc_chunk, CHUNKS, executor="dask", scheduler="tcp://127.0.0.1:1", progress=False)
    assert time.perf_counter() - t0 < 8, "a refused connection must fail fast, not after the Client timeout"
    with pytest.raises(ExecutorError, match="scheduler"):
        run_chunks(_mc_chunk, CHUNKS, executor="dask", scheduler="no-port-here", progress=False)
    with pytest.raises(ExecutorError, match="executor: expected one of local, dask, got 'ray'"):
        run_chunks(_mc_chunk, CHUNKS, executor="ray")
    with pytest.raises(ExecutorError, match="workers"):
        run_chunks(_mc_chunk, CHUNKS, workers=0)
    with pytest.raises(ExecutorError, match="only used with executor=dask"):
        run_chunks(_mc_chunk, CHUNKS, scheduler="tcp://127.0.0.1:8786")


def _rows(path):
    """fig4.csv rows without the wall-time column."""
    return [{k: v for k, v in r.items() if k != "time_s_mean"} for r in csv.DictReader(open(path))]


def test_fig4_dask_equals_local_and_resumes(tmp_path, scheduler):
    from isac_opt.paper_a.scenario import ScenarioA
    from isac_opt.paper_a.detect.reproduce import run_sweep
    scn = ScenarioA(M=3, N=5, K=2, L=4, Q=2, noise_comm_w=(1e-11, 1e-11), gamma_db=(10.0, 10.0),
                    xi_q_sq=(1.0, 0.5), clutter_bins=(1, 2), clutter_angles_rad=(-math.pi / 3, math.pi / 4))
    kw = dict(quick=True, n=2, chunk=1, base=scn, mm_n_max=3)
    run_sweep("fig4", tmp_path / "local", **kw)                                 # in-process
    run_sweep("fig4", tmp_path / "dask", executor="dask", scheduler=scheduler, **kw)
    loc, dsk = _rows(tmp_path / "local" / "fig4.csv"), _rows(tmp_path / "dask" / "fig4.csv")
    assert len(loc) == 10 and all(r["n"] == "2" for r in loc)
    assert loc == dsk                                  # every curve, every number, bit for bit (as text)
    # resume: drop one chunk file; only it is recomputed, the others keep their mtime
    chunks = sorted((tmp_path / "dask" / "chunks").glob("*.json"))
    assert len(chunks) == 4
    mt = {c: c.stat().st_mtime_ns for c in chunks}
    chunks[1].unlink()
    run_sweep("fig4", tmp_path / "dask", executor="dask", scheduler=scheduler, **kw)
    assert chunks[1].exists()
    assert all(c.stat().st_mtime_ns == mt[c] for c in chunks if c != chunks[1])
    assert _rows(tmp_path / "dask" / "fig4.csv") == loc
    assert not list((tmp_path / "dask" / "chunks").glob("*.tmp"))


def test_cli_passes_executor_options(tmp_path, scheduler, capsys):
    from isac_testbed.cli import main
    rc = main(["reproduce", "fig7", "--quick", "--out", str(tmp_path), "--set", "executor=dask",
               "scheduler=tcp://127.0.0.1:1", "n=1"])
    err = capsys.readouterr().err.strip()
    assert rc == 2 and err.count("\n") == 0 and "--scheduler tcp://127.0.0.1:1" in err, err
    # the real thing: `isac-testbed reproduce fig7 --quick --set executor=dask scheduler=ADDR ...`
    rc = main(["reproduce", "fig7", "--quick", "--out", str(tmp_path), "--set", "executor=dask",
               f"scheduler={scheduler}", "n=1", "mm_n_max=2", "curves=[\"ADMM-MM\", \"Radar-only\"]"])
    assert rc == 0
    rows = list(csv.DictReader(open(tmp_path / "fig7" / "fig7.csv")))
    assert {r["curve"] for r in rows} == {"ADMM-MM", "Radar-only"} and len(rows) == 2 * 13
    pd = [float(r["pd_mean"]) for r in rows if r["curve"] == "ADMM-MM"]
    assert all(0 <= a <= b <= 1 for a, b in zip(pd, pd[1:]))          # Pd non-decreasing in Pfa
    assert len(list((tmp_path / "fig7" / "chunks").glob("*.json"))) == 1


def test_paper_b_fig9_dask_equals_local(tmp_path, scheduler):
    from isac_opt.registry import REPRODUCE, load_catalogs
    load_catalogs()
    run = REPRODUCE["b-fig9"].run
    run(str(tmp_path / "local"), quick=True, workers=1, max_outer=2)
    run(str(tmp_path / "dask"), quick=True, workers=1, max_outer=2, executor="dask", scheduler=scheduler)
    a, b = (open(tmp_path / d / "b-fig9.csv").read() for d in ("local", "dask"))
    assert a == b and a.count("\n") > 3
