"""Typed errors of the calibration package: one clear message naming the field and what was expected."""
from __future__ import annotations

from isac_opt.errors import UserError


class CalibrationError(UserError, ValueError):
    """Bad input or a damaged calibration file. ``field`` names the culprit."""

    def __init__(self, field: str, expected: str, got=None):
        self.field = field
        self.expected = expected
        msg = f"calibration field '{field}': expected {expected}"
        if got is not None:
            msg += f", got {got}"
        super().__init__(msg)


class StaleCalibrationError(CalibrationError):
    """The calibration was made for other settings: a key field (LO, fs, gains, hardware id...) changed."""

    def __init__(self, field: str, stored, expected):
        self.stored = stored
        self.expected_value = expected
        ValueError.__init__(
            self, f"stale calibration: key field '{field}' changed (file has {stored!r}, "
                  f"now {expected!r}); re-run the calibration for the new settings")
        self.field = field
        self.expected = repr(expected)


class NotCalibratedError(UserError, RuntimeError):
    """``apply``/``embed``/``save`` was called before ``run`` or ``from_coefs``."""


class HardwareUnavailable(UserError, RuntimeError):
    """The requested SDR/RIS backend is not attached or its driver is missing."""
