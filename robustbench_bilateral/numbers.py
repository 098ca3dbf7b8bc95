"""Numbers as users write them: decimals (``0.0157``) or fractions (``"4/255"``), always finite."""

from __future__ import annotations

import math
from numbers import Integral, Real
from typing import Any

from robustbench_bilateral.errors import FieldError

NUMBER_EXAMPLE = 'write e.g. 0.03 or "8/255"'


def fraction_value(text: str) -> float:
    """The finite number written as a decimal (``"0.0157"``) or a fraction (``"4/255"``).

    Anything else raises ``ValueError`` whose message is the problem: "not a number", "division
    by zero" or "must be finite".
    """
    numerator, slash, denominator = text.strip().partition("/")
    try:
        value = float(numerator) / float(denominator) if slash else float(numerator)
    except ZeroDivisionError:
        raise ValueError("division by zero") from None
    except ValueError:
        raise ValueError("not a number") from None
    if not math.isfinite(value):
        raise ValueError("must be finite")
    return value


def parse_number(value: str | int | float, key: str) -> float:
    """A finite float from ``4``, ``0.5`` or ``"4/255"``; anything else is a ``FieldError`` naming ``key``.

    A real number is converted with ``float`` (exactly, numpy scalars included); a string goes
    through ``fraction_value``. Booleans are refused although Python counts them as numbers.
    """
    if isinstance(value, bool) or not isinstance(value, (str, Real)):
        raise FieldError(key, f"expected a number, got {value!r}: {NUMBER_EXAMPLE}")
    try:
        if isinstance(value, str):
            return fraction_value(value)
        number = float(value)
        if not math.isfinite(number):
            raise ValueError("must be finite")
        return number
    except (ValueError, OverflowError) as error:
        raise FieldError(key, f"bad number {value!r} ({error}): {NUMBER_EXAMPLE}") from error


def whole_number(value: Any, name: str, minimum: int | None, meaning: str = "") -> int:
    """``value`` as an int; anything but a whole number (>= ``minimum`` when given) is a ``FieldError``."""
    bound = "" if minimum is None else f" >= {minimum}"
    if isinstance(value, bool) or not isinstance(value, Integral) or (minimum is not None and value < minimum):
        raise FieldError(name, f"must be a whole number{bound}{meaning}, got {value!r}")
    return int(value)
