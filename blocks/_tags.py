"""Tag helpers shared by the blocks (not a block): read the bench's tags of one work() window."""
from __future__ import annotations

import numpy as np
import pmt

from isac_opt.bench.framing import DESIGN_KEY, FRAME_KEY, TARGET_KEY

_KEYS = {FRAME_KEY: pmt.intern(FRAME_KEY), DESIGN_KEY: pmt.intern(DESIGN_KEY), TARGET_KEY: pmt.intern(TARGET_KEY)}


def read_tags(block, port: int, start: int, n: int, keys=(FRAME_KEY, DESIGN_KEY, TARGET_KEY)) -> dict:
    """Tags of ``keys`` on input ``port`` in absolute [start, start+n), sorted by offset.

    Returns {key: (offsets int64 array, values list)}: ``frame`` values are ints, ``target`` bools,
    ``design`` dicts.
    """
    out = {k: ([], []) for k in keys}
    want = set(keys)
    for t in block.get_tags_in_range(port, start, start + n):   # one call, dispatch by key
        k = pmt.symbol_to_string(t.key)
        if k not in want:
            continue
        v = t.value
        out[k][0].append(t.offset)
        out[k][1].append(pmt.to_long(v) if k == FRAME_KEY else
                         pmt.to_bool(v) if k == TARGET_KEY else pmt.to_python(v))
    res = {}
    for k, (o, v) in out.items():
        o = np.asarray(o, np.int64)
        order = np.argsort(o, kind="stable")
        res[k] = (o[order], [v[i] for i in order])
    return res
