"""GNU Radio blocks of the bench (blocks/*): tags, end-to-end statistics, robustness, RIS control."""
from __future__ import annotations

import time

import numpy as np
import pytest

gr = pytest.importorskip("gnuradio.gr")
pmt = pytest.importorskip("pmt")
from gnuradio import blocks as grblocks  # noqa: E402

from isac_opt.bench.framing import auto_gap, frame_samples  # noqa: E402
from isac_opt.bench.stap import estimate_sinr, filter_stats, roc_check  # noqa: E402

pytestmark = pytest.mark.gnuradio


@pytest.fixture(scope="module")
def design_file(init_design_file):
    from isac_opt.designfile import load_design
    return str(init_design_file), load_design(init_design_file)


def test_slp_source_frames_and_tags(design_file):
    from blocks.slp_source import slp_source
    path, d = design_file
    tb = gr.top_block()
    src = slp_source(design=path, frames=5)
    snk = grblocks.vector_sink_c(d.scenario.M)
    tb.connect(src, snk)
    tb.run()
    F = d.scenario.L + auto_gap(d.scenario)
    data = np.asarray(snk.data()).reshape(-1, d.scenario.M)
    expect = np.vstack([np.tile(frame_samples(d.X, auto_gap(d.scenario)), (5, 1)), np.zeros((1, d.scenario.M))])
    np.testing.assert_allclose(data, expect, rtol=1e-6, atol=1e-6)
    tags = [(t.offset, pmt.symbol_to_string(t.key), pmt.to_python(t.value)) for t in snk.tags()]
    frames = [(o, v) for o, k, v in tags if k == "frame"]
    assert frames == [(i * F, i) for i in range(5)] + [(5 * F, -1)]
    des = [v for o, k, v in tags if k == "design"]
    assert len(des) == 1 and des[0]["F"] == F and des[0]["first_frame"] == 0
    assert np.array_equal(np.asarray(des[0]["sym"]).reshape(d.scenario.K, d.scenario.L),
                          np.round((np.angle(d.channels.S) - np.pi / 4) / (np.pi / 2)).astype(int) % 4)


def test_chain_measures_designed_sinr_and_roc(design_file):
    from blocks.pipeline import sim_pipeline
    path, d = design_file
    tb = sim_pipeline(path, 1200, seed=11)
    tb.run()
    r = tb.det.results()
    t0, t1 = r["stat"][r["target"] == 0], r["stat"][r["target"] == 1]
    assert t0.size + t1.size == 1200
    fs = filter_stats(d)
    est = estimate_sinr(t0, t1, conf=0.999)
    assert est["lo_db"] <= fs["sinr_db"] <= est["hi_db"], (est, fs["sinr_db"])
    for p in roc_check(t0, t1, fs["sinr"]):
        assert p["pfa_ok"] and p["pd_ok"], p
    assert tb.rx.totals()["frames"] == 1200


@pytest.mark.parametrize("mode", ["drop", "insert"])
def test_sample_slip_costs_at_most_one_frame(design_file, mode):
    from blocks.pipeline import sim_pipeline
    path, d = design_file
    F = d.scenario.L + auto_gap(d.scenario)
    tb = sim_pipeline(path, 80, seed=1, slip=(30 * F + 5, mode))
    tb.run()
    assert tb.det.results()["frame"].size >= 79
    assert tb.rx.totals()["frames"] >= 79
    assert tb.det.results()["dropped"] <= 1


def _wait(pred, timeout=5.0):
    t_end = time.monotonic() + timeout
    while time.monotonic() < t_end:
        if pred():
            return True
        time.sleep(0.01)
    return False


def test_ris_control_applies_and_reports_errors(design_file):
    from blocks.ris_control import ris_control
    path, d = design_file
    name = f"qa_ctl_{time.monotonic_ns()}"
    tb = gr.top_block()
    ok = ris_control(url=f"sim://{name}?n={d.scenario.N}&bits=2")
    bad = ris_control(url="serial:///dev/nonexistent-risisac-port")
    dbg = grblocks.message_debug()
    tb.msg_connect(ok, "applied", dbg, "store")
    tb.msg_connect(bad, "applied", dbg, "store")
    tb.start()
    try:
        ok.to_basic_block()._post(pmt.intern("command"), pmt.to_pmt({"path": path}))
        bad.to_basic_block()._post(pmt.intern("command"), pmt.to_pmt({"random": 1}))
        assert _wait(lambda: dbg.num_messages() >= 2)
        msgs = [pmt.to_python(dbg.get_message(i)) for i in range(dbg.num_messages())]
        good = [m for m in msgs if m["ok"]]
        errs = [m for m in msgs if not m["ok"]]
        assert len(good) == 1 and len(errs) == 1 and errs[0]["error"]
        from ris_driver.sim import get_simulator
        np.testing.assert_allclose(good[0]["coefficients"], get_simulator(name).applied_coefficients(), atol=1e-6)
        # a failure keeps the last verified state; the control block still answers
        ok.to_basic_block()._post(pmt.intern("command"), pmt.to_pmt({"phi": [1.0] * 3}))   # wrong length
        assert _wait(lambda: dbg.num_messages() >= 3)
        last = pmt.to_python(dbg.get_message(2))
        assert not last["ok"] and ok.last is not None and ok.last["seq"] == good[0]["seq"]
    finally:
        tb.stop(); tb.wait()
        ok.stop(); bad.stop()


def test_random_ris_state_lowers_measured_sinr_as_predicted(design_file):
    """ris_control commands a random state on sim://NAME; the channel follows the simulator; the
    measured SINR equals the model's SINR(w) at the applied coefficients (lower than designed)."""
    from blocks.pipeline import sim_pipeline
    from blocks.ris_control import ris_control
    path, d = design_file
    name = f"qa_rand_{time.monotonic_ns()}"
    url = f"sim://{name}?n={d.scenario.N}&bits=2"
    ctl = ris_control(url=url)
    ctl.command({"random": 5})
    assert ctl.wait_idle(5.0) and ctl.last is not None and ctl.last["ok"]
    applied = np.asarray(ctl.last["coefficients"], np.complex128)
    tb = sim_pipeline(path, 1200, seed=3, ris=url)
    tb.run()
    ctl.stop()
    r = tb.det.results()
    est = estimate_sinr(r["stat"][r["target"] == 0], r["stat"][r["target"] == 1], conf=0.999)
    pred = filter_stats(d, applied)["sinr_db"]
    assert pred < filter_stats(d)["sinr_db"] - 1.0
    assert est["lo_db"] <= pred <= est["hi_db"], (est, pred)


def test_design_queue_and_switch_at_frame_boundary(design_file, tmp_path):
    """A ';'-separated queue alternates designs per frame; a 'design' message switches at a boundary."""
    from blocks.slp_source import slp_source
    from isac_opt.paper_a.scenario import ScenarioA
    from isac_opt.registry import get_method
    path, d = design_file
    d2 = get_method("init", "paper-a").run(ScenarioA(), 1)
    p2 = str(tmp_path / "d2.npz")
    d2.save(p2)
    F = d.scenario.L + auto_gap(d.scenario)
    f1, f2 = frame_samples(d.X, auto_gap(d.scenario)), frame_samples(d2.X, auto_gap(d.scenario))
    tb = gr.top_block()
    src = slp_source(design=f"{path};{p2}", frames=4)
    snk = grblocks.vector_sink_c(d.scenario.M)
    tb.connect(src, snk)
    tb.run()
    data = np.asarray(snk.data()).reshape(-1, d.scenario.M)
    for i, f in enumerate([f1, f2, f1, f2]):
        np.testing.assert_allclose(data[i * F:(i + 1) * F], f, atol=1e-6)
    des = [pmt.to_python(t.value)["first_frame"] for t in snk.tags() if pmt.symbol_to_string(t.key) == "design"]
    assert des == [0, 1, 2, 3]
    # message switch: every frame is entirely one design, and the switch happens at most once
    tb = gr.top_block()
    src = slp_source(design=path, frames=4000)
    snk = grblocks.vector_sink_c(d.scenario.M)
    tb.connect(src, snk)
    tb.start()
    src.to_basic_block()._post(pmt.intern("design"), pmt.intern(p2))
    tb.wait()
    data = np.asarray(snk.data()).reshape(-1, d.scenario.M)[: 4000 * F].reshape(4000, F, -1)
    is1 = np.all(np.abs(data - f1) < 1e-5, axis=(1, 2))
    is2 = np.all(np.abs(data - f2) < 1e-5, axis=(1, 2))
    assert np.all(is1 | is2)
    k = int(np.argmax(is2)) if is2.any() else 4000
    assert np.all(is1[:k]) and np.all(is2[k:])
    if is2.any():
        tags = [pmt.to_python(t.value) for t in snk.tags() if pmt.symbol_to_string(t.key) == "design"]
        assert tags[-1]["first_frame"] == k and tags[-1]["path"] == p2


def test_ris_driver_failure_keeps_flowgraph_running(design_file):
    """A RIS control pointing at a dead port reports errors on 'applied' (wired to the channel's 'ris'
    port); the channel keeps the last verified state and the receivers see every frame."""
    from blocks.pipeline import sim_pipeline
    from blocks.ris_control import ris_control
    path, d = design_file
    tb = sim_pipeline(path, 3000, seed=4)
    ctl = ris_control(url="serial:///dev/nonexistent-risisac-port")
    dbg = grblocks.message_debug()
    tb.msg_connect(ctl, "applied", tb.fe.chan, "ris")
    tb.msg_connect(ctl, "applied", dbg, "store")
    phi_before = tb.fe.chan.emu.phi.copy()
    tb.start()
    ctl.to_basic_block()._post(pmt.intern("command"), pmt.to_pmt({"random": 2}))
    # a message-only source (ris_control) keeps a flowgraph alive: wait for the frames, then stop
    done = _wait(lambda: tb.rx.totals()["frames"] >= 3000 and tb.det.results()["frame"].size >= 3000, 60.0)
    tb.stop(); tb.wait()
    assert done
    assert _wait(lambda: dbg.num_messages() >= 1)
    msg = pmt.to_python(dbg.get_message(0))
    assert msg["ok"] is False and msg["error_type"]
    np.testing.assert_array_equal(tb.fe.chan.emu.phi, phi_before)
    assert tb.det.results()["frame"].size == 3000 and tb.rx.totals()["frames"] == 3000
    ctl.stop()
