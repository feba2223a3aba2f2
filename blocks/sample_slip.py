"""Sample slip (GRC: ``risisac_sample_slip``): a test block that drops or inserts one item at an offset.

Tags after the slip move with their samples (a tag on a dropped item moves to the next item), so the
receivers' tag-based re-synchronisation can be tested (see :mod:`isac_opt.bench.framing`).
"""
from __future__ import annotations

import numpy as np
from gnuradio import gr
from isac_opt.errors import ConfigError


class sample_slip(gr.basic_block):
    """Copy a complex64 vector stream (vlen ``vlen``), dropping (mode 'drop') or inserting a zero item
    (mode 'insert') at absolute input offset ``at`` (< 0: never)."""

    def __init__(self, vlen=1, at=-1, mode="drop"):
        if mode not in ("drop", "insert"):
            raise ConfigError(f"sample_slip: mode must be 'drop' or 'insert', got {mode!r}")
        gr.basic_block.__init__(self, name="sample_slip", in_sig=[(np.complex64, int(vlen))],
                                out_sig=[(np.complex64, int(vlen))])
        self.at, self.mode, self._done = int(at), mode, int(at) < 0
        self.set_tag_propagation_policy(gr.TPP_DONT)

    def forecast(self, noutput_items, ninputs):
        return [1] * ninputs

    def general_work(self, input_items, output_items):
        inp, out = input_items[0], output_items[0]
        r0 = self.nitems_read(0)
        k = self.at - r0
        if not self._done and k == 0:             # the slip itself, alone in its call
            self._done = True
            if self.mode == "drop":
                self._tags(r0, 1)
                self.consume(0, 1)
                return 0
            out[0] = 0
            return 1
        m = min(len(inp), len(out))
        if not self._done and 0 < k < m:
            m = k                                 # stop just before the slip point
        out[:m] = inp[:m]
        self._tags(r0, m)
        self.consume(0, m)
        return m

    def _tags(self, r0, m):
        for t in self.get_tags_in_range(0, r0, r0 + m):
            self.add_item_tag(0, self._map(t.offset), t.key, t.value)

    def _map(self, o: int) -> int:
        """Output offset of input item o (a tag on a dropped item moves to the next item)."""
        if self.at < 0 or o < self.at:
            return o
        if self.mode == "drop":
            return o - 1 if o > self.at else o
        return o + 1
