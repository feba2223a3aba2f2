"""Hardware measurement entry points (application layer; the estimators never import this).

Only the chain calibration has a real-hardware path so far (Pluto / AD936x via pyadi-iio): the
preamble frame [zeros, Zadoff-Chu, zeros] is sent as a cyclic TX buffer and exactly one frame length is
captured, so the capture is a circular shift of the frame, which is the estimator's own (circular) model;
delays are then reported relative to chain 0. Channel / RIS / clutter measurements on hardware go through
the flowgraphs (``isac-testbed run``) and are not wired here yet: they fail with a clear message.

Every failure to reach the hardware raises :class:`HardwareUnavailable` with a message for the user,
never a driver traceback.
"""
from __future__ import annotations

import os
import shutil
import subprocess

import numpy as np

from .errors import HardwareUnavailable


def find_sdr_uri(backend: str, uri: str | None = None) -> str:
    """Resolve the SDR URI: ``uri``, else env ``SDR_URI``, else an iio/UHD scan; HardwareUnavailable if none."""
    uri = uri or os.environ.get("SDR_URI")
    if backend == "pluto":
        try:
            import iio  # noqa: F401  (pylibiio)
            import adi  # noqa: F401  (pyadi-iio)
        except Exception as exc:  # noqa: BLE001 - any import failure means "no driver"
            raise HardwareUnavailable("backend 'pluto' needs pyadi-iio and libiio "
                                      "(pip install pyadi-iio pylibiio): " + str(exc)) from None
        if uri:
            return uri
        try:
            import iio
            ctxs = iio.scan_contexts() or {}
        except Exception as exc:  # noqa: BLE001 - libiio raises OSError when no backend answers
            raise HardwareUnavailable(f"no Pluto/AD936x attached: the iio context scan failed ({exc}); "
                                      "connect the device or pass --uri ip:192.168.2.1 (or set SDR_URI)") from None
        for u, desc in ctxs.items():
            if "pluto" in str(desc).lower() or "ad936" in str(desc).lower() or "adrv" in str(desc).lower():
                return u
        raise HardwareUnavailable("no Pluto/AD936x attached (iio scan found no context); connect the device "
                                  "or pass --uri ip:192.168.2.1 (or set SDR_URI)")
    if backend == "uhd":
        try:
            from gnuradio import uhd  # noqa: F401
        except Exception as exc:  # noqa: BLE001
            raise HardwareUnavailable(f"backend 'uhd' needs GNU Radio's gr-uhd: {exc}") from None
        if uri:
            return uri
        found = []
        tool = shutil.which("uhd_find_devices")
        if tool:
            try:
                out = subprocess.run([tool], capture_output=True, text=True, timeout=20).stdout
                found = [ln.split(":", 1)[1].strip() for ln in out.splitlines() if ln.strip().startswith("serial:")]
            except Exception:  # noqa: BLE001 - treated as "nothing found"
                found = []
        if not found:
            raise HardwareUnavailable("no USRP attached (uhd_find_devices found none"
                                      + ("" if tool else "; the tool is not installed: apt install uhd-host")
                                      + "); connect it or pass --uri 'serial=...' (or set SDR_URI)")
        return f"serial={found[0]}"
    raise HardwareUnavailable(f"unknown hardware backend {backend!r}; expected 'pluto' or 'uhd'")


def measure_chains_pluto(cal, uri: str, *, side: str = "rx", lo_hz: float = 2.4e9, fs_hz: float = 2e6,
                         rx_gain_db: float = 30.0, tx_atten_db: float = -10.0) -> np.ndarray:
    """Measure a :class:`ChainCal` on an AD9361 (2 TX, 2 RX): returns (n_chains, n_samples).

    ``side="rx"``: TX0 → splitter → RX0, RX1 (one capture). ``side="tx"``: TX0 then TX1 alone → RX0.
    """
    try:
        import adi
        sdr = adi.ad9361(uri=uri)
    except Exception as exc:  # noqa: BLE001
        raise HardwareUnavailable(f"cannot open the AD936x at {uri!r}: {exc}") from None
    n = cal.params["n_samples"]
    frame = cal.stimulus() * 2 ** 14 * 0.5
    try:
        sdr.sample_rate = int(fs_hz)
        sdr.rx_lo = sdr.tx_lo = int(lo_hz)
        sdr.rx_enabled_channels = [0, 1]
        sdr.tx_enabled_channels = [0, 1]
        sdr.gain_control_mode_chan0 = sdr.gain_control_mode_chan1 = "manual"
        sdr.rx_hardwaregain_chan0 = sdr.rx_hardwaregain_chan1 = rx_gain_db
        sdr.tx_hardwaregain_chan0 = sdr.tx_hardwaregain_chan1 = tx_atten_db
        sdr.rx_buffer_size = n
        sdr.tx_cyclic_buffer = True
        out = []
        if side == "rx":
            sdr.tx([frame, np.zeros_like(frame)])
            for _ in range(4):                     # flush stale buffers
                sdr.rx()
            out = np.asarray(sdr.rx())[: cal.params["n_chains"]]
        else:
            for i in range(cal.params["n_chains"]):
                bufs = [np.zeros_like(frame), np.zeros_like(frame)]
                bufs[i] = frame
                sdr.tx_destroy_buffer()
                sdr.tx(bufs)
                for _ in range(4):
                    sdr.rx()
                out.append(np.asarray(sdr.rx())[0])
            out = np.asarray(out)
        sdr.tx_destroy_buffer()
    except HardwareUnavailable:
        raise
    except Exception as exc:  # noqa: BLE001
        raise HardwareUnavailable(f"AD936x measurement failed at {uri!r}: {exc}") from None
    return np.asarray(out, dtype=np.complex128) / (2 ** 11)
