"""Percentiles of the bright tail of a frame, equal to :func:`numpy.percentile` bit for bit.

Auto exposure needs one high percentile (e.g. the 99.5th) of 65 536 expected electron counts
per frame. :func:`numpy.percentile` partially sorts the whole array for it (and for its
minimum and maximum); :func:`upper_percentile` finds a value below the wanted order
statistics from a strided subsample, keeps only the values at or above it (a few hundred),
and sorts those. Every value at or above the threshold is kept, ties included, so the order
statistics, and the linear interpolation between them (``numpy.percentile``'s default
method, computed with the same floating-point operations), are exactly those of the whole
array; when the subsample's guess keeps too few values it falls back to
:func:`numpy.percentile`.
"""

from __future__ import annotations

import math

import numpy as np
from numpy.typing import NDArray

__all__ = ["upper_percentile"]

#: Stride of the subsample that guesses the threshold.
_STRIDE = 16
#: Percentiles below this go straight to :func:`numpy.percentile` (nothing to gain).
_MIN_PERCENT = 50.0
#: Arrays smaller than this go straight to :func:`numpy.percentile`.
_MIN_SIZE = 4096


def upper_percentile(values: NDArray[np.float64], percent: float) -> float:
    """``float(numpy.percentile(values, percent))`` for a 1-D float64 array, faster.

    Parameters
    ----------
    values : (n,) float64
        The values (not modified).
    percent : float
        Percentile in [0, 100].

    Returns
    -------
    float
        The same number as ``numpy.percentile(values, percent)`` (linear method).
    """
    x = np.asarray(values)
    n = x.size
    q = np.true_divide(percent, 100)
    virtual = (n - 1) * q
    if x.ndim != 1 or x.dtype != np.float64 or n < _MIN_SIZE or percent < _MIN_PERCENT:
        return float(np.percentile(x, percent))
    top = x.max()
    if np.isnan(top):
        return float(np.percentile(x, percent))  # NaN, as numpy says
    if not virtual < n - 1:
        return float(top)
    prev = math.floor(virtual)
    need = n - prev  # values at or above the prev-th order statistic (0-based, ascending)
    sub = x[::_STRIDE]
    # Twice the expected count of such values in the subsample, plus a margin: a threshold
    # at that rank keeps enough values with overwhelming probability (checked below).
    j = min(sub.size - 1, 2 * math.ceil(need / _STRIDE) + 8)
    thr = np.partition(sub, sub.size - 1 - j)[sub.size - 1 - j]
    kept = x[x >= thr]
    if kept.size < need:
        return float(np.percentile(x, percent))
    base = n - kept.size  # rank of kept's smallest value in the whole array
    kept.partition((prev - base, prev + 1 - base))
    a, b = kept[prev - base], kept[prev + 1 - base]
    gamma = virtual - math.floor(virtual)
    # numpy's _lerp: a + (b - a) t, or b - (b - a)(1 - t) when t >= 0.5
    diff = b - a
    return float(b - diff * (1 - gamma)) if gamma >= 0.5 else float(a + diff * gamma)
