"""Sample slip (GRC: ``risisac_sample_slip``): a test block that drops or inserts one item at an offset.

Tags after the slip move with their samples (a tag on a dropped item moves to the next item), so the
receivers' tag-based re-synchronisation can be tested (see :mod:`isac_opt.bench.framing`).
"""
from __future__ import annotations

import numpy as np
from gnuradio import gr


class sample_slip(gr.basic_block):
    """Copy a complex64 vector stream (vlen ``vlen``), dropping (mode 'drop') or inserting a zero item
    (mode 'insert') at absolute input offset ``at`` (< 0: never)."""

    def __init__(self, vlen=1, at=-1, mode="drop"):
        if mode not in ("drop", "insert"):
            raise ValueError(f"sample_slip: mode must be 'drop' or 'insert', got {mode!r}")
        gr.basic_block.__init__(self, name="sample_slip", in_sig=[(np.complex64, int(vlen))],
                                out_sig=[(np.complex64, int(vlen))])
        self.at, self.mode, self._done = int(at), mode, int(at) < 0
        self.set_tag_propagation_policy(gr.TPP_DONT)

    def forecast(self, noutput_items, ninputs):
        return [max(1, noutput_items - 1)] * ninputs

    def general_work(self, input_items, output_items):
        inp, out = input_items[0], output_items[0]
        r0, w0 = self.nitems_read(0), self.nitems_written(0)
        n = min(len(inp), len(out) - 1)
        if n <= 0:
            return 0
        k = self.at - r0
        if not self._done and 0 <= k < n:
            if self.mode == "drop":
                out[:k] = inp[:k]; out[k:n - 1] = inp[k + 1:n]; produced = n - 1
            else:
                out[:k] = inp[:k]; out[k] = 0; out[k + 1:n + 1] = inp[k:n]; produced = n + 1
            self._done = True
        else:
            out[:n] = inp[:n]; produced = n
        for t in self.get_tags_in_range(0, r0, r0 + n):
            self.add_item_tag(0, self._map(t.offset), t.key, t.value)
        self.consume(0, n)
        return produced

    def _map(self, o: int) -> int:
        """Output offset of input item o (a tag on a dropped item moves to the next item)."""
        if self.at < 0 or o < self.at:
            return o
        if self.mode == "drop":
            return o - 1 if o > self.at else o
        return o + 1
