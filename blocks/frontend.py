"""Front end (GRC: ``risisac_frontend``): one seam between simulation and hardware, identical ports.

In: M transmit streams (complex64, vlen M, as from ``slp_source``). Out 0: K user streams (vlen K);
out 1: M radar receive streams (vlen M). ``backend``:

* ``sim``   — :class:`blocks.ris_isac_channel.ris_isac_channel` (spec A's channel, no hardware);
* ``pluto`` — gr-iio FMComms2 sink/source on a 2R2T Pluto (``uri``), M = 2; TX float ±1 ↦ DAC full scale
  (32768), RX divided by 2048 (12-bit ADC) — scale the SLP source with ``scale ≈ 0.5/sqrt(P/M)``;
* ``uhd``   — multi-channel USRP (``dev_args``), a timed start ``start_delay_s`` after a PPS-less
  ``set_time_now``, all channels streamed together.

Hardware blocks are constructed only when selected; without hardware they fail with a clear message.
On hardware the RX streams carry no tags: a :class:`blocks.frame_tagger.frame_tagger` re-inserts the
``frame``/``design`` tags every F samples after the measured loopback delay ``rx_delay`` [samples].
``user_channels`` lists the RX channels that feed the K user outputs on a bench (default: RX 0 for all).
"""
from __future__ import annotations

from gnuradio import blocks as grblocks
from gnuradio import gr
from calibration.errors import HardwareUnavailable
from isac_opt.errors import ConfigError

BACKENDS = ("sim", "pluto", "uhd")


class frontend(gr.hier_block2):
    """Front end with ``backend`` in {sim, pluto, uhd}; see the module docstring."""

    def __init__(self, backend="sim", design="", M=6, K=3, seed=0, ris="design", target_mode="alternate",
                 user_noise_offset_db=0.0, uri="ip:192.168.2.1", dev_args="", samp_rate=1e6,
                 center_freq=5.8e9, tx_gain_db=0.0, rx_gain_db=30.0, rx_delay=0, user_channels=(),
                 start_delay_s=0.5, buffer_items=16384, **chan_kw):
        M, K = int(M), int(K)
        gr.hier_block2.__init__(self, "frontend", gr.io_signature(1, 1, gr.sizeof_gr_complex * M),
                                gr.io_signaturev(2, 2, [gr.sizeof_gr_complex * K, gr.sizeof_gr_complex * M]))
        if backend not in BACKENDS:
            raise ConfigError(f"frontend: backend must be one of {BACKENDS}, got {backend!r}")
        self.backend = backend
        if backend == "sim":
            from blocks.ris_isac_channel import ris_isac_channel
            self.chan = ris_isac_channel(design=design, seed=seed, ris=ris, target_mode=target_mode,
                                         user_noise_offset_db=user_noise_offset_db, M=M, K=K, **chan_kw)
            if int(buffer_items) > 0:      # fewer, larger work() calls: less Python overhead per sample
                self.chan.set_min_output_buffer(int(buffer_items))
            self.connect(self, self.chan)
            self.connect((self.chan, 0), (self, 0))
            self.connect((self.chan, 1), (self, 1))
            return
        self._build_hw(backend, design, M, K, uri, dev_args, samp_rate, center_freq, tx_gain_db, rx_gain_db,
                       int(rx_delay), tuple(user_channels) or (0,) * K, start_delay_s)

    def message_ris(self):
        """The channel block (sim) whose ``ris`` message port takes RIS states; None on hardware."""
        return getattr(self, "chan", None)

    def _build_hw(self, backend, design, M, K, uri, dev_args, fs, fc, txg, rxg, rx_delay, user_ch, start_delay):
        from blocks.frame_tagger import frame_tagger
        v2s = grblocks.vector_to_streams(gr.sizeof_gr_complex, M)
        s2v = grblocks.streams_to_vector(gr.sizeof_gr_complex, M)
        try:
            if backend == "pluto":
                if M != 2:
                    raise ConfigError(f"frontend: a 2R2T Pluto has 2 TX/RX chains, the design has M = {M}")
                from gnuradio import iio
                self.tx = iio.fmcomms2_sink_fc32(uri, [True, True, True, True], 32768, False)
                self.tx.set_frequency(int(fc)); self.tx.set_samplerate(int(fs))
                self.tx.set_attenuation(0, -float(txg)); self.tx.set_attenuation(1, -float(txg))
                self.rx = iio.fmcomms2_source_fc32(uri, [True, True, True, True], 32768)
                self.rx.set_frequency(int(fc)); self.rx.set_samplerate(int(fs))
                for ch in (0, 1):
                    self.rx.set_gain_mode(ch, "manual"); self.rx.set_gain(ch, float(rxg))
            else:
                from gnuradio import uhd
                import time
                chans = list(range(M))
                self.tx = uhd.usrp_sink(dev_args, uhd.stream_args(cpu_format="fc32", channels=chans), "")
                self.rx = uhd.usrp_source(dev_args, uhd.stream_args(cpu_format="fc32", channels=chans))
                for dev in (self.tx, self.rx):
                    dev.set_samp_rate(fs)
                    for ch in chans:
                        dev.set_center_freq(fc, ch)
                for ch in chans:
                    self.tx.set_gain(txg, ch); self.rx.set_gain(rxg, ch)
                self.rx.set_time_now(uhd.time_spec(time.time()))
                t0 = uhd.time_spec(time.time() + float(start_delay))
                self.tx.set_start_time(t0); self.rx.set_start_time(t0)
        except RuntimeError as e:
            raise HardwareUnavailable(f"frontend: backend {backend!r} could not open its hardware ({e}). "
                               f"Check the cabling and the URI/device args, or use backend='sim'.") from None
        self.tagger = frame_tagger(design=design, M=M, rx_delay=rx_delay)
        self.connect(self, v2s)
        for m in range(M):
            self.connect((v2s, m), (self.tx, m))
            self.connect((self.rx, m), (s2v, m))
        self.connect(s2v, self.tagger)
        self.connect(self.tagger, (self, 1))
        self.ufan = grblocks.vector_to_streams(gr.sizeof_gr_complex, M)
        self.connect(self.tagger, self.ufan)
        self.usel = grblocks.streams_to_vector(gr.sizeof_gr_complex, K)
        used = set()
        for k, ch in enumerate(user_ch):
            self.connect((self.ufan, int(ch)), (self.usel, k))
            used.add(int(ch))
        for m in range(M):
            if m not in used:
                self.connect((self.ufan, m), grblocks.null_sink(gr.sizeof_gr_complex))
        self.connect(self.usel, (self, 0))
