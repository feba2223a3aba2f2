"""Live-link numerics [issue 13]: the per-frame SLP design engine and the design-ahead queue.

See docs/link.md. Pure torch/numpy (CPU or CUDA, float32 or float64).
"""
from .engine import FrameDesigns, LinkEngine, symbol_indices
from .ahead import DesignAhead, DesignedFrame, LinkStarved

__all__ = ["LinkEngine", "FrameDesigns", "symbol_indices", "DesignAhead", "DesignedFrame", "LinkStarved"]
