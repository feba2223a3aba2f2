"""Paper A's catalogue: its design methods, reproduction targets and trainers as data [spec A.6–A.11].

Read by :mod:`isac_opt.registry` without importing the algorithms (no torch/cvxpy here).
"""
from ..registry import Method, Target

_INIT = "isac_opt.paper_a.starting:run_named"
_DET = "isac_opt.paper_a.detect.methods:run_named"
_DOA = "isac_opt.paper_a.doa.methods:run_named"

METHODS = [
    Method("unfolded", "paper-a", "deep-unfolded ADMM-ALM (A.6), shipped weights, + per-slot CI repair", _DET, 20),
    Method("admm-mm", "paper-a",
           "ADMM-MM reference [25]: MM x-step QP (cvxpy+Clarabel) + prox-linear RIS step (A.11.1)", _DET, 15),
    Method("unfolded-paper", "paper-a",
           "paper-size deep-unfolded ADMM-ALM-DFP (A.6: T, J, R = 75, 8, 10, compact DFP (29a)), + CI repair",
           _DET, 14),
    Method("unfolded-lite", "paper-a",
           "first 4 layers of the shipped unfolded network (5x fewer steps), + CI repair", _DET, 12),
    Method("radar-only", "paper-a", "ADMM-MM without CI constraints (A.11.2)", _DET, 3),
    Method("random-ris", "paper-a", "unfolded network, random fixed RIS phases (A.11.3)", _DET, 3),
    Method("no-ris", "paper-a", "unfolded network without RIS, G = 0 (A.11.4)", _DET, 2),
    Method("init", "paper-a",
           "A.10 starting design: RIS by Riemannian ascent, waveform by worst-case CI margin (cvxpy)", _INIT, 10),
    Method("init-radar-only", "paper-a", "A.10 radar-only starting waveform (no CI constraints)", _INIT, 1),
    Method("init-random-ris", "paper-a", "random RIS phases, worst-case-margin waveform", _INIT, 2),
    Method("init-no-ris", "paper-a", "no RIS (G = 0), worst-case-margin waveform", _INIT, 1),
    Method("unfolded-doa", "paper-a",
           "DoA: unfolded ADMM-PHR-ALM-DFP minimising the CRB (learned steps, A.9)", _DOA, 5),
    Method("unfolded-doa-lite", "paper-a",
           "DoA: unfolded ADMM-PHR-ALM-DFP, 20 layers trained with larger steps (faster)", _DOA, 4),
    Method("unfolded-doa-alm", "paper-a",
           "DoA: unfolded ADMM-ALM-DFP ablation (plain Lagrangian) on the CRB", _DOA, 4),
    Method("unfolded-doa-paper", "paper-a",
           "DoA: paper-size unfolded ADMM-PHR-ALM-DFP (A.9: 60, 10, 10, compact DFP (29a)) on the CRB", _DOA, 3),
    Method("classical-doa", "paper-a", "DoA: classical ADMM-PHR-ALM-DFP on the CRB (constant steps)", _DOA, 4),
    Method("unsupervised-doa", "paper-a", "DoA: unsupervised MLP baseline (CRB + CI penalty, A.11.5)", _DOA, 3),
]

_REP = "isac_opt.paper_a.detect.reproduce"
_FIG = "isac_opt.paper_a.doa.figures"
TARGETS = [
    Target("fig4", "paper A Fig. 4: SINR vs P (detection)", f"{_REP}:fig4"),
    Target("fig5", "paper A Fig. 5: SINR vs N", f"{_REP}:fig5"),
    Target("fig6", "paper A Fig. 6: SINR vs Γ", f"{_REP}:fig6"),
    Target("fig7", "paper A Fig. 7: Pd vs Pfa", f"{_REP}:fig7"),
    Target("table1", "paper A Table I: time per design, ADMM-MM vs unfolded, N = 32/64/128", f"{_REP}:table1"),
    Target("detect-layers", "beyond paper A: held-out SINR vs layers, trained vs untrained (same depth), 95 % CIs",
           f"{_REP}:layers_curve"),
    Target("fig8", "paper A Fig. 8: CRB vs P, incl. K→K* transferred models", f"{_FIG}:target_fig8"),
    Target("fig9", "paper A Fig. 9: CRB vs Γ (T_e = 40/60/80, ALM vs PHR-ALM)", f"{_FIG}:target_fig9"),
    Target("fig10", "paper A Fig. 10: SER vs Γ, detection and DoA designs", f"{_FIG}:target_fig10"),
    Target("table2", "paper A Table II: time per design, DoA networks, N = 32/64/128", f"{_FIG}:target_table2"),
    Target("doa-layers", "beyond paper A: held-out DoA CRB vs layers and vs time, trained vs untrained, 95 % CIs",
           "isac_opt.paper_a.doa.layers:layers_curve"),
]

TRAINERS = [
    Target("detect", "paper A detection: unfolded ADMM-ALM-DFP, layer-by-layer (A.6)",
           "isac_opt.paper_a.detect.train:train"),
    Target("doa", "paper A DoA: unfolded ADMM-PHR-ALM-DFP (CRB) + unsupervised baseline",
           "isac_opt.paper_a.doa.train:run"),
]
