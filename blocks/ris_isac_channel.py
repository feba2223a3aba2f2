"""Simulated RIS-ISAC channel (GRC: ``risisac_ris_isac_channel``): spec A's model when no hardware is attached.

In: the M transmit streams (complex64, vlen M). Out 0: K user streams (vlen K); out 1: M radar receive
streams (vlen M); both normalised to noise-std units. Core: :class:`isac_opt.bench.channel.ChannelEmulator`.
RIS state: the design's φ, a ``phi`` parameter, the ``ris`` message port (dict with ``coefficients``), or
``ris = "sim://NAME"`` (polls ``ris_driver.sim.get_simulator(NAME).applied_coefficients()``).
"""
from __future__ import annotations

import threading

import numpy as np
import pmt
from gnuradio import gr

from blocks._tags import read_tags
from isac_opt.bench.channel import ChannelEmulator, Impairments
from isac_opt.bench.framing import FRAME_KEY, TARGET_KEY
from isac_opt.designfile import load_design
from isac_opt.errors import ConfigError


def _opt(v, dtype):
    return None if v is None or (hasattr(v, "__len__") and len(v) == 0) else np.asarray(v, dtype)


class ris_isac_channel(gr.sync_block):
    """M TX streams in → K user streams and M radar streams out, per spec A.3–A.4 (see module doc)."""

    def __init__(self, design="", seed=0, target_mode="alternate", rcs="fresh", ris="design", phi=(),
                 user_noise_offset_db=0.0, normalize=True, tx_scale=1.0, tx_gain=(), rx_gain=(),
                 rx_delay=(), cfo=0.0, ris_phase_bits=0, M=0, K=0):
        if not str(design):
            raise ConfigError("ris_isac_channel: 'design' must name the design file whose channels to emulate")
        d = load_design(str(design).replace(",", ";").split(";")[0].strip())
        scn = d.scenario
        for name, want, have in (("M", M, scn.M), ("K", K, scn.K)):
            if int(want) and int(want) != have:
                raise ConfigError(f"ris_isac_channel: parameter {name} = {want} but the design has {name} = {have}")
        gr.sync_block.__init__(self, name="ris_isac_channel", in_sig=[(np.complex64, scn.M)],
                               out_sig=[(np.complex64, scn.K), (np.complex64, scn.M)])
        self.scenario = scn
        self._sim_name = str(ris)[len("sim://"):].split("?")[0] if str(ris).startswith("sim://") else None
        phi0 = _opt(phi, np.complex128) if _opt(phi, np.complex128) is not None else d.phi
        imp = Impairments(tx_gain=_opt(tx_gain, complex), rx_gain=_opt(rx_gain, complex),
                          rx_delay=_opt(rx_delay, np.int64), cfo=float(cfo), ris_phase_bits=int(ris_phase_bits))
        self.emu = ChannelEmulator(scn, d.channels, phi0, np.random.default_rng(int(seed)),
                                   target_mode=str(target_mode), rcs=str(rcs), normalize=bool(normalize),
                                   tx_scale=float(tx_scale), user_noise_offset_db=float(user_noise_offset_db),
                                   impairments=imp)
        self._lock = threading.Lock()
        self._new_phi = None
        self._sim_last = None
        self.message_port_register_in(pmt.intern("ris"))
        self.set_msg_handler(pmt.intern("ris"), self._on_ris)
        self.set_tag_propagation_policy(gr.TPP_ALL_TO_ALL)

    def set_phi(self, phi):
        """Apply RIS coefficients (N,) from the next work() call on (thread-safe; GRC callback)."""
        with self._lock:
            self._new_phi = np.asarray(phi, np.complex128)

    def _on_ris(self, msg):
        v = pmt.to_python(msg)
        c = v.get("coefficients") if isinstance(v, dict) else v
        if isinstance(v, dict) and not v.get("ok", True):
            return                                    # an error report: keep the last verified state
        if c is not None and np.size(c) == self.scenario.N:
            self.set_phi(c)

    def _poll_sim(self):
        try:
            from ris_driver.sim import get_simulator
            c = get_simulator(self._sim_name).applied_coefficients()
        except (ImportError, KeyError):
            return                                    # simulator not (yet) created: keep the state
        if c is not None and np.size(c) == self.scenario.N and (self._sim_last is None
                                                                or not np.array_equal(c, self._sim_last)):
            self._sim_last = np.array(c)
            self.emu.set_phi(c)

    def work(self, input_items, output_items):
        n = len(input_items[0])
        if self._sim_name:
            self._poll_sim()
        if self._new_phi is not None:
            with self._lock:
                phi, self._new_phi = self._new_phi, None
            self.emu.set_phi(phi)
        t0 = self.nitems_read(0)
        offs, vals = read_tags(self, 0, t0, n, (FRAME_KEY,))[FRAME_KEY]
        users, radar, present = self.emu.process(input_items[0], offs - t0, vals)
        output_items[0][:] = users
        output_items[1][:] = radar
        key = pmt.intern(TARGET_KEY)
        for o, p in zip(offs, present):
            self.add_item_tag(1, int(o), key, pmt.from_bool(bool(p)))
        return n
