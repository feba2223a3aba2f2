"""Frame tagger (GRC: ``risisac_frame_tagger``): re-inserts ``frame``/``design`` tags on a hardware RX stream.

Hardware sources carry no tags from the TX path. After the loopback delay ``rx_delay`` [samples] (measured
once per sample rate, bench notes §5.1) frames start every F = L + gap samples; this block tags them so
the detector and the user receivers work unchanged.
"""
from __future__ import annotations

import numpy as np
import pmt
from gnuradio import gr

from isac_opt.bench.framing import DESIGN_KEY, FRAME_KEY, auto_gap, design_tag
from isac_opt.designfile import load_design


class frame_tagger(gr.sync_block):
    """Pass-through (complex64 vlen M) that tags frame starts every F items from ``rx_delay`` on."""

    def __init__(self, design="", M=6, rx_delay=0, gap=-1):
        gr.sync_block.__init__(self, name="frame_tagger", in_sig=[(np.complex64, int(M))],
                               out_sig=[(np.complex64, int(M))])
        d = load_design(str(design))
        self.gap = auto_gap(d.scenario) if int(gap) < 0 else int(gap)
        self.F = d.scenario.L + self.gap
        self.delay = int(rx_delay)
        self._design_tag = pmt.to_pmt(design_tag(d, str(design), 0, self.F))
        self.set_tag_propagation_policy(gr.TPP_DONT)

    def work(self, input_items, output_items):
        n = len(input_items[0])
        output_items[0][:] = input_items[0]
        t0 = self.nitems_written(0)
        first = max(0, -(-(t0 - self.delay) // self.F))
        for f in range(first, (t0 + n - 1 - self.delay) // self.F + 1):
            off = self.delay + f * self.F
            if f == 0:
                self.add_item_tag(0, off, pmt.intern(DESIGN_KEY), self._design_tag)
            self.add_item_tag(0, off, pmt.intern(FRAME_KEY), pmt.from_long(f))
        return n
