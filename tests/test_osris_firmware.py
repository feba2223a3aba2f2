"""The OpenSourceRIS simulator against the real firmware's behaviour, and the ``osris`` driver's stale-reply rules.

Reference: mheinri/OpenSourceRIS ``Software/uC Firmware/main.c`` (firmware 1.1) and its README. One test
per behaviour the previous simulator got wrong (it stripped CR, ignored ``?SerialNo``, executed
back-to-back lines, printed version 1.0.0 and answered ``!BT-Key`` at once), then the driver: the issue's
constructed stale-read-back sequence and a fault campaign on a real pty.
"""
from __future__ import annotations

import time

import numpy as np

from ris_driver import BoardSpec, Pattern, open_ris
from ris_driver.campaign import run_campaign
from ris_driver.firmware import Faults, SimulatedBoard
from tests.ris_fixtures import pty_device, unique_name, no_leaked_threads  # noqa: F401

BOARD = BoardSpec.open_source_ris()
T0 = 1000.0                                             # a board clock far from any real monotonic time


def _board(**kw) -> SimulatedBoard:
    sb = SimulatedBoard(BOARD, "osris", rng=np.random.default_rng(0), **kw)
    sb.busy_until = 0.0
    return sb


def _set_line(p: Pattern, end: bytes = b"\n") -> bytes:
    return b"!0x" + p.to_hex(BOARD)[0].upper().encode() + end


def _pat(seed):
    return Pattern.random(BOARD, np.random.default_rng(seed))


def test_lf_line_sets_and_acks():
    sb, p = _board(), _pat(1)
    sb.receive(_set_line(p), now=T0)
    assert sb.poll_output(T0 + 1.0) == b"#OK\n" and sb.applied_pattern() == p
    sb.receive(b"?Pattern\n", now=T0 + 2.0)
    assert sb.poll_output(T0 + 3.0) == b"#0X" + p.to_hex(BOARD)[0].upper().encode() + b"\n"


def test_crlf_line_is_dropped():
    """main.c: CR is not a valid character -> resetCommandsAndFIFO: the whole line is lost, no reply."""
    sb, p = _board(), _pat(2)
    sb.receive(_set_line(p, b"\r\n"), now=T0)
    assert sb.poll_output(T0 + 1.0) == b""
    assert sb.applied_pattern() == Pattern.zeros(BOARD) and sb.osris_lost >= 1
    sb.receive(b"?Pattern\r\n", now=T0 + 2.0)
    assert sb.poll_output(T0 + 3.0) == b""


def test_serial_number_request():
    """``?SerialNo`` -> ``#SerNo: `` + exactly three characters (leading spaces), README 'Reading the serial number'."""
    sb = _board(serial="12")
    sb.receive(b"?SerialNo\n", now=T0)
    assert sb.poll_output(T0 + 1.0) == b"#SerNo:  12\n"
    sb2 = _board(serial="SIM-0001")
    sb2.receive(b"?serialno\n", now=T0)
    assert sb2.poll_output(T0 + 1.0) == b"#SerNo: 001\n"


def test_back_to_back_command_is_lost():
    """A '!' arriving while the firmware is still answering the previous line clears the FIFO and flags: the
    second line is lost (the first, already dequeued by the main loop, completes)."""
    sb, p, q = _board(), _pat(3), _pat(4)
    sb.receive(_set_line(p) + _set_line(q), now=T0)
    assert sb.poll_output(T0 + 1.0) == b"#OK\n" and sb.applied_pattern() == p
    sb.receive(_set_line(p) + b"?Pattern\n", now=T0 + 2.0)          # a request right behind a set: lost too
    assert sb.poll_output(T0 + 3.0) == b"#OK\n"


def test_back_to_back_before_dequeue_loses_both():
    """If the start character comes before the main loop dequeued the previous line, both are lost."""
    sb, p, q = _board(), _pat(5), _pat(6)
    sb.osris_pickup_s = 1e-3                                      # main loop busy for 1 ms (> one byte time)
    sb.receive(_set_line(p) + _set_line(q), now=T0)
    assert sb.poll_output(T0 + 1.0) == b"" and sb.applied_pattern() == Pattern.zeros(BOARD)


def test_command_after_the_ok_is_executed():
    sb, p, q = _board(), _pat(7), _pat(8)
    sb.receive(_set_line(p), now=T0)
    sb.receive(_set_line(q), now=T0 + 0.05)                      # after the #OK has gone out
    assert sb.poll_output(T0 + 1.0) == b"#OK\n#OK\n" and sb.applied_pattern() == q


def test_boot_banner_is_firmware_1_1():
    sb = _board(serial="7")
    sb.receive(b"!Reset\n", now=T0)
    out = b""
    for k in range(1, 30):
        out += sb.poll_output(T0 + 0.1 * k)
    text = out.decode()
    assert "Open Source RIS\nFirmware version: 1.1\nSerial no.:   7\nRow count: 16\nColumn count: 16\n\n#READY!\n" in text
    assert sb.boots == 1


def test_bt_key_takes_seconds_and_can_fail():
    """``!BT-Key=dddddd``: ``#OK`` only after the BT-module exchange (seconds, README), ``#ERROR`` when the
    module does not confirm; a non-digit key is silently discarded."""
    sb = _board()
    sb.receive(b"!BT-Key=123456\n", now=T0)
    sb.receive(b"?Pattern\n", now=T0 + 0.2)                       # while busy with the BT module: lost
    assert sb.poll_output(T0 + 0.5) == b""
    assert sb.poll_output(T0 + sb.bt_key_s + 0.1) == b"#OK\n"
    assert sb.poll_output(T0 + 5.0) == b""
    sb.bt_key_ok = False
    sb.receive(b"!BT-Key=654321\n", now=T0 + 10.0)
    assert sb.poll_output(T0 + 10.0 + sb.bt_key_s + 0.1) == b"#ERROR\n"
    sb.receive(b"!BT-Key=12a456\n", now=T0 + 20.0)
    assert sb.poll_output(T0 + 30.0) == b""


def test_driver_reads_serial_and_banner_over_pty(no_leaked_threads):  # noqa: F811
    with pty_device(None, protocol="osris", query="timeout_ms=200&retries=2") as (dev, sb, ps):
        assert dev.read_serial() == "001"
        dev.reset()
        assert dev.firmware == "1.1" and dev.serial == "001"


def test_constructed_stale_read_back_is_never_accepted():
    """Issue 15's sequence: apply(B) with its read-back delayed past the timeout; apply(A); apply(B) silently
    not applied with its fresh read-back dropped. The late '#0X B' of the first apply must not be taken for
    the last read-back (the previous driver returned Ack(B) while the board showed A)."""
    name = unique_name("stale")
    dev = open_ris(f"sim://{name}?protocol=osris&timeout_ms=200&retries=3&verify=3")
    try:
        from ris_driver.sim import get_simulator
        sb = get_simulator(name)
        A, B = _pat(11), _pat(12)
        t_start = time.monotonic()
        D = 0.5
        sb.faults.delay_next_s = 0.0
        # the next reply after the #OK of apply(B) is the ?Pattern answer: delay exactly that one
        orig_reply = sb._reply
        state = {"n": 0}

        def reply(data, now):
            state["n"] += 1
            if state["n"] == 2:
                sb.faults.delay_next_s = D
            return orig_reply(data, now)

        sb._reply = reply
        ack1 = dev.apply(B)
        assert ack1.pattern == B and sb.applied_pattern() == B
        sb._reply = orig_reply
        ack2 = dev.apply(A)
        assert sb.applied_pattern() == A and ack2.pattern == A
        left = t_start + D - 0.1 - time.monotonic()                 # put the stale reply inside the next wait
        if left > 0:
            time.sleep(left)
        sb.faults.silent_next_apply = 1
        state["n"] = 0

        def drop_readback(data, now):
            if data.startswith(b"#0X") and state["n"] == 0:
                state["n"] = 1
                sb.replies_dropped += 1
                return None
            return orig_reply(data, now)

        sb._reply = drop_readback
        try:
            ack3 = dev.apply(B)
        except Exception as e:  # noqa: BLE001 - a typed failure is allowed, a false Ack is not
            from ris_driver.errors import RisError
            assert isinstance(e, RisError)
        else:
            assert sb.applied_pattern() == ack3.pattern == B, "Ack for a pattern the board does not show"
        assert dev.stats.stale_replies >= 1
    finally:
        dev.close()
        from ris_driver.sim import remove_simulator
        remove_simulator(name)


def test_osris_fault_campaign_pty_zero_silent_mismatches(no_leaked_threads):  # noqa: F811
    """400 cycles on a real pty against the firmware model with corrupted bytes, dropped and delayed replies,
    silent applies and reboots: every cycle ends with the commanded state on the board or a typed error."""
    faults = Faults(corrupt=0.0005, drop_ack=0.02, silent_apply=0.02, latency_s=0.001)
    with pty_device(None, protocol="osris", faults=faults, query="timeout_ms=40&retries=8&verify=4",
                    seed=3) as (dev, sb, ps):
        rng = np.random.default_rng(4)

        def delay_some(n):
            if rng.random() < 0.02:
                sb.faults.delay_next_s = float(rng.uniform(0.04, 0.12))   # late replies, past the timeout
        res = run_campaign(dev, sb, 400, np.random.default_rng(5), reboot_every=100, progress=delay_some)
        s = res.summary()
        assert s["silent_mismatches"] == 0, s
        assert s["untyped_errors"] == 0, s
        assert s["ok"] + s["failed"] == 400 and s["failed"] <= 8, s
        assert s["recovered"] > 10 and sb.silent_applies > 0 and sb.replies_dropped > 0, s
