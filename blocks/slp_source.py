"""SLP source: emits the designed M transmit streams frame after frame (GRC: ``risisac_slp_source``).

Output: ONE vector port, complex64 with vlen M (one item = one slot on all M antennas); use
``blocks.vector_to_streams`` for per-antenna ports. Tags ``frame``/``design`` per
:mod:`isac_opt.bench.framing`. Message port ``design`` (in): a design path (string) or ``{"path": ...}``;
the switch happens atomically at the next frame boundary. See the YAML ``documentation:``.

``tx_cal`` (optional): a TX :class:`calibration.ChainCal` file (``isac-testbed calibrate chains --side tx``);
the source then emits the pre-distorted u_i[t] = x_i[t − D + d_i]/g_i (:class:`calibration.use.TxCorrection`,
D = max(0, max_i round(d_i)) a common latency; the tags move by D too) so that every TX chain radiates the
design x_i[t − D] after its delay d_i. ``cal_key`` (dict or JSON string): the bench key (``fs_hz``,
``lo_hz``, ``gains_db``, ``hardware_ids``); a file made for other settings is refused at construction with
a one-line :class:`calibration.StaleCalibrationError` naming the changed field.
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

    def __init__(self, design="", frames=0, gap=-1, scale=1.0, M=6, tx_cal="", cal_key=""):
        paths = _paths(design)
        if not paths:
            raise ValueError("slp_source: 'design' must name at least one design file (.npz)")
        ds = [load_design(p) for p in paths]
        self.M = int(ds[0].scenario.M)
        if int(M) != self.M:
            raise ValueError(f"slp_source: parameter M = {M} but the design has M = {self.M} antennas")
        self.tx_corr = None
        if str(tx_cal or ""):
            from calibration.use import TxCorrection, load_chain_cal, parse_key
            cal = load_chain_cal(str(tx_cal), n_chains=self.M, side="tx", expect_key=parse_key(cal_key),
                                 who="slp_source tx_cal")
            self.tx_corr = TxCorrection(cal)
        self._lat = max(0, int(self.tx_corr.shift.max())) if self.tx_corr is not None else 0
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
        if self.tx_corr is not None:
            self._stack = self.tx_corr.correct_frames(self._stack).astype(np.complex64)

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
        lat = self._lat                     # TX correction latency [samples]; 0 without tx_cal
        tau = t - lat                       # design time: frame fi starts at tau = fi*F
        total = self.frames * F + 1 if self.frames > 0 else None      # in design time (end marker incl.)
        if total is not None:
            if tau >= total:
                return -1
            n = min(n, total - tau)
        pos = tau % F
        if self._pending is not None and pos == 0:              # atomic switch at a frame boundary
            with self._lock:
                ds, paths = self._pending
                self._pending = None
            self._set_queue(ds, paths)
            self._frame0 = tau // F
        elif self._pending is not None:
            n = min(n, F - pos)                                  # stop at the boundary, switch next call
        idx = tau + np.arange(n)
        if self.tx_corr is None:
            f = idx // F
            q = (f - self._frame0) % len(self._designs)
            out[:n] = self._stack[q, idx % F]
        else:   # u_i[t] = x_i[t − D + d_i]/g_i: chain i radiates x_i[t − D] after its delay d_i
            ix = self.tx_corr.indices(idx)                       # (n, M)
            q = (ix // F - self._frame0) % len(self._designs)
            v = self._stack[q, ix % F, np.arange(self.M)[None, :]]
            bad = ix < 0
            if total is not None:
                bad |= ix >= total - 1
            v[bad] = 0
            out[:n] = v
        if total is not None and tau + n == total:
            out[n - 1] = 0
        first = max(0, -(-tau // F))                             # first frame starting in [tau, tau+n)
        for fi in range(first, (tau + n - 1) // F + 1):
            off = fi * F
            last = total is not None and off == total - 1
            self.add_item_tag(0, off + lat, pmt.intern(FRAME_KEY), pmt.from_long(END_FRAME if last else fi))
            if not last and (len(self._designs) > 1 or fi == self._frame0):
                j = (fi - self._frame0) % len(self._designs)
                tag = design_tag(self._designs[j], self._paths[j], fi, F)
                self.add_item_tag(0, off + lat, pmt.intern(DESIGN_KEY), pmt.to_pmt(tag))
        self._t = t + n
        return n
