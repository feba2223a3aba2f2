"""Link deframer (GRC: ``risisac_link_deframer``): CRC-checked packets → payload bytes per user, ARQ
feedback [issue 13; docs/link.md].

Message-only. In ``ok`` / ``fail``: the two outputs of GNU Radio's ``digital.crc_check`` (CRC discarded)
fed by ``risisac_link_receiver``'s per-slot PDUs (metadata ``{user, slot}``). A passed packet goes to the
user's :class:`isac_opt.link.arq.ArqReceiver` (header parsed, duplicates dropped, bytes delivered in order);
every outcome is sent back on ``feedback`` ``{user, slot, ok}`` to ``risisac_link_source`` — the ideal
return channel of the selective-repeat ARQ. ``received`` (a directory, '' = none): at stop, user k's
delivered bytes go to ``received/user<k>.bin`` (refused at construction if such a file exists).
"""
from __future__ import annotations

from pathlib import Path

import pmt
from gnuradio import gr

from isac_opt.errors import ConfigError
from isac_opt.link.arq import ArqReceiver, parse_body


class link_deframer(gr.basic_block):
    """ARQ receivers of K users (see the module docstring)."""

    def __init__(self, K=3, table="link", received=""):
        gr.basic_block.__init__(self, name="link_deframer", in_sig=None, out_sig=None)
        self.K, self.table_name, self.chunk = int(K), str(table), None
        self.receivers = [ArqReceiver() for _ in range(self.K)]
        self.received = str(received or "")
        if self.received:
            d = Path(self.received)
            if d.exists() and not d.is_dir():
                raise ConfigError(f"received: {d} exists and is not a directory")
            for k in range(self.K):
                if (d / f"user{k}.bin").exists():
                    raise ConfigError(f"received: {d / f'user{k}.bin'} already exists (refusing to overwrite)")
        self.message_port_register_out(pmt.intern("feedback"))
        for name, h in (("ok", self._on_ok), ("fail", self._on_fail)):
            self.message_port_register_in(pmt.intern(name))
            self.set_msg_handler(pmt.intern(name), h)

    def _on_ok(self, msg):
        self._on(msg, True)

    def _on_fail(self, msg):
        self._on(msg, False)

    def _on(self, msg, ok: bool):
        if self.chunk is None:
            from isac_opt.link.stream import get_table
            self.chunk = int(get_table(self.table_name).meta["chunk"])
        meta = pmt.to_python(pmt.car(msg))
        k, slot = int(meta["user"]), int(meta["slot"])
        r = parse_body(bytes(pmt.u8vector_elements(pmt.cdr(msg))), self.chunk) if ok else None
        passed = self.receivers[k].on_packet(*(r if r is not None else (None, None)))
        self.message_port_pub(pmt.intern("feedback"), pmt.to_pmt({"user": k, "slot": slot, "ok": passed}))

    def delivered(self) -> list[bytes]:
        return [r.delivered() for r in self.receivers]

    def stop(self):
        if self.received:
            d = Path(self.received)
            d.mkdir(parents=True, exist_ok=True)
            for k, data in enumerate(self.delivered()):
                (d / f"user{k}.bin").write_bytes(data)
        return True
