"""Polylines of a route: the exact centerlines the meshes are built on.

All fibers are sampled at common z levels (dense where any fiber bends, at most
``max_step_mm`` apart elsewhere). Each fiber then keeps only the levels it needs as *rings*:
a chord between two consecutive rings deviates from the true curve by at most the chord
tolerance (sagitta ``κ h²/8`` with the largest curvature under the chord). The fiber's
polyline through its rings is what gets printed, and its position at every common level is
stored by linear interpolation, so the checks in :mod:`fabrication.checks` measure the
printed polylines exactly.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from fabrication.process import ProcessConfig
from fabrication.profiles import profile
from fabrication.routing import Route

__all__ = ["Polylines", "curvature", "sample_route"]


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


def _levels(route: Route, process: ProcessConfig, max_step_mm: float) -> np.ndarray:
    tol = process.chord_tolerance_mm
    t2 = 1.0 + process.tan_tilt**2
    zs = [np.array([0.0, route.end_mm])]
    bounds = route.stage_bounds()
    uf = np.linspace(0.0, 1.0, 4001)
    for k, st in enumerate(route.stages):
        lo, ln = bounds[k], st.length_mm
        if ln <= 0:
            continue
        _, _, s2 = profile(uf, st.a)
        kappa = st.max_move_mm * np.abs(s2) / ln**2
        # spacing for the chord tolerance, in z: h = sqrt(8 tol / κ) / sqrt(1 + t²)
        dens = np.sqrt(np.maximum(kappa, 0.0) * t2 / (8.0 * tol))
        dens = np.maximum(dens * 1.25, 1.0 / max_step_mm)  # rings per mm of z
        cum = np.concatenate([[0.0], np.cumsum(0.5 * (dens[1:] + dens[:-1]) * np.diff(uf) * ln)])
        m = max(1, math.ceil(cum[-1]))
        u = np.interp(np.linspace(0.0, cum[-1], m + 1), cum, uf)
        # include the points of largest |S''| and S' so maxima are seen
        extra = np.array([st.a / 2, 0.5, 1 - st.a / 2])
        u = np.unique(np.concatenate([u, extra]))
        zs.append(lo + u * ln)
    zs.append(np.array([route.length_mm - route.end_mm, route.length_mm]))
    z = np.unique(np.concatenate(zs))
    # drop levels closer than 1 µm (rounding at stage joins)
    keep = np.concatenate([[True], np.diff(z) > 1e-3])
    keep[-1] = True
    z = z[keep]
    if z.size >= 2 and z[-1] - z[-2] <= 1e-3:
        z = np.delete(z, -2)
    return z


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
        Supplies the chord tolerance.
    max_step_mm : float
        Largest spacing of the common levels, mm.
    clearance_mm : float, optional
        Required centerline clearance (default channel + wall): where a fiber's nearest
        neighbour is close to it, chords are kept within a third of the remaining slack.
    """
    if clearance_mm is None:
        clearance_mm = process.min_pitch_mm
    z = _levels(route, process, max_step_mm)
    pos, d1, d2 = route.evaluate(z)
    kap = curvature(d1, d2)
    slope = np.sqrt(np.sum(d1**2, axis=2))
    k_lv, n = kap.shape
    tol = process.chord_tolerance_mm
    t2 = 1.0 + process.tan_tilt**2
    # local slack: how much closer than its nearest neighbour a fiber could come (3D, for
    # nearly parallel neighbours h / sqrt(1 + v²)); chords may use at most a third of it
    from scipy.spatial import cKDTree

    allow = np.full((k_lv, n), tol)
    # fibers come close to the clearance only at the faces and in the fans (in lane and shift
    # stages the routing grid keeps them at least P/2 = clearance + margin apart)
    bounds = route.stage_bounds()
    near_face = np.zeros(k_lv, dtype=bool)
    for kk, st in enumerate(route.stages):
        if st.kind.startswith("fan"):
            near_face |= (z >= bounds[kk]) & (z <= bounds[kk + 1])
    if n > 1:
        for k in np.flatnonzero(near_face):
            dd, _ = cKDTree(pos[k]).query(pos[k], k=2)
            slack = dd[:, 1] / np.sqrt(1.0 + slope[k] ** 2) - clearance_mm
            allow[k] = np.clip(slack / 3.0, 0.0, tol)
    rings = np.zeros((k_lv, n), dtype=bool)
    rings[0] = True
    rings[-1] = True
    last = np.zeros(n, dtype=np.int64)
    kmax = kap[0].copy()
    amin = allow[0].copy()
    # greedy: extend each fiber's chord while the sagitta bound stays within tolerance
    for k in range(1, k_lv - 1):
        km = np.maximum(kmax, kap[k + 1])
        am = np.minimum(amin, allow[k + 1])
        # 10 % margin: curvature between levels may slightly exceed the sampled values
        span = z[k + 1] - z[last]
        too_long = 1.1 * km * span**2 * t2 / 8.0 > am
        rings[k] = too_long
        last = np.where(too_long, k, last)
        kmax = np.where(too_long, np.maximum(kap[k], kap[k + 1]), km)
        amin = np.where(too_long, np.minimum(allow[k], allow[k + 1]), am)
    # straight face-normal ends and stage joins keep a vertex: the ends stay exactly straight
    joins = np.concatenate([[route.end_mm, route.length_mm - route.end_mm], route.stage_bounds()])
    rings[np.isin(z, joins)] = True
    # printed polyline: interpolate between rings at every level
    xy = pos.copy()
    for i in range(n):
        kk = np.flatnonzero(rings[:, i])
        if kk.size == k_lv:
            continue
        for c in range(2):
            xy[:, i, c] = np.interp(z, z[kk], pos[kk, i, c])
    return Polylines(z, xy, rings, kap, slope)
