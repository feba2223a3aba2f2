"""The shared reproduction harness (isac_opt/repro): keyed resume store, checksums, atomic unique writes,
and resumes of a real target (issue 16 item 2, issue 17): kill -9 mid-run and resume to the same CSV,
a changed seed is a fresh run, a truncated / stale / tampered chunk is named in one line and recomputed."""
from __future__ import annotations

import csv
import json
import math
import multiprocessing as mp
import os
import signal
import subprocess
import sys
import textwrap
import time

import numpy as np
import pytest

from isac_opt.repro import Chunk, ChunkStore, run_chunked, spawn_seed, split
from isac_opt.repro.store import digest, software_fingerprint

SOFT = {"versions": {"test": "1"}, "source_sha256": "0" * 64}


def _mc(task):
    """A Monte-Carlo chunk: mean of |z|² over n complex Gaussians of one seed, and the seed."""
    seed, n = task
    z = np.random.default_rng(seed).standard_normal((n, 2)) @ np.array([1.0, 1j]) / math.sqrt(2)
    return {"seed": seed, "mean_abs2": float(np.mean(np.abs(z) ** 2)), "n": n}


def _chunks(root=11, n=3000, size=1000):
    return [Chunk(f"c{k}", (spawn_seed(root, k), len(idx)), {"root": root, "indices": [idx[0], idx[-1]]})
            for k, idx in enumerate(split(n, size))]


# ------------------------------------------------------------------------------------------ store unit tests
def test_key_covers_target_seed_params_software_chunk(tmp_path):
    s = ChunkStore(tmp_path, "figX", 2025, software=SOFT)
    p0 = s.path("c0", {"a": 1})
    assert s.path("c0", {"a": 1}) == p0                                     # deterministic
    others = [ChunkStore(tmp_path, "figY", 2025, software=SOFT).path("c0", {"a": 1}),
              ChunkStore(tmp_path, "figX", 7, software=SOFT).path("c0", {"a": 1}),
              s.path("c0", {"a": 2}), s.path("c1", {"a": 1}),
              ChunkStore(tmp_path, "figX", 2025, software={**SOFT, "source_sha256": "1" * 64}).path("c0", {"a": 1})]
    assert len({p0, *others}) == 6, "every key component must change the file"
    # the real fingerprint names the package's source digest and library versions
    fp = software_fingerprint()
    assert len(fp["source_sha256"]) == 64 and fp["versions"]["numpy"] == np.__version__


def test_resume_reuses_stored_chunks_and_results_are_exact(tmp_path):
    calls = []

    def fn(task):
        calls.append(task)
        return _mc(task)
    r1 = run_chunked("t", fn, _chunks(), tmp_path, 11, progress=False)
    assert len(calls) == 3 and len(list(tmp_path.glob("*.json"))) == 3
    r2 = run_chunked("t", fn, _chunks(), tmp_path, 11, progress=False)
    assert len(calls) == 3 and r1 == r2                                     # nothing recomputed
    # independent check of the numbers: E|z|² = 1 for z ~ CN(0, 1); the pooled mean within 5σ (σ = 1/√n)
    m = sum(r["mean_abs2"] * r["n"] for r in r2) / 3000
    assert abs(m - 1) < 5 / math.sqrt(3000)
    assert r2[1] == json.loads(json.dumps(_mc(_chunks()[1].task)))         # bit-exact float round trip


def test_changed_seed_is_a_fresh_run(tmp_path):
    a = run_chunked("t", _mc, _chunks(root=11), tmp_path, 11, progress=False)
    b = run_chunked("t", _mc, _chunks(root=12), tmp_path, 12, progress=False)
    assert len(list(tmp_path.glob("*.json"))) == 6                          # new files, old ones kept
    assert [r["seed"] for r in b] == [spawn_seed(12, k) for k in range(3)]
    assert all(x["mean_abs2"] != y["mean_abs2"] for x, y in zip(a, b))


@pytest.mark.parametrize("damage, why", [
    (lambda t: t[: len(t) // 2], "unreadable or truncated"),
    (lambda t: "", "unreadable or truncated"),
    (lambda t: t.replace('"mean_abs2": ', '"mean_abs2": 343.0, "x": '), "checksum mismatch"),
])
def test_corrupt_or_tampered_chunk_is_named_once_and_recomputed(tmp_path, damage, why):
    good = run_chunked("t", _mc, _chunks(), tmp_path, 11, progress=False)
    store = ChunkStore(tmp_path, "t", 11)
    c = _chunks()[1]
    p = store.path(c.name, c.params)
    p.write_text(damage(p.read_text()))
    lines = []
    store.warn = lines.append
    assert store.load(c.name, c.params) == (False, None)
    assert len(lines) == 1 and str(p) in lines[0] and why in lines[0] and "\n" not in lines[0]
    assert run_chunked("t", _mc, _chunks(), tmp_path, 11, progress=False) == good
    assert store.load(c.name, c.params) == (True, good[1])                  # rewritten, valid again


def test_copied_chunk_is_stale_and_checksum_guards_damage_not_intent(tmp_path):
    """Editing the value *and* its checksum does not help: the key is in the file name and in the file,
    and a file copied under another chunk's name is stale."""
    run_chunked("t", _mc, _chunks(), tmp_path, 11, progress=False)
    store = ChunkStore(tmp_path, "t", 11)
    lines = []
    store.warn = lines.append
    c0, c1 = _chunks()[:2]
    p0, p1 = store.path(c0.name, c0.params), store.path(c1.name, c1.params)
    p1.write_text(p0.read_text())                                           # c0's file under c1's name
    assert store.load(c1.name, c1.params) == (False, None)
    assert "stale" in lines[0] and str(p1) in lines[0]
    doc = json.loads(p0.read_text())
    doc["result"]["mean_abs2"] = 343.0
    doc["sha256"] = digest(doc["result"])
    p0.write_text(json.dumps(doc))                                          # a consistent forgery is accepted
    assert store.load(c0.name, c0.params) == (True, doc["result"])          # (checksums detect damage, not intent)


def _hammer(args):
    d, k = args
    s = ChunkStore(d, "t", 1, software=SOFT)
    for i in range(150):
        s.save("c", {"p": 1}, {"writer": k, "i": i, "v": [float(i)] * 50})
    return k


def test_two_writers_never_share_a_temp_name(tmp_path):
    """Two processes store the same chunk 150 times each at once: no error (a shared ``.tmp`` name raced
    with FileNotFoundError), the final file is one complete write, no temporary file is left."""
    with mp.get_context("spawn").Pool(2) as pool:
        assert sorted(pool.map(_hammer, [(str(tmp_path), 0), (str(tmp_path), 1)])) == [0, 1]
    s = ChunkStore(tmp_path, "t", 1, software=SOFT)
    ok, r = s.load("c", {"p": 1})
    assert ok and r["i"] == 149 and r["writer"] in (0, 1)
    assert [p.name for p in tmp_path.iterdir()] == [s.path("c", {"p": 1}).name]


# --------------------------------------------------------------------------- a real target: detection fig4
SCN = dict(M=3, N=5, K=2, L=4, Q=2, noise_comm_w=(1e-11, 1e-11), gamma_db=(10.0, 10.0), xi_q_sq=(1.0, 0.5),
           clutter_bins=(1, 2), clutter_angles_rad=(-math.pi / 3, math.pi / 4))
KW = dict(quick=True, n=4, chunk=1, mm_n_max=3, curves=["ADMM-MM", "Radar-only"])


def _fig4(out, seed=2025, **kw):
    from isac_opt.paper_a.scenario import ScenarioA
    from isac_opt.paper_a.detect.reproduce import run_sweep
    run_sweep("fig4", out, seed=seed, base=ScenarioA(**SCN), **{**KW, **kw})
    return _rows(out / "fig4.csv")


def _rows(path):
    """fig4.csv without the wall-time column."""
    return [{k: v for k, v in r.items() if k != "time_s_mean"} for r in csv.DictReader(open(path))]


def test_fig4_seed_change_is_a_fresh_run(tmp_path):
    """Issue 16: `--set seed=7` after a seed-2025 run used to reuse the seed-2025 chunks."""
    a = _fig4(tmp_path / "R")
    b = _fig4(tmp_path / "R", seed=7)
    assert len(list((tmp_path / "R" / "chunks").glob("*.json"))) == 2 * 8
    assert b != a and b == _fig4(tmp_path / "fresh7", seed=7)             # the seed-7 numbers, not a mix
    # other parameters are in the key too: a different solver budget recomputes
    c = _fig4(tmp_path / "R", mm_n_max=4)
    assert len(list((tmp_path / "R" / "chunks").glob("*.json"))) == 3 * 8 and c != a


def test_fig4_corrupt_and_tampered_chunks_recomputed(tmp_path, capfd):
    good = _fig4(tmp_path)
    files = sorted((tmp_path / "chunks").glob("*.json"))
    files[0].write_text(files[0].read_text()[:40])                          # truncated
    doc = json.loads(files[1].read_text())
    doc["result"]["ADMM-MM"]["rows"][0]["sinr_db"] = 343.0                  # a tampered value
    files[1].write_text(json.dumps(doc))
    capfd.readouterr()
    assert _fig4(tmp_path) == good                                          # not a 343 dB mean
    err = [ln for ln in capfd.readouterr().err.replace("\r", "\n").splitlines() if "chunk " in ln]
    assert len(err) == 2
    assert str(files[0]) in err[0] and "truncated" in err[0]
    assert str(files[1]) in err[1] and "checksum mismatch" in err[1]


_KILL_SCRIPT = textwrap.dedent("""
    import sys, time
    import isac_opt.paper_a.detect.reproduce as R
    from isac_opt.paper_a.scenario import ScenarioA
    orig = R._run_chunk
    def slow(*a, **k):          # a chunk that lasts a while, so the kill lands mid-run
        time.sleep(0.4)
        return orig(*a, **k)
    R._run_chunk = slow
    R.run_sweep("fig4", sys.argv[1], base=ScenarioA(**{scn}), **{kw})
""")


def test_fig4_kill9_mid_run_resumes_to_the_same_csv(tmp_path):
    ref = _fig4(tmp_path / "ref")
    out = tmp_path / "killed"
    script = _KILL_SCRIPT.format(scn=repr(SCN), kw=repr(KW))
    env = dict(os.environ, OMP_NUM_THREADS="1")
    proc = subprocess.Popen([sys.executable, "-c", script, str(out)], env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        t0 = time.time()
        while len(list((out / "chunks").glob("*.json"))) < 3:
            assert proc.poll() is None, "the run finished before it could be killed"
            assert time.time() - t0 < 120
            time.sleep(0.05)
        os.kill(proc.pid, signal.SIGKILL)
    finally:
        proc.wait()
    assert proc.returncode == -signal.SIGKILL
    done = len(list((out / "chunks").glob("*.json")))
    assert 3 <= done < 8 and not (out / "fig4.csv").exists()
    assert _fig4(out) == ref                                               # resumed: the same numbers
    assert len(list((out / "chunks").glob("*.json"))) == 8


def test_cli_seed_option_reaches_the_key(tmp_path, capsys):
    """`isac-testbed reproduce fig7 --quick --set seed=…` twice into one directory: two sets of chunks."""
    from isac_testbed.cli import main
    args = ["reproduce", "fig7", "--quick", "--out", str(tmp_path), "--set", "n=1", "mm_n_max=2",
            'curves=["Radar-only"]']
    assert main(args) == 0
    a = _rows(tmp_path / "fig7" / "fig7.csv")
    assert main(args + ["seed=7"]) == 0
    b = _rows(tmp_path / "fig7" / "fig7.csv")
    assert len(list((tmp_path / "fig7" / "chunks").glob("*.json"))) == 2 and a != b


def test_compare_script_ignores_only_timing_columns(tmp_path):
    """benchmarks/compare_reproduce.py (the before/after check of the harness refactor): a changed number
    is reported with its file, row and column; a changed wall time is not."""
    import importlib.util
    from pathlib import Path
    spec = importlib.util.spec_from_file_location(
        "compare_reproduce", Path(__file__).resolve().parents[1] / "benchmarks" / "compare_reproduce.py")
    cmp = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(cmp)
    for d in ("a/fig4", "b/fig4", "c/fig4"):
        (tmp_path / d / "chunks").mkdir(parents=True)
    head = "curve,x,sinr_db_mean,time_s_mean,engine\n"
    (tmp_path / "a/fig4/fig4.csv").write_text(head + "ADMM-MM,16,12.5,0.31,admm-mm\n")
    (tmp_path / "b/fig4/fig4.csv").write_text(head + "ADMM-MM,16,12.5,0.47,admm-mm\n")
    (tmp_path / "c/fig4/fig4.csv").write_text(head + "ADMM-MM,16,12.500000001,0.31,admm-mm\n")
    (tmp_path / "c/fig4/chunks/x.json").write_text("{}")                  # resume files are not outputs
    assert cmp.compare_target(tmp_path / "a/fig4", tmp_path / "b/fig4") == []
    d = cmp.compare_target(tmp_path / "a/fig4", tmp_path / "c/fig4")
    assert d == ["fig4.csv: row 1 column 'sinr_db_mean': 12.5 != 12.500000001"]
    assert cmp.main([str(tmp_path / "a"), str(tmp_path / "c")]) == 1
    assert cmp.main([str(tmp_path / "a"), str(tmp_path / "b")]) == 0
