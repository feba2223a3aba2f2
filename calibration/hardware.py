"""Hardware measurement entry points (application layer; the estimators never import this).

SDR discovery (:func:`find_sdr_uri`) for Pluto / AD936x (libiio scan) and USRP (uhd_find_devices or a
gr-uhd probe). All measurements (chains, channels, RIS table, clutter) go through the front-end interface
(:mod:`calibration.frontend`, Pluto and USRP) and :mod:`calibration.hw_measure`.

Every failure to reach the hardware raises :class:`HardwareUnavailable` with a message for the user,
never a driver traceback.
"""
from __future__ import annotations

import contextlib
import os
import shutil
import subprocess
import sys

from .errors import HardwareUnavailable


@contextlib.contextmanager
def _quiet_stderr():
    """Silence C-library chatter on fd 2 (libiio's Avahi warning, UHD's banner) during a device probe,
    so that a missing device gives exactly one line."""
    try:
        sys.stderr.flush()
        saved = os.dup(2)
    except (OSError, ValueError):          # no real fd 2 (e.g. captured): nothing to silence
        yield
        return
    try:
        with open(os.devnull, "w") as null:
            os.dup2(null.fileno(), 2)
            yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)


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
            with _quiet_stderr():
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
            if found:
                return f"serial={found[0]}"
        probe = _uhd_probe()
        if probe is not None:
            return probe
        raise HardwareUnavailable("no USRP attached (" + ("uhd_find_devices" if tool else "a gr-uhd device probe")
                                  + " found none); connect it or pass --uri 'serial=...' (or set SDR_URI)")
    raise HardwareUnavailable(f"unknown hardware backend {backend!r}; expected 'pluto' or 'uhd'")


def _uhd_probe() -> str | None:
    """Open the first USRP UHD finds through gr-uhd (no uhd_find_devices needed); its args or None.

    gr-uhd 3.10's python ``find_devices`` wrapper is broken (calls a missing ``find_devices_raw``), so the
    probe constructs a one-channel ``usrp_source`` on empty device args, which fails fast without a device.
    """
    os.environ.setdefault("UHD_LOG_CONSOLE_LEVEL", "warning")
    try:
        from gnuradio import uhd
        with _quiet_stderr():
            src = uhd.usrp_source(uhd.device_addr_t(""), uhd.stream_args(cpu_format="fc32", channels=[0]))
    except Exception:  # noqa: BLE001 - "No devices found" and friends
        return None
    try:
        serial = dict(src.get_usrp_info(0)).get("mboard_serial", "")
    except Exception:  # noqa: BLE001
        serial = ""
    del src
    return f"serial={serial}" if serial else ""
