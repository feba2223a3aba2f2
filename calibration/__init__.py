"""calibration — bench calibration: pure estimators (estimate / apply / embed) and thin bench scripts.

Estimators (numpy/scipy only): :class:`ChainCal`, :class:`DirectChannelCal`, :class:`RisCascadeCal`,
:class:`RisStateCal`, :class:`ClutterCovCal`; files: :func:`make_key`, ``Calibration.load``;
simulated bench: :mod:`calibration.sim_bench`; command: :mod:`isac_testbed.calibrate`; using the files on the bench
(TX/RX corrections, key checks, estimated paper-A channels): :mod:`calibration.use`. See ``docs/calibration.md``.
"""
from .base import Calibration
from .chains import ChainCal
from .channels import DirectChannelCal, RisCascadeCal
from .clutter import ClutterCovCal
from .errors import CalibrationError, HardwareUnavailable, NotCalibratedError, StaleCalibrationError
from .ris_states import RisStateCal
from .store import make_key

__all__ = ["Calibration", "ChainCal", "DirectChannelCal", "RisCascadeCal", "RisStateCal", "ClutterCovCal",
           "CalibrationError", "StaleCalibrationError", "NotCalibratedError", "HardwareUnavailable", "make_key"]
