"""Reliability: fault campaign on a real pty, late acks, NACKs, timeouts, reset, loop:// and spy://."""
from __future__ import annotations

import numpy as np
import pytest

from ris_driver import BoardSpec, Pattern, RisNack, RisTimeout, open_ris
from ris_driver.campaign import run_campaign
from ris_driver.errors import RisError
from ris_driver.firmware import Faults

try:
    from ris_fixtures import pty_device, simulated_board, no_leaked_threads
except ImportError:                      # tests/ imported as a package
    from tests.ris_fixtures import pty_device, simulated_board, no_leaked_threads

pytestmark = pytest.mark.usefixtures("no_leaked_threads")

BOARD = BoardSpec(rows=4, cols=4, bits=1)


def test_fault_campaign_pty_zero_silent_mismatches():
    """1,000 set/apply/verify cycles on a pty with 1 % corrupted bytes (both directions), 1 % dropped
    acks, 0.5 % silent applies and a reboot every 250 cycles: every cycle must end with the board showing
    the commanded state, or with a typed RisError -- never with a wrong state reported as success."""
    faults = Faults(corrupt=0.01, drop_ack=0.01, silent_apply=0.005)
    with pty_device(BOARD, faults=faults, query="timeout_ms=10&retries=12", seed=1) as (dev, sb, ps):
        res = run_campaign(dev, sb, 1000, np.random.default_rng(2), reboot_every=250)
        s = res.summary()
        assert s["silent_mismatches"] == 0, s
        assert s["untyped_errors"] == 0, s
        assert s["ok"] + s["failed"] == 1000
        assert s["reboots"] == 3, s
        assert s["recovered"] > 50, s                 # faults really happened and were recovered
        assert s["failed"] <= 10, s                   # typed failures allowed, but rare
        assert dev.stats.bad_frames + dev.stats.nacks > 0 and sb.silent_applies > 0
        # a silent apply is invisible when the board already shows the commanded state (e.g. a retry
        # after a dropped ack whose first attempt did apply), so not every one yields a read-back
        # mismatch; but the read-back must have caught some of them
        assert dev.stats.verify_mismatches > 0


def test_late_ack_is_never_taken_for_the_retry():
    """The first reply is delayed past the timeout and arrives while the retry waits: it carries the
    old sequence number, is counted as stale and ignored; the retry's own reply is used."""
    with pty_device(BOARD, query="timeout_ms=200&retries=2") as (dev, sb, ps):
        p = Pattern.random(dev.board, np.random.default_rng(0))
        dev.apply(p)
        sb.faults.latency_s = 0.08              # retry's reply at 200 + 80 ms (deadline 400 ms) ...
        sb.faults.delay_next_s = 0.15           # ... first reply at 230 ms, i.e. 30 ms into the retry
        got = dev.read_back()
        assert got == p
        assert dev.stats.stale_replies == 1 and dev.stats.timeouts == 1


def test_nack_is_raised_without_retry():
    with simulated_board(BOARD) as (name, sb):
        dev = open_ris(f"sim://{name}?retries=5")
        n0 = sb.frames_in
        with pytest.raises(RisNack) as ei:
            dev._transact("set_phase", P="ABCDEF")         # wrong length for 16 elements
        assert ei.value.code == 3 and sb.frames_in == n0 + 1
        dev.close()


def test_dead_device_times_out_with_bounded_attempts():
    with simulated_board(BOARD) as (name, sb):
        dev = open_ris(f"sim://{name}?retries=3")
        sb.faults.dead = True
        n0 = sb.frames_in
        with pytest.raises(RisTimeout, match="after 4 attempt"):
            dev.read_back()
        assert dev.stats.timeouts == 4 and sb.frames_in == n0    # dead: frames not even counted
        dev.close()


def test_reset_waits_for_ready_and_state_is_lost():
    with pty_device(BOARD) as (dev, sb, ps):
        p = Pattern.random(dev.board, np.random.default_rng(4))
        dev.apply(p)
        b0 = dev.health().boots
        dev.reset()
        assert dev.last is None and dev.boots_seen == 1
        assert dev.read_back() == Pattern.zeros(dev.board)
        assert dev.health().boots == b0 + 1


def test_osris_silent_on_bad_input():
    with pty_device(None, protocol="osris") as (dev, sb, ps):
        import time
        for junk in (b"!0x12\n", b"hello\n", b"?Patern\n", b"!0x" + b"G" * 64 + b"\n"):
            dev.transport.write(junk)
            assert dev.transport.readline(time.monotonic() + 0.1) is None
        dev.transport.write(b"?pattern\n")                         # upper-cased by the firmware
        assert dev.transport.readline(time.monotonic() + 1.0) == b"#0X" + b"0" * 64


def test_loop_url_echo_is_not_an_ack():
    """On loop:// the host reads its own request back: that must never count as a reply."""
    with pytest.raises(RisTimeout):
        open_ris("serial://loop://?timeout_ms=20&retries=1")


def test_spy_url_logs_traffic(tmp_path):
    log = tmp_path / "spy.txt"
    with simulated_board(BOARD) as (name, sb):
        from ris_driver.sim import PtySimulator
        with PtySimulator(sb) as ps:
            dev = open_ris(f"serial://spy://{ps.path}?file={log}&timeout_ms=200")
            dev.apply(Pattern.zeros(dev.board))
            dev.close()
    text = log.read_text()
    assert "IDN" in text and "APPLY" in text


def test_open_errors_are_typed():
    with pytest.raises(RisError, match="cannot open serial port"):
        open_ris("serial:///dev/does-not-exist-ris")
    with pytest.raises(ValueError, match="unknown scheme"):
        open_ris("ftp://x")
    with pytest.raises(ValueError, match="unknown parameter"):
        open_ris("sim://q?n=4&colour=red")
