"""Manufacturability checks of routed fibers, each with its worst case and its limit.

Checks (all on the printed polylines of :mod:`fabrication.sampling`):

``clearance``
    Smallest 3D distance between the centerlines of two different fibers, which must be at
    least channel + wall. Tubes are polygons with their vertices *on* the nominal radius, so
    every facet lies inside the circle (facet sag only thins the core, see
    ``min_feature``) and each tube lies within the nominal radius of its polyline: centre
    distance − channel diameter is a lower bound on the printed wall. Between two common
    levels every polyline is one straight chord. Candidate pairs come from a KD-tree of the
    chord midpoints: two fibers ``d`` apart (``|Δz| ≤ d``) are at most ``d √(1 + t²)``
    apart horizontally at a common level (``t`` the steepest chord slope) and each moves at
    most half its chord from there to the midpoint, so a pair farther apart than that at
    every midpoint cannot be closer than ``d``. For the remaining pairs the exact
    segment-to-segment distance of the polylines is computed. The reported distance is
    exact up to 2 % above the larger of channel + wall and channel + minimum feature (so
    both verdicts that use it are decided on exact values); beyond that, the certified
    bound is reported.
``bend_radius``
    Smallest radius of curvature of the smooth centerlines.
``tilt``
    Largest angle of a centerline (smooth curve or printed chord) to the z axis.
``endpoints``
    Fiber ``i`` starts on input site ``i`` and ends on output site ``routing[i]``, both with
    straight face-normal ends of the process's end length: the printed polyline stays on
    the vertical through its site up to the first vertex at or beyond the end length, and
    the smooth centerline's slope there, times the end length, is the drift it would add.
``min_feature``
    Thinnest printed feature: the polygon core's smallest width, the thinnest wall, the
    housing margin.
``length``
    Bundle height against its bend-aware lower bound: a fiber displaced laterally by ``s``
    with tilt ≤ θ and bend radius ≥ R needs at least
    ``2 R sin φ + max(0, s − 2R(1 − cos θ)) / tan θ``, ``φ = min(θ, arccos(1 − s/(2R)))``
    (two arcs of radius R and a straight run at θ), plus the straight ends
    (:func:`fabrication.routing.bend_bound_mm`). A shorter bundle breaks tilt or bend radius
    somewhere, even between sampled levels. The straight-line bound (no fiber moves sideways
    faster than ``tan θ_max``) is reported beside it.
"""

from __future__ import annotations

import json
import math
from typing import Any

import numpy as np
from pydantic import BaseModel, ConfigDict
from scipy.spatial import cKDTree

from fabrication.process import ProcessConfig
from fabrication.routing import Route, bend_bound_mm, lower_bound_mm, two_lane_floor_mm
from fabrication.sampling import Polylines, segment_distances

__all__ = ["CheckReport", "CheckResult", "run_checks", "segment_distances"]

_TOL_MM = 1e-4  # tolerance of distance comparisons: 0.1 µm, far below any printer resolution
_EXACT_MARGIN = 1.02  # clearance distances are exact up to 2 % above the limits


class CheckResult(BaseModel):
    """One rule: the worst value found, the limit and where it occurs."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str
    passed: bool
    worst: float
    limit: float | None
    unit: str
    fiber: int | None = None
    other_fiber: int | None = None
    z_mm: float | None = None
    rule: str

    def message(self, cols: int) -> str:
        """One line naming the rule, the worst value and the fiber."""
        where = ""
        if self.fiber is not None:
            r, c = divmod(self.fiber, cols)
            where = f" at fiber {self.fiber} (input row {r}, col {c})"
            if self.other_fiber is not None:
                where += f" and fiber {self.other_fiber}"
            if self.z_mm is not None:
                where += f", z = {self.z_mm:.2f} mm"
        verdict = "ok" if self.passed else "VIOLATED"
        return f"{self.name} {verdict}: {self.rule}; worst {self.worst:.4g} {self.unit}{where}"


class CheckReport(BaseModel):
    """All checks of one routed key, serialisable to JSON."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    n_fibers: int
    rows: int
    cols: int
    process: dict[str, Any]
    face_pitch_mm: float
    route_pitch_mm: float
    decomposition: str
    length_mm: float
    lower_bound_mm: float
    displacement_sites: int
    length_ratio: float
    bend_bound_mm: float | None = None
    bend_bound_ratio: float | None = None
    two_lane_floor_mm: float | None = None
    two_lane_floor_ratio: float | None = None
    fiber_length_mm_max: float
    fiber_length_mm_mean: float
    n_stages: int
    checks: list[CheckResult]

    @property
    def passed(self) -> bool:
        """True if every check passed."""
        return all(c.passed for c in self.checks)

    def failures(self) -> list[CheckResult]:
        """The checks that failed."""
        return [c for c in self.checks if not c.passed]

    def to_json(self) -> str:
        """Indented JSON text."""
        d = self.model_dump(mode="json")
        d["passed"] = self.passed
        return json.dumps(d, indent=2)


def _clearance(pl: Polylines, exact_mm: float) -> tuple[float, int, int, float]:
    """Smallest centerline distance between different fibers and where: ``(d, i, j, z)``.

    ``d`` is the exact segment-to-segment distance of the printed polylines whenever it is
    below ``exact_mm``; otherwise every distance is at least ``exact_mm`` and that bound is
    returned, with the closest candidate pair (``i = j = -1`` if no two fibers come within
    reach at all).
    """
    z = pl.z
    xy = pl.xy
    k_lv = z.size
    dz = np.diff(z)
    # horizontal chord of every fiber between consecutive levels, and the steepest slope
    chord = np.sqrt(np.sum(np.diff(xy, axis=0) ** 2, axis=2))
    sec = math.sqrt(1.0 + float(np.max(chord / dz[:, None])) ** 2)
    drift = chord.max(axis=1)
    best = (math.inf, -1, -1, 0.0)
    # j-intervals that can hold the closest point to i's interval k
    lo_idx = np.searchsorted(z, z - exact_mm - 1e-9, side="right") - 1
    hi_idx = np.searchsorted(z, z + exact_mm + 1e-9, side="left")
    lo_idx = np.clip(lo_idx - 1, 0, k_lv - 2)
    hi_idx = np.clip(hi_idx, 0, k_lv - 2)
    for k in range(k_lv - 1):
        # fibers within exact_mm of each other somewhere in interval k are within this
        # reach of each other at the interval's midpoint (see the module docstring)
        reach = exact_mm * sec + drift[k] + 1e-6
        mid = 0.5 * (xy[k] + xy[k + 1])
        pairs = cKDTree(mid).query_pairs(reach, output_type="ndarray")
        if pairs.size == 0:
            continue
        i, j = pairs[:, 0], pairs[:, 1]
        ints_i = np.array([k])
        j_lo = lo_idx[k]
        j_hi = hi_idx[k + 1]
        ints_j = np.arange(j_lo, j_hi + 1)
        # bounding boxes: i over its interval, j over its window
        vi = xy[ints_i.min() : ints_i.max() + 2]
        vj = xy[j_lo : j_hi + 2]
        bi_lo, bi_hi = vi.min(axis=0)[i], vi.max(axis=0)[i]
        bj_lo, bj_hi = vj.min(axis=0)[j], vj.max(axis=0)[j]
        gap = np.maximum(0.0, np.maximum(bi_lo - bj_hi, bj_lo - bi_hi))
        gap = np.sqrt(np.sum(gap**2, axis=1))
        far = gap >= exact_mm
        if np.any(far):
            w = int(np.argmin(np.where(far, gap, np.inf)))
            if gap[w] < best[0]:
                best = (float(gap[w]), int(i[w]), int(j[w]), float(z[k]))
        i, j = i[~far], j[~far]
        if i.size == 0:
            continue
        ni, nj = ints_i.size, ints_j.size
        mi = np.repeat(ints_i, nj)
        mj = np.tile(ints_j, ni)
        # (pairs, combos, 3): segment ends of i over its interval, of j over its window
        pi, qi = _points(xy, z, mi, i), _points(xy, z, mi + 1, i)
        pj, qj = _points(xy, z, mj, j), _points(xy, z, mj + 1, j)
        d = segment_distances(
            pi.reshape(-1, 3), qi.reshape(-1, 3), pj.reshape(-1, 3), qj.reshape(-1, 3)
        ).reshape(i.size, -1)
        dmin = d.min(axis=1)
        w = int(np.argmin(dmin))
        if dmin[w] < best[0]:
            combo = int(np.argmin(d[w]))
            best = (float(dmin[w]), int(i[w]), int(j[w]), float(z[mi[combo]]))
    if best[0] > exact_mm:
        # no pair closer than exact_mm (pruned pairs and pairs out of reach are only
        # known to be farther): report the certified bound
        best = (exact_mm, best[1], best[2], best[3] if best[1] >= 0 else 0.0)
    return best


def _points(xy: np.ndarray, z: np.ndarray, levels: np.ndarray, fibers: np.ndarray) -> np.ndarray:
    """``(fibers, levels, 3)`` centerline points of ``fibers`` at the given level indices."""
    lateral = xy[levels][:, fibers].transpose(1, 0, 2)
    height = np.broadcast_to(z[levels][None, :, None], (fibers.size, levels.size, 1))
    return np.concatenate([lateral, height], axis=2)


def run_checks(route: Route, pl: Polylines, process: ProcessConfig, block_size: int) -> CheckReport:
    """Run every manufacturability check on a sampled route.

    Parameters
    ----------
    route : Route
        The routed fibers.
    pl : Polylines
        Its printed polylines (:func:`fabrication.sampling.sample_route`).
    process : ProcessConfig
        The limits.
    block_size : int
        Key block size, for the length lower bound.
    """
    face = route.face
    n = route.n_fibers
    results: list[CheckResult] = []
    s_req = process.min_pitch_mm
    e = process.end_length_mm
    nsides = process.polygon_sides()

    # clearance (exact wherever clearance or the wall as a feature could be decided)
    if n > 1:
        exact = _EXACT_MARGIN * max(s_req, process.channel_diameter_mm + process.min_feature_mm)
        dist, fi, fj, zc = _clearance(pl, exact)
    else:
        dist, fi, fj, zc = math.inf, -1, -1, 0.0
    results.append(
        CheckResult(
            name="clearance",
            passed=dist >= s_req - _TOL_MM,
            worst=dist,
            limit=s_req,
            unit="mm",
            fiber=fi if fi >= 0 else None,
            other_fiber=fj if fj >= 0 else None,
            z_mm=zc if fi >= 0 else None,
            rule=f"centerlines at least channel + wall = {s_req:g} mm apart",
        )
    )
    # bend radius
    k_i, f_i = np.unravel_index(int(np.argmax(pl.curvature)), pl.curvature.shape)
    kk, ff = int(k_i), int(f_i)
    kmax = float(pl.curvature[kk, ff])
    rmin = 1.0 / kmax if kmax > 0 else math.inf
    results.append(
        CheckResult(
            name="bend_radius",
            passed=rmin >= process.min_bend_radius_mm * (1 - 1e-9),
            worst=rmin,
            limit=process.min_bend_radius_mm,
            unit="mm",
            fiber=int(ff),
            z_mm=float(pl.z[kk]),
            rule=f"bend radius at least {process.min_bend_radius_mm:g} mm",
        )
    )
    # tilt (smooth curve and printed chords)
    dz = np.diff(pl.z)[:, None]
    chord = np.sqrt(np.sum(np.diff(pl.xy, axis=0) ** 2, axis=2)) / dz
    slopes = np.maximum(pl.slope, np.vstack([chord, chord[-1:]]))
    k_i, f_i = np.unravel_index(int(np.argmax(slopes)), slopes.shape)
    kk, ff = int(k_i), int(f_i)
    tilt = math.degrees(math.atan(float(slopes[kk, ff])))
    results.append(
        CheckResult(
            name="tilt",
            passed=tilt <= process.max_tilt_deg + 1e-9,
            worst=tilt,
            limit=process.max_tilt_deg,
            unit="deg",
            fiber=int(ff),
            z_mm=float(pl.z[kk]),
            rule=f"tilt from the z axis at most {process.max_tilt_deg:g} deg",
        )
    )
    # end points and straight ends: the printed polyline stays on the vertical through its
    # site up to the first level at or beyond the end length (a chord crossing e leans
    # inside the end); the smooth slope there, times e, is the drift it would add
    err_in = np.linalg.norm(pl.xy[0] - face.sites_mm, axis=1)
    err_out = np.linalg.norm(pl.xy[-1] - face.sites_mm[route.routing], axis=1)
    z_top = pl.z[-1]
    k_in = min(int(np.searchsorted(pl.z, e - 1e-9, side="left")), pl.z.size - 1)
    k_out = max(int(np.searchsorted(pl.z, z_top - e + 1e-9, side="right")) - 1, 0)
    dev_in = np.max(np.linalg.norm(pl.xy[: k_in + 1] - pl.xy[0][None], axis=2), axis=0)
    dev_out = np.max(np.linalg.norm(pl.xy[k_out:] - pl.xy[-1][None], axis=2), axis=0)
    near = (pl.z <= e + 1e-9) | (pl.z >= z_top - e - 1e-9)
    straight_drift = e * np.max(pl.slope[near], axis=0) if np.any(near) else np.zeros(n)
    err = np.maximum.reduce([err_in, err_out, dev_in, dev_out, straight_drift])
    ff = int(np.argmax(err))
    results.append(
        CheckResult(
            name="endpoints",
            passed=float(err[ff]) <= 1e-6,
            worst=float(err[ff]),
            limit=1e-6,
            unit="mm",
            fiber=ff,
            rule=f"fibers start and end on their lattice sites, straight and face-normal for "
            f"{e:g} mm",
        )
    )
    # minimum feature
    # smallest width of a regular polygon with its vertices on the channel circle:
    # flat to flat (even sides) or vertex to flat (odd sides)
    r_ch = process.channel_diameter_mm / 2.0
    c_half = math.cos(math.pi / nsides)
    core_w = 2.0 * r_ch * c_half if nsides % 2 == 0 else r_ch * (1.0 + c_half)
    wall = (dist - process.channel_diameter_mm) if math.isfinite(dist) else math.inf
    feat = min(core_w, wall, process.housing_margin_mm)
    which = "core width" if feat == core_w else ("wall" if feat == wall else "housing margin")
    results.append(
        CheckResult(
            name="min_feature",
            passed=feat >= process.min_feature_mm - _TOL_MM,
            worst=feat,
            limit=process.min_feature_mm,
            unit="mm",
            fiber=fi if (which == "wall" and fi >= 0) else None,
            other_fiber=fj if (which == "wall" and fj >= 0) else None,
            rule=f"thinnest printed feature ({which}) at least {process.min_feature_mm:g} mm",
        )
    )
    lengths = pl.arc_lengths()
    lb, d_sites = lower_bound_mm(
        route.routing,
        face.rows,
        face.cols,
        block_size,
        face.pitch_mm,
        process.tan_tilt,
        lattice=face.lattice,
    )
    ratio = route.length_mm / lb if lb > 0 else math.inf
    bb = bend_bound_mm(face, route.routing, process)
    bratio = route.length_mm / bb
    floor = two_lane_floor_mm(face, route.routing, process)
    moves = np.linalg.norm(face.sites_mm[route.routing] - face.sites_mm, axis=1)
    ff = int(np.argmax(moves))
    height = float(pl.z[-1] - pl.z[0])
    results.append(
        CheckResult(
            name="length",
            passed=height >= bb - _TOL_MM,
            worst=height,
            limit=bb,
            unit="mm",
            fiber=ff,
            rule=f"bundle at least {bb:.4g} mm long, the bend-aware bound of its longest move "
            f"({moves[ff]:.3g} mm; ratio {bratio:.2f}; straight-line bound {lb:.1f} mm, "
            f"ratio {ratio:.2f}; longest fiber {lengths.max():.1f} mm)",
        )
    )
    return CheckReport(
        n_fibers=n,
        rows=face.rows,
        cols=face.cols,
        process=process.model_dump(mode="json"),
        face_pitch_mm=face.pitch_mm,
        route_pitch_mm=route.route_pitch_mm,
        decomposition=route.decomposition,
        length_mm=route.length_mm,
        lower_bound_mm=lb,
        displacement_sites=d_sites,
        length_ratio=ratio,
        bend_bound_mm=bb,
        bend_bound_ratio=bratio,
        two_lane_floor_mm=floor,
        two_lane_floor_ratio=route.length_mm / floor,
        fiber_length_mm_max=float(lengths.max()),
        fiber_length_mm_mean=float(lengths.mean()),
        n_stages=len(route.stages),
        checks=results,
    )
