"""Paper-B designs end to end through GNU Radio: the SLP source's paper-B mode and the headless
flowgraph ``grc/flowgraphs/risisac_headless_sim_b.grc`` (slp_source → ris_isac_channel_b → file sinks).

Independent references: the source's samples against the design's X laid out by hand (item pL + l =
x_p[l]); the flowgraph's radar/user files against :class:`isac_opt.bench.channel_b.ChannelB` run on the
same seed (sample for sample); the measured SCNR of the design's MVDR filter against the designed SCNR
σ_t²|wᴴt|²/(wᴴRw) [spec B.4 (19)] with the exact F interval of
:func:`isac_opt.bench.stap.estimate_sinr` (exponential statistics under both hypotheses: fresh
α_t ~ CN(0, σ_t²) per CPI) at 99.9 %.
"""
from __future__ import annotations

import dataclasses
import math
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from isac_opt.bench.framing import design_id, symbol_indices
from isac_opt.paper_b.model import Model, draw_channels
from isac_opt.paper_b.scenario import ScenarioB

ROOT = Path(__file__).resolve().parents[1]
GRC = ROOT / "grc"
FG = GRC / "flowgraphs" / "risisac_headless_sim_b.grc"
GRCC = shutil.which("grcc") or "/usr/bin/grcc"

# the small scenario of tests/test_bench_channel_b.py: P_c = 3 pulses of L = 4 slots, L_r = 10,
# 90 radar samples per CPI, dominant clutter and comparable RIS noise, designed SCNR of a few dB
SMALL = dict(Nt=3, Nr=3, K=2, R=2, N=4, Q=2, Pc=3, L=4, noise_comm_w=(1e-11, 2e-11), gamma_db=(5.0, 5.0),
             sigma_q_sq=(1e3, 3e2), clutter_x=(-6.0, 0.0), clutter_y=(49.0, 60.0), noise_ris_w=1e-7,
             sigma_t_sq=300.0, target_vel=(10.0, 30.0))


@pytest.fixture(scope="module")
def design_b(tmp_path_factory):
    """A real paper-B design (stap-fp-mm-admm, 5 outer iterations, < 1 s) and a second one (X·j)."""
    from isac_opt.paper_b.design import load
    from isac_opt.paper_b.methods import run_method
    scn = ScenarioB(**SMALL)
    ch = draw_channels(scn, np.random.default_rng(1))
    d = run_method("stap-fp-mm-admm", scn.replace(max_outer=5), ch, 1)
    tmp = tmp_path_factory.mktemp("fgb")
    p = tmp / "design_b.npz"
    d.save(p)
    d2 = dataclasses.replace(d, X=d.X * 1j)
    p2 = tmp / "design_b2.npz"
    d2.save(p2)
    return str(p), load(p), str(p2), load(p2)


def _run_source(path, frames, M):
    gr = pytest.importorskip("gnuradio.gr")
    pmt = pytest.importorskip("pmt")
    from gnuradio import blocks as grblocks
    from blocks.slp_source import slp_source
    tb = gr.top_block()
    src = slp_source(design=path, frames=frames, M=M)
    snk = grblocks.vector_sink_c(M)
    tb.connect(src, snk)
    tb.run()
    tags = [(t.offset, pmt.symbol_to_string(t.key), pmt.to_python(t.value)) for t in snk.tags()]
    return src, np.asarray(snk.data()).reshape(-1, M), tags


# ---------------------------------------------------------------------------------------------------
# SLP source, paper-B mode
# ---------------------------------------------------------------------------------------------------
@pytest.mark.gnuradio
def test_source_emits_X_per_cpi_with_tags(design_b):
    path, d, _, _ = design_b
    ch = d.channels
    Pc, L, Nt = d.X.shape
    F, n = Pc * L, 5
    src, data, tags = _run_source(path, n, Nt)
    assert src.kind == "paper-b" and src.F == F and src.gap == 0
    # exactly n CPIs, no gap, no end marker; item p*L + l of every CPI is x_p[l] (built by hand)
    assert data.shape == (n * F, Nt)
    want = np.zeros((F, Nt), np.complex64)
    for p in range(Pc):
        for l in range(L):
            want[p * L + l] = d.X[p, l]
    for c in range(n):
        np.testing.assert_array_equal(data[c * F:(c + 1) * F], want)
    assert [(o, v) for o, k, v in tags if k == "frame"] == [(c * F, c) for c in range(n)]
    des = [(o, v) for o, k, v in tags if k == "design"]
    assert len(des) == 1 and des[0][0] == 0
    v = des[0][1]
    assert v["kind"] == "paper-b" and v["path"] == path and v["first_frame"] == 0 and v["F"] == F
    assert (v["M"], v["Nt"], v["Nr"], v["K"], v["Pc"], v["L"], v["Lr"]) == (Nt, ch.Nt, ch.Nr, ch.K, Pc, L, ch.Lr)
    assert v["id"] == design_id(d.X, d.phi)
    order = d.scenario.psk_order
    sym = np.asarray(v["sym"]).reshape(ch.K, Pc * L)
    np.testing.assert_allclose(np.exp(1j * (np.pi / order + 2 * np.pi * sym / order)), ch.S, atol=1e-9)
    np.testing.assert_array_equal(sym, symbol_indices(ch.S, order))


@pytest.mark.gnuradio
def test_source_paper_b_queue_and_bad_parameters(design_b):
    pytest.importorskip("gnuradio")
    pmt = pytest.importorskip("pmt")
    from gnuradio import blocks as grblocks, gr
    from blocks.slp_source import slp_source
    path, d, p2, d2 = design_b
    Pc, L, Nt = d.X.shape
    F = Pc * L
    tb = gr.top_block()
    src = slp_source(design=f"{path};{p2}", frames=4, M=Nt)
    snk = grblocks.vector_sink_c(Nt)
    tb.connect(src, snk)
    tb.run()
    data = np.asarray(snk.data()).reshape(4, F, Nt)
    for c, dd in enumerate([d, d2, d, d2]):
        np.testing.assert_array_equal(data[c], dd.X.reshape(F, Nt).astype(np.complex64))
    des = [pmt.to_python(t.value) for t in snk.tags() if pmt.symbol_to_string(t.key) == "design"]
    assert [t["first_frame"] for t in des] == [0, 1, 2, 3]
    assert [t["id"] for t in des] == [design_id(x.X, x.phi) for x in (d, d2, d, d2)]
    with pytest.raises(ValueError, match="N_t = 3"):
        slp_source(design=path, M=6)
    with pytest.raises(ValueError, match="gap"):
        slp_source(design=path, M=Nt, gap=5)
    # a message switch to a missing file or to a design with another CPI length (L = 5) is ignored
    # with a warning, not a crash; a compatible one is queued for the next CPI boundary
    from isac_opt.paper_b.methods import run_method
    scn5 = ScenarioB(**{**SMALL, "L": 5})
    d5 = run_method("stap-fp-mm-admm", scn5.replace(max_outer=1), draw_channels(scn5, np.random.default_rng(2)), 1)
    p5 = str(Path(path).with_name("design_b_L5.npz"))
    d5.save(p5)
    other = slp_source(design=path, M=Nt)
    other._on_design(pmt.intern(str(Path(path).with_name("no-such-design.npz"))))
    other._on_design(pmt.intern(p5))
    assert other._pending is None
    other._on_design(pmt.intern(p2))
    assert other._pending is not None and other._pending[1] == [p2]
    with pytest.raises(ValueError, match="same N_t, P_c and L"):
        slp_source(design=f"{path};{p5}", M=Nt)


# ---------------------------------------------------------------------------------------------------
# the headless flowgraph
# ---------------------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def compiled_b(tmp_path_factory):
    pytest.importorskip("gnuradio")
    if not Path(GRCC).exists():
        pytest.skip("grcc not installed")
    home = tmp_path_factory.mktemp("grchome_b")
    xdg = home / "xdg"
    xdg.mkdir(mode=0o700)
    env = dict(os.environ, HOME=str(home), GRC_BLOCKS_PATH=str(GRC), GRC_HIER_PATH=str(home / "hier"),
               XDG_RUNTIME_DIR=str(xdg), PYTHONPATH=str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", ""))
    out = tmp_path_factory.mktemp("grcout_b")
    r = subprocess.run([GRCC, "-o", str(out), str(FG)], env=env, capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stdout + r.stderr
    assert (out / "risisac_headless_sim_b.py").exists()
    return out, env


@pytest.mark.gnuradio
def test_headless_b_flowgraph_measured_scnr(compiled_b, design_b):
    """600 CPIs (300 with the target) through the compiled flowgraph: the files equal ChannelB on the
    same seed, and the design's MVDR filter measures the designed SCNR within the 99.9 % F interval."""
    from isac_opt.bench.channel_b import ChannelB, measure_scnr
    from isac_opt.bench.stap import estimate_sinr
    out, env = compiled_b
    path, d, _, _ = design_b
    ch = d.channels
    n, seed = 600, 13
    radar_f, users_f = out / "radar.c64", out / "users.c64"
    r = subprocess.run([sys.executable, str(out / "risisac_headless_sim_b.py"), "--design", path,
                        "--cpis", str(n), "--seed", str(seed), "--Nt", str(ch.Nt), "--Nr", str(ch.Nr),
                        "--K", str(ch.K), "--radar-file", str(radar_f), "--users-file", str(users_f)],
                       env=env, capture_output=True, text=True, timeout=120, cwd=out)
    assert r.returncode == 0, r.stdout[-2000:] + r.stderr[-2000:]
    radar = np.fromfile(radar_f, np.complex64).reshape(-1, ch.Nr)
    users = np.fromfile(users_f, np.complex64).reshape(-1, ch.K)
    assert radar.shape == (n * ch.Pc * ch.Lr, ch.Nr) and users.shape == (n * ch.Pc * ch.L, ch.K)
    # sample for sample: the flowgraph = the pure channel on the design's X (complex64 as emitted)
    X64 = d.X.astype(np.complex64).astype(np.complex128)
    ref = ChannelB(ch, d.phi, np.random.default_rng(seed), target_mode="alternate", rcs="fresh").process(
        np.broadcast_to(X64, (n,) + X64.shape))
    np.testing.assert_allclose(radar, ref.radar.reshape(-1, ch.Nr), rtol=1e-5, atol=1e-5 * np.abs(radar).max())
    np.testing.assert_allclose(users, ref.users.reshape(-1, ch.K), rtol=1e-5, atol=1e-5 * np.abs(users).max())
    # measured SCNR of the design's filter W (target present in even CPIs: 'alternate')
    Y = radar.reshape(n, -1).astype(np.complex128)
    present = np.arange(n) % 2 == 0
    m = Model(ch)
    T = np.abs(Y @ np.conj(d.W.reshape(-1))) ** 2
    designed = 10 * math.log10(m.scnr(d.W, d.X, d.phi))
    assert abs(designed - d.metrics["scnr_db"]) < 1e-9
    est = estimate_sinr(T[~present], T[present], conf=0.999)
    print(f"\nheadless paper-B flowgraph, {n} CPIs, MVDR filter of the design: designed SCNR {designed:.2f} dB, "
          f"measured {est['sinr_db']:.2f} dB [{est['lo_db']:.2f}, {est['hi_db']:.2f}] (99.9 %, "
          f"n0 = {est['n0']}, n1 = {est['n1']})")
    assert est["n0"] == est["n1"] == n // 2
    assert est["lo_db"] <= designed <= est["hi_db"], (est, designed)
    # matched filter w = t (does not null the clutter): checks the clutter statistics too
    t = m.target(d.X, d.phi)
    Tm = np.abs(Y @ np.conj(t.reshape(-1))) ** 2
    mf = 10 * math.log10(m.scnr(t, d.X, d.phi))
    estm = estimate_sinr(Tm[~present], Tm[present], conf=0.999)
    print(f"matched filter: model SCNR {mf:.2f} dB, measured {estm['sinr_db']:.2f} dB "
          f"[{estm['lo_db']:.2f}, {estm['hi_db']:.2f}]")
    assert estm["lo_db"] <= mf <= estm["hi_db"], (estm, mf)
    # the channel_b helper on the same seed runs the same channel: same measurement (float32 rounding only)
    res = measure_scnr(d, n, seed=seed)
    assert abs(res["design"]["designed_db"] - designed) < 1e-9
    assert abs(res["design"]["sinr_db"] - est["sinr_db"]) < 1e-3, (res["design"], est)
    assert abs(res["matched"]["sinr_db"] - estm["sinr_db"]) < 1e-3, (res["matched"], estm)
