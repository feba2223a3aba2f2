"""Typed errors: one clear message naming the field and what was expected.

:class:`UserError` is the one root of every error the testbed raises on purpose about something the user
can fix — bad input, a damaged file, unavailable hardware, a device that does not answer. The command line
(:mod:`isac_testbed.cli`) prints such an error as one line ``isac-testbed COMMAND: error: MESSAGE`` and
exits with status 2; anything else is a bug and keeps its traceback. ``ris_driver`` (``RisError``) and
``calibration`` (``CalibrationError``, ``HardwareUnavailable``) derive their errors from it; this module
imports nothing, so every layer may use it.
"""


class UserError(Exception):
    """Root of every user-facing error (exit status 2, one line, no traceback)."""


class IsacError(UserError):
    """Base class of every error isac_opt raises on purpose."""


class ScenarioError(IsacError, ValueError):
    """A scenario field has an invalid value. ``field`` names it, the message says what was expected."""

    def __init__(self, field: str, expected: str, got=None):
        self.field = field
        self.expected = expected
        msg = f"scenario field '{field}': expected {expected}"
        if got is not None:
            msg += f", got {got!r}"
        super().__init__(msg)


class DesignFileError(IsacError, ValueError):
    """A design file is damaged, truncated, foreign or inconsistent."""


class MethodError(IsacError, ValueError):
    """An unknown design method, or one that does not fit the scenario."""


class InfeasibleDesignError(IsacError):
    """A design violates a constraint of its problem (the certified-design contract, :mod:`isac_opt.contract`)."""


class ConfigError(IsacError, ValueError):
    """A block, flowgraph or bench parameter does not fit (names the parameter and what was expected)."""
