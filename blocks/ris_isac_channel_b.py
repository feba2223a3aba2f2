"""Simulated paper-B channel (GRC: ``risisac_ris_isac_channel_b``): multi-pulse, multi-active-RIS echoes.

Framing (a general block): the input (vlen N_t) is the transmit samples pulse after pulse, P_c pulses
of L slots per CPI, no gaps. For every whole CPI of P_c·L input items the block produces P_c·L_r items
on ``radar`` (vlen N_r, pulse after pulse, L_r snapshots each) and P_c·L items on ``users`` (vlen K).
CPIs start at item 0 or at the input's ``frame`` tags (value = CPI index); a ``frame`` tag inside a CPI
drops the partial CPI before it (re-synchronisation). Both outputs get a ``frame`` tag (CPI index) at
every CPI start and ``radar`` a ``target`` (bool) tag; other input tags (e.g. ``design``) are moved to
the matching slot. Core: :class:`isac_opt.bench.channel_b.ChannelB`.
RIS state: the design's φ, a ``phi`` parameter (R·N values), the ``ris`` message port (dict with
``coefficients``), or ``ris = "sim://NAME"`` (R·N coefficients) / ``"sim://A;sim://B"`` (one per RIS),
polled from ``ris_driver.sim.get_simulator(NAME).applied_coefficients()`` at every work call.
"""
from __future__ import annotations

import threading

import numpy as np
import pmt
from gnuradio import gr

from blocks._tags import read_tags
from isac_opt.bench.channel_b import ChannelB, coerce_phi
from isac_opt.bench.framing import FRAME_KEY, TARGET_KEY
from isac_opt.designfile import load_design
from isac_opt.errors import ConfigError


class ris_isac_channel_b(gr.basic_block):
    """N_t TX streams in → K user streams and N_r radar streams out, per spec B.3, B.5 (module doc)."""

    def __init__(self, design="", seed=0, target_mode="alternate", rcs="fresh", ris="design", phi=(),
                 noise=True, normalize=True, tx_scale=1.0, Nt=0, Nr=0, K=0):
        if not str(design):
            raise ConfigError("ris_isac_channel_b: 'design' must name a paper-B design file (.npz)")
        d = load_design(str(design))
        if getattr(d, "kind", "") != "paper-b":
            raise ConfigError(f"ris_isac_channel_b: {design} is a {getattr(d, 'kind', '?')} design; "
                             "this block needs a paper-B design (use ris_isac_channel for paper A)")
        ch = self.ch = d.channels
        for name, want, have in (("Nt", Nt, ch.Nt), ("Nr", Nr, ch.Nr), ("K", K, ch.K)):
            if int(want) and int(want) != have:
                raise ConfigError(f"ris_isac_channel_b: parameter {name} = {want} but the design has {name} = {have}")
        gr.basic_block.__init__(self, name="ris_isac_channel_b", in_sig=[(np.complex64, ch.Nt)],
                                out_sig=[(np.complex64, ch.K), (np.complex64, ch.Nr)])
        self._design_phi = d.phi
        phi0 = coerce_phi(phi, ch.R, ch.N) if np.size(phi) else d.phi
        self.chan = ChannelB(ch, phi0, np.random.default_rng(int(seed)), target_mode=str(target_mode),
                             rcs=str(rcs), noise=bool(noise), normalize_users=bool(normalize),
                             tx_scale=float(tx_scale))
        self.n_in, self.n_rad = self.chan.cpi_in, self.chan.cpi_radar
        self._sims = [s[len("sim://"):].split("?")[0] for s in str(ris).split(";") if s.startswith("sim://")]
        self._lock = threading.Lock()
        self._new_phi = None
        self.dropped = 0                                   # input items dropped by re-synchronisation
        self.message_port_register_in(pmt.intern("ris"))
        self.set_msg_handler(pmt.intern("ris"), self._on_ris)
        self.set_tag_propagation_policy(gr.TPP_DONT)
        self.set_min_output_buffer(0, 2 * self.n_in)
        self.set_min_output_buffer(1, 2 * self.n_rad)

    def set_phi(self, phi):
        """Apply RIS coefficients (R·N; empty = the design's φ) from the next CPI on (thread-safe; GRC callback)."""
        with self._lock:
            self._new_phi = coerce_phi(phi, self.ch.R, self.ch.N) if np.size(phi) else self._design_phi

    def _on_ris(self, msg):
        v = pmt.to_python(msg)
        if isinstance(v, dict) and not v.get("ok", True):
            return                                    # an error report: keep the last verified state
        c = v.get("coefficients") if isinstance(v, dict) else v
        if c is not None and np.size(c) == self.ch.R * self.ch.N:
            self.set_phi(c)

    def _poll_sims(self):
        try:
            from ris_driver.sim import get_simulator
            cs = [get_simulator(s).applied_coefficients() for s in self._sims]
        except (ImportError, KeyError):
            return                                    # simulator not (yet) created: keep the state
        if any(c is None for c in cs):
            return
        c = np.concatenate([np.asarray(v, np.complex128).reshape(-1) for v in cs])
        if c.size == self.ch.R * self.ch.N and not np.array_equal(c.reshape(self.ch.R, -1), self.chan.phi):
            self.chan.set_phi(c)

    def forecast(self, noutput_items, ninputs):
        return [self.n_in] * ninputs

    def general_work(self, input_items, output_items):
        ni, F, Fr = self.n_in, self.n_in, self.n_rad
        x = input_items[0]
        n = min(len(x) // F, len(output_items[0]) // F, len(output_items[1]) // Fr)
        if n == 0:
            return 0
        r0 = self.nitems_read(0)
        tags = [t for t in self.get_tags_in_range(0, r0, r0 + n * F)]
        offs, vals = read_tags(self, 0, r0, n * F, (FRAME_KEY,))[FRAME_KEY]
        rel = offs - r0
        valid = np.asarray(vals, np.int64) >= 0 if len(vals) else np.zeros(0, bool)
        bad = rel[valid & (rel % F != 0)]
        if bad.size:                                  # a CPI boundary inside: process up to it, drop the rest
            n = int(bad[0]) // F
            if n == 0:
                self.dropped += int(bad[0])
                self.consume(0, int(bad[0]))
                return 0
        if self._sims:
            self._poll_sims()
        if self._new_phi is not None:
            with self._lock:
                phi, self._new_phi = self._new_phi, None
            self.chan.set_phi(phi)
        # CPI indices: the frame tag at a CPI start, else the previous index + 1
        cpi = np.full(n, -1, np.int64)
        at = valid & (rel % F == 0) & (rel < n * F)
        cpi[rel[at] // F] = np.asarray(vals, np.int64)[at]
        for i in range(n):                            # n CPIs per call, not samples
            if cpi[i] < 0:
                cpi[i] = self.chan.next_cpi if i == 0 else cpi[i - 1] + 1
        out = self.chan.process(x[:n * F], cpi)
        output_items[0][:n * ni] = out.users.reshape(-1, self.ch.K)
        output_items[1][:n * Fr] = out.radar.reshape(-1, self.ch.Nr)
        w0, w1 = self.nitems_written(0), self.nitems_written(1)
        fk, tk = pmt.intern(FRAME_KEY), pmt.intern(TARGET_KEY)
        for i in range(n):
            self.add_item_tag(0, w0 + i * ni, fk, pmt.from_long(int(cpi[i])))
            self.add_item_tag(1, w1 + i * Fr, fk, pmt.from_long(int(cpi[i])))
            self.add_item_tag(1, w1 + i * Fr, tk, pmt.from_bool(bool(out.present[i])))
        L, Lr = self.ch.L, self.ch.Lr
        for t in tags:                                # other tags follow their slot
            if pmt.symbol_to_string(t.key) in (FRAME_KEY, TARGET_KEY):
                continue
            o = int(t.offset - r0)
            if o >= n * F:
                continue
            c, p, l = o // F, (o % F) // L, o % L
            self.add_item_tag(0, w0 + o, t.key, t.value)
            self.add_item_tag(1, w1 + c * Fr + p * Lr + l, t.key, t.value)
        self.consume(0, n * F)
        self.produce(0, n * ni)
        self.produce(1, n * Fr)
        return gr.WORK_CALLED_PRODUCE
