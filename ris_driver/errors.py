"""Exception hierarchy of ``ris_driver``.

``RisError`` is the base of every error the driver raises on purpose; bad arguments raise the
built-in ``ValueError`` / ``TypeError`` with a message naming the field.

::

    RisError
    ├── RisTimeout        no (valid) reply within the deadline after all retries
    ├── RisNack           the device answered with an error code (``ER;E=<code>``)
    ├── RisProtocolError  a frame that does not parse (bad start, bad CRC, bad field ...)
    ├── RisVerifyError    read-back after apply differs from the commanded state
    └── RisInputError     a device URL or pattern that does not parse (also a ValueError)
"""
from __future__ import annotations

from isac_opt.errors import UserError  # the testbed's one error root (a leaf module, no imports)


class RisError(UserError):
    """Base class of every error ``ris_driver`` raises on purpose."""


class RisTimeout(RisError, TimeoutError):
    """No valid reply arrived before the deadline (after all bounded retries)."""


class RisNack(RisError):
    """The device rejected a command with an error code.

    Attributes
    ----------
    code : int
        Error code from the reply (see ``frames.ERROR_CODES``).
    """

    def __init__(self, message: str, code: int = 0):
        super().__init__(message)
        self.code = code


class RisProtocolError(RisError, ValueError):
    """A frame is malformed: wrong start character, CRC mismatch, bad field or bad length."""


class RisVerifyError(RisError):
    """The state read back after an apply differs from the commanded state (after all cycles)."""


class RisInputError(RisError, ValueError):
    """A device URL or a pattern the user gave is invalid; the message names the part."""


#: Name -> class, used to re-raise typed errors received over ZMQ.
ERROR_TYPES = {c.__name__: c for c in (RisError, RisTimeout, RisNack, RisProtocolError, RisVerifyError)}
