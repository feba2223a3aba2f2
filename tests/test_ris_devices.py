"""One contract, run unchanged against every RisDevice implementation.

``RisDeviceContract`` is subclassed (fixture only) for: the in-process simulator (``sim://``), the
``ris1`` firmware simulator on a real pty (``serial://``), the OpenSourceRIS simulator on a pty
(``osris+serial://``), the ZMQ server on loopback (``zmq://``, real sockets, free port), and, under
``@pytest.mark.hardware``, a real board named by the ``RIS_URI`` environment variable.
Fault-injection tests need the simulator's ground truth and skip on hardware.
"""
from __future__ import annotations

import json
import os
import threading
from dataclasses import dataclass

import numpy as np
import pytest
import zmq

from ris_driver import (BoardSpec, Pattern, RisDevice, RisError, RisTimeout, open_ris)
from ris_driver.firmware import SimulatedBoard
from ris_driver.zmq_link import APPLIED_TOPIC, RisServer

try:
    from ris_fixtures import pty_device, simulated_board, wait_until, no_leaked_threads
except ImportError:                      # tests/ imported as a package
    from tests.ris_fixtures import pty_device, simulated_board, wait_until, no_leaked_threads

pytestmark = pytest.mark.usefixtures("no_leaked_threads")


@dataclass
class Harness:
    dev: object
    sim: SimulatedBoard | None      # ground truth; None on hardware


class RisDeviceContract:
    """Behaviour every RIS device must show. Subclasses provide the ``h`` fixture (a Harness)."""

    def need_sim(self, h):
        if h.sim is None:
            pytest.skip("fault injection needs the simulator's ground truth (not available on hardware)")
        return h.sim

    def test_protocol_and_info(self, h):
        assert isinstance(h.dev, RisDevice)
        info = h.dev.info()
        assert info.board.n == h.dev.board.n > 0
        assert isinstance(info.firmware, str) and info.firmware

    def test_apply_read_back_agree(self, h):
        rng = np.random.default_rng(11)
        for _ in range(5):
            p = Pattern.random(h.dev.board, rng)
            ack = h.dev.apply(p)
            assert ack.pattern == p and ack.attempts >= 1 and ack.cycles >= 1
            assert h.dev.read_back() == p
            if h.sim is not None:
                assert h.sim.applied_pattern() == p

    def test_ack_timestamps_monotonic(self, h):
        import time
        rng = np.random.default_rng(12)
        t_prev = time.monotonic()
        for _ in range(3):
            ack = h.dev.apply(Pattern.random(h.dev.board, rng))
            t_after = time.monotonic()
            assert t_prev <= ack.t_ack <= t_after
            t_prev = ack.t_ack
            assert h.dev.info().last == ack

    def test_bad_pattern_is_value_error(self, h):
        b = h.dev.board
        with pytest.raises(ValueError, match="Pattern.phase"):
            h.dev.apply(Pattern((0,) * (b.n - 1), (0,) * b.amp_len))
        with pytest.raises(ValueError, match="Pattern.phase"):
            h.dev.apply(Pattern((b.n_phase,) + (0,) * (b.n - 1), (0,) * b.amp_len))

    def test_retry_after_one_dropped_ack(self, h):
        sim = self.need_sim(h)
        p = Pattern.random(h.dev.board, np.random.default_rng(13))
        sim.faults.drop_next = 1
        ack = h.dev.apply(p)
        assert ack.attempts == 2 and ack.cycles == 1
        assert sim.applied_pattern() == p

    def test_timeout_when_silent_then_recovers(self, h):
        sim = self.need_sim(h)
        sim.faults.dead = True
        with pytest.raises(RisTimeout):
            h.dev.apply(Pattern.random(h.dev.board, np.random.default_rng(14)))
        sim.faults.dead = False
        p = Pattern.random(h.dev.board, np.random.default_rng(15))
        assert h.dev.apply(p).pattern == p and sim.applied_pattern() == p

    def test_silent_apply_caught_by_read_back(self, h):
        sim = self.need_sim(h)
        rng = np.random.default_rng(16)
        p0 = Pattern.random(h.dev.board, rng)
        h.dev.apply(p0)
        p = Pattern.random(h.dev.board, rng)
        assert p != p0
        sim.faults.silent_next_apply = 1          # ack without applying
        ack = h.dev.apply(p)
        assert ack.cycles == 2                     # the read-back saw the old state and repeated
        assert sim.applied_pattern() == p

    def test_reboot_mid_apply(self, h):
        sim = self.need_sim(h)
        boots = sim.boots
        p = Pattern.random(h.dev.board, np.random.default_rng(17))
        sim.faults.reboot_after = 1                # reboot on the second frame of this apply
        ack = h.dev.apply(p)
        assert sim.boots == boots + 1
        assert ack.pattern == p and sim.applied_pattern() == p

    def test_threads_share_one_client(self, h):
        errors = []
        acks = []

        def worker(seed):
            rng = np.random.default_rng(seed)
            try:
                for _ in range(5):
                    p = Pattern.random(h.dev.board, rng)
                    a = h.dev.apply(p)
                    acks.append((p, a))
            except Exception as e:        # collected and asserted below
                errors.append(e)

        ts = [threading.Thread(target=worker, args=(100 + i,)) for i in range(3)]
        for t in ts:
            t.start()
        for t in ts:
            t.join(timeout=30)
        assert not any(t.is_alive() for t in ts)
        assert errors == []
        assert len(acks) == 15 and all(a.pattern == p for p, a in acks)
        last = max(acks, key=lambda pa: pa[1].t_ack)[0]
        assert h.dev.read_back() == last

    def test_repr_is_status_table(self, h):
        h.dev.apply(Pattern.zeros(h.dev.board))
        r = repr(h.dev)
        assert "last state" in r and "board" in r and "t_ack" in r

    def test_close_idempotent(self, h):
        h.dev.close()
        h.dev.close()
        with pytest.raises(RisError):
            h.dev.apply(Pattern.zeros(h.dev.board))


BOARD_1BIT = BoardSpec(rows=4, cols=4, bits=1)
BOARD_ACTIVE = BoardSpec(rows=2, cols=3, bits=2, amp_states=("off", "passive", "active"), amp_scope="element")


class TestInProcess(RisDeviceContract):
    @pytest.fixture(params=["1bit", "active"])
    def h(self, request):
        board = BOARD_1BIT if request.param == "1bit" else BOARD_ACTIVE
        with simulated_board(board) as (name, sb):
            dev = open_ris(f"sim://{name}?timeout_ms=50&retries=3")
            yield Harness(dev, sb)
            dev.close()


class TestPtySerial(RisDeviceContract):
    @pytest.fixture(params=["1bit", "active"])
    def h(self, request):
        board = BOARD_1BIT if request.param == "1bit" else BOARD_ACTIVE
        with pty_device(board) as (dev, sb, ps):
            yield Harness(dev, sb)


class TestTcpSocket(RisDeviceContract):
    """pyserial's socket:// transport to a ser2net-like TCP bridge (real loopback socket)."""

    @pytest.fixture
    def h(self):
        from ris_driver.sim import TcpSimulator
        with simulated_board(BOARD_1BIT) as (name, sb):
            with TcpSimulator(sb) as ts:
                dev = open_ris(f"serial://socket://127.0.0.1:{ts.port}?timeout_ms=200&retries=2")
                yield Harness(dev, sb)
                dev.close()


class TestPtyOpenSourceRis(RisDeviceContract):
    @pytest.fixture
    def h(self):
        with pty_device(None, protocol="osris") as (dev, sb, ps):
            yield Harness(dev, sb)


class TestZmq(RisDeviceContract):
    @pytest.fixture
    def h(self):
        with simulated_board(BOARD_ACTIVE) as (name, sb):
            backend = open_ris(f"sim://{name}?timeout_ms=50&retries=3")
            with RisServer(backend, "tcp://127.0.0.1:0", "tcp://127.0.0.1:0", own_device=True) as srv:
                srv.start()
                port = srv.rep_endpoint.rsplit(":", 1)[1]
                dev = open_ris(f"zmq://127.0.0.1:{port}?timeout_ms=3000&retries=1")
                yield Harness(dev, sb)
                dev.close()


@pytest.mark.hardware
@pytest.mark.skipif(not os.environ.get("RIS_URI"),
                    reason="hardware test: set RIS_URI to a device URL, e.g. serial:///dev/ttyUSB0 or "
                           "osris+serial:///dev/ttyUSB0, and run with -m hardware")
class TestHardware(RisDeviceContract):
    @pytest.fixture
    def h(self):
        dev = open_ris(os.environ["RIS_URI"])
        yield Harness(dev, None)
        dev.close()


# ---------------------------------------------------------------------------------------------------
# ZMQ specifics: PUB of applied states, server always replies, lazy-pirate reconnect, full chain
# ---------------------------------------------------------------------------------------------------
def test_zmq_pub_and_error_replies():
    ctx = zmq.Context.instance()
    with simulated_board(BOARD_1BIT) as (name, sb):
        with RisServer(open_ris(f"sim://{name}"), "tcp://127.0.0.1:0", "tcp://127.0.0.1:0", own_device=True) as srv:
            srv.start()
            sub = ctx.socket(zmq.SUB)
            sub.setsockopt(zmq.LINGER, 0)
            sub.setsockopt(zmq.SUBSCRIBE, APPLIED_TOPIC)
            sub.connect(srv.pub_endpoint)
            req = ctx.socket(zmq.REQ)
            req.setsockopt(zmq.LINGER, 0)
            req.setsockopt(zmq.RCVTIMEO, 2000)
            req.connect(srv.rep_endpoint)
            try:
                # garbage and unknown ops get an error reply, never silence
                for raw in (b"\xff\x00not json", b"[1, 2]", json.dumps({"seq": 4, "op": "fly"}).encode(),
                            json.dumps({"seq": 5, "op": "apply", "phase": [0]}).encode()):
                    req.send(raw)
                    rep = json.loads(req.recv())
                    assert rep["ok"] is False and rep["error"]["type"] in ("RisProtocolError", "ValueError")
                # slow joiner: publish until the subscriber has seen at least one message
                dev = open_ris(f"zmq://{srv.rep_endpoint[6:]}?timeout_ms=2000")
                rng = np.random.default_rng(0)
                got = []

                def seen():
                    dev.apply(Pattern.random(dev.board, rng))
                    if sub.poll(20):
                        got.append(sub.recv_multipart())
                    return got

                wait_until(seen, 5.0, "a PUB message on ris.applied")
                topic, body = got[0]
                msg = json.loads(body)
                assert topic == APPLIED_TOPIC and len(msg["phase"]) == 16 and msg["attempts"] >= 1
                dev.close()
            finally:
                sub.close(linger=0)
                req.close(linger=0)


def test_zmq_client_lazy_pirate_against_silent_server():
    """A REP peer that never answers: the client times out, re-creates its socket, then raises."""
    ctx = zmq.Context.instance()
    rep = ctx.socket(zmq.REP)
    rep.setsockopt(zmq.LINGER, 0)
    port = rep.bind_to_random_port("tcp://127.0.0.1")
    try:
        from ris_driver.zmq_link import ZmqRis
        with pytest.raises(RisTimeout, match="after 3 attempt"):
            ZmqRis(f"tcp://127.0.0.1:{port}", timeout_s=0.1, retries=2)
    finally:
        rep.close(linger=0)


def test_zmq_in_front_of_pty_serial_chain():
    """client -> ZMQ -> RisServer -> SerialRis -> pty -> ris1 firmware simulator, with faults."""
    from ris_driver.firmware import Faults
    with pty_device(BOARD_1BIT, faults=Faults(drop_ack=0.05, corrupt=0.005), query="timeout_ms=30&retries=8") \
            as (serial_dev, sb, ps):
        with RisServer(serial_dev, "tcp://127.0.0.1:0", None) as srv:
            srv.start()
            dev = open_ris(f"zmq://{srv.rep_endpoint[6:]}?timeout_ms=5000")
            rng = np.random.default_rng(3)
            for _ in range(20):
                p = Pattern.random(dev.board, rng)
                assert dev.apply(p).pattern == p
                assert sb.applied_pattern() == p
            dev.close()


def test_shared_simulator_api_for_the_bench(tmp_path):
    """sim://NAME is one shared board: applied_pattern / applied_coefficients (via the calibrated table)
    and commit listeners, as the GNU Radio channel emulator uses them."""
    from ris_driver.sim import get_simulator, remove_simulator
    from ris_driver.url import simulator_from_url
    try:
        from ris_fixtures import unique_name
    except ImportError:
        from tests.ris_fixtures import unique_name
    rng = np.random.default_rng(21)
    g = rng.normal(size=(6, 4, 3)) + 1j * rng.normal(size=(6, 4, 3))
    cal = BoardSpec(rows=2, cols=3, bits=2, amp_states=("off", "passive", "active"), amp_scope="element",
                    gamma=g).save(tmp_path / "cal.json")
    name = unique_name("bench")
    try:
        sb = simulator_from_url(f"sim://{name}?cal={cal}")
        assert get_simulator(name) is sb
        seen = []
        sb.add_listener(seen.append)
        dev = open_ris(f"sim://{name}")                        # a second client shares the board
        p = Pattern.random(dev.board, rng)
        dev.apply(p)
        expected = np.array([g[n, p.phase[n], p.amp[n]] for n in range(6)])
        assert np.array_equal(get_simulator(name).applied_coefficients(), expected)
        assert get_simulator(name).applied_pattern() == p and seen[-1] == p
        dev.close()
        with pytest.raises(KeyError, match="no simulator named"):
            get_simulator(name + "-missing")
    finally:
        remove_simulator(name)
