"""Every manufacturability check at its limit: a design just inside passes, just outside fails.

The designs are built by hand, not by the router: straight fibers a known distance apart,
S-curves made of circular arcs of known radius and straight runs of known tilt. Each test
asserts the verdict *and* the worst value the check reports against the value the geometry
was constructed to have (closed form), so a check with a wrong limit (halved, doubled, the
wall forgotten, ...) fails here. ``bench/mutation_checks.py`` verifies that it does.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import pytest
import trimesh

from fabrication.checks import CheckReport, CheckResult, run_checks
from fabrication.mesh import TriMesh, bundle_meshes, is_watertight, tube_mesh
from fabrication.process import FaceGeometry, ProcessConfig
from fabrication.routing import Route, Stage
from fabrication.sampling import Polylines, curvature, sample_route

PRESETS = ("resin", "fdm")
INSIDE, OUTSIDE = 1.01, 0.99  # for limits that are minimums; maximums use the reverse
REL = 1e-9  # the checks must reproduce the constructed worst values to rounding


# -- closed-form geometry ----------------------------------------------------------------------


@dataclass(frozen=True)
class SMove:
    """Lateral move by ``s`` mm along a unit direction, starting at ``z0`` mm.

    Built from two circular arcs of radius ``rho`` mm and, when the arcs alone cannot reach
    ``s`` within the tilt ``phi_max`` (rad), a straight run at that tilt between them. The
    move starts and ends parallel to the z axis.
    """

    z0: float
    s: float
    rho: float
    phi_max: float

    @property
    def arcs_only(self) -> bool:
        """True if two arcs reach ``s`` without exceeding ``phi_max``."""
        return abs(self.s) <= 2.0 * self.rho * (1.0 - math.cos(self.phi_max))

    @property
    def phi(self) -> float:
        """Largest tilt of the move, rad."""
        if self.arcs_only:
            return math.acos(1.0 - abs(self.s) / (2.0 * self.rho))
        return self.phi_max

    @property
    def arc_height(self) -> float:
        return self.rho * math.sin(self.phi)

    @property
    def run_height(self) -> float:
        if self.arcs_only:
            return 0.0
        return (abs(self.s) - 2.0 * self.rho * (1.0 - math.cos(self.phi))) / math.tan(self.phi)

    @property
    def height(self) -> float:
        """z extent of the move, mm."""
        return 2.0 * self.arc_height + self.run_height

    def evaluate(self, z: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Lateral offset (mm), signed slope and curvature (1/mm) at ``z``."""
        u = np.clip(z - self.z0, 0.0, self.height)
        rho, ah, h = self.rho, self.arc_height, self.height
        t = math.tan(self.phi)
        first, last = u < ah, u > h - ah
        w = np.minimum(np.where(first, u, h - u), ah)  # distance into the nearer arc
        root = np.sqrt(np.maximum(rho**2 - w**2, 0.0))
        lat = np.where(
            first,
            rho - root,
            np.where(
                last, abs(self.s) - (rho - root), rho * (1 - math.cos(self.phi)) + (u - ah) * t
            ),
        )
        slope = np.where(first | last, w / root, t)
        inside = (z > self.z0) & (z < self.z0 + h)
        kappa = np.where((first | last) & inside, 1.0 / rho, 0.0)
        slope = np.where(inside, slope, 0.0)
        sign = math.copysign(1.0, self.s)
        return sign * lat, sign * slope, kappa

    def breakpoints(self) -> list[float]:
        ah = self.arc_height
        return [self.z0, self.z0 + ah, self.z0 + self.height - ah, self.z0 + self.height]


@dataclass(frozen=True)
class Fiber:
    """A fiber from ``site`` moving along the unit ``direction`` by a sequence of S-moves."""

    site: tuple[float, float]
    direction: tuple[float, float]
    moves: tuple[SMove, ...] = ()

    def evaluate(self, z: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        lat = np.zeros_like(z)
        slope = np.zeros_like(z)
        kappa = np.zeros_like(z)
        for m in self.moves:
            a, b, c = m.evaluate(z)
            lat += a
            slope += b
            kappa += c
        xy = np.asarray(self.site)[None] + lat[:, None] * np.asarray(self.direction)[None]
        return xy, np.abs(slope), kappa


def _bump(z0: float, s: float, rho: float, phi_max: float) -> tuple[SMove, SMove]:
    """Out by ``s`` and straight back: two S-moves back to back."""
    out = SMove(z0, s, rho, phi_max)
    return out, SMove(z0 + out.height, -s, rho, phi_max)


def _design(
    fibers: list[Fiber],
    length_mm: float,
    process: ProcessConfig,
    routing: list[int] | None = None,
    rows: int = 1,
    step_mm: float = 0.2,
) -> tuple[Route, Polylines]:
    """Route and printed polylines of hand-made fibers (every level a polyline vertex).

    Levels every ``step_mm``, at both end lengths and at every arc/run junction.
    """
    n = len(fibers)
    sites = np.array([f.site for f in fibers], dtype=float)
    routing = np.arange(n) if routing is None else np.asarray(routing)
    e = process.end_length_mm
    z = [np.arange(0.0, length_mm, step_mm), [e, length_mm - e, length_mm]]
    z += [m.breakpoints() for f in fibers for m in f.moves]
    levels = np.unique(np.concatenate(z))
    levels = levels[np.concatenate([[True], np.diff(levels) > 1e-9])]
    xy = np.empty((levels.size, n, 2))
    slope = np.empty((levels.size, n))
    kappa = np.empty((levels.size, n))
    for i, f in enumerate(fibers):
        xy[:, i], slope[:, i], kappa[:, i] = f.evaluate(levels)
    pitch = float(
        np.min(np.linalg.norm(sites[:, None] - sites[None], axis=2)[~np.eye(n, dtype=bool)])
    )
    face = FaceGeometry("square", rows, n // rows, pitch, sites)
    body = Stage("lane", e, length_mm - 2 * e, 0.5, sites, sites[routing])
    route = Route(face, routing, (body,), e, 2 * pitch, "block")
    rings = np.ones(xy.shape[:2], dtype=bool)
    return route, Polylines(levels, xy, rings, kappa, slope)


def _check(route: Route, pl: Polylines, process: ProcessConfig) -> CheckReport:
    return run_checks(route, pl, process, block_size=2)


def _result(report: CheckReport, name: str) -> CheckResult:
    return next(c for c in report.checks if c.name == name)


def _only_failure(report: CheckReport) -> set[str]:
    return {c.name for c in report.failures()}


def _straight(sites: list[tuple[float, float]]) -> list[Fiber]:
    return [Fiber(s, (1.0, 0.0)) for s in sites]


# -- clearance ---------------------------------------------------------------------------------


@pytest.mark.parametrize("preset", PRESETS)
@pytest.mark.parametrize("factor", [INSIDE, OUTSIDE])
def test_clearance_of_parallel_fibers_at_channel_plus_wall(preset: str, factor: float) -> None:
    process = ProcessConfig.preset(preset)
    need = process.core_diameter_mm + process.channel_clearance_mm + process.min_wall_mm
    gap = factor * need
    route, pl = _design(_straight([(0.0, 0.0), (gap, 0.0)]), 20.0, process)
    rep = _check(route, pl, process)
    c = _result(rep, "clearance")
    assert c.limit == pytest.approx(need, rel=REL)
    assert c.worst == pytest.approx(gap, rel=REL)
    assert c.passed is (factor > 1) and rep.passed is (factor > 1)
    assert {c.fiber, c.other_fiber} == {0, 1}
    if factor < 1:
        assert _only_failure(rep) == {"clearance"}


@pytest.mark.parametrize("preset", PRESETS)
@pytest.mark.parametrize("factor", [INSIDE, OUTSIDE])
def test_clearance_is_the_3d_distance_of_tilted_fibers(preset: str, factor: float) -> None:
    """Two parallel fibers tilted by φ along their horizontal offset h are h cos φ apart.

    The horizontal distance h stays above the limit in both cases; only the 3D distance
    decides.
    """
    process = ProcessConfig.preset(preset)
    need = process.min_pitch_mm
    phi = math.radians(25.0)
    h = factor * need / math.cos(phi)
    assert h > need
    rho = 1.2 * process.min_bend_radius_mm
    moves = _bump(3.0, 8.0, rho, phi)
    assert moves[0].run_height > 1.0  # the closest approach lies on the straight run
    fibers = [Fiber((0.0, 0.0), (1.0, 0.0), moves), Fiber((h, 0.0), (1.0, 0.0), moves)]
    length = 6.0 + 2 * moves[0].height
    route, pl = _design(fibers, length, process)
    rep = _check(route, pl, process)
    c = _result(rep, "clearance")
    assert c.worst == pytest.approx(factor * need, rel=REL)
    assert c.passed is (factor > 1) and rep.passed is (factor > 1)


def _crossing(gap: float, process: ProcessConfig) -> tuple[Route, Polylines]:
    """Two fibers sweeping past each other in opposite directions, ``gap`` apart at the pass.

    The polylines have few vertices: each pass lies at 90 % of a long chord, where neither
    fiber is near the other at the chord's first level.
    """
    e, span, x = process.end_length_mm, 20.0, 5.0
    first = span / 2 / 0.9  # the pass at z = e + span/2 lies at 90 % of [e, e + first]
    levels = np.array(
        [0.0, e, e + first, e + span, e + span + first, e + 2 * span, 2 * e + 2 * span]
    )
    zt = np.array([e, e + span, e + 2 * span])
    xs = [-x, x, -x]
    xy = np.empty((levels.size, 2, 2))
    xi = np.interp(levels, zt, xs)
    xy[:, 0, 0], xy[:, 0, 1] = xi, gap / 2
    xy[:, 1, 0], xy[:, 1, 1] = -xi, -gap / 2
    chord = np.abs(np.diff(xi)) / np.diff(levels)
    slope = np.tile(np.concatenate([chord, [0.0]])[:, None], (1, 2))
    sites = xy[0]
    face = FaceGeometry("square", 1, 2, float(np.linalg.norm(sites[1] - sites[0])), sites)
    body = Stage("lane", e, 2 * span, 0.5, sites, sites)
    route = Route(face, np.arange(2), (body,), e, 2.0, "block")
    pl = Polylines(levels, xy, np.ones((levels.size, 2), bool), np.zeros((levels.size, 2)), slope)
    return route, pl


@pytest.mark.parametrize("factor", [INSIDE, OUTSIDE])
def test_clearance_finds_a_close_pass_inside_a_long_chord(factor: float) -> None:
    process = ProcessConfig.preset("resin")
    need = process.min_pitch_mm
    route, pl = _crossing(factor * need, process)
    c = _result(_check(route, pl, process), "clearance")
    # the two chords are straight lines whose closest points are at the pass, exactly gap apart
    assert c.worst == pytest.approx(factor * need, rel=REL)
    assert c.passed is (factor > 1)


@pytest.mark.parametrize("where", ["first", "last"])
def test_clearance_sees_the_first_and_last_chord(where: str) -> None:
    """Fibers 3 mm apart that close in to 0.99 × the limit only at one end of the polylines."""
    process = ProcessConfig.preset("resin")
    need = process.min_pitch_mm
    route, pl = _design(_straight([(0.0, 0.0), (3.0, 0.0)]), 20.0, process, step_mm=1.0)
    xy = pl.xy.copy()
    k = 0 if where == "first" else -1
    xy[k, 1, 0] = 0.99 * need
    pl = Polylines(pl.z, xy, pl.rings, pl.curvature, pl.slope)
    c = _result(_check(route, pl, process), "clearance")
    assert not c.passed
    assert c.worst == pytest.approx(0.99 * need, rel=REL)


# -- bend radius -------------------------------------------------------------------------------


def _bumps(
    process: ProcessConfig,
    rho: float,
    phi_max: float,
    s: float,
    z0: float | None = None,
    top: float | None = None,
    step_mm: float = 0.2,
):
    """Two fibers 3 × the clearance apart in x, both bumping out by ``s`` along y and back,
    starting ``z0`` above the input face and ending ``top`` below the output face."""
    z0 = process.end_length_mm + 1.0 if z0 is None else z0
    top = z0 if top is None else top
    moves = _bump(z0, s, rho, phi_max)
    gap = 3 * process.min_pitch_mm
    fibers = [Fiber((0.0, 0.0), (0.0, 1.0), moves), Fiber((gap, 0.0), (0.0, 1.0), moves)]
    return _design(fibers, z0 + 2 * moves[0].height + top, process, step_mm=step_mm), moves


@pytest.mark.parametrize("preset", PRESETS)
@pytest.mark.parametrize("factor", [INSIDE, OUTSIDE])
def test_bend_radius_of_circular_arcs(preset: str, factor: float) -> None:
    process = ProcessConfig.preset(preset)
    rho = factor * process.min_bend_radius_mm
    (route, pl), _ = _bumps(process, rho, math.radians(process.max_tilt_deg), 1.0)
    rep = _check(route, pl, process)
    c = _result(rep, "bend_radius")
    assert c.limit == process.min_bend_radius_mm
    assert c.worst == pytest.approx(rho, rel=REL)
    assert c.passed is (factor > 1) and rep.passed is (factor > 1)
    if factor < 1:
        assert _only_failure(rep) == {"bend_radius"}


def test_curvature_of_an_arc_and_a_helix_is_the_closed_form() -> None:
    """The curvature the bend check reads: ``1/ρ`` on an arc in any vertical plane, and
    ``r ω² / (1 + r² ω²)`` on a helix ``(r cos ωz, r sin ωz, z)``."""
    rho = 12.0
    z = np.linspace(0.0, 0.95 * rho, 50)
    root = np.sqrt(rho**2 - z**2)
    for ang in (0.0, 0.7, 2.0):
        u = np.array([math.cos(ang), math.sin(ang)])
        d1 = (z / root)[:, None] * u
        d2 = (rho**2 / root**3)[:, None] * u
        assert np.allclose(curvature(d1, d2), 1.0 / rho, rtol=1e-12)
    r, w = 2.0, 0.3
    d1 = np.column_stack([-r * w * np.sin(w * z), r * w * np.cos(w * z)])
    d2 = np.column_stack([-r * w * w * np.cos(w * z), -r * w * w * np.sin(w * z)])
    assert np.allclose(curvature(d1, d2), r * w * w / (1 + r * r * w * w), rtol=1e-12)


# -- tilt --------------------------------------------------------------------------------------


@pytest.mark.parametrize("preset", PRESETS)
@pytest.mark.parametrize("factor", [1 / INSIDE, 1 / OUTSIDE])
def test_tilt_of_a_straight_run(preset: str, factor: float) -> None:
    process = ProcessConfig.preset(preset)
    phi_deg = factor * process.max_tilt_deg
    rho = 1.5 * process.min_bend_radius_mm
    (route, pl), moves = _bumps(process, rho, math.radians(phi_deg), 8.0)
    assert moves[0].run_height > 1.0
    rep = _check(route, pl, process)
    c = _result(rep, "tilt")
    assert c.limit == process.max_tilt_deg
    assert c.worst == pytest.approx(phi_deg, rel=REL)
    assert c.passed is (factor < 1) and rep.passed is (factor < 1)
    if factor > 1:
        assert _only_failure(rep) == {"tilt"}


@pytest.mark.parametrize("factor", [1 / INSIDE, 1 / OUTSIDE])
def test_tilt_is_measured_on_the_printed_chords(factor: float) -> None:
    """The printed polyline decides, even where the smooth slope says otherwise."""
    process = ProcessConfig.preset("resin")
    phi_deg = factor * process.max_tilt_deg
    (route, pl), _ = _bumps(process, 1.5 * process.min_bend_radius_mm, math.radians(phi_deg), 8.0)
    pl = Polylines(pl.z, pl.xy, pl.rings, pl.curvature, np.zeros_like(pl.slope))
    c = _result(_check(route, pl, process), "tilt")
    assert c.worst == pytest.approx(phi_deg, rel=REL)
    assert c.passed is (factor < 1)


@pytest.mark.parametrize("factor", [1 / INSIDE, 1 / OUTSIDE])
def test_tilt_of_the_smooth_curve_between_printed_vertices(factor: float) -> None:
    """Arcs printed as single chords lean by only half their end tilt; the smooth slope at the
    vertex where the arcs meet is what the check must see."""
    process = ProcessConfig.preset("resin")
    phi = math.radians(factor * process.max_tilt_deg)
    rho = 1.5 * process.min_bend_radius_mm
    s = 2 * rho * (1 - math.cos(phi))  # two arcs reach exactly phi
    (route, pl), moves = _bumps(process, rho, 1.5 * phi, s, step_mm=1e3)
    assert moves[0].run_height == 0 and pl.z.size == 9  # faces, end lengths, 5 arc ends
    chord = np.max(np.hypot(*np.moveaxis(np.diff(pl.xy, axis=0), 2, 0)) / np.diff(pl.z)[:, None])
    assert math.atan(chord) < 0.51 * phi
    c = _result(_check(route, pl, process), "tilt")
    assert c.worst == pytest.approx(math.degrees(phi), rel=REL)
    assert c.passed is (factor < 1)


def _square_rotation(process: ProcessConfig, s: float, rho: float, phi_max: float):
    """Four fibers on the corners of an ``s`` mm square, each moving to the next corner."""
    h = s / 2
    # sites in row-major order (x right, y down); fiber i goes to site routing[i]
    sites = [(-h, -h), (h, -h), (-h, h), (h, h)]
    routing = [1, 3, 0, 2]
    z0 = process.end_length_mm
    fibers = []
    for i, j in enumerate(routing):
        d = np.subtract(sites[j], sites[i]) / s
        fibers.append(Fiber(sites[i], tuple(d), (SMove(z0, s, rho, phi_max),)))
    length = 2 * z0 + fibers[0].moves[0].height
    return _design(fibers, length, process, routing=routing, rows=2), fibers[0].moves[0]


@pytest.mark.parametrize("factor", [1 / INSIDE, 1 / OUTSIDE])
def test_tilt_of_a_sampled_stage(factor: float) -> None:
    """A one-stage route through :func:`sample_route`: the profile's cruise slope is
    ``Δ / (ℓ (1 − a))``, so the stage length sets the tilt exactly."""
    process = ProcessConfig.preset("resin")
    (route0, _), _ = _square_rotation(process, 10.0, 20.0, math.radians(20))
    a, delta = 0.3, 10.0
    phi = math.radians(factor * process.max_tilt_deg)
    ell = delta / ((1 - a) * math.tan(phi))
    st = Stage("lane", route0.end_mm, ell, a, route0.input_xy, route0.output_xy)
    route = Route(route0.face, route0.routing, (st,), route0.end_mm, 20.0, "block")
    pl = sample_route(route, process)
    c = _result(_check(route, pl, process), "tilt")
    assert c.worst == pytest.approx(math.degrees(phi), rel=1e-9)
    assert c.passed is (factor < 1)


# -- end points --------------------------------------------------------------------------------


@pytest.mark.parametrize("factor", [1 / INSIDE, 1 / OUTSIDE])
def test_fibers_start_and_end_on_their_sites(factor: float) -> None:
    process = ProcessConfig.preset("resin")
    route, pl = _design(_straight([(0.0, 0.0), (2.0, 0.0)]), 10.0, process)
    off = factor * 1e-6  # the check's limit: 1 nm, exact placement
    xy = pl.xy.copy()
    xy[:, 1, 1] += off
    pl = Polylines(pl.z, xy, pl.rings, pl.curvature, pl.slope)
    rep = _check(route, pl, process)
    c = _result(rep, "endpoints")
    assert c.limit == 1e-6
    assert c.worst == pytest.approx(off, rel=1e-6) and c.fiber == 1
    assert c.passed is (factor < 1) and rep.passed is (factor < 1)


def test_fibers_end_on_the_site_the_key_names() -> None:
    process = ProcessConfig.preset("resin")
    s = 4.0
    (route, pl), _ = _square_rotation(process, s, 2 * process.min_bend_radius_mm, math.radians(25))
    assert _result(_check(route, pl, process), "endpoints").passed
    # the same fibers checked against the inverse permutation end s·√2 from their sites
    inverse = Route(route.face, np.argsort(route.routing), route.stages, route.end_mm, 8.0, "block")
    c = _result(_check(inverse, pl, process), "endpoints")
    assert not c.passed
    assert c.worst == pytest.approx(s * math.sqrt(2), rel=REL)


@pytest.mark.parametrize("end", ["input", "output"])
@pytest.mark.parametrize("factor", [INSIDE, OUTSIDE])
def test_straight_face_normal_ends(end: str, factor: float) -> None:
    """A bump that starts bending ``factor`` × the end length from a face.

    Outside the limit the polyline has left the vertical line through its site at the end
    length ``e``: by the arc's sagitta ``ρ − √(ρ² − u²)`` with ``u = (1 − factor) e``, and its
    slope there, ``u / √(ρ² − u²)``, drifts it ``e`` times as far over the end length.
    """
    process = ProcessConfig.preset("resin")
    e = process.end_length_mm
    rho = 1.2 * process.min_bend_radius_mm
    s = 1.0
    near, far = factor * e, 1.5 * e
    z0, top = (near, far) if end == "input" else (far, near)
    (route, pl), _ = _bumps(process, rho, math.radians(25), s, z0=z0, top=top)
    rep = _check(route, pl, process)
    c = _result(rep, "endpoints")
    u = (1 - factor) * e
    root = math.sqrt(rho**2 - u**2)
    expect = 0.0 if factor > 1 else max(rho - root, e * u / root)
    assert c.worst == pytest.approx(expect, rel=1e-6, abs=1e-12)
    assert c.passed is (factor > 1) and rep.passed is (factor > 1)
    if factor < 1:
        assert _only_failure(rep) == {"endpoints"}


def test_straight_end_covers_a_chord_that_crosses_the_end_length() -> None:
    """No polyline vertex at the end length: a chord from the face to beyond ``e`` that
    leans is not a straight face-normal end, however gently it leans."""
    process = ProcessConfig.preset("resin")
    e = process.end_length_mm
    route, pl = _design(_straight([(0.0, 0.0), (2.0, 0.0)]), 10.0, process, step_mm=1.0)
    keep = ~np.isclose(pl.z, e) & ~np.isclose(pl.z, 10.0 - e)
    z, xy = pl.z[keep], pl.xy[keep].copy()
    k = int(np.searchsorted(z, e))  # first vertex beyond e
    xy[k, 0, 0] += 1e-3
    flat = np.zeros((z.size, 2))
    pl = Polylines(z, xy, np.ones((z.size, 2), bool), flat, flat)
    c = _result(_check(route, pl, process), "endpoints")
    assert not c.passed
    assert c.worst == pytest.approx(1e-3, rel=1e-9) and c.fiber == 0


# -- minimum feature ---------------------------------------------------------------------------


def _polygon_width(diameter: float, sides: int) -> float:
    """Smallest width of a regular polygon with its vertices on a circle of ``diameter``."""
    r = diameter / 2
    c = math.cos(math.pi / sides)
    return 2 * r * c if sides % 2 == 0 else r * (1 + c)


@pytest.mark.parametrize("preset", PRESETS)
@pytest.mark.parametrize("factor", [INSIDE, OUTSIDE])
@pytest.mark.parametrize("sides", [16, 17])
def test_core_width_of_the_polygon(preset: str, factor: float, sides: int) -> None:
    base = ProcessConfig.preset(preset, min_polygon_sides=sides)
    assert base.polygon_sides() == sides
    width = _polygon_width(base.channel_diameter_mm, sides)
    process = ProcessConfig.preset(preset, min_polygon_sides=sides, min_feature_mm=width / factor)
    route, pl = _design(_straight([(0.0, 0.0), (3 * process.min_pitch_mm, 0.0)]), 10.0, process)
    rep = _check(route, pl, process)
    c = _result(rep, "min_feature")
    assert c.worst == pytest.approx(width, rel=REL) and "core width" in c.rule
    assert c.limit == process.min_feature_mm
    assert c.passed is (factor > 1) and rep.passed is (factor > 1)
    if factor < 1:
        assert _only_failure(rep) == {"min_feature"}


@pytest.mark.parametrize("preset", PRESETS)
@pytest.mark.parametrize("factor", [INSIDE, OUTSIDE])
def test_wall_between_channels(preset: str, factor: float) -> None:
    """A process whose wall rule is looser than its feature rule: the wall is the feature."""
    feature = ProcessConfig.preset(preset).min_feature_mm
    process = ProcessConfig.preset(preset, min_wall_mm=0.5 * feature, min_feature_mm=feature)
    wall = factor * feature
    gap = process.channel_diameter_mm + wall
    route, pl = _design(_straight([(0.0, 0.0), (gap, 0.0)]), 10.0, process)
    rep = _check(route, pl, process)
    c = _result(rep, "min_feature")
    assert c.worst == pytest.approx(wall, rel=1e-9) and "wall" in c.rule
    assert {c.fiber, c.other_fiber} == {0, 1}
    assert c.passed is (factor > 1) and rep.passed is (factor > 1)
    if factor < 1:
        assert _only_failure(rep) == {"min_feature"}


@pytest.mark.parametrize("factor", [INSIDE, OUTSIDE])
def test_housing_margin(factor: float) -> None:
    feature = ProcessConfig.preset("fdm").min_feature_mm
    process = ProcessConfig.preset("fdm", housing_margin_mm=factor * feature)
    route, pl = _design(_straight([(0.0, 0.0), (2.0, 0.0)]), 10.0, process)
    rep = _check(route, pl, process)
    c = _result(rep, "min_feature")
    assert c.worst == pytest.approx(factor * feature, rel=REL) and "housing" in c.rule
    assert c.passed is (factor > 1) and rep.passed is (factor > 1)


# -- length ------------------------------------------------------------------------------------


def _shortest_bundle(process: ProcessConfig, s: float) -> float:
    """Shortest bundle moving a fiber laterally by ``s`` with straight ends (closed form).

    Two arcs of radius R reach tilt φ = min(θ, arccos(1 − s/(2R))); a straight run at θ
    covers what they cannot: ``2 e + 2 R sin φ + max(0, s − 2R(1 − cos θ)) / tan θ``.
    """
    r, th, e = process.min_bend_radius_mm, math.radians(process.max_tilt_deg), process.end_length_mm
    phi = min(th, math.acos(1 - s / (2 * r)))
    return 2 * e + 2 * r * math.sin(phi) + max(0.0, s - 2 * r * (1 - math.cos(th))) / math.tan(th)


@pytest.mark.parametrize("preset", PRESETS)
@pytest.mark.parametrize("regime", ["arcs", "arcs and run"])
@pytest.mark.parametrize("factor", [INSIDE, OUTSIDE])
def test_bundle_length_against_the_shortest_possible(
    preset: str, regime: str, factor: float
) -> None:
    """Four fibers rotating around a square: each needs at least the closed-form length.

    The S-curve's radius is chosen so that the bundle is ``factor`` × that length; shorter
    than the bound is impossible within tilt and bend radius, so the design must fail.
    """
    process = ProcessConfig.preset(preset)
    r, th = process.min_bend_radius_mm, math.radians(process.max_tilt_deg)
    knee = 2 * r * (1 - math.cos(th))  # below this move no straight run is needed
    s = 0.9 * knee if regime == "arcs" else 2.0 * knee
    bound = _shortest_bundle(process, s)
    target = factor * bound - 2 * process.end_length_mm
    lo, hi = 0.5 * r, 3.0 * r
    for _ in range(100):
        mid = 0.5 * (lo + hi)
        lo, hi = (mid, hi) if SMove(0.0, s, mid, th).height < target else (lo, mid)
    (route, pl), move = _square_rotation(process, s, 0.5 * (lo + hi), th)
    assert (move.run_height > 0) is (regime != "arcs")
    rep = _check(route, pl, process)
    c = _result(rep, "length")
    assert c.limit == pytest.approx(bound, rel=1e-12)
    assert c.worst == pytest.approx(factor * bound, rel=1e-9)
    assert c.passed is (factor > 1)
    if factor > 1:
        assert rep.passed
    else:  # only a tighter bend (or steeper tilt) could make it that short
        assert _only_failure(rep) == {"length", "bend_radius"}


def test_identity_bundle_needs_only_its_straight_ends() -> None:
    process = ProcessConfig.preset("resin")
    e = process.end_length_mm
    route, pl = _design(_straight([(0.0, 0.0), (1.0, 0.0)]), 2 * e, process)
    c = _result(_check(route, pl, process), "length")
    assert c.limit == pytest.approx(2 * e) and c.worst == pytest.approx(2 * e) and c.passed


# -- watertightness ----------------------------------------------------------------------------


def _tubes(process: ProcessConfig) -> TriMesh:
    (_, pl), _ = _bumps(process, 1.5 * process.min_bend_radius_mm, math.radians(25), 3.0)
    vl = [pl.fiber_vertices(i) for i in range(pl.n_fibers)]
    return tube_mesh(vl, process.channel_diameter_mm / 2, process.polygon_sides())


def _trimesh_closed(m: TriMesh) -> bool:
    t = trimesh.Trimesh(m.vertices, m.faces, process=False)
    return bool(t.is_watertight and t.is_winding_consistent)


def test_tubes_and_matrix_of_hand_made_fibers_are_watertight() -> None:
    process = ProcessConfig.preset("resin")
    tubes = _tubes(process)
    assert is_watertight(tubes) and _trimesh_closed(tubes)
    (_, pl), _ = _bumps(process, 1.5 * process.min_bend_radius_mm, math.radians(25), 3.0)
    cores, matrix = bundle_meshes(
        pl, process.channel_diameter_mm / 2, process.polygon_sides(), process.housing_margin_mm
    )
    assert is_watertight(cores) and is_watertight(matrix)
    assert _trimesh_closed(matrix)


DEFECTS = ["missing", "flipped", "duplicated", "degenerate", "doubled", "empty"]


@pytest.mark.parametrize("defect", DEFECTS)
def test_one_bad_face_breaks_watertightness(defect: str) -> None:
    """One face missing, flipped, repeated or collapsed, every face twice (two coincident
    bodies: each edge shared by four faces, the reverse edges still balanced), no faces."""
    m = _tubes(ProcessConfig.preset("resin"))
    f = m.faces.copy()
    if defect == "missing":
        f = f[1:]
    elif defect == "flipped":
        f[7] = f[7, ::-1]
    elif defect == "duplicated":
        f = np.concatenate([f, f[:1]])
    elif defect == "degenerate":
        f[3, 1] = f[3, 0]
    elif defect == "doubled":
        f = np.concatenate([f, f])
    else:
        f = f[:0]
    bad = TriMesh(m.vertices, f)
    assert not is_watertight(bad)
    if defect != "empty":
        assert not _trimesh_closed(bad)
