"""DoA networks: tiny training runs, weights round trip and refusal, registered methods [spec A.9, A.11.5–6]."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from isac_opt.paper_a.channels import draw_channels, realisation_rng
from isac_opt.paper_a.scenario import ScenarioA
from isac_opt.paper_a.doa.model import DoaBatch, DoaConfig, DoaNet, WeightsError, run_classical, start_points
from isac_opt.paper_a.doa.train import _with_K, layer_loss, make_dataset, train_unfolded, train_unsupervised
from isac_opt.paper_a.doa.unsupervised import UnsupervisedDoa, features


@pytest.fixture
def tiny():
    import math
    scn = ScenarioA(M=3, N=8, K=2, L=4, Q=2, noise_comm_w=(1e-11, 1e-11), gamma_db=(10.0, 10.0),
                    xi_q_sq=(1.0, 1.0), clutter_bins=(0, 1), clutter_angles_rad=(-math.pi / 3, math.pi / 4))
    chs, starts = make_dataset(scn, 8, seed=11)
    return scn, chs, starts


def test_untrained_network_equals_classical_solver(tiny):
    scn, chs, starts = tiny
    cfg = DoaConfig(T=2, J=2, R=2, dfp_variant="paper")
    b = DoaBatch(scn, chs, starts, cfg)
    a = DoaNet(cfg, scn).infer(b)
    c = run_classical(b)
    np.testing.assert_allclose(a.x.numpy(), c.x.numpy(), rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(a.phi.numpy(), c.phi.numpy(), rtol=1e-12, atol=1e-12)


def test_tiny_training_reduces_crb(tiny):
    scn, chs, starts = tiny
    cfg = DoaConfig(T=2, J=1, R=3, dfp_variant="identity")
    b = DoaBatch(scn, chs, starts, cfg)
    untrained = DoaNet(cfg, scn, seed=1).infer(b)
    net = train_unfolded(scn, chs, starts, cfg, batch_size=8, updates_per_layer=4, lr=0.01, omega=1.0,
                         seed=1, log=lambda m: None)
    trained = net.infer(b)
    l0 = layer_loss(b, untrained, 1.0).item()
    l1 = layer_loss(b, trained, 1.0).item()
    assert l1 < l0, (l0, l1)
    assert b.crb(trained.x, trained.phi).mean() < b.crb(b.u0, b.phi0).mean()


def test_weights_round_trip_and_refusal(tiny, tmp_path):
    scn, chs, starts = tiny
    cfg = DoaConfig(T=1, J=1, R=2)
    net = DoaNet(cfg, scn, seed=3)
    with torch.no_grad():
        for p in net.net.parameters():
            p.add_(0.01)
    path = tmp_path / "w.pt"
    net.save(path)
    net2 = DoaNet.load(path)
    b = DoaBatch(scn, chs, starts, cfg)
    np.testing.assert_allclose(net.infer(b).x.numpy(), net2.infer(b).x.numpy(), rtol=0, atol=0)
    # another K runs (K-agnostic MLPs), another M is refused with a clear message
    scn3 = _with_K(scn, 3)
    chs3, st3 = make_dataset(scn3, 2, seed=5)
    net2.infer(DoaBatch(scn3, chs3, st3, cfg))
    scnM = scn.replace(M=4)
    chsM, stM = make_dataset(scnM, 1, seed=5)
    with pytest.raises(WeightsError, match="M=4"):
        net2.infer(DoaBatch(scnM, chsM, stM, cfg))
    (tmp_path / "bad.pt").write_bytes(b"not a torch file")
    with pytest.raises(WeightsError, match="not a readable"):
        DoaNet.load(tmp_path / "bad.pt")


def test_unsupervised_training_and_zero_padding(tiny, tmp_path):
    scn, chs, starts = tiny
    m = train_unsupervised(scn, chs, starts, K_max=3, hidden=(16, 8), epochs=12, batch_size=4, lr=3e-3,
                           seed=0, log=lambda s: None)
    b = DoaBatch(scn, chs, starts, DoaConfig())
    feats = features(scn, chs, 3)
    fresh = UnsupervisedDoa(scn, 3, (16, 8), seed=0).eval()
    with torch.no_grad():
        l_tr, _ = m.loss(scn, b.prob, feats, b.crb(b.u0, b.phi0))
        l_un, _ = fresh.loss(scn, b.prob, feats, b.crb(b.u0, b.phi0))
    assert l_tr < l_un
    X, P = m.design(scn, chs)
    assert np.allclose(np.abs(X[0]), scn.amp) and np.allclose(np.abs(P[0]), 1.0)
    m.save(tmp_path / "u.pt")
    m2 = UnsupervisedDoa.load(tmp_path / "u.pt")
    X2, _ = m2.design(scn, chs)
    np.testing.assert_allclose(X2[0], X[0], rtol=0, atol=3e-2 * scn.amp)   # weights stored in float16
    # zero padding: K* = 3 ≤ K_max runs, K* = 4 > K_max is refused
    scn3 = _with_K(scn, 3)
    chs3 = [draw_channels(scn3, realisation_rng(1, i)) for i in range(2)]
    m2.design(scn3, chs3)
    # the padded features of a K=2 realisation equal those of K_max with the last user zero
    f = features(scn, chs[:1], 3).numpy()[0]
    assert np.count_nonzero(f) < f.size
    with pytest.raises(WeightsError, match="K=4"):
        m2.check_fits(_with_K(scn, 4))


def test_residual_unsupervised_starts_at_a10_start(tiny, tmp_path):
    """A residual MLP (zero output layer) returns the A.10 start exactly; it needs the start; the ω ramp
    runs from ω to ω_end; the residual flag survives save/load."""
    scn, chs, starts = tiny
    fresh = UnsupervisedDoa(scn, 3, (16, 8), seed=0, residual=True)
    X, P = fresh.design(scn, chs, starts)
    for x, p, st in zip(X, P, starts):
        np.testing.assert_allclose(x, st.X0, rtol=0, atol=1e-12 * scn.amp)
        np.testing.assert_allclose(p, st.phi0, rtol=0, atol=1e-12)
    with pytest.raises(ValueError, match="start"):
        fresh(scn, features(scn, chs, 3, starts))
    logs = []
    m = train_unsupervised(scn, chs, starts, K_max=3, hidden=(16, 8), epochs=12, batch_size=4, lr=3e-3,
                           seed=0, log=logs.append, omega_end=100.0, residual=True)
    assert any("ω 100" in s for s in logs) and any("ω 10," in s for s in logs)
    m.save(tmp_path / "r.pt")
    m2 = UnsupervisedDoa.load(tmp_path / "r.pt")
    assert m2.residual
    X2, P2 = m2.design(scn, chs, starts)
    assert np.allclose(np.abs(X2[0]), scn.amp) and np.allclose(np.abs(P2[0]), 1.0)


def test_registered_methods():
    from isac_opt.registry import get_method, load_catalogs
    load_catalogs()
    for name in ("unfolded-doa", "unfolded-doa-lite", "unfolded-doa-alm", "unsupervised-doa", "classical-doa"):
        assert get_method(name, "paper-a").name == name
    from isac_opt.registry import REPRODUCE, TRAINERS
    assert "doa" in TRAINERS and {"fig8", "fig9", "fig10", "table2"} <= set(REPRODUCE)


def test_method_refuses_unfit_scenario():
    from isac_opt.paper_a.doa.methods import WEIGHTS_DIR
    from isac_opt.registry import get_method
    if not (WEIGHTS_DIR / "doa_unfolded_K3.pt").is_file():
        pytest.skip("shipped DoA weights not present")
    with pytest.raises(WeightsError, match="L=8"):
        get_method("unfolded-doa", "paper-a").run(ScenarioA(L=8), seed=1)
    with pytest.raises(WeightsError, match="N=32"):
        get_method("unsupervised-doa", "paper-a").run(ScenarioA(N=32), seed=1)


def test_ci_repair_restores_constraints(tiny):
    """After the per-slot repair every CI margin of a CI-feasible instance is ≥ γ (independent check)."""
    from isac_opt.paper_a.channels import effective_user_channels
    from isac_opt.ci import ci_margins, ci_thresholds
    from isac_opt.paper_a.doa.model import repair_ci
    scn, chs, starts = tiny
    cfg = DoaConfig(T=2, J=1, R=3, dfp_variant="identity", tau=1.0, zeta=1.0, eta=0.01, kappa=0.01)
    b = DoaBatch(scn, chs, starts, cfg)
    X, P = b.designs(run_classical(b))
    gam = ci_thresholds(scn.noise_comm_w, scn.gamma_db, scn.psk_order)
    for safe in (False, True):
        Xr, nrep = repair_ci(scn, chs, X, P, starts, safe_at_phi=safe)
        assert sum(nrep) > 0, "the test design should need a repair"
        for ch, x, p, st, n in zip(chs, Xr, P, starts, nrep):
            assert np.allclose(np.abs(x), scn.amp)
            m = ci_margins(effective_user_channels(ch, p) @ x, ch.S, scn.psk_order) / gam[:, None]
            if st.t_star >= 1.0:
                assert m.min() >= 1.0 - 1e-9, (n, m.min())


def test_train_doa_quick_cli_entry(tmp_path):
    """`isac-testbed train doa --quick` writes weights that load and a log with the test CRBs."""
    import json
    from isac_opt.paper_a.doa.train import run
    paths = run(tmp_path, "paper-a", quick=True, T=2, unsup_epochs=2)
    names = {p.split("/")[-1] for p in paths}
    assert {"doa_unfolded_K3.pt", "doa_unsup_K3.pt", "train_doa.log", "train_doa.json"} <= names
    net = DoaNet.load(tmp_path / "doa_unfolded_K3.pt")
    assert net.cfg.T == 2 and net.meta["K_train"] == 3
    res = json.loads((tmp_path / "train_doa.json").read_text())["runs"]["3"]
    assert res["unfolded"] < res["start"]
    with pytest.raises(ValueError, match="unknown option"):
        run(tmp_path, "paper-a", quick=True, bogus=1)


@pytest.mark.slow
@pytest.mark.parametrize("target", ["fig8", "fig9", "fig10", "table2"])
def test_reproduce_targets_quick(tmp_path, target):
    """The --quick reproduction targets write their PNG + CSV (slow: 15–60 s each)."""
    from isac_opt.paper_a.doa.methods import WEIGHTS_DIR
    from isac_opt.registry import REPRODUCE, load_catalogs
    if not (WEIGHTS_DIR / "doa_unfolded_K3.pt").is_file():
        pytest.skip("shipped DoA weights not present")
    load_catalogs()
    paths = REPRODUCE[target].run(str(tmp_path), quick=True)
    assert any(p.endswith(".csv") for p in paths) and any(p.endswith(".png") for p in paths)
    import csv
    rows = list(csv.DictReader(open([p for p in paths if p.endswith(".csv")][0])))
    assert rows


def test_ratio_ci_bootstrap():
    """fig8's paired bootstrap ratio: exact for proportional data, interval brackets the estimate and
    shrinks like 1/sqrt(n) (independent check: delta-method σ of a ratio of means)."""
    from isac_opt.paper_a.doa.figures import ratio_ci
    rng = np.random.default_rng(1)
    den = rng.uniform(1.0, 2.0, size=50)
    m, lo, hi = ratio_ci(1.3 * den, den)
    assert m == pytest.approx(1.3, rel=1e-12) and lo == pytest.approx(1.3) and hi == pytest.approx(1.3)
    n = 400
    den = rng.uniform(1.0, 2.0, size=n)
    num = den * rng.normal(1.2, 0.2, size=n)
    m, lo, hi = ratio_ci(num, den, n_boot=4000)
    assert lo < m < hi
    # delta method for R = mean(num)/mean(den): var ≈ var(num − R·den)/(n·mean(den)²)
    sd = np.std(num - m * den, ddof=1) / (np.sqrt(n) * den.mean())
    assert (hi - lo) / (2 * 1.96) == pytest.approx(sd, rel=0.15)
    with pytest.raises(ValueError, match="equal-length"):
        ratio_ci([1.0, 2.0], [1.0])
