"""Link designer (GRC: ``risisac_link_designer``): K PSK index streams → per-frame SLP waveforms
[issue 13; docs/link.md].

In: K uint8 streams of Ω-PSK indices (one per user, from GNU Radio's ``repack_bits_bb`` + ``map_bb``).
Every L indices of every user form one frame S (K, L); frames go, in order, to a
:class:`isac_opt.link.DesignAhead` worker thread (bounded queue ``depth``, batches of ``batch`` frames,
back-pressure) running the :class:`isac_opt.link.LinkEngine` of the link state (``design``: its scenario,
channels and φ). Per batch the worker also computes the MVDR filters and predicted SINRs (Woodbury,
vectorised) and stores them with the sent symbols in the shared :class:`isac_opt.link.stream.DesignTable`
``table`` under the frame ids — the detector and the receivers' error counters read the frame actually sent.
Out: complex64 vlen M, each frame = L designed slots + ``gap`` zeros, ``frame`` tag = frame id on its first
sample; the run ends with one zero sample tagged ``frame = -1``.

Messages: out ``credit`` ``{slot_done}`` (to the link source: back-pressure), ``errors`` (one dict per
frame of a failed engine batch: the frames are sent silent, counted, and the link keeps running); in ``ctrl``
``{end_slot}`` (from the source: the run ends after that slot).

``backend``: the front end (amplitude scale, :func:`isac_opt.bench.framing.frontend_scale`).
``late``: ``wait`` (the stream waits for the engine: simulation, the real-time factor shows the speed) or
``fill`` (real time: when no design is ready and the output buffer is nearly drained, an idle frame of zeros
tagged ``frame = -2`` is sent and counted in ``frames_late`` — an underrun is never silent).
"""
from __future__ import annotations

import queue
import threading
import time

import numpy as np
import pmt
from gnuradio import gr

from isac_opt.bench.framing import FRAME_KEY, auto_gap
from isac_opt.designfile import load_design
from isac_opt.errors import ConfigError
from isac_opt.link.ahead import LinkStarved
from isac_opt.link.stream import IDLE_FRAME, LinkTally, analytic_error_rates, frames_to_samples, get_table

_END = object()


class _TableEngine:
    """Engine wrapper run in the worker: designs a batch, then its filters/SINRs/analytic SER go to the
    table and the tally under the batch's frame ids (frames are designed in order from id 0)."""

    def __init__(self, eng, table, tally, nw):
        self.eng, self.table, self.tally, self.nw = eng, table, tally, nw
        self.next_id = 0
        self.failures: list[str] = []

    def design(self, S):
        from isac_opt.link.engine import symbol_indices
        ids = np.arange(self.next_id, self.next_id + len(S))
        self.next_id += len(S)
        d = self.eng.design(S)
        idx = symbol_indices(S, self.eng.order).astype(np.uint8)
        self.table.put(ids, idx, self.eng.mvdr_filters(d.X), d.sinr)     # d.sinr: MVDR SINR of d.X
        s, b = analytic_error_rates(self.eng.Htil, d.X, idx, self.nw, self.eng.order)
        t = self.tally
        t.ser_an += s
        t.ber_an += b
        t.an_frames += len(S)
        t.ci_ok += int(np.count_nonzero(d.ok))
        return d


class link_designer(gr.basic_block):
    """Per-frame SLP designs of the K users' symbol streams (see the module docstring)."""

    def __init__(self, design="", layers=0, dtype="float32", device="cpu", batch=64, depth=0, table="link",
                 late="wait", chunk=64, threads=1, rate=100e3, user_noise_db=0.0, engine=None, backend="sim"):
        if not str(design):
            raise ConfigError("link_designer: 'design' must name the link-state design file")
        if late not in ("wait", "fill"):
            raise ConfigError(f"link_designer: late must be 'wait' or 'fill', got {late!r}")
        import torch
        from isac_opt.link.ahead import DesignAhead
        from isac_opt.link.arq import aligned_chunk, frames_per_packet
        from isac_opt.link.engine import LinkEngine
        from isac_opt.link.loop import check_link_state
        d = load_design(str(design))
        scn = d.scenario
        self.scn, self.K, self.M, self.L = scn, scn.K, scn.M, scn.L
        self.gap = auto_gap(scn)
        self.F = self.L + self.gap
        self.chunk = aligned_chunk(int(chunk), scn.psk_order, scn.L)
        self.P = frames_per_packet(self.chunk, scn.psk_order, scn.L)
        gr.basic_block.__init__(self, name="link_designer", in_sig=[np.uint8] * self.K,
                                out_sig=[(np.complex64, self.M)])
        if engine is None:
            torch.set_num_threads(int(threads))
            engine = LinkEngine(scn, d.channels, d.phi, dtype=getattr(torch, str(dtype)), device=str(device),
                                layers=None if int(layers) < 0 else int(layers))
        check_link_state(engine)
        self.engine = engine
        self.table = get_table(str(table))
        self.table.clear()
        self.tally = LinkTally(self.K, scn.psk_order, self.L, float(rate))
        self.table.tally = self.tally
        self.table.meta = {"K": self.K, "M": self.M, "L": self.L, "F": self.F, "P": self.P, "chunk": self.chunk,
                           "order": scn.psk_order, "xi0_sq": scn.xi0_sq, "noise_radar_w": scn.noise_radar_w,
                           "gamma_db": list(scn.gamma_db)}
        nw = np.asarray(scn.noise_comm_w, float) * 10 ** (float(user_noise_db) / 10)
        self._weng = _TableEngine(engine, self.table, self.tally, nw)
        self.batch = int(batch)
        self.depth = int(depth) or 4 * self.batch
        self._inq: queue.Queue = queue.Queue(maxsize=self.depth)
        self._ahead = DesignAhead(self._weng, self._frames(), batch=self.batch, depth=self.depth)
        self.late = late
        from isac_opt.bench.framing import frontend_scale
        self.scale = frontend_scale(str(backend), scn.amp)     # 1 (sim) or 0.5 of DAC full scale (hardware)
        self._taken = 0              # frames taken from the inputs
        self._sent = 0               # designed frames put out
        self._end_slot = None
        self._ended = False          # END handed to the worker
        self._done = False
        self._stop = threading.Event()
        self._cap = 0
        self._credit = -1
        self.t_first = self.t_last = None
        self._key = pmt.intern(FRAME_KEY)
        for p in ("credit", "errors"):
            self.message_port_register_out(pmt.intern(p))
        self.message_port_register_in(pmt.intern("ctrl"))
        self.set_msg_handler(pmt.intern("ctrl"), self._on_ctrl)
        self.set_tag_propagation_policy(gr.TPP_DONT)

    # -- worker input ---------------------------------------------------------------------------
    def _frames(self):
        while True:
            try:
                it = self._inq.get(timeout=0.1)
            except queue.Empty:
                if self._stop.is_set():
                    return
                continue
            if it is _END:
                return
            yield it

    def _on_ctrl(self, msg):
        v = pmt.to_python(msg)
        if isinstance(v, dict) and "end_slot" in v:
            self._end_slot = int(v["end_slot"])

    def stop(self):
        self._stop.set()
        self._ahead.close(timeout=2.0)
        return True

    @property
    def busy_s(self) -> float:
        return self._ahead.busy_s

    @property
    def designed(self) -> int:
        return self._ahead.designed

    def forecast(self, noutput_items, ninputs):
        return [0] * ninputs

    # -- stream ---------------------------------------------------------------------------------
    def general_work(self, input_items, output_items):
        if self.t_first is None:
            self.t_first = time.perf_counter()
        L, F = self.L, self.F
        end_frames = None if self._end_slot is None else self._end_slot * self.P
        # 1) take whole frames from the inputs (as many as the worker's queue has room for)
        n_in = min(len(x) for x in input_items) // L
        if end_frames is not None:
            n_in = min(n_in, max(end_frames - self._taken, 0))
        n_in = min(n_in, self.depth - self._inq.qsize())
        if n_in > 0:
            S = np.stack([x[:n_in * L].reshape(n_in, L) for x in input_items], axis=1)
            for f in S:
                self._inq.put(f)
            for k in range(self.K):
                self.consume(k, n_in * L)
            self._taken += n_in
            done = self._taken // self.P - 1
            if done > self._credit:
                self._credit = done
                self.message_port_pub(pmt.intern("credit"), pmt.to_pmt({"slot_done": int(done)}))
        if end_frames is not None and self._taken >= end_frames and not self._ended:
            self._inq.put(_END)
            self._ended = True
        # 2) put out designed frames
        out = output_items[0]
        self._cap = max(self._cap, len(out))
        room = len(out) // F
        if self._done:
            return -1
        if self._ended and self._sent == self._taken:     # every frame out: the end marker
            out[0] = 0
            self.add_item_tag(0, self.nitems_written(0), self._key, pmt.from_long(-1))
            self._done = True
            self.t_last = time.perf_counter()
            return 1
        # frames the worker will deliver without more input: whole batches (all of them after the end);
        # waiting for exactly those keeps work() calls large downstream and can never dead-lock
        ready = (self._taken if self._ended else self._taken // self.batch * self.batch) - self._sent
        want = min(room, ready)
        got = []
        while len(got) < want and not self._stop.is_set():
            try:
                fr = self._ahead.get(timeout=0.05 if self.late == "wait" else 0.0)
            except LinkStarved:
                if self.late == "fill":
                    break
                continue
            if fr is None:                                  # (only after the end: ``want`` counts frames)
                break
            got.append(fr)
        if not got and self.late == "fill" and room and len(out) >= 0.9 * self._cap:
            return self._idle(out)                          # late engine, buffer nearly drained
        if not got:
            return 0
        n = len(got)
        X = np.zeros((n, self.M, L), np.complex128)
        for j, fr in enumerate(got):
            if fr.error is None:
                X[j] = fr.X
            else:                                           # sent silent, counted, reported
                self.tally.frames_failed += 1
                self.message_port_pub(pmt.intern("errors"), pmt.to_pmt(
                    {"frame": int(fr.frame_id), "error": str(fr.error)}))
        out[:n * F] = frames_to_samples(X, self.gap, self.scale)
        w0 = self.nitems_written(0)
        for j, fr in enumerate(got):
            self.add_item_tag(0, w0 + j * F, self._key, pmt.from_long(int(fr.frame_id)))
        self._sent += n
        self.tally.frames += n
        self.t_last = time.perf_counter()
        return n * F

    def _idle(self, out):
        out[:self.F] = 0
        self.add_item_tag(0, self.nitems_written(0), self._key, pmt.from_long(IDLE_FRAME))
        self.tally.frames_late += 1
        return self.F


