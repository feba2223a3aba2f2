"""Typed errors of isac_opt: one clear message naming the field and what was expected."""


class IsacError(Exception):
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
