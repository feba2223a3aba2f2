"""Paper B: multi-active-RIS ISAC target detection with STAP + CI-SLP [spec Part B].

Modules: :mod:`.scenario` (ScenarioB), :mod:`.model` (geometry, channels, space-time model),
:mod:`.qp` (convex sub-problem solvers), :mod:`.algorithm` (Dinkelbach + MM + ADMM design and the
baselines' options), :mod:`.design` (DesignB), :mod:`.designfile` (on-disk format), :mod:`.methods`
(registered design methods), :mod:`.figures` (reproduction targets b-fig4 ... b-fig10).
See docs/paper_b.md.
"""
from .scenario import ScenarioB

__all__ = ["ScenarioB"]
