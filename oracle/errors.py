"""Errors the oracle raises: every message names the loss, the argument, the value and
what was expected, so that nothing returns a silently wrong number."""

from __future__ import annotations


class OracleError(ValueError):
    """Base class of every error raised for bad input to the oracle."""


class UnknownLossError(OracleError, KeyError):
    """A loss id that is neither a documented id nor an alias."""

    def __str__(self) -> str:  # KeyError would quote the message
        return str(self.args[0]) if self.args else ""


class OptionError(OracleError):
    """An unknown option, or an option value outside its documented domain."""


class InputError(OracleError):
    """A missing or unexpected input, an input of the wrong shape, or a value outside
    the input's documented domain (a sparse label outside [0, C), a CTC label sequence
    longer than its frames allow, a negative Poisson target, ...)."""


def describe(value: object, limit: int = 60) -> str:
    """A short printable form of a value for an error message (numbers as a user wrote
    them: 0.5, not mpf('0.5'))."""
    import mpmath

    if isinstance(value, mpmath.mpf):
        text = mpmath.nstr(value, 17)
    elif hasattr(value, "item") and getattr(value, "shape", None) == ():
        text = repr(value.item())
    else:
        text = repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."
