"""The live link through GNU Radio [issue 13]: ARQ bookkeeping (pure), the per-frame pieces shared with the
numpy loop, the GNU Radio flowgraph end to end (bytes compared), sample slips, engine failures and a late
engine, the compiled .grc run headless, and ``isac-testbed link --backend``."""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from isac_opt.link.arq import (ArqReceiver, ArqSender, aligned_chunk, check_packet, frames_per_packet, parse_body,
                               with_crc)
from isac_opt.link.packets import bytes_to_symbols, packet_bytes
from isac_opt.link.stream import SlotAssembler, decide_psk, error_counts, slot_frames

ROOT = Path(__file__).resolve().parents[1]
REPORT_KEYS = ("ber", "per", "goodput_bps", "payload_match", "designs_per_s", "realtime_factor",
               "sinr_measured_db", "sinr_predicted_db", "ci_frames_ok", "frames")


# ---------------------------------------------------------------------------------------------- pure
@pytest.mark.parametrize("order,L", [(4, 20), (2, 7), (8, 13), (4, 1)])
def test_aligned_chunk_fills_whole_frames(order, L):
    bps = int(np.log2(order))
    for chunk in (1, 5, 64, 200):
        c = aligned_chunk(chunk, order, L)
        assert c >= chunk and (packet_bytes(c) * 8) % (bps * L) == 0
        # the smallest such size: none between chunk and c fills whole frames
        assert all((packet_bytes(x) * 8) % (bps * L) for x in range(chunk, c))
        assert frames_per_packet(c, order, L) * L * bps == packet_bytes(c) * 8


def _arq_run(payload, chunk, loss, rng, window=64, lag=5, swap=0.2):
    """Sender/receiver over a lossy slot channel whose outcomes come back ``lag`` slots late and partly
    out of order (as the crc_check ok/fail ports may deliver them)."""
    tx, rx = ArqSender(payload, chunk, window=window), ArqReceiver()
    pending, slot = [], 0
    while not tx.done and slot < 200_000:
        pkt = with_crc(tx.next_body(slot))
        if rng.random() < loss:                          # corrupt one bit: the CRC must catch it
            b = bytearray(pkt)
            b[rng.integers(len(b))] ^= 1 << int(rng.integers(8))
            pkt = bytes(b)
        r = check_packet(pkt, chunk)
        ok = rx.on_packet(*(r if r is not None else (None, None)))
        pending.append((slot, ok))
        if len(pending) > lag:
            if len(pending) > 2 and rng.random() < swap:
                pending[0], pending[1] = pending[1], pending[0]
            tx.feedback(*pending.pop(0))
        slot += 1
    return tx, rx, slot


def test_arq_delivers_exactly_under_loss_and_reordered_feedback(rng):
    payload = rng.bytes(5000)
    tx, rx, slots = _arq_run(payload, 37, 0.3, rng)
    assert rx.delivered() == payload
    s = tx.stats()
    assert s["acked"] == s["packets"] == -(-5000 // 37)
    # every failed slot carrying data was resent: first sends + retransmissions = sends
    assert s["sent"] == s["packets"] + s["retransmissions"] and s["retransmissions"] > 0.2 * s["packets"]


def test_arq_sequence_numbers_wrap(rng):
    """More than 2^16 packets: u16 sequence numbers wrap and the receiver still delivers in order."""
    payload = rng.bytes(70_000)
    tx, rx, _ = _arq_run(payload, 1, 0.05, rng, window=512, lag=3, swap=0.0)
    assert tx.n_packets == 70_000 and rx.delivered() == payload


def test_arq_without_retransmission_and_expiry():
    tx = ArqSender(b"x" * 10, 4, arq=False)
    bodies = [tx.next_body(s) for s in range(4)]
    assert tx.done and parse_body(bodies[3], 4) == (0xFFFF, b"")      # idle after the 3 data packets
    tx = ArqSender(b"abcdefgh", 4, expire_after=2)
    tx.next_body(0)
    tx.next_body(1)
    tx.feedback(1, True)
    tx.feedback(5, True)            # slot 0's outcome never came: 5 − 2 > 0, so it counts as failed
    assert parse_body(tx.next_body(6), 4) == (0, b"abcd") and tx.retransmissions == 1


def test_slot_frames_decisions_and_slot_assembler(rng):
    order, L, K = 4, 20, 3
    c = aligned_chunk(64, order, L)
    P = frames_per_packet(c, order, L)
    pk = [with_crc(bytes(rng.integers(0, 256, 4 + c, dtype=np.uint8))) for _ in range(K)]
    fr = slot_frames(pk, order, L)                                    # (P, K, L)
    assert fr.shape == (P, K, L)
    np.testing.assert_array_equal(fr[:, 1, :].ravel(), bytes_to_symbols(pk[1], order))
    # noise-free points of the symbols, rotated inside their sector: decided without knowing them
    ang = np.pi / order + 2 * np.pi * fr / order + rng.uniform(-0.7, 0.7, fr.shape) * np.pi / order
    U = np.transpose(3.0 * np.exp(1j * ang), (0, 2, 1))              # (P, L, K)
    dec = decide_psk(U, order)
    np.testing.assert_array_equal(dec, fr)
    assert error_counts(dec, fr, order)[0].sum() == 0
    flip = dec.copy()
    flip[0, 0, 0] = (flip[0, 0, 0] + 2) % 4                          # two Gray bits
    s, b = error_counts(flip, fr, order)
    assert s.tolist() == [1, 0, 0] and b.tolist() == [2, 0, 0]
    # two slots, the 3rd frame of slot 0 lost: slot 0 fails its CRC, slot 1 is intact
    asm = SlotAssembler(K, L, P, order)
    ids = np.r_[np.arange(P), P + np.arange(P)]
    both = np.concatenate([dec, dec])
    keep = ids != 2
    out = asm.push(ids[keep][:P], both[keep][:P]) + asm.push(ids[keep][P:], both[keep][P:]) + asm.flush()
    assert [(s, ok) for s, _, ok in out] == [(0, False), (1, True)]
    assert [check_packet(p, c) is None for p in out[0][1]] == [True] * K
    assert [p for p in out[1][1]] == pk


# ------------------------------------------------------------------------------------- GNU Radio
@pytest.fixture(scope="module")
def link_state(tmp_path_factory):
    from isac_opt.scenario import load_scenario
    from isac_testbed.link import link_state as make
    p = tmp_path_factory.mktemp("link_state") / "state.npz"
    make(load_scenario("paper-a"), 0).save(p)
    return str(p)


@pytest.fixture(scope="module")
def engine(link_state):
    """One lookup engine (layers = 0) of the link state, shared by the flowgraph tests."""
    import torch
    from isac_opt.designfile import load_design
    from isac_opt.link import LinkEngine
    d = load_design(link_state)
    return LinkEngine(d.scenario, d.channels, d.phi, dtype=torch.float32, layers=0)


def _run(link_state, engine, keep=None, **kw):
    pytest.importorskip("gnuradio")
    from blocks.link_pipeline import link_pipeline
    tb = link_pipeline(link_state, engine=engine, **kw)
    wall = tb.run_link()
    if keep is not None:
        keep.append(tb)
    return tb.report(wall)


def test_gr_link_delivers_payload_byte_exact(link_state, engine, tmp_path):
    files = []
    for k in range(3):
        f = tmp_path / f"p{k}.bin"
        f.write_bytes(np.random.default_rng(k).bytes(1500 + 311 * k))
        files.append(str(f))
    rep, got = _run(link_state, engine, payload=",".join(files), seed=3, received=str(tmp_path / "rx"))
    for key in REPORT_KEYS:
        assert key in rep
    want = [Path(f).read_bytes() for f in files]
    assert got == want and rep["payload_match"]
    assert [(tmp_path / "rx" / f"user{k}.bin").read_bytes() for k in range(3)] == want
    assert rep["ci_frames_ok"] == 1.0 and rep["frames_failed"] == 0 and rep["frames_late"] == 0
    assert rep["radar_frames_missing"] == 0 and rep["table_misses"] == 0
    # raw errors are counted against the sent symbols; every CRC-failed slot was retried
    assert sum(rep["retransmissions"]) <= sum(rep["packets_failed"])
    assert rep["frames"] % rep["frames_per_packet"] == 0


def test_gr_link_matches_its_predictions(link_state, engine):
    """≈ 2,700 frames at +6 dB user noise: per-user SER within 4σ of the mean analytic SER of the frames
    sent (Monte Carlo, the numpy reference's check), radar SINR of per-frame filters within 1 dB of the
    mean predicted SINR (≈ 1,350 frames per hypothesis: the estimate's spread is ≈ 0.3 dB)."""
    tb = []
    rep, got = _run(link_state, engine, tb, nbytes=4000, seed=4, user_noise_db=6.0, arq=False, min_frames=2700)
    summ = tb[0].det.summary()                   # the detector's own status (table mode) agrees with the report
    assert summ["frames"] == rep["frames"] and summ["missing"] == 0
    assert summ["sinr_est_db"] == pytest.approx(rep["sinr_measured_db"], abs=1e-9)
    assert summ["sinr_pred_db"] == pytest.approx(rep["sinr_predicted_db"], abs=1e-9)
    assert rep["ci_frames_ok"] == 1.0 and rep["frames"] >= 2700 and sum(rep["retransmissions"]) == 0
    for k in range(3):                        # without ARQ: the in-order prefix of CRC-passed packets
        assert got[k] == np.random.default_rng([4, 7, k]).bytes(4000)[:len(got[k])]
    n_sym = rep["frames"] * 20
    for k in range(3):
        p = rep["ser_analytic"][k]
        assert abs(rep["ser"][k] - p) <= 4 * np.sqrt(p * (1 - p) / n_sym) + 1e-12, (k, rep["ser"], rep["ser_analytic"])
    assert sum(rep["ser"]) > 0
    assert abs(rep["sinr_measured_db"] - rep["sinr_predicted_db"]) < 1.0, rep


@pytest.mark.parametrize("mode", ["drop", "insert"])
def test_gr_link_sample_slip_costs_at_most_one_packet(link_state, engine, mode):
    """A slipped sample on both receive paths loses one frame; at −30 dB user noise no other packet fails,
    so each user loses at most that one packet, and ARQ still delivers every byte."""
    F = 20 + 2
    rep, got = _run(link_state, engine, nbytes=2000, seed=5, user_noise_db=-30.0, slip=(40 * F + 7, mode))
    assert rep["payload_match"]
    assert rep["frames_dropped_rx"] == 1 and rep["slots_incomplete"] == 1
    assert all(p <= 1 for p in rep["packets_failed"]) and max(rep["packets_failed"]) == 1


class _Flaky:
    """A LinkEngine whose 2nd design call fails (and, with ``delay``, every call is slow)."""

    def __init__(self, eng, fail_call=2, delay=0.0):
        self._eng, self._n, self._fail, self._delay = eng, 0, fail_call, delay

    def __getattr__(self, name):
        return getattr(self._eng, name)

    def design(self, S):
        import time
        self._n += 1
        if self._delay:
            time.sleep(self._delay)
        if self._n == self._fail:
            raise RuntimeError("injected engine failure")
        return self._eng.design(S)


def test_gr_link_engine_failure_is_counted_and_the_link_keeps_running(link_state, engine):
    rep, got = _run(link_state, _Flaky(engine), nbytes=2500, seed=6, batch=32)
    assert rep["frames_failed"] == 32 and rep["engine_failures"] == 32     # one batch, sent silent
    assert rep["engine_error_messages"] == 32                             # surfaced as messages
    assert rep["payload_match"]                                           # ARQ resent what they carried
    assert rep["ci_frames_ok"] < 1.0


def test_gr_link_late_engine_is_counted_never_silent(link_state, engine):
    """Real time (throttled) with an engine slower than the rate: idle frames are sent and counted
    (frames_late), the stream never stalls silently, and every byte still arrives."""
    rep, got = _run(link_state, _Flaky(engine, fail_call=-1, delay=0.15), nbytes=300, seed=7, batch=16,
                    realtime=True, rate=20e3)
    assert rep["frames_late"] > 0 and rep["payload_match"]
    assert rep["realtime_factor"] < 1.5


def test_grc_link_flowgraph_compiles_and_carries_a_payload(link_state, tmp_path):
    grcc = shutil.which("grcc") or "/usr/bin/grcc"
    if not Path(grcc).exists():
        pytest.skip("grcc not installed")
    pytest.importorskip("gnuradio")
    home = tmp_path / "home"
    (home / "xdg").mkdir(parents=True, mode=0o700)
    env = dict(os.environ, HOME=str(home), GRC_BLOCKS_PATH=str(ROOT / "grc"), XDG_RUNTIME_DIR=str(home / "xdg"),
               PYTHONPATH=str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", ""), OMP_NUM_THREADS="1")
    out = tmp_path / "fg"
    r = subprocess.run([grcc, "-o", str(out), str(ROOT / "grc" / "flowgraphs" / "risisac_link_sim.grc")], env=env,
                       capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stdout + r.stderr
    pay = tmp_path / "payload.bin"
    pay.write_bytes(np.random.default_rng(11).bytes(2222))
    r = subprocess.run([sys.executable, str(out / "risisac_link_sim.py"), "--design", link_state, "--payload",
                        str(pay), "--received", str(tmp_path / "rx")], env=env, capture_output=True, text=True,
                       timeout=300, cwd=tmp_path)
    assert r.returncode == 0, r.stdout[-2000:] + r.stderr[-2000:]
    for k in range(3):                              # one FILE goes to every user
        assert (tmp_path / "rx" / f"user{k}.bin").read_bytes() == pay.read_bytes()


# ------------------------------------------------------------------------------------------- CLI
def test_cli_backends_share_the_report_keys(tmp_path, capsys):
    from isac_testbed.cli import main
    reps = {}
    for b in ("numpy", "sim"):
        rc = main(["link", "--backend", b, "--bytes", "400", "--layers", "0", "--json", "--seed", "1",
                   "--received", str(tmp_path / b)])
        reps[b] = json.loads(capsys.readouterr().out)
        assert rc == 0
        assert reps[b]["payload_match"] and reps[b]["backend"] == b
        want = [np.random.default_rng([1, 7, k]).bytes(400) for k in range(3)]
        assert [(tmp_path / b / f"user{k}.bin").read_bytes() for k in range(3)] == want
    assert set(reps["numpy"]) == set(reps["sim"])
    for key in REPORT_KEYS:
        assert key in reps["sim"]


@pytest.mark.parametrize("argv,msg", [
    (["--payload", "nope/missing.bin"], "--payload: nope/missing.bin: no such file"),
    (["--payload", "a,b"], "--payload: expected 'random', one FILE, or 3"),
    (["--rate", "0"], "--rate: expected a sample rate > 0"),
    (["--rate", "inf"], "--rate: expected a sample rate > 0"),
    (["--window", "40000"], "--window: expected at most 32768"),
    (["--max-frames", "3"], "--max-frames: expected at least one slot"),
    (["--backend", "numpy", "--realtime"], "--realtime: only with a GNU Radio backend"),
    (["--backend", "uhd"], "frontend: backend 'uhd' could not open its hardware"),
    (["--backend", "pluto", "--rate", "100e6"], "--rate: a Pluto (AD936x) runs"),
    (["--rate", "nan"], "--rate: expected a sample rate > 0"),
    (["--backend", "pluto", "--rate", "1e6", "--scenario", str(ROOT / "grc" / "scenarios" / "bench_2x2.toml")],
     "frontend: backend 'pluto' could not open its hardware"),
])
def test_cli_bad_input_and_missing_hardware_one_line_exit_2(argv, msg, capsys):
    from isac_testbed.cli import main
    rc = main(["link", "--bytes", "100", "--layers", "0"] + argv)
    err = capsys.readouterr().err.strip().splitlines()
    assert rc == 2 and len(err) == 1 and err[0].startswith("isac-testbed link: error:"), err
    assert msg in err[0], err[0]


def test_link_plan_sends_at_least_the_frames_asked():
    from isac_opt.link.loop import link_plan
    from isac_opt.paper_a.scenario import ScenarioA
    scn = ScenarioA()
    for arq in (True, False):
        c, P, lo, cap = link_plan(scn, [b"x" * 100] * 3, 64, 20000, None, arq)
        assert (c, P) == (67, 15) and lo % P == 0 and 20000 <= lo < 20000 + P and cap >= lo
    c, P, lo, cap = link_plan(scn, [b"x" * 1000] * 3, 64, None, None, False)
    assert cap == 15 * P and lo == P                          # 1000 B = 15 packets of 67 B, sent once


def test_cli_png_from_both_backends_with_their_per_frame_arrays(tmp_path, capsys):
    """`link --png` draws the report PNG from each backend's per-frame arrays; the arrays agree with the
    report (predicted SINR = linear mean of the per-frame SINRs over target frames; every kept user sample,
    de-rotated by its decided symbol, lies in the decision sector); an existing FILE is refused."""
    import math
    import isac_testbed.link_png as lp
    from isac_testbed.cli import main
    seen = {}
    orig = lp.write_link_png

    def spy(path, rep, arrays):
        seen[rep["backend"]] = (rep, arrays)
        return orig(path, rep, arrays)
    lp.write_link_png = spy
    try:
        for b in ("numpy", "sim"):
            png = tmp_path / f"{b}.png"
            rc = main(["link", "--backend", b, "--bytes", "600", "--json", "--seed", "2", "--png", str(png)])
            capsys.readouterr()
            assert rc == 0 and png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
            rep, arr = seen[b]
            pr = np.asarray(arr["present"])
            assert len(arr["z"]) == len(pr) == len(arr["sinr_pred"]) > 0 and 0 < pr.mean() < 1
            pred = 10 * math.log10(np.mean(np.asarray(arr["sinr_pred"])[pr]))
            assert abs(pred - rep["sinr_predicted_db"]) < 1e-9
            for d in arr["derotated"]:
                assert len(d) > 0 and np.all(np.abs(np.angle(d)) <= math.pi / arr["psk_order"] + 1e-12)
        rc = main(["link", "--backend", "numpy", "--bytes", "100", "--png", str(tmp_path / "numpy.png")])
        err = capsys.readouterr().err.strip().splitlines()
        assert rc == 2 and len(err) == 1 and "--png" in err[0] and "--force" in err[0]
    finally:
        lp.write_link_png = orig
