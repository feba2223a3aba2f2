"""Design file: round trip, metrics recomputed, and rejection of damaged/foreign files."""
import json

import numpy as np
import pytest

from isac_opt.paper_a.channels import ChannelsA, draw_channels
from isac_opt.paper_a.design import DesignA
from isac_opt.designfile import load_design, read_meta
from isac_opt.errors import DesignFileError
from isac_opt.paper_a.starting import init_phi, init_x


@pytest.fixture
def design(small_scn, rng):
    ch = draw_channels(small_scn, rng)
    phi = init_phi(small_scn, ch, rng)
    X, t = init_x(small_scn, ch, phi)
    return DesignA.build(small_scn, ch, X, phi, method="init", seed=7, extra={"t_star": t})


def test_round_trip_and_meta_keys(design, tmp_path):
    p = tmp_path / "d.npz"
    design.save(p)
    d2 = load_design(p)
    np.testing.assert_array_equal(d2.X, design.X)
    np.testing.assert_array_equal(d2.phi, design.phi)
    np.testing.assert_array_equal(d2.w, design.w)
    assert d2.scenario == design.scenario and d2.method == "init" and d2.seed == 7
    meta, arrays = read_meta(p)
    for k in ("format", "M", "N", "K", "L", "Q", "psk_order", "power_w", "noise_radar_w", "noise_comm_w",
              "gamma_db", "xi0_sq", "xi_q_sq", "clutter_bins", "theta0_rad", "theta_ris_rad",
              "ris_leg_model", "method", "seed", "metrics"):
        assert k in meta, k
    for k in ("X", "phi", "S", "G", "h_bt", "h_rt", "h_bq", "h_rq", "h_k", "h_rk", "w"):
        assert k in arrays and np.iscomplexobj(arrays[k]), k
    r = d2.report()
    assert r["sinr_db"] == pytest.approx(meta["metrics"]["sinr_db"], rel=1e-12)
    assert r["ci_min_margin"] >= 1.0 - 1e-6        # the init design is CI-feasible here
    assert r["sinr_filter_db"] == pytest.approx(r["sinr_db"], rel=1e-9)   # stored w is MVDR


def test_truncated_file_rejected(design, tmp_path):
    p = tmp_path / "d.npz"
    design.save(p)
    raw = p.read_bytes()
    (tmp_path / "t.npz").write_bytes(raw[: len(raw) // 2])
    with pytest.raises(DesignFileError, match="damaged or truncated|not a readable"):
        load_design(tmp_path / "t.npz")


def test_nan_file_rejected(design, tmp_path):
    p = tmp_path / "d.npz"
    design.X[0, 0] = np.nan
    design.save(p)
    with pytest.raises(DesignFileError, match="'X' contains NaN"):
        load_design(p)


def test_foreign_and_inconsistent_files_rejected(design, tmp_path):
    p = tmp_path / "foreign.npz"
    np.savez(p, a=np.zeros(3))
    with pytest.raises(DesignFileError, match="no 'meta'"):
        load_design(p)
    p2 = tmp_path / "other.npz"
    np.savez(p2, meta=np.array(json.dumps({"format": "somebody-else/v9"})))
    with pytest.raises(DesignFileError, match="unknown design format"):
        load_design(p2)
    (tmp_path / "text.npz").write_text("hello")
    with pytest.raises(DesignFileError):
        load_design(tmp_path / "text.npz")
    with pytest.raises(DesignFileError, match="no such"):
        load_design(tmp_path / "missing.npz")
    # wrong shape
    p3 = tmp_path / "shape.npz"
    design.save(p3)
    meta, arrays = read_meta(p3)
    arrays["phi"] = arrays["phi"][:-1]
    np.savez(p3, meta=np.array(json.dumps(meta)), **arrays)
    with pytest.raises(DesignFileError, match="'phi' has shape"):
        load_design(p3)


def test_channels_file_round_trip(small_scn, rng, tmp_path):
    ch = draw_channels(small_scn, rng)
    ch.save(tmp_path / "c.npz", small_scn)
    ch2 = ChannelsA.load(tmp_path / "c.npz", small_scn)
    for k, v in ch.arrays().items():
        np.testing.assert_array_equal(getattr(ch2, k), v)
    with pytest.raises(DesignFileError, match="shape"):
        ChannelsA.load(tmp_path / "c.npz", small_scn.replace(N=8))
