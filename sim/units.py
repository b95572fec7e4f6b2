"""Reading exposure times written by people: ``auto``, ``0.02``, ``20ms``, ``250 us``.

Light on purpose (standard library only) so that the capture command can check its
arguments before importing the optics stack.
"""

from __future__ import annotations

import math
import re

__all__ = ["MAX_EXPOSURE_S", "parse_exposure"]

#: Longest exposure accepted anywhere, seconds.
MAX_EXPOSURE_S = 3600.0

_UNITS_S = {"": 1.0, "s": 1.0, "ms": 1e-3, "us": 1e-6, "µs": 1e-6}
_PATTERN = re.compile(r"([0-9]*\.?[0-9]+(?:e[-+]?[0-9]+)?)\s*(s|ms|us|µs)?")


def parse_exposure(value: object, *, name: str = "exposure") -> float | str:
    """``"auto"``, a number of seconds, or a string with a unit (s, ms, us) -> seconds.

    Parameters
    ----------
    value : str, int or float
        ``"auto"`` (any case), ``0.02``, ``"0.02"``, ``"20ms"``, ``"250 us"``.
    name : str
        Name used in error messages (``"--exposure"`` on the command line).

    Returns
    -------
    ``"auto"`` or float seconds in (0, 3600].

    Raises
    ------
    ValueError
        Anything else, naming ``name``, the value and the unit.
    """
    if isinstance(value, bool):
        raise ValueError(f"{name}: expected 'auto' or a time in seconds, got {value!r}")
    if isinstance(value, str):
        t = value.strip().lower()
        if t == "auto":
            return "auto"
        m = _PATTERN.fullmatch(t)
        if not m:
            raise ValueError(
                f"{name}: expected 'auto' or a time like 0.01, 10ms, 250us; got {value!r}"
            )
        seconds = float(m.group(1)) * _UNITS_S[m.group(2) or ""]
    elif isinstance(value, int | float):
        seconds = float(value)
    else:
        raise ValueError(f"{name}: expected 'auto' or a time in seconds, got {value!r}")
    if not (math.isfinite(seconds) and 0 < seconds <= MAX_EXPOSURE_S):
        raise ValueError(f"{name}: must be > 0 s and <= {MAX_EXPOSURE_S:g} s, got {seconds:g} s")
    return seconds
