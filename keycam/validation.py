"""Checks for values that reach keycam's public functions, with messages that name them.

Every check raises :class:`ValueError` whose message names the parameter, the value and the
unit, so that a command line can print it as its one ``error:`` line. Configuration models get
the same guarantees from :class:`keycam.config.ConfigModel`.
"""

from __future__ import annotations

import math
from typing import Any

__all__ = ["int_pair", "positive", "real"]


def real(name: str, value: Any, unit: str) -> float:
    """``value`` as a finite float; ``ValueError`` naming ``name`` and ``unit`` otherwise."""
    if isinstance(value, bool):
        raise ValueError(f"{name} must be a number in {unit}, got {value!r}")
    try:
        v = float(value)
    except (TypeError, ValueError):
        raise ValueError(f"{name} must be a number in {unit}, got {value!r}") from None
    if not math.isfinite(v):
        raise ValueError(f"{name} must be a finite number in {unit}, got {value!r}")
    return v


def positive(name: str, value: Any, unit: str) -> float:
    """``value`` as a finite float > 0; ``ValueError`` naming ``name`` and ``unit`` otherwise."""
    v = real(name, value, unit)
    if v <= 0:
        raise ValueError(f"{name} must be a finite number > 0 in {unit}, got {value!r}")
    return v


def int_pair(name: str, value: Any, what: str) -> tuple[int, int]:
    """``value`` as two integers >= 1 (e.g. a shape); ``ValueError`` naming ``what`` otherwise."""
    try:
        a, b = value
        ok = not isinstance(a, bool) and not isinstance(b, bool)
        ia, ib = int(a), int(b)
        ok = ok and ia == a and ib == b and ia >= 1 and ib >= 1
    except (TypeError, ValueError):
        ok = False
    if not ok:
        raise ValueError(f"{name} must be two positive integers ({what}), got {value!r}")
    return ia, ib
