"""Link packet source (GRC: ``risisac_link_source``): K user payloads → ARQ packets as PDUs, one per user
per slot [issue 13; docs/link.md].

Message-only. Out ``pdus``: K PDUs per slot (u8 vector = header + padded payload, NO CRC — GNU Radio's
``digital.crc_append`` adds the CRC-32) with metadata ``{user, slot}`` (GNU Radio's ``pdu.pdu_filter`` on
``user`` splits them into the K transmit chains); out ``ctrl``: ``{end_slot}`` when
every packet is acknowledged (or at ``max_frames``), telling the designer where the run ends.
In ``credit`` (from ``risisac_link_designer``: ``{slot_done}``): back-pressure — at most ``inflight`` slots
are ahead of the designer's input; in ``feedback`` (from ``risisac_link_deframer``: ``{user, slot, ok}``):
the ideal return channel of the selective-repeat ARQ (:class:`isac_opt.link.arq.ArqSender`).
"""
from __future__ import annotations

import threading

import numpy as np
import pmt
from gnuradio import gr

from isac_opt.designfile import load_design
from isac_opt.errors import ConfigError
from isac_opt.link.arq import ArqSender
from isac_opt.link.loop import link_plan
from isac_opt.link.packets import load_payloads


class link_source(gr.basic_block):
    """ARQ packet source of K users (see the module docstring)."""

    def __init__(self, design="", payload="random", nbytes=1000, seed=0, chunk=64, window=4096, arq=True,
                 inflight=16, min_frames=0, max_frames=0, batch=64):
        gr.basic_block.__init__(self, name="link_source", in_sig=None, out_sig=None)
        if not str(design):
            raise ConfigError("link_source: 'design' must name the link-state design file")
        scn = load_design(str(design)).scenario
        self.K, self.L, self.order = scn.K, scn.L, scn.psk_order
        self.payloads = load_payloads(str(payload), self.K, int(nbytes), int(seed), option="payload")
        self.chunk, self.P, self.min_frames, self.cap = link_plan(scn, self.payloads, int(chunk), int(min_frames),
                                                                   int(max_frames) or None, bool(arq))
        self.senders = [ArqSender(p, self.chunk, window=int(window), arq=bool(arq)) for p in self.payloads]
        self.inflight = max(int(inflight), -(-2 * int(batch) // self.P) + 1)
        self._lock = threading.Lock()
        self._next = 0              # next slot to post
        self._consumed = 0          # slots the designer has taken
        self.end_slot = None
        self._port = pmt.intern("pdus")
        self.message_port_register_out(self._port)
        self.message_port_register_out(pmt.intern("ctrl"))
        for name, h in (("credit", self._on_credit), ("feedback", self._on_feedback)):
            self.message_port_register_in(pmt.intern(name))
            self.set_msg_handler(pmt.intern(name), h)

    def start(self):
        self._post()
        return True

    def _post(self) -> None:
        with self._lock:
            while self.end_slot is None and self._next < self._consumed + self.inflight:
                j = self._next
                if (j + 1) * self.P > self.cap or (j * self.P >= self.min_frames
                                                    and all(s.done for s in self.senders)):
                    self.end_slot = j
                    self.message_port_pub(pmt.intern("ctrl"), pmt.to_pmt({"end_slot": int(j)}))
                    return
                for k, s in enumerate(self.senders):
                    body = np.frombuffer(s.next_body(j), np.uint8)
                    meta = pmt.to_pmt({"user": k, "slot": int(j)})
                    self.message_port_pub(self._port, pmt.cons(meta, pmt.init_u8vector(body.size, body)))
                self._next += 1

    def _on_credit(self, msg):
        v = pmt.to_python(msg)
        with self._lock:
            self._consumed = max(self._consumed, int(v["slot_done"]) + 1)
        self._post()

    def _on_feedback(self, msg):
        v = pmt.to_python(msg)
        self.senders[int(v["user"])].feedback(int(v["slot"]), bool(v["ok"]))
        self._post()
