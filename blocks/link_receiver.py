"""Link user receivers (GRC: ``risisac_link_receiver``): K user streams → one packet PDU per user per slot
[issue 13; docs/link.md].

In: complex64 vlen K (user samples in noise-std units), framed by the ``frame`` tags (a frame is accepted
only if the next tag is exactly F items later, :class:`isac_opt.bench.framing.FrameAssembler`; a slipped
sample costs that one frame). Each accepted frame's L slots are decided by angle sector WITHOUT the
transmitted symbols (:func:`isac_opt.link.stream.decide_psk`), frames are gathered per packet slot
(:class:`isac_opt.link.stream.SlotAssembler`; a missing frame leaves zero symbols, so its packet fails the
CRC) and every closed slot gives one PDU per user on ``pdus`` (u8 vector = the received packet with its
CRC, metadata ``{user, slot}``) — the input of GNU Radio's ``digital.crc_check``.
Measurement only: the decisions are compared with the sent symbols of the shared design table ``table``
(raw SER/BER in the link's tally); the decisions never use them.
"""
from __future__ import annotations

import numpy as np
import pmt
from gnuradio import gr

from blocks._tags import read_tags
from isac_opt.bench.framing import FRAME_KEY, FrameAssembler
from isac_opt.link.stream import SlotAssembler, decide_psk, get_table


class link_receiver(gr.sync_block):
    """Demodulate K users without their symbols and emit per-slot packet PDUs (see the module docstring)."""

    def __init__(self, K=3, table="link"):
        gr.sync_block.__init__(self, name="link_receiver", in_sig=[(np.complex64, int(K))], out_sig=None)
        self.K = int(K)
        self.table_name = str(table)
        self.table = None
        self.asm = self.slots = None
        self.frames = 0
        self.message_port_register_out(pmt.intern("pdus"))
        self._port = pmt.intern("pdus")

    def _setup(self):
        self.table = get_table(self.table_name)
        m = self.table.meta
        self.L, self.order = m["L"], m["order"]
        self.asm = FrameAssembler(m["F"], self.K, keep=m["L"])
        self.slots = SlotAssembler(self.K, m["L"], m["P"], m["order"])

    def work(self, input_items, output_items):
        if self.asm is None:
            self._setup()
        n = len(input_items[0])
        t0 = self.nitems_read(0)
        fo, fv = read_tags(self, 0, t0, n, (FRAME_KEY,))[FRAME_KEY]
        frames, ids, _ = self.asm.push(input_items[0], t0, fo, fv)
        if ids.size:
            dec = decide_psk(frames, self.order)                    # (nf, K, L), never the sent symbols
            self.frames += ids.size
            sent = self.table.get_many(ids)                # measurement only
            have = np.array([s is not None for s in sent])
            if have.any():
                self.table.tally.add_decisions(dec[have], np.stack([s[0] for s in sent if s is not None]))
            self.table.tally.add_samples(frames, dec)      # report PNG (user streams are in units of σ_k)
            self._emit(self.slots.push(ids, dec))
        return n

    def _emit(self, closed):
        for slot, pk, _ in closed:
            for k in range(self.K):
                b = np.frombuffer(pk[k], np.uint8)
                self.message_port_pub(self._port, pmt.cons(pmt.to_pmt({"user": k, "slot": int(slot)}),
                                                           pmt.init_u8vector(b.size, b)))

    def stop(self):
        if self.slots is not None:
            self._emit(self.slots.flush())
        return True
