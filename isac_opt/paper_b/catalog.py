"""Paper B's catalogue: design methods [spec B.7, B.8] and reproduction targets, as data.

Read by :mod:`isac_opt.registry` without importing the algorithms (no cvxpy/matplotlib here).
"""
from ..registry import Method, Target

_RUN = "isac_opt.paper_b.methods:run_named"

METHODS = [
    Method("stap-fp-mm-admm", "paper-b", "multi-RIS STAP-SLP: MVDR + Dinkelbach + MM/ADMM + prox-linear active-RIS "
           "step [spec B.7]", _RUN, 100),
    Method("spatial-only", "paper-b", "multi-RIS with a spatial-only (reduced-dimension) filter, '[22]' "
           "approximation [spec B.8]", _RUN, 40),
    Method("random-ris", "paper-b", "random active-RIS phases at a_max, waveform/filter optimised [spec B.8]", _RUN, 30),
    Method("no-ris", "paper-b", "w/o RIS (direct paths only), waveform/filter optimised [spec B.8]", _RUN, 20),
    Method("radar-only", "paper-b", "proposed design without CI constraints (radar-only bound) [spec B.8]", _RUN, 10),
    Method("spatial-only-radar", "paper-b", "spatial-only baseline without CI constraints [spec B.8]", _RUN, 5),
    Method("random-ris-radar", "paper-b", "random RIS without CI constraints [spec B.8]", _RUN, 4),
    Method("no-ris-radar", "paper-b", "w/o RIS without CI constraints [spec B.8]", _RUN, 3),
]

_FIG = "isac_opt.paper_b.figures"
TARGETS = [
    Target("b-fig4", "paper B Fig. 4: convergence for a_max x P", f"{_FIG}:b_fig4"),
    Target("b-fig5", "paper B Fig. 5: SCNR vs transmit power, 4 schemes x ISAC/radar", f"{_FIG}:b_fig5"),
    Target("b-fig6", "paper B Fig. 6: SCNR vs RIS position", f"{_FIG}:b_fig6"),
    Target("b-fig7", "paper B Fig. 7: SCNR vs number of RISs", f"{_FIG}:b_fig7"),
    Target("b-fig8", "paper B Fig. 8: SCNR vs target speed and velocity direction", f"{_FIG}:b_fig8"),
    Target("b-fig9", "paper B Fig. 9: ROC at 60/30/0 m/s", f"{_FIG}:b_fig9"),
    Target("b-fig10", "paper B Fig. 10: SCNR and BER vs communication requirement", f"{_FIG}:b_fig10"),
]
