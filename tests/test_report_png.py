"""The run report PNG shows what SLP researchers look for (issue 15, item 6)."""
from __future__ import annotations

import math

import numpy as np
import pytest

pytest.importorskip("gnuradio")
pytestmark = pytest.mark.gnuradio


@pytest.fixture(scope="module")
def run(init_design_file):
    from isac_opt.designfile import load_design
    from isac_opt.bench.report import build_report
    from blocks.pipeline import sim_pipeline
    d = load_design(init_design_file)
    tb = sim_pipeline(str(init_design_file), 200, seed=1, pfa=1e-2)
    tb.run()
    det = tb.det.results()
    r = build_report(d, det, tb.rx.core, pfa=1e-2)
    return d, det, tb.rx.core, r


def test_derotated_points_are_the_ci_margins(run):
    """De-rotation by the intended symbol (independent check): the margin of each de-rotated point equals
    ci_margins(y, s) of the raw point, and the frame-mean of the de-rotated slot points is the measured
    mean margin's point."""
    from isac_opt.bench.report import derotated_points
    from isac_opt.ci import ci_margins
    from isac_opt.bench.framing import symbols_from_indices
    d, det, rx, r = run
    st = next(iter(rx.per_design.values()))
    K = rx.K
    z = derotated_points(st, K)
    pts = np.concatenate(st["points"])                               # (n, K)
    L = st["sym"].shape[1]
    S = symbols_from_indices(st["sym"], st["order"])                 # (K, L)
    th = math.pi / st["order"]
    for k in range(K):
        s = S[k, np.arange(pts.shape[0]) % L]
        m_ref = ci_margins(pts[:, k], s, st["order"])
        m_z = math.sin(th) * z[k].real - math.cos(th) * np.abs(z[k].imag)
        np.testing.assert_allclose(m_z, m_ref, atol=1e-9)
        # with the design's CI constraints met, most received points sit in the CI region
        assert (m_z > 0).mean() > 0.5


def test_png_has_ci_region_thresholds_and_log_histogram(run, tmp_path):
    from isac_opt.bench.report import ci_threshold_sigma, plot_report
    d, det, rx, r = run
    fig = plot_report(tmp_path / "r.png", r, det, rx)
    assert (tmp_path / "r.png").stat().st_size > 10_000
    K = rx.K
    assert r["ci_threshold_sigma"] == ci_threshold_sigma(d)
    g0 = math.sqrt(10 ** (d.scenario.gamma_db[0] / 10)) * math.sin(math.pi / d.scenario.psk_order)
    assert r["ci_threshold_sigma"][0] == pytest.approx(g0)
    for k in range(K):
        labels = [t.get_text() for t in fig.axes[k].get_legend().get_texts()]
        assert any("CI region" in t for t in labels) and any("threshold" in t for t in labels)
        assert "de-rotated" in fig.axes[k].get_title()
    hist = fig.axes[K]
    assert hist.get_yscale() == "log"
    xs = [ln.get_xdata()[0] for ln in hist.get_lines()]
    assert any(abs(x - (-math.log(r["pfa"]))) < 1e-12 for x in xs)
