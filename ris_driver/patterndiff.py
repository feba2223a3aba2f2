"""One-line summaries of how a read-back pattern differs from the commanded one.

A fault campaign can produce thousands of recovered read-back mismatches; logging both whole patterns
and amplifier lists made ~1.5 kB lines. :func:`pattern_diff` names the counts and the first few
differing elements instead (bounded length whatever the board size).
"""
from __future__ import annotations

__all__ = ["pattern_diff"]


def _diff(name: str, got, want, first: int) -> str:
    got, want = tuple(got), tuple(want)
    if len(got) != len(want):
        return f"{name}: length {len(got)} != {len(want)}"
    idx = [i for i, (a, b) in enumerate(zip(got, want)) if a != b]
    if not idx:
        return ""
    shown = ", ".join(f"[{i}] {got[i]}!={want[i]}" for i in idx[:first])
    more = f", +{len(idx) - first} more" if len(idx) > first else ""
    return f"{name}: {len(idx)} of {len(want)} differ ({shown}{more}; got!=want)"


def pattern_diff(got, want, first: int = 4) -> str:
    """``"phase: 3 of 256 differ ([5] 2!=1, [17] 0!=3, [40] 1!=0; got!=want)"`` (+ the same for amp).

    ``got``/``want``: :class:`ris_driver.device.Pattern` (``phase`` and ``amp`` sequences).
    """
    parts = [p for p in (_diff("phase", got.phase, want.phase, first),
                         _diff("amp", got.amp, want.amp, first)) if p]
    return "; ".join(parts) or "no difference"
