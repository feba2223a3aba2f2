"""Paper B's simulated channel: pure CPI model (isac_opt.bench.channel_b) and its GNU Radio block.

Checks against independent computations on a small scenario: the per-pulse spec formula with explicit
shift matrices J_Δ [spec B.3 (7)], the dense covariance R = Σσ_q² c_q c_qᴴ + I ⊗ B_v [spec B.4 (28)]
(Monte Carlo, whitened), the block against the pure function sample for sample, and the measured
SCNR of the design's filter against the designed SCNR [spec B.4 (19), V-9-style exact F interval].
"""
from __future__ import annotations

import math

import numpy as np
import pytest

from isac_opt.bench.channel_b import ChannelB, coerce_cpis, coerce_phi, covariance, echoes
from isac_opt.paper_b.model import Model, draw_channels, path_legs
from isac_opt.paper_b.scenario import ScenarioB

# small scenario: L_r = 10, 90 radar samples per CPI; RIS noise made comparable to the receiver noise
# (noise_ris_w) and clutter made dominant (sigma_q_sq) so that both shape R; sigma_t_sq sets SCNR ~ 10 dB
SMALL = dict(Nt=3, Nr=3, K=2, R=2, N=4, Q=2, Pc=3, L=4, noise_comm_w=(1e-11, 2e-11), gamma_db=(5.0, 5.0),
             sigma_q_sq=(1e3, 3e2), clutter_x=(-6.0, 0.0), clutter_y=(49.0, 60.0), noise_ris_w=1e-7,
             sigma_t_sq=300.0, target_vel=(10.0, 30.0))


@pytest.fixture(scope="module")
def inst():
    scn = ScenarioB(**SMALL)
    rng = np.random.default_rng(1)
    ch = draw_channels(scn, rng)
    X = scn.amp * np.exp(2j * np.pi * rng.uniform(size=(ch.Pc, ch.L, ch.Nt)))
    phi = ch.a_max * np.sqrt(rng.uniform(size=(ch.R, ch.N))) * np.exp(2j * np.pi * rng.uniform(size=(ch.R, ch.N)))
    return scn, ch, X, phi


@pytest.fixture(scope="module")
def design_file(inst, tmp_path_factory):
    """A real paper-B design (stap-fp-mm-admm, 5 outer iterations, ~0.4 s) for the small realisation."""
    from isac_opt.paper_b.methods import run_method
    scn, ch, X, phi = inst
    d = run_method("stap-fp-mm-admm", scn.replace(max_outer=5), ch, 1)
    p = tmp_path_factory.mktemp("chb") / "design_b.npz"
    d.save(p)
    return str(p), d


def J(delta, L, Lr):
    """Explicit shift J_Δ (L × L_r): J(i, j) = 1 iff j − i = Δ [spec B.1]."""
    M = np.zeros((L, Lr))
    for i in range(L):
        if 0 <= i + delta < Lr:
            M[i, i + delta] = 1.0
    return M


def per_pulse(s, phi, ch, X, p, moving=True):
    """Σ_π d_π[p] H_π X_p J_Δπ (N_r × L_r), X_p = X[p].T (N_t × L) [spec B.3 (7)]; returned as (L_r, N_r)."""
    Y = np.zeros((ch.Nr, ch.Lr), complex)
    for rho, tau, dl, d in path_legs(s, phi):
        Y += (d[p] if moving else 1.0) * np.outer(rho, tau) @ X[p].T @ J(dl, ch.L, ch.Lr)
    return Y.T


def dense_R(ch, X, phi):
    """R = Σ_q σ_q² c_q c_qᴴ + I ⊗ (I + Σ_r Gn_r diag|φ_r|² Gn_rᴴ), dense [spec B.3, B.4 (28)]."""
    Bv = np.eye(ch.Nr, dtype=complex)
    for r in range(ch.R):
        Bv += ch.Gn[r] @ np.diag(np.abs(phi[r]) ** 2) @ ch.Gn[r].conj().T
    Rm = np.kron(np.eye(ch.Pc * ch.Lr), Bv)
    for q, c in enumerate(ch.clutter):
        cq = np.stack([per_pulse(c, phi, ch, X, p, moving=False) for p in range(ch.Pc)]).reshape(-1)
        Rm += ch.sigma_q_sq[q] * np.outer(cq, cq.conj())
    return Rm


def Htil_explicit(ch, phi):
    return ch.hd_H + sum(ch.hr_H[r] @ np.diag(phi[r]) @ ch.G[r] for r in range(ch.R))


# ---------------------------------------------------------------------------------------------------
# pure function
# ---------------------------------------------------------------------------------------------------
def test_noise_free_equals_per_pulse_model(inst):
    scn, ch, X, phi = inst
    rng = np.random.default_rng(3)
    Xs = np.stack([X, np.roll(X, 1, axis=1) * 1j])                      # two different CPIs
    al = rng.standard_normal((2, 1 + ch.Q)) + 1j * rng.standard_normal((2, 1 + ch.Q))
    chan = ChannelB(ch, phi, np.random.default_rng(0), target_mode="on", noise=False, normalize_users=False)
    out = chan.process(Xs, alpha=al)
    m = Model(ch)
    for n in range(2):
        # against the model's operators T(φ)x and C_q(φ)x
        ref = al[n, 0] * m.target(Xs[n], phi) + np.einsum("q,qplm->plm", al[n, 1:], m.clutter(Xs[n], phi))
        np.testing.assert_allclose(out.radar[n], ref, rtol=1e-12, atol=1e-12 * np.abs(ref).max())
        # against the spec's per-pulse formula with explicit J_Δ
        for p in range(ch.Pc):
            yp = al[n, 0] * per_pulse(ch.target, phi, ch, Xs[n], p) + sum(
                al[n, 1 + q] * per_pulse(c, phi, ch, Xs[n], p, moving=False) for q, c in enumerate(ch.clutter))
            np.testing.assert_allclose(out.radar[n, p], yp, rtol=1e-12, atol=1e-12 * np.abs(yp).max())
        # users: z_{k, pL+l} = h~_k^H x_p[l]
        z = (Htil_explicit(ch, phi) @ Xs[n].reshape(-1, ch.Nt).T).T
        np.testing.assert_allclose(out.users[n], z, rtol=1e-12, atol=1e-12 * np.abs(z).max())
    t, c = echoes(ch, Xs, phi)
    np.testing.assert_allclose(t[1], m.target(Xs[1], phi), atol=1e-12 * np.abs(t).max())
    np.testing.assert_allclose(c[0], m.clutter(Xs[0], phi), atol=1e-12 * np.abs(c).max())


def test_without_ris_reduction(inst):
    """R = 0 (the w/o-RIS baseline's realisation): direct paths only, no RIS noise [spec B.8]."""
    scn, ch, X, phi = inst
    ch0 = ch.without_ris()
    al = np.array([[1.0 + 0.5j, -0.3j, 0.7]])
    out = ChannelB(ch0, ch0.zero_phi(), np.random.default_rng(0), target_mode="on", noise=False).process(X, alpha=al)
    for p in range(ch.Pc):
        yp = al[0, 0] * ch.target.doppler[0, p] * np.outer(ch.target.rx_b, ch.target.tx_b) @ X[p].T @ J(
            int(ch.target.delay[0]), ch.L, ch.Lr)
        for q, c in enumerate(ch.clutter):
            yp = yp + al[0, 1 + q] * np.outer(c.rx_b, c.tx_b) @ X[p].T @ J(int(c.delay[0]), ch.L, ch.Lr)
        np.testing.assert_allclose(out.radar[0, p], yp.T, rtol=1e-12, atol=1e-12 * np.abs(yp).max())
    noisy = ChannelB(ch0, ch0.zero_phi(), np.random.default_rng(0), target_mode="off").process(
        np.zeros((400,) + X.shape))
    v = np.mean(np.abs(noisy.radar) ** 2)                    # receiver noise only: CN(0, 1)
    assert abs(v - 1) < 6 / math.sqrt(noisy.radar.size), v


def test_target_modes_and_fixed_rcs(inst):
    scn, ch, X, phi = inst
    Xs = np.stack([X] * 4)
    chan = ChannelB(ch, phi, np.random.default_rng(0), target_mode="alternate", rcs="fixed", noise=False)
    out = chan.process(Xs)
    assert out.present.tolist() == [True, False, True, False] and out.cpi.tolist() == [0, 1, 2, 3]
    np.testing.assert_allclose(out.alpha[0], np.sqrt(np.r_[ch.sigma_t_sq, ch.sigma_q_sq]))
    assert out.alpha[1, 0] == 0
    m = Model(ch)
    diff = out.radar[0] - out.radar[1]                                    # = σ_t T x
    np.testing.assert_allclose(diff, math.sqrt(ch.sigma_t_sq) * m.target(X, phi), atol=1e-10 * np.abs(diff).max())
    off = ChannelB(ch, phi, np.random.default_rng(0), target_mode="off", noise=False).process(Xs)
    assert not off.present.any() and np.all(off.alpha[:, 0] == 0)


def test_batching_does_not_change_the_samples(inst):
    scn, ch, X, phi = inst
    Xs = np.stack([X * np.exp(1j * k) for k in range(5)])
    a = ChannelB(ch, phi, np.random.default_rng(9), target_mode="random").process(Xs)
    chan = ChannelB(ch, phi, np.random.default_rng(9), target_mode="random")
    parts = [chan.process(Xs[:2]), chan.process(Xs[2:3]), chan.process(Xs[3:])]
    np.testing.assert_array_equal(a.radar, np.concatenate([p.radar for p in parts]))
    np.testing.assert_array_equal(a.users, np.concatenate([p.users for p in parts]))
    np.testing.assert_array_equal(a.cpi, np.arange(5))


def test_absent_covariance_matches_dense_R(inst):
    """Target-absent CPIs: whitened sample covariance R^{-1/2} Ŝ R^{-H/2} ≈ I, E|Ŝw_ij − δ_ij|² = 1/n."""
    scn, ch, X, phi = inst
    n = 3000
    chan = ChannelB(ch, phi, np.random.default_rng(5), target_mode="off", rcs="fresh")
    y = chan.process(np.broadcast_to(X, (n,) + X.shape)).radar.reshape(n, -1)
    Rm = dense_R(ch, X, phi)
    d = Rm.shape[0]
    # the model's Woodbury MVDR is R^{-1} t of this very R (ties the dense R to isac_opt.paper_b.model)
    m = Model(ch)
    W, _ = m.mvdr(X, phi)
    np.testing.assert_allclose(W.reshape(-1), np.linalg.solve(Rm, m.target(X, phi).reshape(-1)),
                               rtol=1e-6, atol=1e-9 * np.abs(W).max())
    np.testing.assert_allclose(covariance(ch, X, phi), Rm, rtol=1e-10, atol=1e-12 * np.abs(Rm).max())
    Lc = np.linalg.cholesky(Rm)
    w = np.linalg.solve(Lc, y.T)                              # whitened samples (d, n), ~ CN(0, I)
    S = w @ w.conj().T / n
    E = S - np.eye(d)
    F = n * np.sum(np.abs(E) ** 2) / d ** 2                  # ≈ 1 (relative std ≈ 1.5/d)
    assert abs(F - 1) < 0.1, f"n·||Ŝw − I||²/d² = {F:.3f}, expected 1 ± 0.1 (~6 sigma)"
    zmax = np.sqrt(n) * np.abs(E).max()
    assert zmax < 6.0, f"max |Ŝw_ij − δ_ij|·sqrt(n) = {zmax:.2f} (entries have std ≈ 1)"
    # mean zero: the sample mean of whitened samples has per-entry std 1/sqrt(n)
    mz = np.sqrt(n) * np.abs(w.mean(axis=1)).max()
    assert mz < 5.0, f"max |mean|·sqrt(n) = {mz:.2f}"


def test_user_noise_variance(inst):
    scn, ch, X, phi = inst
    n = 2000
    Xs = np.broadcast_to(X, (n,) + X.shape)
    z = ChannelB(ch, phi, np.random.default_rng(6)).process(Xs).users
    z0 = ChannelB(ch, phi, np.random.default_rng(6), noise=False).process(Xs).users
    var = np.mean(np.abs(z - z0) ** 2, axis=(0, 1))           # (K,), in σ_k units
    nu = np.asarray(ch.noise_comm_w) + ch.noise_ris_w * np.sum(np.abs(ch.hr_H * phi[:, None, :]) ** 2, axis=(0, 2))
    want = nu / np.asarray(ch.noise_comm_w)
    m = n * ch.Pc * ch.L
    assert np.all(np.abs(var / want - 1) < 6 / math.sqrt(m)), (var, want, 1 / math.sqrt(m))


def test_bad_inputs_name_the_field(inst):
    scn, ch, X, phi = inst
    with pytest.raises(ValueError, match="phi"):
        coerce_phi(np.ones(5), ch.R, ch.N)
    with pytest.raises(ValueError, match="X"):
        coerce_cpis(np.ones((7, ch.Nt)), ch.Pc, ch.L, ch.Nt)
    with pytest.raises(ValueError, match="target_mode"):
        ChannelB(ch, phi, np.random.default_rng(0), target_mode="sometimes")
    with pytest.raises(ValueError, match="rcs"):
        ChannelB(ch, phi, np.random.default_rng(0), rcs="old")
    with pytest.raises(ValueError, match="alpha"):
        ChannelB(ch, phi, np.random.default_rng(0)).process(X, alpha=np.ones(3))


# ---------------------------------------------------------------------------------------------------
# GNU Radio block
# ---------------------------------------------------------------------------------------------------
def _run_block(path, Xs, *, cpi_starts=None, extra=None, **kw):
    gr = pytest.importorskip("gnuradio.gr")
    pmt = pytest.importorskip("pmt")
    from gnuradio import blocks as grblocks
    from blocks.ris_isac_channel_b import ris_isac_channel_b
    items = Xs.reshape(-1, Xs.shape[-1]) if extra is None else extra
    F = Xs.shape[1] * Xs.shape[2]
    starts = np.arange(Xs.shape[0]) * F if cpi_starts is None else cpi_starts
    tags = []
    for i, o in enumerate(starts):
        t = gr.tag_t()
        t.offset, t.key, t.value = int(o), pmt.intern("frame"), pmt.from_long(i)
        tags.append(t)
    t = gr.tag_t()
    t.offset, t.key, t.value = int(starts[0]), pmt.intern("design"), pmt.to_pmt({"id": "x"})
    tags.append(t)
    nt = Xs.shape[-1]
    tb = gr.top_block()
    src = grblocks.vector_source_c(items.astype(np.complex64).reshape(-1).tolist(), False, nt, tags)
    blk = ris_isac_channel_b(design=path, **kw)
    su, sr = grblocks.vector_sink_c(blk.ch.K), grblocks.vector_sink_c(blk.ch.Nr)
    tb.connect(src, blk)
    tb.connect((blk, 0), su)
    tb.connect((blk, 1), sr)
    tb.run()
    rtags = [(t.offset, pmt.symbol_to_string(t.key), pmt.to_python(t.value)) for t in sr.tags()]
    utags = [(t.offset, pmt.symbol_to_string(t.key), pmt.to_python(t.value)) for t in su.tags()]
    return blk, np.asarray(su.data()).reshape(-1, blk.ch.K), np.asarray(sr.data()).reshape(-1, blk.ch.Nr), rtags, utags


@pytest.mark.gnuradio
def test_block_reproduces_pure_function(design_file):
    pytest.importorskip("gnuradio")
    path, d = design_file
    ch = d.channels
    n = 7
    Xs = np.stack([d.X * np.exp(2j * np.pi * k / n) for k in range(n)])
    blk, users, radar, rtags, utags = _run_block(path, Xs, seed=4, target_mode="alternate")
    ref = ChannelB(ch, d.phi, np.random.default_rng(4), target_mode="alternate").process(
        Xs.astype(np.complex64).astype(np.complex128))
    Fr, F = ch.Pc * ch.Lr, ch.Pc * ch.L
    assert radar.shape == (n * Fr, ch.Nr) and users.shape == (n * F, ch.K)
    np.testing.assert_allclose(radar, ref.radar.reshape(-1, ch.Nr), rtol=1e-5, atol=1e-5 * np.abs(radar).max())
    np.testing.assert_allclose(users, ref.users.reshape(-1, ch.K), rtol=1e-5, atol=1e-5 * np.abs(users).max())
    assert [(o, v) for o, k, v in rtags if k == "frame"] == [(i * Fr, i) for i in range(n)]
    assert [(o, v) for o, k, v in rtags if k == "target"] == [(i * Fr, i % 2 == 0) for i in range(n)]
    assert [(o, v) for o, k, v in utags if k == "frame"] == [(i * F, i) for i in range(n)]
    assert [o for o, k, v in utags if k == "design"] == [0] and [o for o, k, v in rtags if k == "design"] == [0]


@pytest.mark.gnuradio
def test_block_resynchronises_on_frame_tags(design_file):
    """One junk sample after CPI 1: the block drops it (re-aligns at the next frame tag), loses no CPI."""
    pytest.importorskip("gnuradio")
    path, d = design_file
    ch = d.channels
    n, F = 4, ch.Pc * ch.L
    Xs = np.stack([d.X * (1 + k) for k in range(n)])
    flat = Xs.reshape(-1, ch.Nt)
    items = np.vstack([flat[:2 * F], np.full((1, ch.Nt), 7.0), flat[2 * F:]])
    starts = np.array([0, F, 2 * F + 1, 3 * F + 1])
    blk, users, radar, rtags, _ = _run_block(path, Xs, cpi_starts=starts, extra=items, seed=2, noise=False,
                                             rcs="fixed", target_mode="on")
    ref = ChannelB(ch, d.phi, np.random.default_rng(2), target_mode="on", rcs="fixed", noise=False).process(Xs)
    assert blk.dropped == 1
    np.testing.assert_allclose(radar, ref.radar.reshape(-1, ch.Nr), rtol=1e-5, atol=1e-5 * np.abs(radar).max())
    assert [v for o, k, v in rtags if k == "frame"] == list(range(n))


@pytest.mark.gnuradio
def test_block_phi_override(design_file):
    pytest.importorskip("gnuradio")
    path, d = design_file
    ch = d.channels
    phi2 = np.conj(d.phi) * 0.5
    Xs = d.X[None]
    _, users, radar, _, _ = _run_block(path, Xs, phi=phi2.reshape(-1).tolist(), noise=False, rcs="fixed",
                                       target_mode="on")
    m = Model(ch)
    ref = math.sqrt(ch.sigma_t_sq) * m.target(d.X, phi2) + np.einsum(
        "q,qplm->plm", np.sqrt(ch.sigma_q_sq), m.clutter(d.X, phi2))
    np.testing.assert_allclose(radar, ref.reshape(-1, ch.Nr), rtol=1e-5, atol=1e-5 * np.abs(ref).max())
    z = (Htil_explicit(ch, phi2) @ d.X.reshape(-1, ch.Nt).T).T / np.sqrt(ch.noise_comm_w)
    np.testing.assert_allclose(users, z, rtol=1e-5, atol=1e-5 * np.abs(z).max())


@pytest.mark.gnuradio
def test_block_measured_scnr_matches_design(design_file):
    """MVDR filter of the design on the block's radar output: mean|wᴴy|² under H1 / H0 = 1 + SCNR
    (exponential statistics, exact F interval at 99.9 %) [spec B.4 (19)]."""
    pytest.importorskip("gnuradio")
    from isac_opt.bench.stap import estimate_sinr
    path, d = design_file
    ch = d.channels
    n = 600
    Xs = np.broadcast_to(d.X, (n,) + d.X.shape)
    _, _, radar, rtags, _ = _run_block(path, np.ascontiguousarray(Xs), seed=21, target_mode="alternate")
    Y = radar.reshape(n, -1).astype(np.complex128)
    T = np.abs(Y @ np.conj(d.W.reshape(-1))) ** 2
    present = np.array([v for o, k, v in rtags if k == "target"])
    assert present.sum() == n // 2
    m = Model(ch)
    designed = 10 * math.log10(m.scnr(d.W, d.X, d.phi))
    assert abs(designed - d.metrics["scnr_db"]) < 1e-9
    est = estimate_sinr(T[~present], T[present], conf=0.999)
    print(f"\npaper-B channel block, MVDR filter of the design: designed SCNR {designed:.2f} dB, measured "
          f"{est['sinr_db']:.2f} dB [{est['lo_db']:.2f}, {est['hi_db']:.2f}] (99.9 %, n0 = {est['n0']}, "
          f"n1 = {est['n1']})")
    assert est["lo_db"] <= designed <= est["hi_db"], (est, designed)
    # a filter that does not null the clutter: the matched filter w = t (checks the clutter statistics)
    t = m.target(d.X, d.phi)
    Tm = np.abs(Y @ np.conj(t.reshape(-1))) ** 2
    mf = 10 * math.log10(m.scnr(t, d.X, d.phi))
    est = estimate_sinr(Tm[~present], Tm[present], conf=0.999)
    print(f"matched filter: model SCNR {mf:.2f} dB, measured {est['sinr_db']:.2f} dB "
          f"[{est['lo_db']:.2f}, {est['hi_db']:.2f}]")
    assert est["lo_db"] <= mf <= est["hi_db"], (est, mf)


@pytest.mark.gnuradio
def test_block_follows_ris_simulators_and_messages(design_file):
    """ris = 'sim://A;sim://B' (one simulator per RIS): the channel uses their applied coefficients
    (all ones at power-up) instead of the design's φ; the 'ris' port takes R·N coefficients and ignores
    error reports."""
    pytest.importorskip("gnuradio")
    pmt = pytest.importorskip("pmt")
    from ris_driver import sim
    from ris_driver.url import simulator_from_url
    path, d = design_file
    ch = d.channels
    names = [f"chb_test_{r}" for r in range(ch.R)]
    for nm in names:
        simulator_from_url(f"sim://{nm}?n={ch.N}&bits=2")
    try:
        blk, _, radar, _, _ = _run_block(path, d.X[None], ris=";".join(f"sim://{nm}" for nm in names),
                                         noise=False, rcs="fixed", target_mode="on")
    finally:
        for nm in names:
            sim.remove_simulator(nm)
    ones = np.ones((ch.R, ch.N), complex)
    m = Model(ch)
    ref = math.sqrt(ch.sigma_t_sq) * m.target(d.X, ones) + np.einsum(
        "q,qplm->plm", np.sqrt(ch.sigma_q_sq), m.clutter(d.X, ones))
    np.testing.assert_allclose(radar, ref.reshape(-1, ch.Nr), rtol=1e-5, atol=1e-5 * np.abs(ref).max())
    np.testing.assert_allclose(blk.chan.phi, ones)
    # message port: a verified state is queued, an error report is ignored
    blk._new_phi = None
    blk._on_ris(pmt.to_pmt({"ok": False, "coefficients": np.zeros(ch.R * ch.N, complex)}))
    assert blk._new_phi is None
    c = np.exp(1j * np.arange(ch.R * ch.N))
    blk._on_ris(pmt.to_pmt({"ok": True, "coefficients": c}))
    np.testing.assert_allclose(blk._new_phi, c.reshape(ch.R, ch.N))


@pytest.mark.gnuradio
def test_block_refuses_wrong_sizes(design_file):
    pytest.importorskip("gnuradio")
    from blocks.ris_isac_channel_b import ris_isac_channel_b
    path, d = design_file
    with pytest.raises(ValueError, match="Nr"):
        ris_isac_channel_b(design=path, Nr=d.channels.Nr + 1)
    with pytest.raises(ValueError, match="phi"):
        ris_isac_channel_b(design=path, phi=[1.0, 2.0])
    with pytest.raises(ValueError, match="design"):
        ris_isac_channel_b(design="")


def test_measure_scnr_helper(design_file):
    from isac_opt.bench.channel_b import measure_scnr
    path, d = design_file
    res = measure_scnr(path, 400, seed=8)
    for name, r in res.items():
        assert r["n0"] == r["n1"] == 200
        assert r["lo_db"] <= r["designed_db"] <= r["hi_db"], (name, r)
    assert abs(res["design"]["designed_db"] - d.metrics["scnr_db"]) < 1e-9
