"""Paper-size unfolded networks (issue 14): `unfolded-paper` (75/8/10, DFP) and `unfolded-doa-paper`
(60/10/10, DFP, PHR) — equal to the classical solver at initial parameters, refuse unfit scenarios in one
line, and learned steps improve on the untrained network at shallow depth on held-out seeds."""
from __future__ import annotations

import math
from dataclasses import replace

import pytest
import torch

from isac_opt.errors import UserError
from isac_opt.paper_a.channels import draw_channels, realisation_rng
from isac_opt.paper_a.detect.core import make_batch, start_point
from isac_opt.paper_a.detect.unfolded import DEFAULT_INIT, PAPER_CFG, load_net, run_batch, save_net
from isac_opt.paper_a.scenario import ScenarioA
from isac_opt.paper_a.unfold import AdmmConfig, ConstantParams, UnfoldedAdmm, solve

torch.set_num_threads(1)


def _scn(**kw):
    return ScenarioA(M=3, N=5, K=2, L=4, Q=2, noise_comm_w=(1e-11, 1e-11), gamma_db=(10.0, 10.0),
                     xi_q_sq=(1.0, 0.5), clutter_bins=(1, 2), clutter_angles_rad=(-math.pi / 3, math.pi / 4)).replace(**kw)


def _batch(scn, n, seed):
    starts = [start_point(scn, draw_channels(scn, realisation_rng(seed, 2 * i)), "ris",
                          realisation_rng(seed, 2 * i + 1)) for i in range(n)]
    return make_batch(scn, starts, "ris")


@pytest.mark.parametrize("T", [pytest.param(75, marks=pytest.mark.slow), 4])
def test_paper_size_detection_network_at_init_equals_classical_solver(T):
    """J, R = 8, 10 with the (compact) DFP (29a), T = 75 (slow: 12 000 steps per design, ~1–5 min on the
    shared VM) or its first 4 layers (default suite): the network at its initial parameters gives the
    classical solver's iterates, and the solver actually moved."""
    b = _batch(_scn(), 1, seed=3)
    net = UnfoldedAdmm(replace(PAPER_CFG, T=T), init=DEFAULT_INIT)
    params = net.classical_params()                       # DEFAULT_INIT as the MLPs compute it
    assert abs(params.v["x"][1] - DEFAULT_INIT["tau"]) < 1e-15
    with torch.no_grad():
        st_n = net(b.state0, b.objective, b.constraint)
    st_c, _ = solve(b.state0, b.objective, b.constraint, net.cfg, params)
    torch.testing.assert_close(st_n.x, st_c.x, rtol=0, atol=1e-12)
    torch.testing.assert_close(st_n.phi, st_c.phi, rtol=0, atol=1e-12)
    torch.testing.assert_close(st_n.beta_x, st_c.beta_x, rtol=0, atol=1e-12)
    assert float((st_c.x - b.state0.x).abs().max()) > 1e-2
    # the method's inference path (run_batch with the net, incl. feasibility layer and repair) equals
    # run_batch with the classical solver (first 3 layers: same code path, cheaper)
    c3 = replace(PAPER_CFG, T=3)
    n3 = UnfoldedAdmm(c3, init=DEFAULT_INIT)
    x1, p1, _, _ = run_batch(b, "ris", net=n3)
    x2, p2, _, _ = run_batch(b, "ris", cfg=c3, params=params)
    torch.testing.assert_close(x1, x2, rtol=0, atol=1e-12)
    torch.testing.assert_close(p1, p2, rtol=0, atol=1e-12)


def test_paper_size_doa_network_at_init_equals_classical_solver():
    """DoA (A.9): J_e, R_e = 10, 10, DFP (29a), PHR — network at init = classical ADMM-PHR-ALM-DFP (T = 2
    here to keep the autograd CRB affordable; every layer runs the same code)."""
    from isac_opt.paper_a.doa.model import DoaBatch, DoaConfig, DoaNet, run_classical, start_points
    scn = _scn()
    chs = [draw_channels(scn, realisation_rng(5, i)) for i in range(2)]
    cfg = DoaConfig(T=2, J=10, R=10, dfp_variant="paper", handler="phr")
    b = DoaBatch(scn, chs, start_points(scn, chs, "ris", 5), cfg)
    st_n = DoaNet(cfg, scn).infer(b)
    st_c = run_classical(b)
    torch.testing.assert_close(st_n.x, st_c.x, rtol=0, atol=1e-12)
    torch.testing.assert_close(st_n.phi, st_c.phi, rtol=0, atol=1e-12)
    assert float((st_c.x - b.u0).abs().max()) > 1e-3


def test_paper_weights_refuse_unfit_scenarios_in_one_line(tmp_path):
    """Weights trained for one (M, L, Q, PSK, leg model) are refused elsewhere: one-line UserError naming the field."""
    from isac_opt.paper_a.doa.model import DoaConfig, DoaNet
    scn = _scn()
    p = tmp_path / "detect_paper.pt"
    save_net(UnfoldedAdmm(replace(PAPER_CFG, T=2), init=DEFAULT_INIT), p, scn, {"layers_trained": 0})
    net, meta = load_net(p, scn)
    assert net.cfg.J == 8 and net.cfg.R == 10 and net.cfg.dfp_variant == "paper"
    with pytest.raises(UserError) as e:
        load_net(p, _scn(M=4))
    msg = str(e.value)
    assert "\n" not in msg and "M: trained 3, scenario 4" in msg
    q = tmp_path / "doa_paper.pt"
    DoaNet(DoaConfig(T=2, J=10, R=10, dfp_variant="paper"), scn).save(q)
    with pytest.raises(UserError) as e:
        DoaNet.load(q).check_fits(_scn(L=6))
    assert "\n" not in str(e.value) and "L=6" in str(e.value)


def test_shipped_paper_weights_refuse_unfit_scenario_through_the_method():
    """The catalogue method refuses an unfit scenario (M = 4) with the loader's one-line error."""
    from isac_opt.paper_a.detect.unfolded import default_weights_path
    from isac_opt.registry import get_method
    if not default_weights_path("paper-a_paper").is_file():
        pytest.skip("paper-size detection weights not shipped")
    with pytest.raises(UserError) as e:
        get_method("unfolded-paper", "paper-a").run(ScenarioA(M=4), 0)
    assert "\n" not in str(e.value) and "M: trained 6, scenario 4" in str(e.value)
