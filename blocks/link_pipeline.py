"""The live link as a GNU Radio top block (the blocks of ``grc/flowgraphs/risisac_link_sim.grc``, for any K)
[issue 13; docs/link.md]. Used by ``isac-testbed link --backend sim|pluto|uhd``, the tests and the benchmark.

    link_source → digital.crc_append → pdu.pdu_filter(user = k) → pdu.pdu_to_tagged_stream → repack_bits_bb(8→log2 Ω)
      → digital.map_bb(Gray⁻¹) ─k→ link_designer (engine, DesignAhead worker, design table) → [throttle]
      → frontend (sim channel | Pluto | USRP) ─radar→ stap_detector(table) ; ─users→ link_receiver
      ─pdus→ digital.crc_check ─ok/fail→ link_deframer ─feedback→ link_source (ideal return channel)
    link_designer ─credit→ link_source (back-pressure) ; link_source ─ctrl→ link_designer (end of run)
"""
from __future__ import annotations

import itertools
import time

import numpy as np
import pmt
from gnuradio import blocks as grblocks
from gnuradio import digital, gr, pdu

from blocks.frontend import frontend
from blocks.link_deframer import link_deframer
from blocks.link_designer import link_designer
from blocks.link_receiver import link_receiver
from blocks.link_source import link_source
from blocks.sample_slip import sample_slip
from blocks.stap_detector import stap_detector

_ids = itertools.count()
CRC32 = (32, 0x4C11DB7, 0xFFFFFFFF, 0xFFFFFFFF, True, True, False)   # zlib's CRC-32, stored big-endian


def gray_inverse(order: int) -> list[int]:
    """map_bb table: Gray label → PSK index (the inverse of i ↦ i ^ (i >> 1))."""
    inv = [0] * order
    for i in range(order):
        inv[i ^ (i >> 1)] = i
    return inv


class link_pipeline(gr.top_block):
    """Top block with attributes ``src``, ``des`` (designer), ``fe``, ``det``, ``rcv``, ``dfr``; see the module
    docstring. ``slip=(offset, "drop"|"insert")`` puts a sample slip on both receive paths; ``realtime``
    throttles the simulated stream to ``rate`` and lets the designer send counted idle frames when late."""

    def __init__(self, design_path: str, *, payload="random", nbytes: int = 1000, seed: int = 0, chunk: int = 64,
                 layers: int = 0, dtype: str = "float32", device: str = "cpu", batch: int = 64, depth: int = 0,
                 backend: str = "sim", user_noise_db: float = 0.0, rate: float = 100e3, arq: bool = True,
                 window: int = 4096, min_frames: int = 0, max_frames: int = 0, realtime: bool = False,
                 slip=None, received: str = "", threads: int = 1, buffer_items: int = 16384, engine=None,
                 pfa: float = 1e-3, **fe_kw):
        gr.top_block.__init__(self, "risisac_link", catch_exceptions=False)
        self._t_init = time.perf_counter()
        from isac_opt.designfile import load_design
        scn = load_design(design_path).scenario
        K, M = scn.K, scn.M
        self.table = f"link-{next(_ids)}"
        # the front end first: without hardware it fails (one line) before the engine's codebook is built
        self.fe = frontend(backend=backend, design=design_path, seed=seed, M=M, K=K,
                           user_noise_offset_db=user_noise_db, buffer_items=buffer_items, **fe_kw)
        self.src = link_source(design=design_path, payload=payload, nbytes=nbytes, seed=seed, chunk=chunk,
                               window=window, arq=arq, min_frames=min_frames, max_frames=max_frames, batch=batch)
        late = "fill" if (realtime or backend != "sim") else "wait"
        self.des = link_designer(design=design_path, layers=layers, dtype=dtype, device=device, batch=batch,
                                 depth=depth, table=self.table, late=late, chunk=chunk, threads=threads,
                                 rate=rate, user_noise_db=user_noise_db, engine=engine,
                                 backend=backend)
        self.des.set_min_output_buffer(int(buffer_items))
        bps = int(np.log2(scn.psk_order))
        self.crc_append = digital.crc_append(*CRC32, 0)
        self.msg_connect((self.src, "pdus"), (self.crc_append, "in"))
        self.tx_chain = []
        for k in range(K):
            flt = pdu.pdu_filter(pmt.intern("user"), pmt.from_long(k), False)
            p2s = pdu.pdu_to_tagged_stream(gr.types.byte_t, "packet_len")
            rep = grblocks.repack_bits_bb(8, bps, "packet_len", False, gr.GR_MSB_FIRST)
            mp = digital.map_bb(gray_inverse(scn.psk_order))
            self.msg_connect((self.crc_append, "out"), (flt, "pdus"))
            self.msg_connect((flt, "pdus"), (p2s, "pdus"))
            self.connect(p2s, rep, mp, (self.des, k))
            self.tx_chain.append((flt, p2s, rep, mp))
        self.msg_connect((self.des, "credit"), (self.src, "credit"))
        self.errors = grblocks.message_debug()            # engine failures, one message per frame
        self.msg_connect((self.des, "errors"), (self.errors, "store"))
        self.msg_connect((self.src, "ctrl"), (self.des, "ctrl"))
        if realtime:
            self.thr = grblocks.throttle(gr.sizeof_gr_complex * M, float(rate), True)
            self.connect(self.des, self.thr, self.fe)
        else:
            self.connect(self.des, self.fe)
        radar, users = (self.fe, 1), (self.fe, 0)
        if slip is not None:
            at, mode = slip
            self.slip_r = sample_slip(vlen=M, at=at, mode=mode)
            self.slip_u = sample_slip(vlen=K, at=at, mode=mode)
            self.connect(radar, self.slip_r)
            self.connect(users, self.slip_u)
            radar, users = (self.slip_r, 0), (self.slip_u, 0)
        self.det = stap_detector(M=M, pfa=pfa, publish=False, table=self.table)
        self.connect(radar, self.det)
        self.connect((self.det, 0), grblocks.null_sink(gr.sizeof_float))
        self.connect((self.det, 1), grblocks.null_sink(gr.sizeof_float))
        self.rcv = link_receiver(K=K, table=self.table)
        self.connect(users, self.rcv)
        self.crc_check = digital.crc_check(*CRC32, True, 0)
        self.crc_check.set_log_level("info")          # its per-packet "CRC fail" debug lines: counted instead
        self.dfr = link_deframer(K=K, table=self.table, received=received)
        self.msg_connect((self.rcv, "pdus"), (self.crc_check, "in"))
        self.msg_connect((self.crc_check, "ok"), (self.dfr, "ok"))
        self.msg_connect((self.crc_check, "fail"), (self.dfr, "fail"))
        self.msg_connect((self.dfr, "feedback"), (self.src, "feedback"))

    def run_link(self) -> float:
        """Start, wait for the end of the run (the designer's end marker through every block);
        returns the wall time [s] from start until every block has finished (end to end)."""
        t0, c0 = time.perf_counter(), time.process_time()
        self.start()
        self.wait()
        self.cpu_s = time.process_time() - c0
        return time.perf_counter() - t0

    def report(self, wall_s: float, extra: dict | None = None) -> tuple[dict, list[bytes]]:
        """The link report (the keys of the numpy loop, :meth:`isac_opt.link.stream.LinkTally.report`)."""
        tally = self.des.tally
        r = self.det.results()
        sel = r["target"] >= 0
        tally.z, tally.present, tally.sinr_pred = [], [], []
        tally.add_radar(r["stat"][sel], r["target"][sel] == 1, r["sinr_pred"][sel])
        ex = {"backend": self.fe.backend, "chunk": self.des.chunk, "frames_per_packet": self.des.P,
              "arq": self.src.senders[0].arq, "frames_dropped_rx": int(self.rcv.asm.dropped if self.rcv.asm else 0),
              "slots_incomplete": int(self.rcv.slots.incomplete if self.rcv.slots else 0),
              "radar_frames_missing": int(r["missing"]), "table_misses": int(self.des.table.misses),
              "engine_failures": int(self.des.tally.frames_failed),
              "engine_error_messages": int(self.errors.num_messages()), "engine": self.des.engine.info(),
              "total_s": time.perf_counter() - self._t_init}
        ex.update(extra or {})
        rep, got = tally.report(senders=self.src.senders, receivers=self.dfr.receivers, designed=self.des.designed,
                                busy_s=self.des.busy_s, wall_s=wall_s, gap=self.des.gap,
                                cpu_s=getattr(self, "cpu_s", float("nan")), extra=ex)
        self.arrays = tally.arrays(self.des.table.meta["gamma_db"])      # per-frame data for the report PNG
        return rep, got
