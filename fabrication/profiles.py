"""Curvature-continuous transition profiles and the shortest stage lengths they allow.

A *stage* moves every fiber laterally from ``A`` to ``B`` (mm) while z advances by ``ℓ``;
all fibers share one normalised profile ``S(u)``, ``u = (z − z0)/ℓ``, so the lateral
position is ``A + (B − A) S(u)``. The profile family used here ramps the slope up with a
cubic smoothstep over ``[0, a]``, cruises at constant slope and ramps down symmetrically::

    S'(u) = c · g(u),   g = 3v² − 2v³ on the ramps (v = u/a), 1 in between,  c = 1/(1 − a)

so ``S`` is C² (``S''`` is continuous and zero at both ends): curvature is continuous and
the path joins straight sections without a kink in curvature. ``a = 1/2`` is a pure
S-curve; small ``a`` gives long straight diagonals for long moves.

Bounds for a lateral move ``Δ`` over ``ℓ``: tilt ``tan θ = Δ S'/ℓ ≤ Δ c/ℓ``; curvature
``κ ≤ |x''| = Δ |S''|/ℓ² ≤ 1.5 c Δ/(a ℓ²)``.
"""

from __future__ import annotations

import numpy as np

__all__ = ["A_GRID", "min_stage_length", "profile", "profile_max"]

A_GRID = np.round(np.linspace(0.05, 0.5, 46), 4)


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
    s_lo = np.where(ramp, c * a * (v**3 - 0.5 * v**4), c * (0.5 * a + (w - a)))
    d1 = np.where(ramp, c * (3 * v**2 - 2 * v**3), c)
    d2 = np.where(ramp, c * (6 * v - 6 * v**2) / a, 0.0)
    s = np.where(flip, 1.0 - s_lo, s_lo)
    d2 = np.where(flip, -d2, d2)
    return s, d1, d2


def profile_max(a: float | np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Maximum ``S'`` and ``|S''|`` of the profile with ramp fraction ``a``."""
    a = np.asarray(a, dtype=np.float64)
    c = 1.0 / (1.0 - a)
    return c, 1.5 * c / a


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
