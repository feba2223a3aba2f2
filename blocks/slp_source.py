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

Paper-B mode (chosen by the design file, :class:`isac_opt.paper_b.design.DesignB`): one "frame" is one
CPI — the design's X (P_c, L, N_t) emitted pulse after pulse, slot after slot (item pL + l = x_p[l],
vlen M = N_t), back to back with no gap (``gap`` must be -1 or 0) and no end marker (a finite run emits
exactly ``frames``·P_c·L items). Tags on the first item of every CPI: ``frame`` = CPI index, and on the
first CPI of each design ``design`` (:func:`design_tag_b`). This is the input framing of
:class:`blocks.ris_isac_channel_b.ris_isac_channel_b` [spec B.1, D.1].
"""
from __future__ import annotations

import threading

import numpy as np
import pmt
from gnuradio import gr

from isac_opt.bench.framing import (DESIGN_KEY, END_FRAME, FRAME_KEY, auto_gap, design_id, design_tag,
                                    frame_samples, symbol_indices)
from isac_opt.designfile import load_design
from isac_opt.errors import ConfigError

PAPER_B = "paper-b"


def _kind(d) -> str:
    return PAPER_B if getattr(d, "kind", "") == PAPER_B else "paper-a"


def _n_tx(d) -> int:
    """Transmit antennas of a design: M (paper A) or N_t (paper B)."""
    return int(d.channels.Nt) if _kind(d) == PAPER_B else int(d.scenario.M)


def cpi_samples(X, scale: float = 1.0) -> np.ndarray:
    """Samples of one paper-B CPI: X (P_c, L, N_t) pulse after pulse, times ``scale``; complex64 (P_c L, N_t)."""
    X = np.asarray(X)
    if X.ndim != 3:
        raise ConfigError(f"X: expected a paper-B (P_c, L, N_t) array, got shape {X.shape}")
    return (scale * X.reshape(-1, X.shape[-1])).astype(np.complex64)


def design_tag_b(design, path: str, first_frame: int, frame_len: int) -> dict:
    """The ``design`` tag dict of a paper-B design: id, kind, path, first_frame (CPI index), K, M = N_t,
    Nt, Nr, R, N, Pc, L, Lr, F = P_c L (items per CPI), order, sym (uint8 PSK indices of S (K, P_c L),
    row-major)."""
    ch = design.channels
    order = int(design.scenario.psk_order)
    return {"id": design_id(design.X, design.phi), "kind": PAPER_B, "path": str(path),
            "first_frame": int(first_frame), "K": int(ch.K), "M": int(ch.Nt), "Nt": int(ch.Nt),
            "Nr": int(ch.Nr), "R": int(ch.R), "N": int(ch.N), "Pc": int(ch.Pc), "L": int(ch.L),
            "Lr": int(ch.Lr), "F": int(frame_len), "order": order,
            "sym": symbol_indices(ch.S, order).reshape(-1)}


def _paths(design) -> list[str]:
    if isinstance(design, (list, tuple)):
        return [str(p) for p in design]
    return [p.strip() for p in str(design).replace(",", ";").split(";") if p.strip()]


class slp_source(gr.sync_block):
    """Frame-by-frame SLP waveform; ``design`` = one path or several (';'-separated: one per frame, cycled).

    Paper-A designs: frames of L slots + ``gap`` zeros, vlen M. Paper-B designs: CPIs of P_c·L slots
    (X pulse after pulse, no gap, no end marker), vlen M = N_t (module docstring)."""

    def __init__(self, design="", frames=0, gap=-1, scale=1.0, M=6, tx_cal="", cal_key=""):
        paths = _paths(design)
        if not paths:
            raise ConfigError("slp_source: 'design' must name at least one design file (.npz)")
        ds = [load_design(p) for p in paths]
        self.kind = _kind(ds[0])
        self.M = _n_tx(ds[0])
        if int(M) != self.M:
            what = "N_t = " if self.kind == PAPER_B else "M = "
            raise ConfigError(f"slp_source: parameter M = {M} but the {self.kind} design has {what}{self.M} "
                             "transmit antennas")
        self.tx_corr = None
        if str(tx_cal or ""):
            from calibration.use import TxCorrection, load_chain_cal, parse_key
            cal = load_chain_cal(str(tx_cal), n_chains=self.M, side="tx", expect_key=parse_key(cal_key),
                                 who="slp_source tx_cal")
            self.tx_corr = TxCorrection(cal)
        self._lat = max(0, int(self.tx_corr.shift.max())) if self.tx_corr is not None else 0
        gr.sync_block.__init__(self, name="slp_source", in_sig=None, out_sig=[(np.complex64, self.M)])
        if self.kind == PAPER_B:
            if int(gap) > 0:
                raise ConfigError(f"slp_source: gap = {gap}, but a paper-B design's pulses go back to back "
                                 "(expected -1 = auto or 0)")
            self.gap = 0
        else:
            self.gap = auto_gap(ds[0].scenario) if int(gap) < 0 else int(gap)
        self._mark = 0 if self.kind == PAPER_B else 1     # end-marker sample of a finite run (paper A only)
        self.scale = float(scale)
        self.frames = int(frames)
        self._lock = threading.Lock()
        self._pending = None
        self._set_queue(ds, paths)
        self._t = 0                                   # samples emitted
        self._frame0 = 0                              # frame index where the current queue started
        self.message_port_register_in(pmt.intern("design"))
        self.set_msg_handler(pmt.intern("design"), self._on_design)

    def _frame_len(self, ds) -> int:
        """Items per frame of a design queue; refuses mixed kinds, antennas or lengths."""
        if any(_kind(d) != self.kind for d in ds):
            raise ConfigError(f"slp_source: every design of a queue must be a {self.kind} design")
        if self.kind == PAPER_B:
            F = {int(d.channels.Pc * d.channels.L) for d in ds}
            if len(F) != 1 or any(_n_tx(d) != self.M for d in ds):
                raise ConfigError("slp_source: every paper-B design of a queue needs the same N_t, P_c and L")
            return F.pop()
        F = {d.scenario.L + self.gap for d in ds}
        if len(F) != 1 or any(d.scenario.M != self.M for d in ds):
            raise ConfigError("slp_source: every design of a queue needs the same M and L")
        return F.pop()

    def _set_queue(self, ds, paths):
        self.F = self._frame_len(ds)
        self._designs, self._paths = ds, paths
        if self.kind == PAPER_B:
            self._stack = np.stack([cpi_samples(d.X, self.scale) for d in ds])            # (Q, F, N_t)
        else:
            self._stack = np.stack([frame_samples(d.X, self.gap, self.scale) for d in ds])   # (Q, F, M)
        if self.tx_corr is not None:
            self._stack = self.tx_corr.correct_frames(self._stack).astype(np.complex64)

    def set_design(self, design: str) -> None:
        """GRC callback: switch to ``design`` (path, or ';'-separated paths) at the next frame boundary,
        as a 'design' message would (same checks; a bad file is logged and ignored)."""
        self._on_design(pmt.to_pmt(str(design)))

    def _on_design(self, msg):
        v = pmt.to_python(msg)
        path = v.get("path") if isinstance(v, dict) else v
        try:
            paths = _paths(path)
            pending = ([load_design(p) for p in paths], paths)
            if not paths:
                raise ConfigError("no design path")
            if self._frame_len(pending[0]) != self.F:
                raise ConfigError(f"frame length differs from the running design's {self.F}")
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
        total = self.frames * F + self._mark if self.frames > 0 else None   # design time (end marker incl.)
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
                bad |= ix >= self.frames * F
            v[bad] = 0
            out[:n] = v
        if total is not None and self._mark and tau + n == total:
            out[n - 1] = 0
        first = max(0, -(-tau // F))                             # first frame starting in [tau, tau+n)
        for fi in range(first, (tau + n - 1) // F + 1):
            off = fi * F
            last = total is not None and self._mark and off == total - 1
            self.add_item_tag(0, off + lat, pmt.intern(FRAME_KEY), pmt.from_long(END_FRAME if last else fi))
            if not last and (len(self._designs) > 1 or fi == self._frame0):
                j = (fi - self._frame0) % len(self._designs)
                mk = design_tag_b if self.kind == PAPER_B else design_tag
                tag = mk(self._designs[j], self._paths[j], fi, F)
                self.add_item_tag(0, off + lat, pmt.intern(DESIGN_KEY), pmt.to_pmt(tag))
        self._t = t + n
        return n
