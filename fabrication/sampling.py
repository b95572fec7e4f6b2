"""Polylines of a route: the exact centerlines the meshes are built on.

Every stage moves fiber ``i`` by ``Δ_i`` along one shared profile ``S(u)``
(:mod:`fabrication.profiles`), so between two vertices at ``u_a < u_b`` the chord of fiber
``i`` deviates from its smooth centerline by at most (at equal z, hence also in 3D)

    |Δ_i| · max|S''| · (u_b − u_a)² / 8 = max|x_i''| · (z_b − z_a)² / 8,

the sagitta bound of the interpolation error. Vertices (*rings*) are placed per fiber where
this bound would exceed the chord tolerance, farthest first (greedy, which needs the fewest
rings): densely where a fiber bends, and nowhere inside a straight run, which keeps only its
two end rings. ``S''`` is piecewise linear, so its maximum over a chord is exact on a grid
that holds its breakpoints.

Fibers that move by similar amounts in a stage share their ring levels (classes of
``|Δ|`` a factor ``2^(1/4)`` apart, each sampled for its largest move). In the fans, where
neighbours leave the face exactly at the clearance, all fibers share one set, and a chord
is also shortened until the exact distance between the chords of any two neighbours stays
at the clearance (a chord that tilts where the smooth curves are still parallel would
bring them closer).

All fibers are stored at common z levels: the union of all ring levels, the stage joins,
the points of largest curvature, and a grid at most ``max_step_mm`` apart (for the
clearance search). Each fiber's printed polyline passes through its rings only; its
position at every other common level is stored by linear interpolation along that
polyline, so the checks in :mod:`fabrication.checks` measure the printed polylines exactly.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

from fabrication.process import ProcessConfig
from fabrication.profiles import R_JERK, profile
from fabrication.routing import Route, Stage

__all__ = ["Polylines", "curvature", "sample_route", "segment_distances"]


@dataclass(frozen=True)
class Polylines:
    """Sampled centerlines.

    Attributes
    ----------
    z : (k,) float
        Common levels, mm, ascending from 0 to the bundle length.
    xy : (k, n, 2) float
        Position of every fiber's printed polyline at each level, mm.
    rings : (k, n) bool
        True where the fiber's polyline has a vertex (always at the first and last level).
    curvature : (k, n) float
        Curvature of the true (smooth) centerline at each level, 1/mm.
    slope : (k, n) float
        ``tan`` of the tilt of the true centerline at each level.
    """

    z: np.ndarray = field(repr=False)
    xy: np.ndarray = field(repr=False)
    rings: np.ndarray = field(repr=False)
    curvature: np.ndarray = field(repr=False)
    slope: np.ndarray = field(repr=False)

    @property
    def n_fibers(self) -> int:
        """Number of fibers."""
        return self.xy.shape[1]

    def fiber_vertices(self, i: int) -> np.ndarray:
        """``(m, 3)`` vertices (x, y, z in mm) of fiber ``i``'s polyline."""
        k = np.flatnonzero(self.rings[:, i])
        return np.column_stack([self.xy[k, i, :], self.z[k]])

    def arc_lengths(self) -> np.ndarray:
        """``(n,)`` length of every printed polyline, mm."""
        dxy = np.diff(self.xy, axis=0)
        dz = np.diff(self.z)[:, None]
        return np.sum(np.sqrt(np.sum(dxy**2, axis=2) + dz**2), axis=0)


def segment_distances(p1: np.ndarray, q1: np.ndarray, p2: np.ndarray, q2: np.ndarray) -> np.ndarray:
    """Exact distance between 3D segments ``[p1, q1]`` and ``[p2, q2]`` (row-wise).

    Parameters
    ----------
    p1, q1, p2, q2 : (m, 3) float
        Segment end points; segments must have positive length.
    """
    d1 = q1 - p1
    d2 = q2 - p2
    r = p1 - p2
    a = np.einsum("ij,ij->i", d1, d1)
    e = np.einsum("ij,ij->i", d2, d2)
    f = np.einsum("ij,ij->i", d2, r)
    c = np.einsum("ij,ij->i", d1, r)
    b = np.einsum("ij,ij->i", d1, d2)
    denom = a * e - b * b
    with np.errstate(divide="ignore", invalid="ignore"):
        s = np.where(denom > 1e-14 * a * e, np.clip((b * f - c * e) / denom, 0.0, 1.0), 0.0)
        t = (b * s + f) / e
        s = np.where(t < 0, np.clip(-c / a, 0, 1), np.where(t > 1, np.clip((b - c) / a, 0, 1), s))
    t = np.clip(t, 0.0, 1.0)
    diff = (p1 + d1 * s[:, None]) - (p2 + d2 * t[:, None])
    return np.sqrt(np.einsum("ij,ij->i", diff, diff))


def curvature(d1: np.ndarray, d2: np.ndarray) -> np.ndarray:
    """Curvature ``|r' × r''| / |r'|³`` of ``r(z) = (x, y, z)`` from lateral derivatives.

    Parameters
    ----------
    d1, d2 : (..., 2) float
        ``dx/dz`` and ``d²x/dz²``.
    """
    vx, vy = d1[..., 0], d1[..., 1]
    ax, ay = d2[..., 0], d2[..., 1]
    # r' = (vx, vy, 1), r'' = (ax, ay, 0): cross = (-ay, ax, vx ay - vy ax)
    cross = np.sqrt(ay**2 + ax**2 + (vx * ay - vy * ax) ** 2)
    return cross / (1.0 + vx**2 + vy**2) ** 1.5


_CLASS_RATIO = 2.0**0.25  # moves within this factor share their ring levels
_GRID = 4000  # u samples per stage for placing rings (plus breakpoints and grid levels)
_SNAP = 0.85  # reuse an existing level when it reaches this fraction of the longest chord


def _breakpoints(a: float) -> np.ndarray:
    """Where ``S''`` of the profile with ramp fraction ``a`` changes slope (u in (0, 1))."""
    r = R_JERK
    return np.array([a * r, a * (1 - r), a, 0.5, 1 - a, 1 - a * (1 - r), 1 - a * r])


def _greedy_rings(
    u: np.ndarray,
    s2: np.ndarray,
    limit: float,
    existing: np.ndarray,
    ok: Callable[[int, int, int], bool] | None = None,
) -> np.ndarray:
    """Indices into ``u`` of the rings of one move size, first and last included.

    Each chord ``[u_i, u_j]`` keeps ``max |S''| (u_j − u_i)² < limit``; it is extended as far
    as that allows (greedy: the fewest chords), or ends on an ``existing`` level that reaches
    at least ``_SNAP`` of that length, so that fibers share levels where it costs little.
    ``ok(h, i, j)``, if given, must also accept the chord ``[u_i, u_j]`` that follows the
    chord ``[u_h, u_i]``; otherwise the chord is shortened (bisection) until it does.
    """
    out = [0]
    i, last = 0, u.size - 1
    while i < last:
        cost = np.maximum.accumulate(s2[i:]) * (u[i:] - u[i]) ** 2  # non-decreasing
        j = i + max(1, int(np.searchsorted(cost, limit, side="left")) - 1)
        if j < last:
            ex = np.flatnonzero(existing[i + 1 : j + 1])
            if ex.size and u[i + 1 + ex[-1]] - u[i] >= _SNAP * (u[j] - u[i]):
                j = i + 1 + int(ex[-1])
        h = out[-2] if len(out) > 1 else -1
        if ok is not None and j > i + 1 and not ok(h, i, j):
            good, bad = i + 1, j  # largest accepted end by bisection
            while bad - good > 1:
                mid = (good + bad) // 2
                if ok(h, i, mid):
                    good = mid
                else:
                    bad = mid
            j = good
        out.append(j)
        i = j
    return np.array(out, dtype=np.int64)


def _fan_clearance(
    st: Stage, z: np.ndarray, u: np.ndarray, clearance_mm: float, straight_mm: float
) -> Callable[[int, int, int], bool]:
    """Acceptance test of fan chords shared by all fibers: neighbours stay clear.

    A fan leaves the face with neighbours exactly at the clearance; a chord that already
    tilts there brings two co-moving neighbours closer in 3D than their smooth curves (by
    ``h (1 − cos θ)``). The test takes the exact distance of the chords of every pair of
    neighbours (and of the chords before and after, straight at the stage ends) and accepts
    it if none is closer than the clearance less 0.01 µm.
    """
    from scipy.spatial import cKDTree

    pairs: set[tuple[int, int]] = set()
    for ends in (st.start, st.end):
        pairs |= cKDTree(ends).query_pairs(1.5 * clearance_mm)
    if not pairs:
        return lambda _h, _i, _j: True
    p = np.array(sorted(pairs), dtype=np.int64)
    a, b = p[:, 0], p[:, 1]
    s = profile(u, st.a)[0]
    delta = st.end - st.start
    floor = clearance_mm - 1e-5
    last = u.size - 1

    def pts(f: np.ndarray, k: int) -> np.ndarray:
        if k < 0:  # straight run before the stage
            return np.column_stack([st.start[f], np.full(f.size, z[0] - straight_mm)])
        if k > last:  # straight run after the stage
            return np.column_stack([st.end[f], np.full(f.size, z[-1] + straight_mm)])
        return np.column_stack([st.start[f] + delta[f] * s[k], np.full(f.size, z[k])])

    def ok(h: int, i: int, j: int) -> bool:
        ai, aj, bi, bj = pts(a, i), pts(a, j), pts(b, i), pts(b, j)
        d = segment_distances(ai, aj, bi, bj).min()
        ah, bh = pts(a, h), pts(b, h)
        d = min(d, segment_distances(ah, ai, bi, bj).min(), segment_distances(ai, aj, bh, bi).min())
        if j == last:
            an, bn = pts(a, last + 1), pts(b, last + 1)
            d = min(
                d, segment_distances(aj, an, bi, bj).min(), segment_distances(ai, aj, bj, bn).min()
            )
        return bool(d >= floor)

    return ok


def _move_classes(move: np.ndarray, shared: bool) -> list[tuple[float, np.ndarray]]:
    """Group moving fibers by move size: ``[(largest move in the class, fiber indices)]``."""
    moving = np.flatnonzero(move > 0)
    if moving.size == 0:
        return []
    m = move[moving]
    top = float(m.max())
    if shared:
        return [(top, moving)]
    cls = np.floor(np.log(top / m) / np.log(_CLASS_RATIO) + 1e-9).astype(np.int64)
    groups = []
    for c in np.unique(cls):
        sel = cls == c
        groups.append((float(m[sel].max()), moving[sel]))
    return groups  # largest moves first


def _stage_rings(
    route: Route, tol: float, max_step_mm: float, clearance_mm: float
) -> tuple[np.ndarray, list[tuple[np.ndarray, np.ndarray]]]:
    """Common levels and, per ring set, ``(ring z values, fibers)``."""
    bounds = route.stage_bounds()
    total = route.length_mm
    n_grid = max(1, math.ceil(total / max_step_mm))
    grid = np.linspace(0.0, total, n_grid + 1)
    ring_sets: list[tuple[np.ndarray, np.ndarray]] = []
    eps = 1e-4  # mm: levels closer than 0.1 µm are merged (no degenerate chords)
    levels = [bounds, np.array([0.0, bounds[0], bounds[-1], total])]
    for k, st in enumerate(route.stages):
        lo, hi, ln = bounds[k], bounds[k + 1], st.length_mm
        if ln <= 0:
            continue
        g_u = (grid[(grid > lo) & (grid < hi)] - lo) / ln
        fixed = np.concatenate([[0.0, 1.0], _breakpoints(st.a), g_u])
        u = np.unique(np.concatenate([np.linspace(0.0, 1.0, _GRID + 1), fixed]))
        u = u[np.concatenate([np.diff(u) > eps / ln, [True]])]  # keeps u = 1
        u[0] = 0.0
        s2 = np.abs(profile(u, st.a)[2])
        existing = np.zeros(u.size, dtype=bool)
        existing[np.minimum(np.searchsorted(u, fixed - eps / ln), u.size - 1)] = True
        existing[[0, -1]] = True
        move = np.linalg.norm(st.end - st.start, axis=1)
        fan = st.kind.startswith("fan")
        ok = None
        if fan:
            zu = np.where(u == 1.0, hi, lo + u * ln)
            ok = _fan_clearance(st, zu, u, clearance_mm, min(1.0, route.end_mm))
        used = np.zeros(u.size, dtype=bool)  # rings and the profile's breakpoints
        used[np.minimum(np.searchsorted(u, _breakpoints(st.a) - eps / ln), u.size - 1)] = True
        for top, fibers in _move_classes(move, shared=fan):
            # chord error |Δ| max|S''| Δu² / 8 below the tolerance
            idx = _greedy_rings(u, s2, 8.0 * tol / top, existing, ok)
            existing[idx] = True
            used[idx] = True
            ring_sets.append((np.where(idx == u.size - 1, hi, lo + u[idx] * ln), fibers))
        levels.append(np.where(u == 1.0, hi, lo + u * ln)[used])
    z = np.unique(np.concatenate(levels))
    z = z[(z >= 0.0) & (z <= total)]
    # fill gaps wider than max_step_mm evenly (they only serve the clearance search)
    gaps = np.diff(z)
    fill = [
        np.linspace(z0, z0 + g, math.ceil(g / max_step_mm) + 1)[1:-1]
        for z0, g in zip(z[:-1], gaps, strict=True)
        if g > max_step_mm
    ]
    if fill:
        z = np.unique(np.concatenate([z, *fill]))
    return z, ring_sets


def sample_route(
    route: Route,
    process: ProcessConfig,
    max_step_mm: float = 1.0,
    clearance_mm: float | None = None,
) -> Polylines:
    """Sample a route into printable polylines (see module docstring).

    Parameters
    ----------
    route : Route
        The routed fibers.
    process : ProcessConfig
        Supplies the chord tolerance: every chord stays within ``chord_tolerance_mm`` of
        the smooth centerline.
    max_step_mm : float
        Largest spacing of the common levels, mm (they only bound the clearance search;
        straight runs get no extra rings).
    clearance_mm : float, optional
        Required centerline clearance (default channel + wall). In the fans, where
        neighbours run at the clearance, chords are also kept short enough that no two
        neighbours' chords come closer than that.
    """
    if clearance_mm is None:
        clearance_mm = process.min_pitch_mm
    if max_step_mm <= 0:
        raise ValueError(f"max_step_mm must be positive, got {max_step_mm} mm")
    tol = process.chord_tolerance_mm
    z, ring_sets = _stage_rings(route, tol, max_step_mm, clearance_mm)
    # exact level values: stage joins must compare equal to what Route.evaluate uses
    pos, d1, d2 = route.evaluate(z)
    kap = curvature(d1, d2)
    slope = np.sqrt(np.sum(d1**2, axis=2))
    del d1, d2
    k_lv, n = kap.shape
    rings = np.zeros((k_lv, n), dtype=bool)
    rings[0] = True
    rings[-1] = True
    for zr, fibers in ring_sets:
        k = np.searchsorted(z, zr)
        if np.any(z[np.minimum(k, k_lv - 1)] != zr):  # pragma: no cover - construction error
            raise RuntimeError("ring level missing from the common levels")
        rings[np.ix_(k, fibers)] = True
    # printed polyline: interpolate between rings at every level
    xy = pos
    for i in range(n):
        kk = np.flatnonzero(rings[:, i])
        if kk.size == k_lv:
            continue
        for c in range(2):
            xy[:, i, c] = np.interp(z, z[kk], pos[kk, i, c])
    return Polylines(z, xy, rings, kap, slope)
