"""The simulated headless bench pipeline as a Python top block (the same blocks as
``grc/flowgraphs/risisac_headless_sim.grc``): slp_source → [front end] → stap_detector + user_receiver.

Used by ``isac-testbed run`` (:mod:`isac_testbed.run`), the tests and the benchmark.
"""
from __future__ import annotations

from gnuradio import blocks as grblocks
from gnuradio import gr

from blocks.frontend import frontend
from blocks.sample_slip import sample_slip
from blocks.slp_source import slp_source
from blocks.stap_detector import stap_detector
from blocks.user_receiver import user_receiver
from isac_opt.errors import ConfigError


class sim_pipeline(gr.top_block):
    """Top block with attributes ``src``, ``fe`` (front end), ``det``, ``rx`` and optional ``rec_*`` sinks.

    ``slip=(offset, "drop"|"insert")`` puts a :class:`~blocks.sample_slip.sample_slip` on both receive paths.
    ``record``: (radar_path, users_path) raw cf32 files (SigMF data) or None.
    ``buffer_items``: minimum output buffer [items] of the source and the channel.
    ``tx_cal`` / ``rx_cal``: ChainCal files applied by the source (TX pre-distortion) and the detector (RX
    correction), checked against ``cal_key`` (see :mod:`calibration.use`).
    ``impairments``: an :class:`isac_opt.bench.channel.Impairments` the simulated channel imposes (hidden
    chain errors). ``world``: design file whose CHANNELS the simulated channel emulates (default: the
    design's own), e.g. the true channels when the design was made from estimated ones.
    """

    def __init__(self, design_path: str, frames: int, *, seed: int = 0, pfa: float = 1e-3,
                 backend: str = "sim", ris: str = "design", target_mode: str = "alternate",
                 user_noise_offset_db: float = 0.0, slip=None, record=None, publish: bool = False,
                 buffer_items: int = 16384, tx_cal: str = "", rx_cal: str = "", cal_key=None,
                 impairments=None, world: str | None = None, **fe_kw):
        gr.top_block.__init__(self, "risisac_sim_pipeline", catch_exceptions=False)
        from isac_opt.bench.framing import frontend_scale
        from isac_opt.designfile import load_design
        scn = load_design(design_path).scenario
        self.src = slp_source(design=design_path, frames=frames, scale=frontend_scale(backend, scn.amp),
                              M=scn.M, tx_cal=tx_cal or "", cal_key=cal_key or "")
        M = self.src.M
        self.fe = frontend(backend=backend, design=world or design_path, seed=seed, ris=ris,
                           target_mode=target_mode, user_noise_offset_db=user_noise_offset_db, M=M, K=scn.K,
                           buffer_items=buffer_items, **fe_kw)
        if impairments is not None:
            if backend != "sim":
                raise ConfigError(f"impairments: only the simulated front end imposes them (backend {backend!r})")
            self.fe.chan.emu.set_impairments(impairments)
        self.det = stap_detector(M=M, pfa=pfa, publish=publish, rx_cal=rx_cal or "", cal_key=cal_key or "")
        self.rx = user_receiver(K=scn.K)
        self.stat_sink = grblocks.null_sink(gr.sizeof_float)
        self.sinr_sink = grblocks.null_sink(gr.sizeof_float)
        # large buffers: fewer work() calls, so less Python overhead per sample (≈ 2x throughput)
        self.src.set_min_output_buffer(int(buffer_items))
        self.connect(self.src, self.fe)
        radar, users = (self.fe, 1), (self.fe, 0)
        if slip is not None:
            at, mode = slip
            self.slip_r = sample_slip(vlen=M, at=at, mode=mode)
            self.slip_u = sample_slip(vlen=scn.K, at=at, mode=mode)
            self.connect(radar, self.slip_r)
            self.connect(users, self.slip_u)
            radar, users = (self.slip_r, 0), (self.slip_u, 0)
        self.connect(radar, self.det, self.stat_sink)
        self.connect((self.det, 1), self.sinr_sink)
        self.connect(users, self.rx)
        if record is not None:
            self.rec_radar = grblocks.file_sink(gr.sizeof_gr_complex * M, str(record[0]), False)
            self.rec_users = grblocks.file_sink(gr.sizeof_gr_complex * scn.K, str(record[1]), False)
            self.rec_radar.set_unbuffered(False)
            self.connect(radar, self.rec_radar)
            self.connect(users, self.rec_users)
