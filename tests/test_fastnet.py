"""The numpy inference engine of the detection network (isac_opt/paper_a/unfold/fastnet.py) against the torch
step function it mirrors (admm_layer via UnfoldedAdmm / solve), on trained and classical parameters."""
from dataclasses import replace

import numpy as np
import pytest
import torch

from isac_opt.paper_a.unfold import fastnet
from isac_opt.paper_a.detect.core import draw_starts, make_batch, updates_phi
from isac_opt.paper_a.detect.unfolded import PAPER_CFG, load_net, run_batch
from isac_opt.paper_a.scenario import ScenarioA
from isac_opt.paper_a.unfold import AdmmConfig, ConstantParams, solve
from isac_opt.paper_a.unfold.model import UnfoldedAdmm

KEYS = ("x", "phi", "v", "vphi", "mu1", "mu2", "beta_x", "beta_phi")


def _engines(cfg, **kw):
    """The two code paths of NumpyNet: compiled kernel (numba) and the numpy (batched) fallback."""
    out = {}
    for name, jit in (("jit", True), ("numpy", False)):
        if jit and not fastnet.HAVE_JIT:
            continue
        e = fastnet.NumpyNet(cfg, **kw)
        e.jit = jit
        out[name] = e
    return out


def _diff(a, b):
    return max(float((getattr(a, k) - getattr(b, k)).abs().max()) for k in KEYS)


@pytest.fixture(scope="module")
def scn():
    return ScenarioA(N=16)


@pytest.fixture(scope="module")
def paper_net(scn):
    return load_net(scn=scn, kind="paper-a_paper")[0]


def _batch(scn, B, variant, seed=321):
    return make_batch(scn, draw_starts(scn, seed, range(B), variant), variant)


@pytest.mark.parametrize("B", [1, 3])
@pytest.mark.parametrize("variant", ["ris", "random-ris", "radar-only"])
def test_trained_paper_net_two_layers_match_torch(scn, paper_net, B, variant):
    """Shipped paper-size weights (trained layers 0, 1: the MLPs are active), both the batched and the
    numpy code paths, all variants (φ-block on/off, no CI for radar-only)."""
    b = _batch(scn, B, variant)
    cfg = replace(paper_net.cfg, update_phi=updates_phi(variant))
    with torch.no_grad():
        ref = paper_net(b.state0, b.objective, b.constraint, cfg=cfg, layers=range(2))
    for name, e in _engines(cfg, net=paper_net).items():
        assert _diff(ref, e.forward(b, layers=range(2))) < 1e-9, name


@pytest.mark.parametrize("B", [1, 2])
@pytest.mark.parametrize("dfp,handler", [("paper", "alm"), ("standard", "alm"), ("identity", "alm"),
                                         ("paper", "phr")])
def test_classical_solver_matches_torch(scn, B, dfp, handler):
    """Constant steps, every DFP variant and both constraint handlers; step sizes large enough that the
    multipliers become active (the CI terms are exercised) and the (28) skip rule fires."""
    b = _batch(scn, B, "ris", seed=77)
    cfg = AdmmConfig(T=3, J=3, R=4, dfp_variant=dfp, handler=handler)
    prm = ConstantParams(eta=0.5, kappa=0.5, tau=0.5, zeta=0.3)
    with torch.no_grad():
        ref, _ = solve(b.state0, b.objective, b.constraint, cfg, prm)
    assert float(ref.beta_x.abs().max()) > 0          # the CI term was active
    for name, e in _engines(cfg, params=prm).items():
        assert _diff(ref, e.forward(b)) < 1e-9, name


def test_random_mlps_match_torch(scn):
    """A network with random (non-zero) output weights everywhere: every MLP path of the numpy engine."""
    net = UnfoldedAdmm(AdmmConfig(T=2, J=2, R=3, dfp_variant="paper"), init={"tau": 0.3, "zeta": 0.2}, seed=5)
    g = torch.Generator().manual_seed(9)
    with torch.no_grad():
        for lay in net.layers:
            for m in (lay.eta, lay.kappa, lay.tau, lay.zeta):
                m.W2.copy_(0.05 * torch.randn(m.W2.shape, generator=g, dtype=torch.float64))
    b = _batch(scn, 2, "ris", seed=5)
    with torch.no_grad():
        ref = net(b.state0, b.objective, b.constraint)
    b1 = _batch(scn, 1, "ris", seed=5)
    with torch.no_grad():
        ref1 = net(b1.state0, b1.objective, b1.constraint)
    for name, e in _engines(net.cfg, net=net).items():
        assert _diff(ref1, e.forward(b1)) < 1e-9, name
        assert _diff(ref, e.forward(b)) < 1e-9, name


def test_untrained_layer_mlp_is_constant_exactly(paper_net):
    """The shortcut for W2 = 0 (layers past ``layers_trained``): equal to the torch MLP bit for bit."""
    from isac_opt.paper_a.unfold.model import _MLPParams
    m = fastnet._Mlps(paper_net)
    tp = _MLPParams(paper_net.layers)
    t = paper_net.cfg.T - 1
    assert isinstance(m.mlp["x", t, "s"][(0, 0)], float)
    gn, lv = torch.tensor([0.37], dtype=torch.float64), torch.tensor([-2.5], dtype=torch.float64)
    with torch.no_grad():
        assert float(m.step("x", t, 3, 4, gn.numpy(), lv.numpy())[0]) == float(tp.step("x", t, 3, 4, gn, lv))
        gz = torch.rand(1, 3, 20, dtype=torch.float64)
        assert np.array_equal(m.dual("phi", t, 2, gz.numpy(), gz.numpy()), tp.dual("phi", t, 2, gz, gz).numpy())
        # a trained layer is evaluated (not constant) and agrees with torch
        assert not isinstance(m.mlp["x", 0, "s"][(0, 0)], float)
        assert abs(float(m.step("x", 0, 0, 0, gn.numpy(), lv.numpy())[0]) - float(tp.step("x", 0, 0, 0, gn, lv))) < 1e-14


def test_run_batch_engines_give_the_same_certified_design(scn, paper_net):
    """run_batch end to end (feasibility layer, repair, guard) with both engines on 4 layers (640 steps:
    rounding differences grow from 1e-15 to ~1e-7, so the tolerance is looser than per layer)."""
    b = _batch(scn, 2, "ris", seed=11)
    st = {}
    out = {e: run_batch(b, "ris", net=paper_net, n_layers=4, engine=e, stats=st.setdefault(e, {}))
           for e in ("torch", "numpy")}
    assert float((out["torch"][0] - out["numpy"][0]).abs().max()) < 1e-5
    assert np.allclose(st["torch"]["sinr_db"], st["numpy"]["sinr_db"], atol=1e-6)
    assert (b.constraint.g(out["numpy"][0], out["numpy"][1]) <= 0).all()


def test_numpy_engine_refuses_what_it_cannot_run(scn, paper_net):
    b = make_batch(scn, draw_starts(scn, 1, range(1), "ris"), "ris", dtype=torch.float32)
    with pytest.raises(ValueError, match="engine: 'numpy' needs float64"):
        run_batch(b, "ris", net=paper_net, n_layers=1, engine="numpy")
    with pytest.raises(ValueError, match="engine: expected one of"):
        run_batch(b, "ris", net=paper_net, n_layers=1, engine="gpu")
    # auto falls back to torch for float32 and still runs
    x, phi, _, _ = run_batch(b, "ris", net=paper_net, n_layers=1)
    assert x.dtype == torch.complex64


@pytest.mark.slow
def test_every_layer_of_the_paper_size_network_matches_torch():
    """All 75 layers at N = 64, batch 1, on the torch trajectory: each numpy layer starts from torch's state
    (no accumulation of rounding; over the whole network the raw output is sensitive to rounding — a
    1e-15 difference can end 3 dB apart before the feasibility layer — so whole-network agreement is
    measured statistically on held-out realisations in benchmarks/heldout_paper_size.py instead)."""
    scn64 = ScenarioA()
    net = load_net(scn=scn64, kind="paper-a_paper")[0]
    b = _batch(scn64, 1, "ris", seed=4242)
    engines = _engines(PAPER_CFG, net=net)
    st = b.state0
    diffs = {k: [] for k in engines}
    with torch.no_grad():
        for t in range(PAPER_CFG.T):
            nxt = net(st, b.objective, b.constraint, layers=[t])
            for k, e in engines.items():
                diffs[k].append(_diff(nxt, e.forward(b, state=st, layers=[t])))
            st = nxt
    for k, d in diffs.items():
        # a layer is 160 steps with discrete decisions (skip rule (28), sgn Im z̃): a rounding-level
        # difference occasionally grows to ~1e-7 inside one layer; typical layers agree to ~1e-12
        assert max(d) < 1e-6, (k, max(d))
        assert float(np.median(d)) < 1e-10, (k, float(np.median(d)))


def test_table1_quick_times_both_engines(tmp_path):
    """Table I in quick mode at one small N: the numpy-engine and torch-engine rows are both measured."""
    import csv
    from isac_opt.paper_a.detect.reproduce import table1
    f, md = table1(tmp_path, quick=True, Ns=(16,), n=1)
    row = next(csv.DictReader(open(f)))
    assert float(row["paper_net_s"]) > 0 and float(row["paper_net_torch_s"]) > 0
    assert int(row["n_paper_net_torch"]) == 1
    assert "torch engine (baseline)" in md.read_text()


def test_detect_layers_quick_same_curve_with_each_engine(tmp_path):
    """`reproduce detect-layers --quick` with the torch step function and with the default engine: same
    held-out SINR per depth (trained and untrained), and the engine is recorded in every row."""
    import csv
    from isac_opt.errors import MethodError
    from isac_opt.paper_a.detect.reproduce import layers_curve
    rows = {}
    for eng in ("torch", "auto"):
        f = layers_curve(tmp_path / eng, quick=True, engine=eng)[0]
        rows[eng] = list(csv.DictReader(open(f)))
    assert len(rows["torch"]) == len(rows["auto"]) >= 2
    for a, b in zip(rows["torch"], rows["auto"]):
        assert (a["net"], a["layers"]) == (b["net"], b["layers"])
        assert a["engine"] == "torch" and b["engine"] in ("jit", "numpy")
        for col in ("trained_db", "untrained_db", "trained_repaired_db", "untrained_repaired_db"):
            assert abs(float(a[col]) - float(b[col])) < 1e-6, col
    with pytest.raises(MethodError, match="engine: expected one of"):
        layers_curve(tmp_path / "bad", quick=True, engine="gpu")


# ---------------------------------------------------------------------------------------------- DoA (CRB)
def _doa_batch(scn, fname, B=2, seed=55, variant="ris"):
    from isac_opt.paper_a.channels import draw_channels, realisation_rng
    from isac_opt.paper_a.doa.methods import WEIGHTS_DIR
    from isac_opt.paper_a.doa.model import DoaBatch, DoaNet, start_points
    net = DoaNet.load(WEIGHTS_DIR / fname)
    chs = [draw_channels(scn, realisation_rng(seed, i)) for i in range(B)]
    return net, DoaBatch(scn, chs, start_points(scn, chs, variant, seed), net.cfg, variant=variant)


@pytest.mark.skipif(not fastnet.HAVE_JIT, reason="the DoA objective runs only in the compiled kernel (numba)")
@pytest.mark.parametrize("variant", ["ris", "random-ris", "radar-only"])
def test_doa_network_matches_torch(scn, variant):
    """Shipped `unfolded-doa` weights (60/2/5, PHR, trained MLPs), 4 layers, 2 realisations."""
    net, b = _doa_batch(scn, "doa_unfolded_K3.pt", variant=variant)
    cfg = b.cfg.admm(b.update_phi, net.cfg.T)
    with torch.no_grad():
        ref = net.net(b.state0(), b.objective, b.constraint, layers=range(4), cfg=cfg)
    got = fastnet.NumpyNet(cfg, net=net.net).forward(b, layers=range(4))
    assert _diff(ref, got) < 1e-9
    assert torch.allclose(b.crb(ref.x, ref.phi), b.crb(got.x, got.phi), rtol=1e-9)


@pytest.mark.skipif(not fastnet.HAVE_JIT, reason="the DoA objective runs only in the compiled kernel (numba)")
def test_doa_classical_phr_with_active_multipliers_matches_torch(scn):
    """Classical PHR-ALM-DFP with large steps, so that β > 0 and the PHR weights are active in both blocks."""
    from dataclasses import replace as rep
    from isac_opt.paper_a.doa.model import run_classical
    net, b = _doa_batch(scn, "doa_unfolded_K3.pt", seed=8)
    b.cfg = rep(b.cfg, T=3, J=3, R=4, dfp_variant="paper", eta=5.0, kappa=5.0, tau=0.5, zeta=0.5)
    ref = run_classical(b, engine="torch")
    got = run_classical(b, engine="jit")
    assert float(ref.beta_x.abs().max()) > 0 and float(ref.beta_phi.abs().max()) > 0
    assert _diff(ref, got) < 1e-9
    with pytest.raises(ValueError, match="engine: expected one of"):
        run_classical(b, engine="gpu")


@pytest.mark.skipif(not fastnet.HAVE_JIT, reason="the DoA objective runs only in the compiled kernel (numba)")
def test_doa_paper_size_network_layer_by_layer(scn):
    """`unfolded-doa-paper` (60/10/10, compact DFP): 4 layers on torch's trajectory, each from torch's state."""
    net, b = _doa_batch(scn, "doa_unfolded_paper_K3.pt", B=1, seed=3)
    cfg = b.cfg.admm(b.update_phi, net.cfg.T)
    eng = fastnet.engine_for(cfg, net=net.net)
    st, diffs = b.state0(), []
    with torch.no_grad():
        for t in range(4):
            nxt = net.net(st, b.objective, b.constraint, layers=[t], cfg=cfg)
            diffs.append(_diff(nxt, eng.forward(b, state=st, layers=[t])))
            st = nxt
    assert float(np.median(diffs)) < 1e-9 and max(diffs) < 1e-4, diffs
    assert fastnet.engine_for(cfg, net=net.net) is eng            # cached per network and configuration


@pytest.mark.skipif(not fastnet.HAVE_JIT, reason="trace= needs the compiled kernel (numba)")
def test_trace_is_called_after_every_layer_with_the_torch_states(scn):
    """The certified DoA runner tracks the best feasible iterate through trace(state) after every layer:
    the engine calls it once per layer with the same states the torch network passes."""
    net, b = _doa_batch(scn, "doa_unfolded_K3.pt", B=2, seed=21)
    cfg = b.cfg.admm(b.update_phi, 5)
    seen_t, seen_j = [], []
    with torch.no_grad():
        net.net(b.state0(), b.objective, b.constraint, layers=range(5), cfg=cfg, trace=seen_t.append)
    end = fastnet.engine_for(cfg, net=net.net).forward(b, layers=range(5), trace=seen_j.append)
    assert len(seen_j) == len(seen_t) == 5
    assert max(_diff(a, c) for a, c in zip(seen_t, seen_j)) < 1e-9
    assert _diff(end, seen_j[-1]) == 0.0


def test_problem_copy_is_cached_per_batch_and_refreshed_when_the_batch_changes(scn, paper_net):
    """Layer-by-layer calls reuse one numpy copy of the batch; replacing a scale tensor (or modifying one in
    place) gives a fresh copy, so the result follows the torch network on the changed problem."""
    b = _batch(scn, 1, "ris", seed=99)
    eng = fastnet.engine_for(paper_net.cfg, net=paper_net)
    eng.forward(b, layers=[0])
    P1 = fastnet._problem_of(b)
    assert fastnet._problem_of(b) is P1
    b.problem.gscale = b.problem.gscale * 3.0              # replaced
    assert fastnet._problem_of(b) is not P1
    b.problem.fscale.mul_(0.5)                              # modified in place
    P3 = fastnet._problem_of(b)
    assert float(P3.fscale[0]) == float(b.problem.fscale[0])
    with torch.no_grad():
        ref = paper_net(b.state0, b.objective, b.constraint, layers=[0])
    assert _diff(ref, eng.forward(b, layers=[0])) < 1e-9
