"""Shortest length of one stage that keeps every pair of fibers apart.

A stage moves every fiber on a straight lateral segment from ``start`` to ``end`` while z
advances by ``ℓ``, all with the same profile ``S`` (:mod:`fabrication.profiles`). Two fibers
``i, j`` then keep the horizontal offset ``h(u) = h0 + (h1 − h0) S(u)``: the segment from
their start offset to their end offset. Two things decide whether the stage is possible and
how long it must be:

- the **horizontal** distance ``|h(u)|`` must never fall below the clearance, whatever the
  length (the construction in :mod:`fabrication.braid` guarantees this with lanes);
- the **3D** distance of two nearly parallel fibers with common slope ``v`` is
  ``sqrt(|h|² − (h·v)²/(1 + |v|²))``: fibers that travel together along their offset come
  closer than their horizontal distance, so a stage must be long enough (``v`` small enough).

:func:`stage_length` finds every pair that comes within reach at any point of the stage
(k-d trees at positions spaced so that no fiber moves more than ``step_mm`` between them),
checks the first condition exactly on a fine grid of ``S`` and returns the shortest length
and ramp fraction that satisfy tilt, bend radius and the second. The checks in
:mod:`fabrication.checks` then measure the printed polylines exactly.
"""

from __future__ import annotations

import math

import numpy as np
from scipy.spatial import cKDTree

from fabrication.profiles import A_GRID, profile, profile_max

__all__ = ["StageInfeasible", "close_pairs", "stage_length"]


class StageInfeasible(ValueError):
    """Two fibers of a stage come closer than the clearance whatever its length."""


def close_pairs(
    start: np.ndarray, end: np.ndarray, reach_mm: float, *, step_mm: float = 0.5
) -> np.ndarray:
    """Pairs of fibers whose horizontal distance falls within ``reach_mm`` during the stage.

    Parameters
    ----------
    start, end : (n, 2) float
        Lateral positions at the start and end of the stage, mm.
    reach_mm : float
        Distance of interest, mm.
    step_mm : float
        Largest move of any fiber between two sampled positions, mm.

    Returns
    -------
    (m, 2) int64
        Pairs ``(i, j)``, ``i < j``, sorted; every pair that comes within ``reach_mm`` is
        included (positions are sampled densely enough that a pair within reach between two
        samples is within ``reach_mm + 2 step_mm`` at one of them).
    """
    start = np.asarray(start, dtype=np.float64)
    end = np.asarray(end, dtype=np.float64)
    n = start.shape[0]
    if n < 2:
        return np.zeros((0, 2), dtype=np.int64)
    delta = end - start
    # relative moves, not absolute ones, decide how densely to sample: a rigid translation
    # needs only its end points (the offsets never change)
    spread = delta - np.median(delta, axis=0)
    dmax = float(np.max(np.linalg.norm(spread, axis=1)))
    k = max(2, math.ceil(dmax / step_mm) + 1)
    keys = []
    for s in np.linspace(0.0, 1.0, k):
        pts = start + delta * s
        p = cKDTree(pts).query_pairs(reach_mm + 2.0 * step_mm, output_type="ndarray")
        if p.size:
            keys.append(p[:, 0].astype(np.int64) * n + p[:, 1])
    if not keys:
        return np.zeros((0, 2), dtype=np.int64)
    u = np.unique(np.concatenate(keys))
    return np.column_stack(np.divmod(u, n)).astype(np.int64)


def stage_length(
    start: np.ndarray,
    end: np.ndarray,
    clearance_mm: float,
    tan_tilt: float,
    bend_radius_mm: float,
    *,
    reserve_mm: float = 0.002,
) -> tuple[float, float]:
    """Shortest length (mm) and ramp fraction of a stage from ``start`` to ``end``.

    Tilt stays within ``atan(tan_tilt)``, the bend radius at or above ``bend_radius_mm`` and
    every pair at least ``clearance_mm`` apart in 3D (nearly-parallel approximation; a pair
    keeps half of its horizontal slack, at most ``reserve_mm``, in reserve for it). A 0.5 %
    margin is added.

    Raises
    ------
    StageInfeasible
        If two fibers come closer than ``clearance_mm`` horizontally (no length helps).
    """
    start = np.asarray(start, dtype=np.float64)
    end = np.asarray(end, dtype=np.float64)
    delta = end - start
    dmax = float(np.max(np.linalg.norm(delta, axis=1))) if delta.size else 0.0
    if dmax == 0.0:
        return 0.0, 0.5
    reach = 1.5 * clearance_mm
    # coarse sampling (at most ~25 positions) with a correspondingly larger search radius,
    # then keep only the pairs whose offset segment really comes within reach
    pairs = close_pairs(start, end, reach, step_mm=max(0.5, dmax / 24.0))
    if pairs.size:
        p0 = start[pairs[:, 1]] - start[pairs[:, 0]]
        dp = delta[pairs[:, 1]] - delta[pairs[:, 0]]
        with np.errstate(divide="ignore", invalid="ignore"):
            t = np.clip(-np.sum(p0 * dp, 1) / np.sum(dp * dp, 1), 0.0, 1.0)
        t = np.nan_to_num(t)
        pairs = pairs[np.linalg.norm(p0 + dp * t[:, None], axis=1) <= reach]
    i, j = pairs[:, 0], pairs[:, 1]
    h0 = start[j] - start[i]
    dh = delta[j] - delta[i]
    mean = 0.5 * (delta[i] + delta[j])
    # scalar products so that h(u) = h0 + dh S(u) never needs a (pairs, u, 2) array
    hh0 = np.sum(h0 * h0, axis=1)[:, None]
    hdh = np.sum(h0 * dh, axis=1)[:, None]
    dd = np.sum(dh * dh, axis=1)[:, None]
    hm0 = np.sum(h0 * mean, axis=1)[:, None]
    dm = np.sum(dh * mean, axis=1)[:, None]
    m2 = np.sum(mean**2, axis=1)[:, None]
    if i.size:
        # horizontal distance over the whole segment: exact minimum of |h0 + dh s|, s in [0, 1]
        with np.errstate(divide="ignore", invalid="ignore"):
            s_star = np.clip(np.where(dd > 0, -hdh / dd, 0.0), 0.0, 1.0)
        closest = np.sqrt(np.maximum(hh0 + 2 * hdh * s_star + dd * s_star**2, 0.0)).ravel()
        bad = int(np.argmin(closest))
        if closest[bad] < clearance_mm - 1e-9:
            raise StageInfeasible(
                f"fibers {i[bad]} and {j[bad]} pass {closest[bad]:.3f} mm apart, below the "
                f"{clearance_mm:g} mm clearance"
            )
    u = np.linspace(0.0, 1.0, 161)[1:-1]
    best: tuple[float, float] = (math.inf, 0.5)
    for a in A_GRID[::5]:
        s, s1, _ = profile(u, a)
        c1, c2 = profile_max(a)
        need = max(float(dmax * c1 / tan_tilt), math.sqrt(float(dmax * c2 * bend_radius_mm)))
        if i.size:
            h2 = hh0 + 2 * hdh * s + dd * s**2
            target = clearance_mm + np.minimum(0.5 * (np.sqrt(h2) - clearance_mm), reserve_mm)
            g = h2 - target**2
            q = (hm0 + dm * s) ** 2 * s1**2
            if np.any((g <= 0) & (q > 0)):
                continue
            with np.errstate(divide="ignore", invalid="ignore"):
                req = np.where(q > 0, q / np.maximum(g, 1e-300), 0.0) - m2 * s1**2
            need = max(need, math.sqrt(max(0.0, float(np.max(req)))) * 1.02)
        if need < best[0]:
            best = (need, float(a))
    if not math.isfinite(best[0]):
        raise StageInfeasible("no profile keeps the clearance: fibers start or end too close")
    return best[0] * 1.005, best[1]
