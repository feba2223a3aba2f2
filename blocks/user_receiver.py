"""User receivers (GRC: ``risisac_user_receiver``): per-slot PSK demodulation of K users, SER/BER counting.

In: complex64 vlen K (user streams, normalised by σ_k). The transmitted symbols come from the ``design``
tags. Message ``stats`` every ``report_every`` frames: per-user SER/BER so far and the measured CI margin
(min and mean over users and slots, units of σ_k) of the current design. Core:
:class:`isac_opt.bench.demod.ReceiverCore`; :meth:`totals` after the run.
"""
from __future__ import annotations

import pmt
from gnuradio import gr
import numpy as np

from blocks._tags import read_tags
from isac_opt.bench.framing import DESIGN_KEY, FRAME_KEY, DesignTrack
from isac_opt.bench.demod import ReceiverCore


class user_receiver(gr.sync_block):
    """Demodulate K users per slot and count symbol/bit errors against the tagged symbols."""

    def __init__(self, K=3, report_every=1000):
        gr.sync_block.__init__(self, name="user_receiver", in_sig=[(np.complex64, int(K))], out_sig=None)
        self.track = DesignTrack(loader=lambda path: None)     # symbols come in the tags; no file needed
        self.core = ReceiverCore(int(K), self.track)
        self.report_every = int(report_every)
        self._next = self.report_every
        self.message_port_register_out(pmt.intern("stats"))

    def set_report_every(self, n: int) -> None:
        """GRC callback: status period [frames]."""
        self.report_every = int(n)

    def work(self, input_items, output_items):
        n = len(input_items[0])
        t0 = self.nitems_read(0)
        tags = read_tags(self, 0, t0, n, (FRAME_KEY, DESIGN_KEY))
        for tag in tags[DESIGN_KEY][1]:
            self.track.add(tag)
        fo, fv = tags[FRAME_KEY]
        self.core.process(input_items[0], t0, fo, fv)
        if self.core.frames >= self._next:
            self._next += self.report_every
            t = self.totals()
            m = self.core.margins()
            self.message_port_pub(pmt.intern("stats"), pmt.to_pmt({
                "frames": int(t["frames"]), "ser": [float(v) for v in t["ser"]],
                "ber": [float(v) for v in t["ber"]],
                "ci_margin_min": float(m.min()) if m is not None else float("nan"),
                "ci_margin_mean": float(m.mean()) if m is not None else float("nan")}))
        return n

    def totals(self) -> dict:
        return self.core.totals()
