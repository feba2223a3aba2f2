"""STAP detector (GRC: ``risisac_stap_detector``): frames the M radar streams by tags, applies w, thresholds.

In: complex64 vlen M. Out (optional): float32, one item per accepted frame = T/ε0 (threshold −ln Pfa).
Messages: ``detections`` (one flat dict per detection), ``status`` (every ``report_every`` frames: frames,
SINR estimate, measured Pfa/Pd); in ``ris`` (dict with ``coefficients``: the RIS state assumed for ε0).
Core: :class:`isac_opt.bench.stap.DetectorCore`; :meth:`results` / :meth:`summary` after the run.
"""
from __future__ import annotations

import numpy as np
import pmt
from gnuradio import gr

from blocks._tags import read_tags
from isac_opt.bench.framing import DESIGN_KEY, FRAME_KEY, TARGET_KEY, DesignTrack
from isac_opt.bench.stap import DetectorCore


class stap_detector(gr.basic_block):
    """T = |wᴴ vec(R)|² per frame, NP threshold at ``pfa``, online SINR; ``design`` '' = follow the tags."""

    def __init__(self, M=6, pfa=1e-3, design="", report_every=1000, publish=True):
        gr.basic_block.__init__(self, name="stap_detector", in_sig=[(np.complex64, int(M))],
                                out_sig=[np.float32])
        self.track = DesignTrack()
        self._fixed = None
        if str(design):
            from isac_opt.designfile import load_design
            d = load_design(str(design))
            self._fixed = self.track.preload(d, str(design))
        self.core = DetectorCore(float(pfa), int(M), self.track)
        self.report_every, self.publish = int(report_every), bool(publish)
        self._pending = np.zeros(0, np.float32)
        self._next_report = self.report_every
        for p in ("detections", "status"):
            self.message_port_register_out(pmt.intern(p))
        self.message_port_register_in(pmt.intern("ris"))
        self.set_msg_handler(pmt.intern("ris"), self._on_ris)
        self.set_tag_propagation_policy(gr.TPP_DONT)

    def _on_ris(self, msg):
        v = pmt.to_python(msg)
        if isinstance(v, dict) and v.get("ok", True) and v.get("coefficients") is not None:
            self.core.set_phi(v["coefficients"])

    def forecast(self, noutput_items, ninputs):
        return [1] * ninputs

    def general_work(self, input_items, output_items):
        n = len(input_items[0])
        t0 = self.nitems_read(0)
        tags = read_tags(self, 0, t0, n)
        for tag in tags[DESIGN_KEY][1]:
            if self._fixed is not None:                     # a fixed design: same id, new first frame
                tag = dict(self._fixed, first_frame=tag["first_frame"], F=tag["F"])
            self.track.add(tag)
        fo, fv = tags[FRAME_KEY]
        to, tv = tags[TARGET_KEY]
        res = self.core.process(input_items[0], t0, fo, fv, to, tv)
        self.consume(0, n)
        if res is not None:
            self._pending = np.concatenate([self._pending, res["stat"].astype(np.float32)])
            self._publish(res)
        k = min(len(output_items[0]), self._pending.size)
        output_items[0][:k] = self._pending[:k]
        self._pending = self._pending[k:]
        return k

    def _publish(self, res):
        thr = -np.log(self.core.pfa)
        for i in (np.flatnonzero(res["detected"]) if self.publish else ()):
            self.message_port_pub(pmt.intern("detections"), pmt.to_pmt({
                "frame": int(res["frame"][i]), "stat": float(res["stat"][i]), "threshold": float(thr),
                "range_bin": int(self.track.design(0).scenario.target_bin) if self.track.tags else -1,
                "target": int(res["target"][i])}))
        if self.core.results()["frame"].size >= self._next_report:
            self._next_report += self.report_every
            self.message_port_pub(pmt.intern("status"), pmt.to_pmt(self.summary()))

    def results(self) -> dict:
        return self.core.results()

    def summary(self) -> dict:
        return self.core.summary()
