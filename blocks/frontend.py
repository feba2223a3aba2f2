"""Front end (GRC: ``risisac_frontend``): one seam between simulation and hardware, identical ports.

In: M transmit streams (complex64, vlen M, as from ``slp_source``). Out 0: K user streams (vlen K);
out 1: M radar receive streams (vlen M). ``backend``:

* ``sim``   — :class:`blocks.ris_isac_channel.ris_isac_channel` (spec A's channel, no hardware);
* ``pluto`` — gr-iio FMComms2 sink/source (``uri``): M = 1 on a stock Pluto (1R1T; only chain 1 enabled),
  M = 2 on a 2R2T Pluto / FMComms2/3. Configured exactly as GNU Radio's own fmcomms2 templates do
  (:func:`configure_iio`: ``set_len_tag_key``, LO, rate, per-chain gain/attenuation for the chains in use,
  ``set_filter_params('Auto', ...)``). TX float ±1 ↦ DAC full scale, RX divided by 2048 (12-bit ADC) —
  scale the SLP source with ``scale ≈ 0.5/sqrt(P/M)``;
* ``uhd``   — multi-channel USRP (``dev_args``, one or several motherboards), :func:`configure_uhd`:
  ``clock_source``/``time_source`` per motherboard, device time set on ALL motherboards (``sync``:
  ``pc_clock`` for one board, ``pps`` = on the next PPS edge for boards sharing 10 MHz + PPS,
  ``unknown_pps``), timed tuning (``set_command_time``) so separately-tuned LOs retune on the same tick,
  and a timed start ``start_delay_s`` after the configuration, checked against ``min_margin_s``
  (``start_report`` holds the margin).

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
                 start_delay_s=0.5, buffer_items=16384, clock_source="", time_source="", sync="auto",
                 min_margin_s=0.1, **chan_kw):
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
                       int(rx_delay), tuple(user_channels) or (0,) * K, start_delay_s,
                       dict(clock_source=clock_source, time_source=time_source, sync=sync,
                            min_margin_s=min_margin_s))

    def message_ris(self):
        """The channel block (sim) whose ``ris`` message port takes RIS states; None on hardware."""
        return getattr(self, "chan", None)

    def _build_hw(self, backend, design, M, K, uri, dev_args, fs, fc, txg, rxg, rx_delay, user_ch, start_delay,
                  uhd_kw):
        from blocks.frame_tagger import frame_tagger
        v2s = grblocks.vector_to_streams(gr.sizeof_gr_complex, M)
        s2v = grblocks.streams_to_vector(gr.sizeof_gr_complex, M)
        self.start_report = None
        try:
            if backend == "pluto":
                from gnuradio import iio
                self.tx, self.rx = configure_iio(iio, uri, M, fs=fs, fc=fc, txg=txg, rxg=rxg)
            else:
                from gnuradio import uhd
                self.tx, self.rx, self.start_report = configure_uhd(uhd, dev_args, M, fs=fs, fc=fc, txg=txg,
                                                                    rxg=rxg, start_delay_s=start_delay, **uhd_kw)
        except StartMarginError:
            raise
        except RuntimeError as e:
            raise HardwareUnavailable(f"frontend: backend {backend!r} could not open its hardware ({' '.join(str(e).split())}). "
                               f"Check the cabling and the URI/device args, or use backend='sim'.") from None
        self._m = M
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


    def start_margin_s(self) -> float | None:
        """USRP only: seconds from the device time now to the timed start (call just before ``tb.start()``;
        negative means the streams will start late and the TX/RX alignment is lost). None otherwise."""
        if self.backend != "uhd" or not self.start_report:
            return None
        return self.start_report["t0_s"] - self.rx.get_time_now(0).get_real_secs()

    # -- run-time parameters (GRC callbacks) --------------------------------------------------------------
    def set_rx_gain_db(self, g: float) -> None:
        """RX gain [dB] of every chain in use (hardware backends; no-op on sim)."""
        rx = getattr(self, "rx", None)
        for ch in range(getattr(self, "_m", 0)):
            if self.backend == "pluto":
                rx.set_gain(ch, float(g))
            elif self.backend == "uhd":
                rx.set_gain(float(g), ch)

    def set_tx_gain_db(self, g: float) -> None:
        """TX gain [dB] (Pluto: attenuation = -g) of every chain in use (hardware backends; no-op on sim)."""
        tx = getattr(self, "tx", None)
        for ch in range(getattr(self, "_m", 0)):
            if self.backend == "pluto":
                tx.set_attenuation(ch, -float(g))
            elif self.backend == "uhd":
                tx.set_gain(float(g), ch)


def iio_channel_mask(M: int) -> list:
    """gr-iio fmcomms2 channel enables (I, Q of chain 1, I, Q of chain 2) for M chains (1 or 2)."""
    if M not in (1, 2):
        raise ConfigError(f"frontend: an AD936x (Pluto/FMComms2) has 1 or 2 TX/RX chains, the design has M = {M}")
    return [True, True, M > 1, M > 1]


def configure_iio(iio, uri: str, M: int, *, fs: float, fc: float, txg: float, rxg: float,
                  buffer_size: int = 32768, bandwidth: float | None = None):
    """gr-iio fmcomms2 sink and source for M chains, configured as GNU Radio's own GRC templates do.

    Same calls in the same order as ``iio_fmcomms2_{sink,source}.block.yml`` (gr-iio 3.10): the block,
    ``set_len_tag_key('')`` (no packet tags: a continuous stream), ``set_bandwidth`` (sink), LO, rate,
    gain/attenuation for the chains in use only (a stock Pluto has no chain 2), tracking loops (source)
    and ``set_filter_params('Auto', '', 0, 0)`` last, which loads the FIR the sample rate needs (rates
    below ~2.08 MS/s do not work without it). ``txg`` [dB] is applied as attenuation ``-txg``.
    Returns (sink, source).
    """
    mask = iio_channel_mask(M)
    bw = int(bandwidth if bandwidth is not None else max(200e3, min(52e6, fs)))
    tx = iio.fmcomms2_sink_fc32(uri, mask, int(buffer_size), False)
    tx.set_len_tag_key("")
    tx.set_bandwidth(bw)
    tx.set_frequency(int(fc))
    tx.set_samplerate(int(fs))
    for ch in range(M):
        tx.set_attenuation(ch, -float(txg))
    tx.set_filter_params("Auto", "", 0.0, 0.0)
    rx = iio.fmcomms2_source_fc32(uri, mask, int(buffer_size))
    rx.set_len_tag_key("")
    rx.set_frequency(int(fc))
    rx.set_samplerate(int(fs))
    for ch in range(M):
        rx.set_gain_mode(ch, "manual")
        rx.set_gain(ch, float(rxg))
    rx.set_quadrature(True)
    rx.set_rfdc(True)
    rx.set_bbdc(True)
    rx.set_filter_params("Auto", "", 0.0, 0.0)
    return tx, rx


SYNC_MODES = ("auto", "pc_clock", "pps", "unknown_pps")


class StartMarginError(HardwareUnavailable):
    """The timed start would begin less than ``min_margin_s`` after the configuration finished."""


def configure_uhd(uhd, dev_args: str, M: int, *, fs: float, fc: float, txg: float, rxg: float,
                  start_delay_s: float = 0.5, clock_source: str = "", time_source: str = "", sync: str = "auto",
                  min_margin_s: float = 0.1, tune_lead_s: float = 0.1, pps_timeout_s: float = 2.5,
                  sleep=None, host_time=None):
    """gr-uhd usrp_sink/usrp_source for M channels on one or several motherboards, time-aligned.

    * ``clock_source``/``time_source`` ('' = leave the device default; 'internal', 'external', 'gpsdo'),
      set on every motherboard;
    * device time (``sync``): ``pc_clock`` = ``set_time_now(host time, ALL_MBOARDS)`` (gr-uhd's Python
      default is mboard 0 only, which leaves the other boards ~1.7e9 s behind an absolute start time);
      ``pps`` = wait for a PPS edge, then ``set_time_next_pps(int(host)+1)`` (all boards latch the same
      time on the shared PPS) and wait past it; ``unknown_pps`` = ``set_time_unknown_pps(0)``.
      ``auto`` = ``pps`` when ``time_source`` is external/gpsdo, else ``pc_clock``; several motherboards
      without a shared time source are refused (their sample clocks would not be aligned);
    * timed tuning: ``set_command_time(now + tune_lead_s, ALL_MBOARDS)`` around every ``set_center_freq``,
      so every channel's LO retunes on the same tick (separate-LO daughterboards get a repeatable
      relative phase instead of a random one per tune);
    * start: ``t0`` = device time after all of the above + ``start_delay_s``; the margin ``t0 - now`` is
      measured and must be >= ``min_margin_s`` (:class:`StartMarginError` otherwise).

    Returns (sink, source, report) with report = {mboards, sync, clock_source, time_source, t0_s,
    margin_s, timed_tune}.
    """
    import time as _time
    sleep = sleep or _time.sleep
    host_time = host_time or _time.time
    if sync not in SYNC_MODES:
        raise ConfigError(f"frontend: sync must be one of {SYNC_MODES}, got {sync!r}")
    chans = list(range(M))
    tx = uhd.usrp_sink(dev_args, uhd.stream_args(cpu_format="fc32", channels=chans), "")
    rx = uhd.usrp_source(dev_args, uhd.stream_args(cpu_format="fc32", channels=chans))
    n_mb = int(rx.get_num_mboards())
    ext = time_source in ("external", "gpsdo")
    if sync == "auto":
        sync = "pps" if ext else "pc_clock"
    if n_mb > 1 and not ext:
        raise ConfigError(f"frontend: {n_mb} USRP motherboards need a shared 10 MHz + PPS: pass "
                         "clock_source='external' time_source='external' (see docs/bench_guide.md)")
    if n_mb > 1 and sync == "pc_clock":
        raise ConfigError("frontend: sync='pc_clock' cannot align several motherboards; use sync='pps'")
    # UHD caches one multi_usrp per device address: the sink and the source share the motherboards,
    # so clock/time sources and the device time are set once, through the source.
    for mb in range(n_mb):
        if clock_source:
            rx.set_clock_source(clock_source, mb)
        if time_source:
            rx.set_time_source(time_source, mb)
    for dev in (tx, rx):
        dev.set_samp_rate(fs)
    if sync == "pc_clock":
        rx.set_time_now(uhd.time_spec(host_time()), uhd.ALL_MBOARDS)
    elif sync == "pps":
        last = rx.get_time_last_pps().get_real_secs()
        waited = 0.0
        while rx.get_time_last_pps().get_real_secs() == last:       # align to an edge: a full second ahead
            if waited > pps_timeout_s:
                raise RuntimeError(f"no PPS edge seen in {pps_timeout_s} s (is the PPS cable connected?)")
            sleep(0.05)
            waited += 0.05
        rx.set_time_next_pps(uhd.time_spec(float(int(host_time()) + 1)))
        sleep(1.0)                                                   # past the edge that latches the time
    else:
        rx.set_time_unknown_pps(uhd.time_spec(0.0))
    timed = sync != "pc_clock" or n_mb > 1 or M > 1
    if timed:
        t_cmd = rx.get_time_now(0).get_real_secs() + float(tune_lead_s)
        for dev in (tx, rx):
            dev.set_command_time(uhd.time_spec(t_cmd), uhd.ALL_MBOARDS)
    for dev in (tx, rx):
        for ch in chans:
            dev.set_center_freq(fc, ch)
    if timed:
        for dev in (tx, rx):
            dev.clear_command_time(uhd.ALL_MBOARDS)
        left = t_cmd - rx.get_time_now(0).get_real_secs()
        if left > 0:
            sleep(left)                                             # the tune happens on the device at t_cmd
    for ch in chans:
        tx.set_gain(txg, ch)
        rx.set_gain(rxg, ch)
    t0 = rx.get_time_now(0).get_real_secs() + float(start_delay_s)
    tx.set_start_time(uhd.time_spec(t0))
    rx.set_start_time(uhd.time_spec(t0))
    margin = t0 - rx.get_time_now(0).get_real_secs()
    report = {"mboards": n_mb, "sync": sync, "clock_source": clock_source or "default",
              "time_source": time_source or "default", "t0_s": t0, "margin_s": margin, "timed_tune": timed}
    if margin < float(min_margin_s):
        raise StartMarginError(f"frontend: the timed start is only {margin:.3f} s ahead of the device time "
                               f"(< min_margin_s = {min_margin_s}); increase start_delay_s")
    return tx, rx, report
