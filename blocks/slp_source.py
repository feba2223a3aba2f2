"""SLP source: emits the designed M transmit streams frame after frame (GRC: ``risisac_slp_source``).

Output: ONE vector port, complex64 with vlen M (one item = one slot on all M antennas); use
``blocks.vector_to_streams`` for per-antenna ports. Tags ``frame``/``design`` per
:mod:`isac_opt.bench.framing`. Message port ``design`` (in): a design path (string) or ``{"path": ...}``;
the switch happens atomically at the next frame boundary. See the YAML ``documentation:``.
"""
from __future__ import annotations

import threading

import numpy as np
import pmt
from gnuradio import gr

from isac_opt.bench.framing import (DESIGN_KEY, END_FRAME, FRAME_KEY, auto_gap, design_tag,
                                    frame_samples)
from isac_opt.designfile import load_design


def _paths(design) -> list[str]:
    if isinstance(design, (list, tuple)):
        return [str(p) for p in design]
    return [p.strip() for p in str(design).replace(",", ";").split(";") if p.strip()]


class slp_source(gr.sync_block):
    """Frame-by-frame SLP waveform; ``design`` = one path or several (';'-separated: one per frame, cycled)."""

    def __init__(self, design="", frames=0, gap=-1, scale=1.0, M=6):
        paths = _paths(design)
        if not paths:
            raise ValueError("slp_source: 'design' must name at least one design file (.npz)")
        ds = [load_design(p) for p in paths]
        self.M = int(ds[0].scenario.M)
        if int(M) != self.M:
            raise ValueError(f"slp_source: parameter M = {M} but the design has M = {self.M} antennas")
        gr.sync_block.__init__(self, name="slp_source", in_sig=None, out_sig=[(np.complex64, self.M)])
        self.gap = auto_gap(ds[0].scenario) if int(gap) < 0 else int(gap)
        self.scale = float(scale)
        self.frames = int(frames)
        self._lock = threading.Lock()
        self._pending = None
        self._set_queue(ds, paths)
        self._t = 0                                   # samples emitted
        self._frame0 = 0                              # frame index where the current queue started
        self.message_port_register_in(pmt.intern("design"))
        self.set_msg_handler(pmt.intern("design"), self._on_design)

    def _set_queue(self, ds, paths):
        F = {d.scenario.L + self.gap for d in ds}
        if len(F) != 1 or any(d.scenario.M != self.M for d in ds):
            raise ValueError("slp_source: every design of a queue needs the same M and L")
        self.F = F.pop()
        self._designs, self._paths = ds, paths
        self._stack = np.stack([frame_samples(d.X, self.gap, self.scale) for d in ds])   # (Q, F, M)

    def _on_design(self, msg):
        v = pmt.to_python(msg)
        path = v.get("path") if isinstance(v, dict) else v
        try:
            paths = _paths(path)
            pending = ([load_design(p) for p in paths], paths)
        except Exception as e:  # a bad file must not stop the flowgraph
            gr.log.warn(f"slp_source: design switch ignored ({e})")
            return
        with self._lock:
            self._pending = pending

    def work(self, input_items, output_items):
        out = output_items[0]
        n = len(out)
        F, t = self.F, self._t
        total = self.frames * F + 1 if self.frames > 0 else None
        if total is not None:
            if t >= total:
                return -1
            n = min(n, total - t)
        pos = t % F
        if self._pending is not None and pos == 0:              # atomic switch at a frame boundary
            with self._lock:
                ds, paths = self._pending
                self._pending = None
            self._set_queue(ds, paths)
            self._frame0 = t // F
        elif self._pending is not None:
            n = min(n, F - pos)                                  # stop at the boundary, switch next call
        idx = t + np.arange(n)
        f = idx // F
        q = (f - self._frame0) % len(self._designs)
        out[:n] = self._stack[q, idx % F]
        if total is not None and t + n == total:
            out[n - 1] = 0
        first = -(-t // F)                                       # first frame starting in [t, t+n)
        for fi in range(first, (t + n - 1) // F + 1):
            off = fi * F
            last = total is not None and off == total - 1
            self.add_item_tag(0, off, pmt.intern(FRAME_KEY), pmt.from_long(END_FRAME if last else fi))
            if not last and (len(self._designs) > 1 or fi == self._frame0):
                j = (fi - self._frame0) % len(self._designs)
                tag = design_tag(self._designs[j], self._paths[j], fi, F)
                self.add_item_tag(0, off, pmt.intern(DESIGN_KEY), pmt.to_pmt(tag))
        self._t = t + n
        return n
