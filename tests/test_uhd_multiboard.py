"""USRP front-end configuration (``blocks.frontend.configure_uhd``) against gr-uhd 3.10's real Python API.

No USRP here: a recording stand-in for ``usrp_source``/``usrp_sink`` keeps a device clock per motherboard
(set_time_now / set_time_next_pps / set_command_time act on it as UHD's multi_usrp does). Every call the
front end makes is checked against the installed gr-uhd pybind signature (method exists, positional
arguments fit), and the uhd constants/time_spec used are the real ones.
"""
from __future__ import annotations

import re

import pytest

pytestmark = pytest.mark.gnuradio
uhd = pytest.importorskip("gnuradio.uhd")

from blocks.frontend import StartMarginError, configure_uhd  # noqa: E402

HOST_T = 1.7e9 + 0.25           # host clock (s since the epoch) when the run starts


def _arity(cls, name):
    """(required, total) positional parameters of a gr-uhd pybind method, from its signature docstring."""
    doc = getattr(cls, name).__doc__ or ""
    sigs = re.findall(rf"{name}\((.*?)\) ->", doc)
    out = []
    for sig in sigs:
        params = [p.strip() for p in re.split(r",\s*(?![^\[]*\])", sig) if p.strip()][1:]     # drop self
        out.append((sum("=" not in p for p in params), len(params)))
    return out


class _Bench:
    """Shared state of n_mb motherboards: device time offsets against a virtual host clock."""

    def __init__(self, n_mb):
        self.n_mb, self.host = n_mb, HOST_T
        self.dev = [123.0 + 17.0 * m for m in range(n_mb)]        # device time = host + offset (unsynced)
        self.cmd_time = [None] * n_mb
        self.tunes = []                                          # (kind, ch, command time in force)
        self.last_pps = 0.0
        self.calls = []

    def sleep(self, s):
        self.host += s

    def now(self, m):
        return self.host + self.dev[m]


class _Dev:
    def __init__(self, bench, kind, real_cls):
        self.b, self.kind, self.real = bench, kind, real_cls

    def __getattr__(self, name):
        if not hasattr(self.real, name):
            raise AttributeError(f"gr-uhd {self.real.__name__} has no method {name}")
        impl = getattr(self, "_" + name, None)

        def call(*a):
            ar = _arity(self.real, name)
            assert any(r <= len(a) <= t for r, t in ar), f"{name}{a} does not fit gr-uhd's signature {ar}"
            self.b.calls.append((self.kind, name) + a)
            return impl(*a) if impl else None
        return call

    def _boards(self, mb):
        return range(self.b.n_mb) if mb == uhd.ALL_MBOARDS else [mb]

    def _get_num_mboards(self):
        return self.b.n_mb

    def _set_time_now(self, t, mb=0):
        for m in self._boards(mb):
            self.b.dev[m] = t.get_real_secs() - self.b.host

    def _get_time_now(self, mb=0):
        return uhd.time_spec(self.b.now(mb))

    def _get_time_last_pps(self, mb=0):
        self.b.host += 0.3                                       # the edge comes while the host polls
        return uhd.time_spec(float(int(self.b.now(mb))))

    def _set_time_next_pps(self, t):                              # UHD: every motherboard, on the next edge
        edge = float(int(self.b.host)) + 1.0
        for m in range(self.b.n_mb):
            self.b.dev[m] = t.get_real_secs() - edge

    def _set_command_time(self, t, mb=0):
        for m in self._boards(mb):
            self.b.cmd_time[m] = t.get_real_secs()

    def _clear_command_time(self, mb=0):
        for m in self._boards(mb):
            self.b.cmd_time[m] = None

    def _set_center_freq(self, f, ch=0):
        self.b.tunes.append((self.kind, ch, tuple(self.b.cmd_time)))


REAL_SOURCE, REAL_SINK = uhd.usrp_source, uhd.usrp_sink


def _fake_uhd(monkeypatch, bench):
    monkeypatch.setattr(uhd, "usrp_source", lambda *a: _Dev(bench, "rx", REAL_SOURCE), raising=True)
    monkeypatch.setattr(uhd, "usrp_sink", lambda *a: _Dev(bench, "tx", REAL_SINK), raising=True)


def test_single_b210_two_channels(monkeypatch):
    """B210 2x2: host time on ALL_MBOARDS, both channels tuned with one command time, start 0.5 s ahead."""
    b = _Bench(1)
    _fake_uhd(monkeypatch, b)
    tx, rx, rep = configure_uhd(uhd, "type=b200", 2, fs=1e6, fc=2.4e9, txg=50, rxg=30, sleep=b.sleep,
                                host_time=lambda: b.host)
    tn = [c for c in b.calls if c[1] == "set_time_now"]
    assert len(tn) == 1 and tn[0][3] == uhd.ALL_MBOARDS
    assert rep["sync"] == "pc_clock" and rep["mboards"] == 1 and rep["timed_tune"]
    assert len(b.tunes) == 4 and len({t[2] for t in b.tunes}) == 1 and b.tunes[0][2][0] is not None
    assert rep["margin_s"] == pytest.approx(0.5) and abs(rep["t0_s"] - (b.now(0) + 0.5)) < 1e-6 + 0.5


def test_multiboard_shares_time_and_tunes_on_one_tick(monkeypatch):
    """Defect: set_time_now(mboard 0 only) left board 1 ~1.7e9 s behind t0 (it never started). Two N210s with
    shared 10 MHz + PPS: external sources on every board, time latched on the same PPS edge (both clocks
    equal afterwards), every LO tuned under the same command time, start time ahead on every board."""
    b = _Bench(2)
    _fake_uhd(monkeypatch, b)
    _, _, rep = configure_uhd(uhd, "addr0=192.168.10.2,addr1=192.168.10.3", 2, fs=1e6, fc=2.4e9, txg=10,
                              rxg=20, clock_source="external", time_source="external", sleep=b.sleep,
                              host_time=lambda: b.host)
    assert {(c[1], c[3]) for c in b.calls if c[1] in ("set_clock_source", "set_time_source")} == \
        {("set_clock_source", 0), ("set_clock_source", 1), ("set_time_source", 0), ("set_time_source", 1)}
    assert all(c[2] == "external" for c in b.calls if c[1] in ("set_clock_source", "set_time_source"))
    assert rep["sync"] == "pps" and any(c[1] == "set_time_next_pps" for c in b.calls)
    assert abs(b.now(0) - b.now(1)) < 1e-9                       # one device time across boards
    for m in range(2):                                           # the start is ahead on EVERY board
        assert 0.1 <= rep["t0_s"] - b.now(m) <= 0.5 + 1e-9
    cmd = {t[2] for t in b.tunes}
    assert len(cmd) == 1 and None not in next(iter(cmd))         # all LOs retune at the same device time
    sc = [c for c in b.calls if c[1] == "set_command_time"]
    assert sc and all(c[3] == uhd.ALL_MBOARDS for c in sc)
    assert all(c[2] == uhd.ALL_MBOARDS for c in b.calls if c[1] == "clear_command_time")


def test_multiboard_without_shared_reference_is_refused(monkeypatch):
    b = _Bench(2)
    _fake_uhd(monkeypatch, b)
    with pytest.raises(ValueError, match="shared 10 MHz"):
        configure_uhd(uhd, "addr0=a,addr1=b", 2, fs=1e6, fc=2.4e9, txg=0, rxg=0, sleep=b.sleep,
                      host_time=lambda: b.host)


def test_start_margin_is_checked(monkeypatch):
    b = _Bench(1)
    _fake_uhd(monkeypatch, b)
    with pytest.raises(StartMarginError, match="start_delay_s"):
        configure_uhd(uhd, "", 1, fs=1e6, fc=2.4e9, txg=0, rxg=0, start_delay_s=0.05, sleep=b.sleep,
                      host_time=lambda: b.host)


def test_no_pps_is_one_line(monkeypatch):
    b = _Bench(1)
    _fake_uhd(monkeypatch, b)
    monkeypatch.setattr(_Dev, "_get_time_last_pps", lambda self, mb=0: uhd.time_spec(5.0))   # PPS never moves
    with pytest.raises(RuntimeError, match="PPS"):
        configure_uhd(uhd, "", 1, fs=1e6, fc=2.4e9, txg=0, rxg=0, time_source="external", sleep=b.sleep,
                      host_time=lambda: b.host)
