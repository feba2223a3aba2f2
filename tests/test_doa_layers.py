"""``reproduce doa-layers``: DoA CRB vs layers, trained vs untrained [issue 14 part 3; spec A.8, A.9].

Checks against independent computations: the network at its initial parameters against the classical
solver (two code paths), the CSV's CRBs against the numpy CRB reference (``isac_opt.paper_a.crb.crb_doa``,
itself checked against a dense finite-difference FIM in test_doa_crb.py) on designs recomputed here with
the whole-network forward instead of the target's layer-by-layer loop.
"""
from __future__ import annotations

import csv
import math

import numpy as np
import pytest
import torch

from isac_opt.paper_a.crb import crb_doa
from isac_opt.paper_a.doa.layers import heldout_seed, heldout_set, layer_curves, ratio_ci, record_grid
from isac_opt.paper_a.doa.model import DoaBatch, DoaConfig, DoaNet, repair_ci, run_classical, start_points
from isac_opt.paper_a.doa.train import make_dataset
from isac_opt.paper_a.scenario import ScenarioA
from isac_testbed.cli import main


@pytest.fixture(scope="module")
def quick_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("dl")
    rc = main(["reproduce", "doa-layers", "--out", str(out), "--quick"])
    assert rc == 0
    d = out / "doa-layers"
    with open(d / "layers.csv") as f:
        rows = list(csv.DictReader(f))
    with open(d / "equal_time.csv") as f:
        eq = list(csv.DictReader(f))
    return d, rows, eq


def test_quick_run_outputs(quick_run):
    d, rows, eq = quick_run
    for name in ("layers.csv", "equal_time.csv", "layers.png", "layers.md"):
        assert (d / name).is_file() and (d / name).stat().st_size > 0, name
    assert (d / "layers.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    need = {"net", "layers", "n", "trained_crb", "trained_crb_ci95", "untrained_crb", "untrained_crb_ci95",
            "trained_crb_raw", "untrained_crb_raw", "trained_ci_ok", "untrained_ci_ok", "ratio", "ratio_lo",
            "ratio_hi", "s_per_design_trained", "s_per_design_untrained"}
    assert need <= set(rows[0])
    assert {r["net"] for r in rows} == {"unfolded-doa", "unfolded-doa-paper"}
    assert [int(r["layers"]) for r in rows if r["net"] == "unfolded-doa"] == [1, 2]
    for r in rows:
        n = int(r["n"])
        # certified outputs: every design meets CI after the feasibility layer + repair
        assert int(r["trained_ci_ok"]) == n and int(r["untrained_ci_ok"]) == n
        assert float(r["ratio_lo"]) <= float(r["ratio"]) <= float(r["ratio_hi"])
        assert float(r["s_per_design_trained"]) > 0 and float(r["s_per_design_untrained"]) > 0
    assert {"layers_trained_net", "untrained_layers", "ratio", "gain_pct"} <= set(eq[0])
    assert len(eq) == len(rows)
    md = (d / "layers.md").read_text()
    assert "| unfolded-doa | 1 |" in md and "Equal CPU time" in md


def test_csv_crb_matches_numpy_reference(quick_run):
    """Recompute two rows of the CSV: whole-network forward (trained) / classical solver (untrained) from
    the held-out starts, feasibility layer + repair, CRB by the numpy reference."""
    from isac_opt.paper_a.doa.multistart import FEAS_STEPS
    from isac_opt.paper_a.doa.weights import load_net
    from isac_opt.paper_a.unfold import feasibility_layer
    _, rows, _ = quick_run
    scn = ScenarioA(N=16)
    for r in [r for r in rows if r["net"] == "unfolded-doa"][:2]:
        t, n = int(r["layers"]), int(r["n"])
        chs, starts = heldout_set(scn, heldout_seed(2025), range(n))
        net = load_net("unfolded-doa")
        b = DoaBatch(scn, chs, starts, net.cfg, "ris")
        for tag, st in (("trained", net.infer(b, T=t)), ("untrained", run_classical(b, T=t))):
            raw = [crb_doa(scn, ch, x * scn.amp, p) for ch, x, p in zip(chs, st.x.numpy(), st.phi.numpy())]
            with torch.no_grad():
                x = feasibility_layer(b.ci, st.x, st.phi, steps=FEAS_STEPS)
            X = [scn.amp * np.exp(1j * np.angle(v)) for v in x.numpy()]
            P = [np.exp(1j * np.angle(p)) for p in st.phi.numpy()]
            Xr, _ = repair_ci(scn, chs, X, P, starts)
            cert = [crb_doa(scn, ch, xx, p) for ch, xx, p in zip(chs, Xr, P)]
            assert float(r[f"{tag}_crb"]) == pytest.approx(np.mean(cert), rel=1e-8)
            assert float(r[f"{tag}_crb_raw"]) == pytest.approx(np.mean(raw), rel=1e-8)


def test_network_at_initial_parameters_equals_untrained():
    """At its initial parameters the trained branch equals the untrained branch at every recorded depth
    (MLP path vs constant-step path), and both equal the classical solver (a third path, 1e-10)."""
    scn = ScenarioA(M=3, N=8, K=2, L=4, Q=2, noise_comm_w=(1e-11, 1e-11), gamma_db=(10.0, 10.0),
                    xi_q_sq=(1.0, 1.0), clutter_bins=(0, 1), clutter_angles_rad=(-math.pi / 3, math.pi / 4))
    chs, starts = make_dataset(scn, 3, seed=5)
    for variant, J, R in (("paper", 2, 3), ("identity", 2, 2)):
        cfg = DoaConfig(T=3, J=J, R=R, dfp_variant=variant)
        net = DoaNet(cfg, scn, seed=3)
        grid = record_grid(4)
        res = layer_curves(scn, chs, starts, net, 4, 4, grid, grid)
        for t in grid:
            a, c = res["trained"][str(t)], res["untrained"][str(t)]
            for f in ("raw", "cert"):
                np.testing.assert_allclose(a[f], c[f], rtol=1e-10)
            assert a["cert_ok"] == c["cert_ok"]
            b = DoaBatch(scn, chs, starts, cfg, "ris")
            st = run_classical(b, T=t)
            np.testing.assert_allclose(b.crb(st.x, st.phi).numpy(), c["raw"], rtol=1e-10)


def test_ratio_interval_against_direct_formula():
    rng = np.random.default_rng(0)
    a = rng.uniform(1, 2, 50)
    b = a * np.exp(rng.normal(0.1, 0.05, 50))
    g, lo, hi = ratio_ci(a, b)
    lr = np.log(a / b)
    assert g == pytest.approx(np.prod(a / b) ** (1 / 50), rel=1e-12)
    assert lo == pytest.approx(math.exp(lr.mean() - 1.96 * lr.std(ddof=1) / math.sqrt(50)), rel=1e-12)
    assert lo < g < hi


def test_heldout_set_independent_of_chunking():
    scn = ScenarioA(N=16)
    sd = heldout_seed(2025)
    chs_a, st_a = heldout_set(scn, sd, [0, 1, 2])
    chs_b, st_b = heldout_set(scn, sd, [2])
    np.testing.assert_array_equal(chs_a[2].h_k, chs_b[0].h_k)
    np.testing.assert_array_equal(st_a[2].X0, st_b[0].X0)
    # disjoint from the DoA training set (root 2026) and the figures' test set (root 4242)
    tr, _ = make_dataset(scn, 1, seed=2026)
    assert not np.allclose(tr[0].h_k, chs_a[0].h_k)


@pytest.mark.parametrize("opts", [["--set", "n=0"], ["--set", "n=abc"], ["--set", "depths=1,x"],
                                  ["--set", "nets=foo"], ["--set", "bogus=1"], ["--set", "depths_paper=0"],
                                  ["--workers", "2"]])
def test_bad_options_one_line_exit_2(tmp_path, capsys, opts):
    rc = main(["reproduce", "doa-layers", "--out", str(tmp_path), "--quick", *opts])
    err = capsys.readouterr().err.strip()
    assert rc == 2
    assert len(err.splitlines()) == 1 and "doa-layers" in err and "Traceback" not in err


def test_torch_engine_gives_the_same_curve(quick_run, tmp_path):
    """`--set engine=torch` (the step function) against the default engine (compiled kernel when numba is
    installed): the same certified and raw CRBs per depth; the engine is recorded in every row."""
    _, rows, _ = quick_run
    rc = main(["reproduce", "doa-layers", "--out", str(tmp_path), "--quick", "--set", "engine=torch"])
    assert rc == 0
    with open(tmp_path / "doa-layers" / "layers.csv") as f:
        rows_t = list(csv.DictReader(f))
    assert [(r["net"], r["layers"]) for r in rows_t] == [(r["net"], r["layers"]) for r in rows]
    for a, b in zip(rows_t, rows):
        assert a["engine"] == "torch" and b["engine"] in ("jit", "torch")
        for col in ("trained_crb", "untrained_crb", "trained_crb_raw", "untrained_crb_raw"):
            assert abs(float(a[col]) - float(b[col])) <= 1e-8 * abs(float(a[col])), col


def test_bad_engine_is_one_line(tmp_path, capsys):
    assert main(["reproduce", "doa-layers", "--out", str(tmp_path), "--quick", "--set", "engine=gpu"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "engine" in err[0]
