"""The one error type the package raises on bad input.

A learner who types a wrong name or a bad string should read what was wrong and what is allowed,
not a traceback from deep inside torch. Every check in the package raises ``NASInputError``; the
command line turns it into one line on stderr and exit status 2.
"""

from __future__ import annotations


class NASInputError(ValueError):
    """Bad input: the message says what was wrong, what is allowed and, where it helps, what to do."""


def check_choice(kind: str, value, allowed) -> None:
    """Raise a clear error when ``value`` is not one of ``allowed``."""
    allowed = list(allowed)
    if value not in allowed:
        shown = ", ".join(repr(a) for a in allowed)
        raise NASInputError(f"unknown {kind} {value!r}; choose one of: {shown}")


def check_positive(kind: str, value) -> None:
    """Raise a clear error unless ``value`` is a number above zero."""
    try:
        ok = float(value) > 0
    except (TypeError, ValueError):
        ok = False
    if not ok:
        raise NASInputError(f"{kind} must be a number above zero, got {value!r}")
