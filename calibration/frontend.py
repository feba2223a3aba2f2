"""SDR front ends for the hardware calibration paths: one small interface, two implementations.

The measurement logic (:mod:`calibration.hw_measure`) only needs::

    fe.n_tx, fe.n_rx              number of TX / RX chains in use
    fe.lo_hz, fe.fs_hz            carrier [Hz] and sample rate [Hz]
    fe.tx_cyclic(bufs)            transmit ``bufs`` (n_tx, P) complex, |x| <= 1, repeated forever
    fe.tx_stop()                  stop transmitting
    fe.rx(n_samples, skip=0)      drop ``skip`` fresh samples, return the next (n_rx, n_samples) complex128
    fe.ids() -> dict              hardware ids for the calibration key (uri, serial, model, firmware)
    fe.gains_db() -> list         RX gains then TX gains/attenuations [dB] (part of the key)
    fe.close()

* :class:`PlutoFrontEnd` — AD936x (Pluto, 2R2T revisions, FMCOMMS) via pyadi-iio ``adi.ad9361``: cyclic TX
  DMA buffer, RX buffer of exactly the requested size after ``flush`` stale kernel buffers.
* :class:`UhdFrontEnd` — USRP via gr-uhd: one short flowgraph ``cyclic TX source -> usrp_sink`` and
  ``usrp_source -> capture block`` that runs for the whole calibration; ``rx`` drops ``flush`` stale
  samples plus ``skip`` and arms the capture block. The cyclic TX source (:func:`make_cyclic_tx`) is ONE
  ``vector_source_c`` of vectors (n_tx,) split into the channels, so all TX channels start the new buffer
  on the same sample (the TX-chain calibration and the pilot orthogonality rely on it).
  Constructed only when ``--backend uhd`` is selected.

Both convert every driver failure into :class:`HardwareUnavailable` (one line for the user).
A simulated front end with hidden truth for the tests lives in :mod:`calibration.fake_frontend`.
"""
from __future__ import annotations

import threading
import time
from typing import Protocol, runtime_checkable

import numpy as np

from .errors import CalibrationError, HardwareUnavailable


@runtime_checkable
class FrontEnd(Protocol):
    n_tx: int
    n_rx: int
    lo_hz: float
    fs_hz: float

    def tx_cyclic(self, bufs: np.ndarray) -> None: ...
    def tx_stop(self) -> None: ...
    def rx(self, n_samples: int, skip: int = 0) -> np.ndarray: ...
    def ids(self) -> dict: ...
    def gains_db(self) -> list: ...
    def close(self) -> None: ...


class PlutoFrontEnd:
    """AD936x through pyadi-iio (``adi.ad9361``): a stock Pluto (1R1T, AD9363), a Pluto rev C/D switched to
    2R2T (``fw_setenv mode 2r2t``), an FMComms2/3 or ADRV9361 (2R2T).

    Only the chains in use are touched: with ``n_tx = n_rx = 1`` no ``*_chan1`` attribute is written, so a
    stock Pluto (whose ``ad9361-phy`` has no ``voltage1`` channel) works. The chains the context really has
    are counted from the RX ADC / TX DAC scan elements (I and Q per chain) before anything is written, and
    asking for more gives one line naming the fix. Checked against the real libiio XML contexts of a stock
    Pluto and an FMComms2/3 (tests/test_iio_contexts.py).

    Sample scaling: TX full scale 2**14 (``tx_scale`` of it used), RX full scale 2**11.
    """

    TX_FS, RX_FS = 2 ** 14, 2 ** 11

    def __init__(self, uri: str, *, lo_hz: float, fs_hz: float, n_tx: int = 2, n_rx: int = 2,
                 rx_gain_db: float = 30.0, tx_atten_db: float = -10.0, tx_scale: float = 0.5, flush: int = 4):
        if not (1 <= n_tx <= 2 and 1 <= n_rx <= 2):
            raise HardwareUnavailable(f"AD936x has at most 2 TX and 2 RX chains; asked for {n_tx} TX and {n_rx} RX")
        self.uri, self.lo_hz, self.fs_hz = uri, float(lo_hz), float(fs_hz)
        self.n_tx, self.n_rx, self.tx_scale, self.flush = int(n_tx), int(n_rx), float(tx_scale), int(flush)
        self._rx_gain, self._tx_atten = float(rx_gain_db), float(tx_atten_db)
        try:
            import adi
            self.sdr = adi.ad9361(uri=uri)
        except Exception as exc:  # noqa: BLE001 - any driver failure means "not there"
            raise HardwareUnavailable(f"cannot open the AD936x at {uri!r}: {exc}") from None
        have_rx, have_tx = iio_chains(self.sdr)
        if self.n_rx > have_rx or self.n_tx > have_tx:
            raise HardwareUnavailable(
                f"the AD936x at {uri!r} exposes {have_rx} RX / {have_tx} TX chain(s), asked for {self.n_rx} RX / "
                f"{self.n_tx} TX; a stock Pluto is 1R1T: use --n-rx 1 --n-tx 1, or switch a rev C/D Pluto to 2R2T "
                "(fw_setenv attr_name compatible; fw_setenv attr_val ad9361; fw_setenv mode 2r2t; reboot)")
        try:
            s = self.sdr
            s.sample_rate = int(fs_hz)
            s.rx_lo = s.tx_lo = int(lo_hz)
            s.rx_enabled_channels = list(range(self.n_rx))
            s.tx_enabled_channels = list(range(self.n_tx))
            for ch in range(self.n_rx):                      # chan1 only when the second chain is in use
                setattr(s, f"gain_control_mode_chan{ch}", "manual")
                setattr(s, f"rx_hardwaregain_chan{ch}", self._rx_gain)
            for ch in range(self.n_tx):
                setattr(s, f"tx_hardwaregain_chan{ch}", self._tx_atten)
            s.tx_cyclic_buffer = True
        except Exception as exc:  # noqa: BLE001
            raise HardwareUnavailable(f"AD936x set-up failed at {uri!r}: {exc}") from None

    def ids(self) -> dict:
        out = {"sdr": self.uri, "sdr_driver": "pyadi-iio/ad9361"}
        try:
            attrs = dict(self.sdr.ctx.attrs)
            for k in ("hw_serial", "hw_model", "fw_version"):
                if k in attrs:
                    out["sdr_" + k] = str(attrs[k])
        except Exception:  # noqa: BLE001 - ids are best effort beyond the URI
            pass
        return out

    def gains_db(self) -> list:
        return [self._rx_gain] * self.n_rx + [self._tx_atten] * self.n_tx

    def tx_cyclic(self, bufs: np.ndarray) -> None:
        bufs = np.atleast_2d(np.asarray(bufs, dtype=np.complex128))
        try:
            try:
                self.sdr.tx_destroy_buffer()
            except Exception:  # noqa: BLE001 - no buffer yet
                pass
            data = [b * self.TX_FS * self.tx_scale for b in bufs[: self.n_tx]]
            self.sdr.tx(data if self.n_tx > 1 else data[0])
        except Exception as exc:  # noqa: BLE001
            raise HardwareUnavailable(f"AD936x TX failed at {self.uri!r}: {exc}") from None

    def tx_stop(self) -> None:
        try:
            self.sdr.tx_destroy_buffer()
        except Exception:  # noqa: BLE001
            pass

    def rx(self, n_samples: int, skip: int = 0) -> np.ndarray:
        try:
            n = int(n_samples) + int(skip)
            if getattr(self.sdr, "rx_buffer_size", None) != n:
                try:
                    self.sdr.rx_destroy_buffer()
                except Exception:  # noqa: BLE001
                    pass
                self.sdr.rx_buffer_size = n
            for _ in range(self.flush):                  # stale kernel buffers from before the RIS switched
                self.sdr.rx()
            y = self.sdr.rx()
        except Exception as exc:  # noqa: BLE001
            raise HardwareUnavailable(f"AD936x RX failed at {self.uri!r}: {exc}") from None
        y = np.atleast_2d(np.asarray(y, dtype=np.complex128))[: self.n_rx] / self.RX_FS
        return y[:, int(skip):]

    def close(self) -> None:
        self.tx_stop()


class UhdFrontEnd:
    """USRP through gr-uhd: a flowgraph that runs for the whole calibration.

    :func:`make_cyclic_tx` ``-> usrp_sink`` (``set`` swaps the cyclic buffer of all TX channels at once) and
    ``usrp_source -> _Capture`` per RX channel (``rx`` arms the capture for ``flush + skip + n`` samples and
    waits; ``flush`` [samples] covers the TX buffer still in flight in the gr buffers and UHD after a swap).
    """

    def __init__(self, args: str, *, lo_hz: float, fs_hz: float, n_tx: int = 1, n_rx: int = 1,
                 rx_gain_db: float = 30.0, tx_gain_db: float = 0.0, timeout_s: float = 10.0, flush: int = 65536):
        self.args, self.lo_hz, self.fs_hz = args, float(lo_hz), float(fs_hz)
        self.n_tx, self.n_rx, self.timeout_s, self.flush = int(n_tx), int(n_rx), float(timeout_s), int(flush)
        self._rx_gain, self._tx_gain = float(rx_gain_db), float(tx_gain_db)
        try:
            from gnuradio import gr, uhd
        except Exception as exc:  # noqa: BLE001
            raise HardwareUnavailable(f"backend 'uhd' needs GNU Radio's gr-uhd: {exc}") from None
        try:
            self.tb = gr.top_block("calibration_uhd")
            self.src = uhd.usrp_source(uhd.device_addr_t(args),
                                       uhd.stream_args(cpu_format="fc32", channels=list(range(self.n_rx))))
            self.snk = uhd.usrp_sink(uhd.device_addr_t(args),
                                     uhd.stream_args(cpu_format="fc32", channels=list(range(self.n_tx))))
            for dev in (self.src, self.snk):
                dev.set_samp_rate(self.fs_hz)
            for ch in range(self.n_rx):
                self.src.set_center_freq(self.lo_hz, ch)
                self.src.set_gain(self._rx_gain, ch)
            for ch in range(self.n_tx):
                self.snk.set_center_freq(self.lo_hz, ch)
                self.snk.set_gain(self._tx_gain, ch)
            self.txsrc = make_cyclic_tx(self.n_tx)
            for ch in range(self.n_tx):
                self.tb.connect((self.txsrc, ch), (self.snk, ch))
            self.cap = make_capture_block(self.n_rx)
            for ch in range(self.n_rx):
                self.tb.connect((self.src, ch), (self.cap, ch))
            self.tb.start()
        except HardwareUnavailable:
            raise
        except Exception as exc:  # noqa: BLE001
            raise HardwareUnavailable(f"cannot open the USRP {args!r}: {str(exc).splitlines()[0]}") from None

    def ids(self) -> dict:
        out = {"sdr": self.args, "sdr_driver": "gr-uhd"}
        try:
            info = self.src.get_usrp_info(0)
            for k in ("mboard_id", "mboard_serial", "rx_serial", "tx_serial"):
                if k in info:
                    out["sdr_" + k] = str(info[k])
        except Exception:  # noqa: BLE001
            pass
        return out

    def gains_db(self) -> list:
        return [self._rx_gain] * self.n_rx + [self._tx_gain] * self.n_tx

    def tx_cyclic(self, bufs: np.ndarray) -> None:
        self.txsrc.set(bufs)

    def tx_stop(self) -> None:
        self.txsrc.stop()

    def rx(self, n_samples: int, skip: int = 0) -> np.ndarray:
        return self.cap.capture(int(n_samples), self.flush + int(skip), self.timeout_s)

    def close(self) -> None:
        try:
            self.tx_stop()
            self.tb.stop()
            self.tb.wait()
        except Exception:  # noqa: BLE001
            pass


def iio_chains(sdr) -> tuple[int, int]:
    """(RX chains, TX chains) of a pyadi-iio AD936x object: I/Q scan elements of its ADC and DAC halved."""
    def count(dev, output):
        try:
            return sum(1 for c in dev.channels if c.scan_element and c.output == output) // 2
        except Exception:  # noqa: BLE001 - a stand-in object without an iio device: trust the request
            return 2
    return count(getattr(sdr, "_rxadc", None), False), count(getattr(sdr, "_txdac", None), True)


def make_cyclic_tx(n_tx: int):
    """A gr hier block with ``n_tx`` complex outputs repeating a cyclic buffer, sample-aligned across outputs.

    One ``vector_source_c`` of vectors of length n_tx (the buffers interleaved) → ``vector_to_streams``:
    ``set(bufs (n_tx, P))`` swaps every channel's buffer at the same sample; ``stop()`` sends zeros.
    """
    from gnuradio import blocks, gr

    class _CyclicTx(gr.hier_block2):
        def __init__(self):
            gr.hier_block2.__init__(self, "calibration_cyclic_tx", gr.io_signature(0, 0, 0),
                                    gr.io_signature(n_tx, n_tx, gr.sizeof_gr_complex))
            self.src = blocks.vector_source_c([0j] * (1024 * n_tx), True, n_tx)
            self.split = blocks.vector_to_streams(gr.sizeof_gr_complex, n_tx)
            self.connect(self.src, self.split)
            for ch in range(n_tx):
                self.connect((self.split, ch), (self, ch))

        def set(self, bufs) -> None:
            b = np.atleast_2d(np.asarray(bufs, dtype=np.complex64))
            if b.shape[0] != n_tx:
                raise CalibrationError("bufs", f"{n_tx} rows (TX channels)", f"shape {b.shape}")
            self.src.set_data(b.T.reshape(-1).tolist(), [])          # sample-major: all channels in step

        def stop(self) -> None:
            self.src.set_data([0j] * (1024 * n_tx), [])

    return _CyclicTx()


def make_capture_block(n_ch: int):
    """A gr sync sink with ``n_ch`` complex inputs that records ``skip + n`` samples when armed.

    ``capture(n, skip, timeout_s)`` returns (n_ch, n) complex128 (the ``skip`` first samples are dropped).
    """
    from gnuradio import gr

    class _Capture(gr.sync_block):
        def __init__(self):
            gr.sync_block.__init__(self, name="calibration_capture", in_sig=[np.complex64] * n_ch, out_sig=None)
            self._lock = threading.Lock()
            self._buf, self._fill, self._done = None, 0, threading.Event()

        def capture(self, n: int, skip: int, timeout_s: float) -> np.ndarray:
            with self._lock:
                self._buf = np.zeros((n_ch, n + skip), np.complex64)
                self._fill = 0
                self._done.clear()
            if not self._done.wait(timeout_s):
                raise HardwareUnavailable(f"capture timed out after {timeout_s} s (no samples from the radio)")
            with self._lock:
                out, self._buf = self._buf, None
            return out[:, skip:].astype(np.complex128)

        def work(self, input_items, output_items):
            n = len(input_items[0])
            with self._lock:
                if self._buf is not None and not self._done.is_set():
                    k = min(n, self._buf.shape[1] - self._fill)
                    for ch in range(n_ch):
                        self._buf[ch, self._fill:self._fill + k] = input_items[ch][:k]
                    self._fill += k
                    if self._fill >= self._buf.shape[1]:
                        self._done.set()
            return n

    return _Capture()


def open_frontend(backend: str, uri: str | None, *, lo_hz: float, fs_hz: float, n_tx: int, n_rx: int,
                  gains_db=None) -> FrontEnd:
    """Find and open the SDR of ``backend`` ('pluto' | 'uhd'); HardwareUnavailable with one line otherwise.

    ``gains_db``: optional [rx_gain, tx_gain_or_atten] [dB].
    """
    from .hardware import find_sdr_uri
    uri = find_sdr_uri(backend, uri)
    g = list(gains_db or [])
    if backend == "pluto":
        kw = {}
        if len(g) >= 1:
            kw["rx_gain_db"] = g[0]
        if len(g) >= 2:
            kw["tx_atten_db"] = g[1]
        return PlutoFrontEnd(uri, lo_hz=lo_hz, fs_hz=fs_hz, n_tx=n_tx, n_rx=n_rx, **kw)
    if backend == "uhd":
        kw = {}
        if len(g) >= 1:
            kw["rx_gain_db"] = g[0]
        if len(g) >= 2:
            kw["tx_gain_db"] = g[1]
        fe = UhdFrontEnd(uri, lo_hz=lo_hz, fs_hz=fs_hz, n_tx=n_tx, n_rx=n_rx, **kw)
        time.sleep(0.2)                                    # let the streams start
        return fe
    raise HardwareUnavailable(f"unknown hardware backend {backend!r}; expected 'pluto' or 'uhd'")
