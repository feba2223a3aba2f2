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
    np.testing.assert_array_equal(a.codebook_radar, b.codebook_radar)      # the distillation is seeded
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
# the fused fast path against the general unfold machinery (slow reference), float64
def _reference_run(eng, S, layers):
    """admm_layer on the expanded DetectProblem (the generic machinery) from the codebook start."""
    from isac_opt.paper_a.unfold import AdmmState, CIConstraint, SinrObjective, admm_layer
    idx = S
    Ssym = psk_constellation(eng.order)[idx]
    X0, _ = eng.start_waveforms(idx)
    prob = eng._problem(np.conj(Ssym))
    u0 = torch.as_tensor(X0 / eng.scn.amp, dtype=prob.A0.dtype)
    phi0 = torch.as_tensor(eng.phi, dtype=prob.A0.dtype).expand(len(S), -1)
    prob.set_scale(u0, phi0)
    obj, cons = SinrObjective(prob), CIConstraint(prob)
    st = AdmmState.start(u0, phi0, obj.value(u0, phi0), eng.K, eng.L)
    xs = []
    for t in range(layers):
        st = (eng.net(st, obj, cons, cfg=eng.cfg, layers=range(t, t + 1)) if eng.net is not None
              else admm_layer(st, t, obj, cons, eng.params, eng.cfg))
        xs.append(st.x.detach().numpy())
    return X0, Ssym, prob, cons, phi0, xs


def _fused_run(eng, X0, Ssym, layers):
    xb = eng._xb
    u0 = xb.from_complex(X0 / eng.scn.amp)
    st = xb.start(u0, np.conj(Ssym))
    us = []
    for t in range(layers):
        st = xb.layer(st, t)
        us.append(xb.to_complex(st["u"]).numpy())
    return xb, u0, st, us


@pytest.mark.parametrize("which", ["default", "small"])
def test_fused_xblock_equals_admm_layer(default_link, small_scn, which):
    """Same iterates as the general machinery (shipped network on the default scenario, classical constant
    steps on the small one), the same start scale, and the structured SINR of the fused block."""
    if which == "default":
        scn, ch, phi = default_link
    else:
        scn = small_scn
        ch, phi = _link(scn, 2)
    eng = LinkEngine(scn, ch, phi, dtype=torch.float64, distill_frames=0)
    assert eng.fused and (eng.net is not None) == (which == "default")
    S = np.concatenate([_frames(scn, 6, 31), _hostile(scn)])
    X0, Ssym, prob, _, phi0, xs = _reference_run(eng, S, 3)
    with torch.no_grad():
        xb, u0, st, us = _fused_run(eng, X0, Ssym, 3)
        np.testing.assert_allclose(st["fscale"].numpy(), prob.fscale.numpy(), rtol=1e-12)
        np.testing.assert_allclose(st["gscale"].numpy(), prob.gscale.numpy(), rtol=1e-12)
        for x_ref, u in zip(xs, us):
            np.testing.assert_allclose(u, x_ref, atol=1e-9)
        np.testing.assert_allclose(xb.sinr(u0).numpy(), eng.sinr(X0), rtol=1e-10)   # normalised units: F = SINR*


def test_fused_feasibility_and_repair_equal_reference(default_link):
    """The fused CI feasibility layer = unfold.feasibility_layer; the fused repair leaves every slot CI-feasible
    (independent ci_margins), does not touch feasible slots, and moves a repaired slot no further towards the
    start than unfold.repair_ci does (up to the bisection resolution)."""
    from isac_opt.paper_a.unfold import feasibility_layer, repair_ci
    from isac_opt.link.engine import FEAS_RELAX, FEAS_STEPS
    from isac_opt.paper_a.detect import unfolded
    assert (FEAS_STEPS, FEAS_RELAX) == (unfolded.FEAS_STEPS, unfolded.FEAS_RELAX)    # refit's final layer
    scn, ch, phi = default_link
    eng = LinkEngine(scn, ch, phi, dtype=torch.float64, distill_frames=0)
    S = _frames(scn, 12, 33)
    X0, Ssym, prob, cons, phi0, xs = _reference_run(eng, S, 2)
    with torch.no_grad():
        xb, u0, st, us = _fused_run(eng, X0, Ssym, 2)
        x_ref = feasibility_layer(cons, torch.as_tensor(xs[-1]), phi0, steps=5, relax=FEAS_RELAX).numpy()
        u = xb.feasibility(st["u"], st["Scr"], st["Sci"], st["gscale"], 5, relax=FEAS_RELAX)
        np.testing.assert_allclose(xb.to_complex(u).numpy(), x_ref, atol=1e-9)
        ur, alpha = xb.repair(st["u"], u0, st["Scr"], st["Sci"])
        _, al = repair_ci(cons, torch.as_tensor(xs[-1]), phi0, torch.as_tensor(X0 / scn.amp))
    Xr = xb.to_complex(ur).numpy() * scn.amp
    alpha, al = alpha.numpy(), al.numpy()
    touched = alpha > 0
    assert touched.any() and not touched.all()
    H = effective_user_channels(ch, phi)
    gam = ci_thresholds(scn.noise_comm_w, scn.gamma_db, scn.psk_order)
    m = ci_margins(np.einsum("km,bml->bkl", H, Xr), Ssym, scn.psk_order) / gam[None, :, None]
    assert m.min() >= 1.0
    x_fused = xb.to_complex(st["u"]).numpy() * scn.amp
    np.testing.assert_array_equal(np.transpose(Xr, (0, 2, 1))[~touched], np.transpose(x_fused, (0, 2, 1))[~touched])
    np.testing.assert_array_equal(touched, al > 0)
    # the same bisection (repair_ci: 30 steps, here 12): α agrees to the coarser resolution
    np.testing.assert_allclose(alpha, al, atol=2.0 ** -12 + 2.0 ** -30)


def test_fused_design_equals_generic_design(default_link):
    """Whole designs: the fused engine and fused=False (general machinery) give the same certified frames."""
    scn, ch, phi = default_link
    S = np.concatenate([_frames(scn, 10, 35), _hostile(scn)])
    a = LinkEngine(scn, ch, phi, dtype=torch.float64, layers=4, check_every=2, radar_codebook=False)
    b = LinkEngine(scn, ch, phi, dtype=torch.float64, layers=4, check_every=2, fused=False,
                   radar_codebook=False)
    assert a.fused and not b.fused
    da, db = a.design(S), b.design(S)
    assert da.ok.all() and db.ok.all()
    assert np.mean(da.sinr > da.sinr_start) > 0.5           # polished iterates were chosen (no radar lookup here)
    np.testing.assert_allclose(da.sinr, db.sinr, rtol=1e-6)
    _check_certified(scn, ch, phi, da.X, da.S)


def test_structured_sinr_equals_woodbury_and_dense(small_scn):
    """LinkEngine.sinr (Gram/Q×Q form) = the ML-vector Woodbury form = ξ0² sᴴC⁻¹s with the dense C, also for
    waveforms that are not CM."""
    ch, phi = _link(small_scn, 4)
    eng = LinkEngine(small_scn, ch, phi, layers=0, distill_frames=0)
    rng = np.random.default_rng(2)
    X = rng.standard_normal((5, small_scn.M, small_scn.L)) + 1j * rng.standard_normal((5, small_scn.M, small_scn.L))
    s = eng.sinr(X)
    np.testing.assert_allclose(s, eng._sinr_woodbury(X), rtol=1e-10)
    for b in range(5):
        e = echo(small_scn, ch, X[b], phi)
        sv = vec(e.s)
        np.testing.assert_allclose(s[b], small_scn.xi0_sq * np.real(np.vdot(sv, np.linalg.solve(e.covariance(), sv))),
                                   rtol=1e-8)


def test_distilled_codebook_certified_and_higher_gain(default_link):
    """The distilled radar codebook: every entry CM and CI-feasible for its tuple (independent ci_margins),
    target transmit gain |b0ᵀx|² ≥ the radar ascent's entry for every tuple, and the default engine (lookup,
    layers 0) never below the worst-case-margin start per frame."""
    from isac_opt.paper_a.channels import legs
    scn, ch, phi = default_link
    plain = LinkEngine(scn, ch, phi, layers=0, distill_frames=0)
    eng = LinkEngine(scn, ch, phi)
    assert eng.layers == 0 and eng.distilled_tuples > eng.n_tuples // 2
    np.testing.assert_array_equal(plain.codebook, eng.codebook)
    C = eng.codebook_radar
    assert np.max(np.abs(np.abs(C) - scn.amp)) <= CM_TOL * scn.amp
    H = effective_user_channels(ch, phi)
    gam = ci_thresholds(scn.noise_comm_w, scn.gamma_db, scn.psk_order)
    S_all = psk_constellation(scn.psk_order)[eng.tuples().T]
    assert (ci_margins(H @ C.T, S_all, scn.psk_order) / gam[:, None]).min() >= 1.0
    b0 = legs(ch, phi, scn.ris_leg_model)[1][0]
    assert np.all(np.abs(C @ b0) ** 2 >= np.abs(plain.codebook_radar @ b0) ** 2 * (1 - 1e-12))
    S = np.concatenate([_frames(scn, 16, 51), _hostile(scn)])
    d = eng.design(S)
    _check_certified(scn, ch, phi, d.X, d.S)
    assert np.all(d.sinr >= d.sinr_start * (1 - 1e-12))


def test_concurrent_design_calls_equal_sequential(engines, default_link):
    """design() keeps no state between calls: two threads on one engine (float32, polish on) give exactly the
    sequential results (the GNU Radio worker and the link protocol may share an engine)."""
    from concurrent.futures import ThreadPoolExecutor
    scn, _, _ = default_link
    eng = engines[torch.float32]
    batches = [_frames(scn, 5, 60 + i) for i in range(4)]
    seq = [eng.design(S).X for S in batches]
    with ThreadPoolExecutor(2) as ex:
        par = list(ex.map(lambda S: eng.design(S).X, batches))
    for a, b in zip(seq, par):
        np.testing.assert_array_equal(a, b)


@pytest.mark.parametrize("dt,layers,radar", [(torch.float32, 0, True), (torch.float32, 3, False),
                                             (torch.float64, 3, False)])
def test_hostile_near_infeasible_gamma_tiny_and_identical_batches(default_link, dt, layers, radar):
    """Γ raised until the worst symbol tuple is barely CI-feasible (codebook margin ≈ 1.07): every frame of a
    random batch, of the hostile frames, of a batch of one and of an empty batch is certified — the default
    (distilled lookup) and the polish alone (radar_codebook=False, so the polished iterates are what is chosen)."""
    scn0, ch, phi = default_link
    m = LinkEngine(scn0, ch, phi, layers=0, radar_codebook=False).codebook_margin.min()
    g = float(scn0.gamma_db[0]) + 20 * np.log10(m) - 0.3            # γ ∝ √Γ: the margin scales by 10^(-dB/20)
    scn = ScenarioA(gamma_db=(g,) * scn0.K)
    eng = LinkEngine(scn, ch, phi, dtype=dt, layers=layers, radar_codebook=radar)   # no lookup: polished frames win
    assert eng.codebook_ok.all() and eng.codebook_margin.min() < 1.5
    for S in (_frames(scn, 16, 41), _hostile(scn), _hostile(scn)[:1], np.zeros((1, scn.K, scn.L), int)):
        d = eng.design(S)
        assert d.ok.all()
        _check_certified(scn, ch, phi, d.X, d.S)
        assert np.all(d.sinr >= d.sinr_start * (1 - 1e-12))
    d = eng.design(np.zeros((0, scn.K, scn.L), int))
    assert d.X.shape == (0, scn.M, scn.L) and d.ok.shape == (0,)


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
