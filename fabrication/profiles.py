"""Curvature-continuous transition profiles and the shortest stage lengths they allow.

A *stage* moves every fiber laterally from ``A`` to ``B`` (mm) while z advances by ``ℓ``;
all fibers share one normalised profile ``S(u)``, ``u = (z − z0)/ℓ``, so the lateral
position is ``A + (B − A) S(u)``. The profile family used here ramps the slope up over
``[0, a]``, cruises at constant slope and ramps down symmetrically::

    S'(u) = c · g(u/a) on the ramps, c in between,  c = 1/(1 − a)

where ``g`` rises from 0 to 1 with a trapezoidal derivative (the curvature rises linearly
over the first and last ``R_JERK`` of each ramp and is constant in between). ``S`` is C²:
curvature is continuous and zero at both ends, so paths join straight sections without a
jump in curvature. The near-constant curvature uses the bend-radius budget better than a
smoothstep ramp (peak ``|S''|`` is ``c/((1 − r) a)`` instead of ``1.5 c/a``). ``a = 1/2``
is a pure S-curve; small ``a`` gives long straight diagonals for long moves.

Bounds for a lateral move ``Δ`` over ``ℓ``: tilt ``tan θ = Δ S'/ℓ ≤ Δ c/ℓ``; curvature
``κ ≤ |x''| = Δ |S''|/ℓ² ≤ c Δ/((1 − r) a ℓ²)``.
"""

from __future__ import annotations

import numpy as np

__all__ = ["A_GRID", "R_JERK", "min_stage_length", "profile", "profile_max"]

A_GRID = np.round(np.linspace(0.05, 0.5, 46), 4)


R_JERK = 0.1  # fraction of each ramp over which the curvature rises or falls linearly


def _ramp(v: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``∫g, g, g'`` of the unit ramp ``g: 0 → 1`` on ``v ∈ [0, 1]`` with trapezoidal ``g'``.

    ``g'`` rises linearly over ``[0, r]``, stays flat, and falls linearly over ``[1 − r, 1]``
    (``r = R_JERK``), normalised so that ``g(1) = 1``; ``∫₀¹ g = 1/2``.
    """
    r = R_JERK
    k = 1.0 - r
    lo = v <= r
    hi = v >= 1.0 - r
    d1 = np.where(lo, v / r, np.where(hi, (1.0 - v) / r, 1.0)) / k
    g = np.where(lo, v**2 / (2 * r), np.where(hi, k - (1.0 - v) ** 2 / (2 * r), r / 2 + (v - r)))
    g = g / k
    w = v - r
    mid = (r**2 / 6 + r * w / 2 + w**2 / 2) / k
    end_mid = (r**2 / 6 + r * (1 - 2 * r) / 2 + (1 - 2 * r) ** 2 / 2) / k
    top = end_mid + (v - (1 - r)) - (r**3 - (1 - v) ** 3) / (6 * r) / k
    ig = np.where(lo, v**3 / (6 * r * k), np.where(hi, top, mid))
    return ig, g, d1


def profile(u: np.ndarray, a: float | np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``S(u), S'(u), S''(u)`` of the ramp-cruise-ramp profile; ``u`` clipped to [0, 1].

    Parameters
    ----------
    u : array
        Normalised stage coordinate.
    a : float or array broadcastable to ``u``
        Ramp fraction, ``0 < a <= 0.5``.
    """
    u = np.clip(np.asarray(u, dtype=np.float64), 0.0, 1.0)
    a = np.broadcast_to(np.asarray(a, dtype=np.float64), u.shape)
    c = 1.0 / (1.0 - a)
    flip = u > 0.5
    w = np.where(flip, 1.0 - u, u)  # distance from the nearer end
    v = np.clip(w / a, 0.0, 1.0)
    ramp = w <= a
    ig, g, dg = _ramp(v)
    s_lo = np.where(ramp, c * a * ig, c * (0.5 * a + (w - a)))
    d1 = np.where(ramp, c * g, c)
    d2 = np.where(ramp, c * dg / a, 0.0)
    s = np.where(flip, 1.0 - s_lo, s_lo)
    d2 = np.where(flip, -d2, d2)
    return s, d1, d2


def profile_max(a: float | np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Maximum ``S'`` and ``|S''|`` of the profile with ramp fraction ``a``."""
    a = np.asarray(a, dtype=np.float64)
    c = 1.0 / (1.0 - a)
    return c, c / ((1.0 - R_JERK) * a)


def min_stage_length(
    delta_mm: float, tan_tilt: float, bend_radius_mm: float
) -> tuple[float, float]:
    """Shortest stage length and its ramp fraction for a lateral move of ``delta_mm``.

    Returns ``(length_mm, a)`` with tilt ``<= atan(tan_tilt)`` and curvature radius
    ``>= bend_radius_mm`` everywhere (a 0.5 % safety margin is added).
    """
    if delta_mm <= 0:
        return 0.0, 0.5
    d1, d2 = profile_max(A_GRID)
    length = np.maximum(delta_mm * d1 / tan_tilt, np.sqrt(delta_mm * d2 * bend_radius_mm))
    i = int(np.argmin(length))
    return float(length[i]) * 1.005, float(A_GRID[i])
