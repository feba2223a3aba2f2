"""Per-frame design engine and design-ahead queue of the live link (isac_opt.link, issue 13).

Every property is checked against an independent recomputation: CI margins from
effective_user_channels + ci_margins/ci_thresholds (the contract's functions), the radar SINR and the
MVDR filter from isac_opt.paper_a.radar (per design) and from the dense covariance on small sizes.
"""
from __future__ import annotations

import time

import numpy as np
import pytest
import torch

from isac_opt.ci import ci_margins, ci_thresholds, psk_constellation
from isac_opt.contract import CI_TOL, CM_TOL
from isac_opt.errors import IsacError, UserError
from isac_opt.link import DesignAhead, LinkEngine, LinkStarved
from isac_opt.paper_a.channels import draw_channels, effective_user_channels, realisation_rng
from isac_opt.paper_a.radar import echo, mvdr_filter, sinr_mvdr
from isac_opt.paper_a.scenario import ScenarioA
from isac_opt.paper_a.starting import init_phi
from isac_opt.radar import vec


def _link(scn, seed):
    ch = draw_channels(scn, realisation_rng(seed, 0))
    return ch, init_phi(scn, ch, realisation_rng(seed, 1))


def _frames(scn, B, seed):
    return np.random.default_rng(seed).integers(0, scn.psk_order, size=(B, scn.K, scn.L))


def _hostile(scn):
    """Frames a per-frame design finds hard: one symbol everywhere, alternating, all tuples in turn."""
    K, L, O = scn.K, scn.L, scn.psk_order
    f = [np.zeros((K, L), int), np.full((K, L), O - 1)]
    f.append((np.arange(L)[None, :] + np.arange(K)[:, None]) % O)
    f.append(np.tile(np.arange(K)[:, None] % O, (1, L)))
    j = np.arange(L) * 7
    f.append(np.stack([(j // O ** k) % O for k in range(K)]))
    return np.stack(f)


@pytest.fixture(scope="module")
def default_link():
    scn = ScenarioA()
    ch, phi = _link(scn, 3)
    return scn, ch, phi


@pytest.fixture(scope="module")
def engines(default_link):
    scn, ch, phi = default_link
    return {dt: LinkEngine(scn, ch, phi, dtype=dt, layers=6, check_every=3) for dt in (torch.float64, torch.float32)}


def _check_certified(scn, ch, phi, X, S):
    """Independent CM and CI check of every frame (contract tolerances)."""
    amp = scn.amp
    assert np.max(np.abs(np.abs(X) - amp)) <= CM_TOL * amp
    H = effective_user_channels(ch, phi)
    gam = ci_thresholds(scn.noise_comm_w, scn.gamma_db, scn.psk_order)
    for b in range(X.shape[0]):
        m = ci_margins(H @ X[b], S[b], scn.psk_order) / gam[:, None]
        assert m.min() >= 1.0 - CI_TOL, (b, m.min())


@pytest.mark.parametrize("dt", [torch.float64, torch.float32])
def test_every_frame_ci_feasible_and_cm(engines, default_link, dt):
    scn, ch, phi = default_link
    eng = engines[dt]
    assert eng.codebook_ok.all()
    for S in (_frames(scn, 24, 7), _hostile(scn)):
        d = eng.design(S)
        assert d.X.shape == (S.shape[0], scn.M, scn.L) and d.X.dtype == np.complex128
        np.testing.assert_array_equal(d.S, psk_constellation(scn.psk_order)[S])
        _check_certified(scn, ch, phi, d.X, d.S)
        assert d.ok.all()


def test_engine_beats_its_start_per_frame(engines, default_link):
    """SINR of every designed frame ≥ that of its codebook start, both recomputed by paper_a.radar."""
    scn, ch, phi = default_link
    eng = engines[torch.float64]
    S = _frames(scn, 16, 11)
    d = eng.design(S)
    X0, _ = eng.start_waveforms(S)
    _check_certified(scn, ch, phi, X0, d.S)          # the codebook start itself is certified
    gains = []
    for b in range(S.shape[0]):
        s1 = sinr_mvdr(echo(scn, ch, d.X[b], phi))
        s0 = sinr_mvdr(echo(scn, ch, X0[b], phi))
        assert s1 >= s0 * (1 - 1e-12)
        np.testing.assert_allclose(d.sinr[b], s1, rtol=1e-9)
        np.testing.assert_allclose(d.sinr_start[b], s0, rtol=1e-9)
        gains.append(10 * np.log10(s1 / s0))
    assert np.mean(gains) > 0.5          # the polish does work on average (measured ≈ 6 dB at 20 layers)


def test_lookup_only_engine(default_link):
    """layers = 0: the radar-aware codebook lookup alone — certified, never below the plain start."""
    scn, ch, phi = default_link
    eng = LinkEngine(scn, ch, phi, layers=0)
    S = np.concatenate([_frames(scn, 32, 13), _hostile(scn)])
    d = eng.design(S)
    _check_certified(scn, ch, phi, d.X, d.S)
    X0, code = eng.start_waveforms(S)
    Xr = np.transpose(eng.codebook_radar[code], (0, 2, 1))
    _check_certified(scn, ch, phi, Xr, d.S)                 # every radar codebook entry is CI-feasible
    for b in range(S.shape[0]):
        s_r = sinr_mvdr(echo(scn, ch, Xr[b], phi))
        s_0 = sinr_mvdr(echo(scn, ch, X0[b], phi))
        np.testing.assert_allclose(d.sinr[b], max(s_r, s_0), rtol=1e-9)
    assert np.mean(d.sinr_db - 10 * np.log10(d.sinr_start)) > 1.0   # measured ≈ 5–7 dB


def test_mvdr_filters_woodbury_vs_per_design(engines, default_link):
    scn, ch, phi = default_link
    eng = engines[torch.float64]
    d = eng.design(_frames(scn, 4, 5))
    W = eng.mvdr_filters(d.X)
    for b in range(4):
        e = echo(scn, ch, d.X[b], phi)
        np.testing.assert_allclose(W[b], mvdr_filter(e), rtol=1e-8, atol=1e-12 * np.abs(W[b]).max())
        np.testing.assert_allclose(np.vdot(W[b], vec(e.s)), 1.0, atol=1e-10)


def test_small_scenario_dense_and_classical(small_scn):
    """Small sizes (no fitting network: classical x-block): SINR and filter against the dense covariance."""
    ch, phi = _link(small_scn, 2)
    eng = LinkEngine(small_scn, ch, phi, layers=10, check_every=2)
    assert eng.net is None and eng.codebook_ok.all()
    S = np.concatenate([_frames(small_scn, 12, 1), _hostile(small_scn)])
    d = eng.design(S)
    _check_certified(small_scn, ch, phi, d.X, d.S)
    W = eng.mvdr_filters(d.X)
    for b in range(S.shape[0]):
        e = echo(small_scn, ch, d.X[b], phi)
        C = e.covariance()
        s = vec(e.s)
        m = np.linalg.solve(C, s)
        np.testing.assert_allclose(d.sinr[b], small_scn.xi0_sq * np.real(np.vdot(s, m)), rtol=1e-8)
        np.testing.assert_allclose(W[b], m / np.vdot(s, m), rtol=1e-7, atol=1e-12 * np.abs(m).max())
        assert d.sinr[b] >= d.sinr_start[b] * (1 - 1e-12)


def test_float32_agrees_with_float64(engines, default_link):
    scn, _, _ = default_link
    S = _frames(scn, 16, 21)
    d64, d32 = engines[torch.float64].design(S), engines[torch.float32].design(S)
    np.testing.assert_allclose(d32.sinr_start, d64.sinr_start, rtol=1e-12)   # the start is float64 in both
    diff = np.abs(d32.sinr_db - d64.sinr_db)
    assert np.median(diff) < 0.05 and diff.max() < 0.5, diff


def test_deterministic_for_a_seed(default_link):
    scn, ch, phi = default_link
    a = LinkEngine(scn, ch, phi, layers=3)
    b = LinkEngine(scn, ch, phi, layers=3)
    S = _frames(scn, 8, 4)
    np.testing.assert_array_equal(a.codebook, b.codebook)
    np.testing.assert_array_equal(a.design(S).X, b.design(S).X)
    np.testing.assert_array_equal(a.design(S).X, a.design(S).X)


def test_complex_symbols_and_bad_input(engines, default_link):
    scn, _, _ = default_link
    eng = engines[torch.float64]
    S = _frames(scn, 3, 9)
    Sc = psk_constellation(scn.psk_order)[S]
    np.testing.assert_array_equal(eng.design(Sc).X, eng.design(S).X)
    with pytest.raises(IsacError, match="symbols: expected shape"):
        eng.design(S[:, :, :5])
    with pytest.raises(IsacError, match="off the constellation"):
        eng.design(Sc * 1.1)
    with pytest.raises(UserError, match=r"indices in \[0, 4\)"):
        eng.design(S + 4)
    with pytest.raises(IsacError, match="phi: expected"):
        LinkEngine(scn, default_link[1], np.ones(3))


# ---------------------------------------------------------------------------------------------------
# design-ahead queue
def test_queue_in_order_and_equal_to_direct(engines, default_link):
    scn, _, _ = default_link
    eng = engines[torch.float64]
    S = _frames(scn, 13, 8)
    with DesignAhead(eng, iter(S), batch=4, depth=4) as q:
        got = []
        t_end = time.monotonic() + 120
        while (f := q.get(timeout=60)) is not None:
            got.append(f)
            assert time.monotonic() < t_end
    assert [f.frame_id for f in got] == list(range(13))
    direct = eng.design(S)
    for f in got:
        assert f.error is None and f.ok
        np.testing.assert_allclose(f.X, direct.X[f.frame_id], rtol=1e-9, atol=1e-9 * scn.amp)
    assert q.get(timeout=1) is None        # the end stays visible


class _Slow:
    def __init__(self, eng, delay):
        self.eng, self.delay = eng, delay

    def design(self, S):
        time.sleep(self.delay)
        return self.eng.design(S)


class _Flaky:
    def __init__(self, eng):
        self.eng, self.calls = eng, 0

    def design(self, S):
        self.calls += 1
        if self.calls == 2:
            raise RuntimeError("injected engine failure")
        return self.eng.design(S)


def test_queue_starved_raises_by_deadline(engines, default_link):
    scn, _, _ = default_link
    q = DesignAhead(_Slow(engines[torch.float32], 3.0), iter(_frames(scn, 2, 1)), batch=2)
    t0 = time.monotonic()
    with pytest.raises(LinkStarved, match="starved"):
        q.get(timeout=0.2)
    assert time.monotonic() - t0 < 2.0
    q.close()


def test_queue_failure_is_a_message_and_link_goes_on(engines, default_link):
    scn, _, _ = default_link
    with DesignAhead(_Flaky(engines[torch.float32]), iter(_frames(scn, 6, 2)), batch=2) as q:
        frames = list(q)
    assert [f.frame_id for f in frames] == list(range(6))
    assert [f.error is not None for f in frames] == [False, False, True, True, False, False]
    assert "injected engine failure" in frames[2].error and q.failed_batches == 1


def test_queue_back_pressure_bounded(engines, default_link):
    """A consumer that does not read: the worker designs at most depth (+ one batch) frames ahead."""
    scn, _, _ = default_link
    S = _frames(scn, 40, 3)
    q = DesignAhead(engines[torch.float32], iter(S), batch=2, depth=4)
    deadline = time.monotonic() + 30
    while q.designed < 6 and time.monotonic() < deadline:
        time.sleep(0.05)
    time.sleep(0.3)
    assert q.designed <= 4 + 2 + 2
    q.close()
    assert not q._th.is_alive()          # close() ends the worker even while it waits on a full queue


# ---------------------------------------------------------------------------------------------------
# packets and the numpy end-to-end link
def test_packets_roundtrip_and_crc():
    from isac_opt.link.packets import bytes_to_symbols, make_packets, parse_packets, symbols_to_bytes, user_frames
    data = np.random.default_rng(1).bytes(1000)
    for order in (2, 4, 8):
        sym = bytes_to_symbols(data, order)
        assert sym.min() >= 0 and sym.max() < order
        assert symbols_to_bytes(sym, order)[:len(data)] == data
    # Gray labels: neighbouring QPSK points differ in exactly one bit
    one = [symbols_to_bytes(np.full(4, i), 4)[0] >> 6 for i in range(4)]
    assert all(bin(one[i] ^ one[(i + 1) % 4]).count("1") == 1 for i in range(4))
    stream = b"".join(make_packets(data, 64))
    pk = parse_packets(stream, 64)
    assert b"".join(p for _, p in pk) == data and [s for s, _ in pk] == list(range(16))
    bad = bytearray(stream)
    bad[100] ^= 0x10                                   # one bit error in packet 1
    pk = parse_packets(bytes(bad), 64)
    assert pk[1][1] is None and all(p is not None for i, (_, p) in enumerate(pk) if i != 1)
    fr, n = user_frames(data, 64, 4, 20, n_frames=300)
    assert fr.shape == (300, 20) and n == 16
    got = parse_packets(symbols_to_bytes(fr.ravel(), 4), 64)
    assert b"".join(p for _, p in got) == data         # idle filler packets are left out


@pytest.fixture(scope="module")
def noisy_link():
    from isac_opt.link.loop import run_link
    scn = ScenarioA()
    ch, phi = _link(scn, 3)
    pay = [np.random.default_rng(k).bytes(700) for k in range(scn.K)]
    return scn, pay, run_link(scn, ch, phi, pay, engine_kw={"dtype": torch.float32, "layers": 2},
                              user_noise_db=3.0, seed=5, frames=120, arq=False)


def test_link_delivers_only_correct_packets_and_ser_matches_analytic(noisy_link):
    """At a noisy operating point: measured SER/BER vs the analytic values of the frames' margins
    (Monte Carlo within 4 σ), every CRC-passed packet carries the right bytes, CI held in every frame."""
    scn, pay, res = noisy_link
    rep = res.report
    assert rep["ci_frames_ok"] == 1.0 and rep["frames"] >= 120 and rep["frames_failed"] == 0
    n_sym = rep["frames"] * scn.L
    for k, u in enumerate(res.users):
        p = u["ser_analytic"]
        assert abs(u["ser"] - p) <= 4 * np.sqrt(p * (1 - p) / n_sym) + 1e-12, (k, u)
        pb = u["ber_analytic"]
        assert abs(u["ber"] - pb) <= 4 * np.sqrt(pb * (1 - pb) / (2 * n_sym)) * 2 + 1e-12, (k, u)
        got, c = res.received[k], rep["chunk"]
        pieces = [got[i:i + c] for i in range(0, len(got), c)]
        # without ARQ: what is delivered is the in-order prefix of CRC-passed chunks
        assert got == pay[k][:len(got)] and len(pieces) <= u["packets"]
    assert sum(len(r) for r in res.received) > 0 and sum(u["ser"] for u in res.users) > 0


def test_cli_link_json_received_and_bad_input(tmp_path, capsys):
    import json
    from isac_testbed.cli import main
    out = tmp_path / "rx"
    rc = main(["link", "--bytes", "120", "--layers", "1", "--json", "--received", str(out), "--seed", "2"])
    rep = json.loads(capsys.readouterr().out)
    assert rc == 0
    for key in ("ber", "per", "goodput_bps", "payload_match", "designs_per_s", "realtime_factor",
                "sinr_measured_db", "sinr_predicted_db", "ci_frames_ok", "frames"):
        assert key in rep
    assert rep["ci_frames_ok"] == 1.0 and len(rep["per"]) == 3
    got = [(out / f"user{k}.bin").read_bytes() for k in range(3)]
    assert [len(g) for g in got] == rep["delivered_bytes"]
    assert rep["payload_match"] == all(len(g) == 120 for g in got)
    # refuses to overwrite what a previous run delivered; bad payload paths: one line, exit 2
    for argv, msg in ((["--received", str(out)], "already exists"),
                      (["--payload", str(tmp_path / "missing.bin")], "no such file"),
                      (["--payload", "a,b"], "comma-separated"),
                      (["--bytes", "0"], "--bytes: expected an integer >= 1")):
        rc = main(["link", "--layers", "1"] + argv)
        err = capsys.readouterr().err.strip().splitlines()
        assert rc == 2 and len(err) == 1 and err[0].startswith("isac-testbed link: error:") and msg in err[0]
