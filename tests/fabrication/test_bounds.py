"""Lower bounds on bundle length: the closed form, true for every key, tight for one fiber."""

from __future__ import annotations

import math

import numpy as np
import pytest

from fabrication.process import ProcessConfig, face_geometry
from fabrication.profiles import min_stage_length
from fabrication.routing import (
    bend_bound_mm,
    bend_length_mm,
    fiber_displacements_mm,
    lower_bound_mm,
    route_permutation,
    two_lane_floor_mm,
)
from optics.faceplate import FaceplateConfig, keygen

R, THETA = 10.0, 30.0
TAN = math.tan(math.radians(THETA))


def _s_curve(phi: float, straight: float, r: float, theta_deg: float) -> tuple[float, float]:
    """Lateral and axial extent of arc (turn to phi) + straight run + arc (turn back).

    Integrated numerically along the arc length, independent of the closed form.
    """
    n = 200_001
    psi = np.linspace(0.0, phi, n)  # tilt along one arc
    dsig = r * phi / (n - 1)
    lat = 2 * np.trapezoid(np.sin(psi), dx=dsig)
    ax = 2 * np.trapezoid(np.cos(psi), dx=dsig)
    return lat + straight * math.sin(phi), ax + straight * math.cos(phi)


def test_closed_form_is_the_s_curve_of_two_arcs() -> None:
    assert float(bend_length_mm(0.0, R, THETA)) == 0.0
    knee = 2 * R * (1 - math.cos(math.radians(THETA)))  # 2.68 mm at R = 10 mm, 30 deg
    for s in (0.3, 1.0, 2.0, knee, 5.0, 20.0, 80.0):
        phi = min(math.radians(THETA), math.acos(1 - min(s, knee) / (2 * R)))
        run = max(0.0, s - knee) / math.sin(math.radians(THETA))  # straight, tilted run
        lat, ax = _s_curve(phi, run, R, THETA)
        assert lat == pytest.approx(s, rel=1e-6)
        assert float(bend_length_mm(s, R, THETA)) == pytest.approx(ax, rel=1e-6)


def test_closed_form_is_monotone_continuous_and_above_the_straight_line() -> None:
    s = np.linspace(0.0, 60.0, 6001)
    length = bend_length_mm(s, R, THETA)
    assert np.all(np.diff(length) > 0)
    assert np.all(length >= s / TAN - 1e-12)
    # far beyond the knee the S costs a constant 2 R (1/cos θ − 1)/tan θ more than a line
    extra = 2 * R * (1 / math.cos(math.radians(THETA)) - 1) / TAN
    assert float(bend_length_mm(60.0, R, THETA)) - 60.0 / TAN == pytest.approx(extra)
    knee = 2 * R * (1 - math.cos(math.radians(THETA)))
    below, above = bend_length_mm([knee - 1e-9, knee + 1e-9], R, THETA)
    assert above - below < 1e-6
    with pytest.raises(ValueError, match="displacement_mm"):
        bend_length_mm(-1.0, R, THETA)


@pytest.mark.parametrize("radius", [5.0, 10.0, 20.0, 40.0])
def test_bound_is_tight_for_one_displaced_fiber(radius: float) -> None:
    """The router's shortest stage for one fiber moved by s is within 10 % of L(s), never less.

    The 10 % is the price of the profile family (curvature ramps up and down instead of
    jumping, and a finite grid of ramp fractions); a shorter curve would break tilt or radius.
    """
    s = np.concatenate([np.linspace(0.05, 5.0, 60), np.linspace(5.0, 100.0, 60)])
    stage = np.array([min_stage_length(x, TAN, radius)[0] for x in s])
    ratio = stage / bend_length_mm(s, radius, THETA)
    assert ratio.min() >= 1.0
    assert ratio.max() <= 1.10


def test_a_routed_single_swap_is_the_bound_plus_its_lane_steps() -> None:
    """Two neighbours on an open face swap: ends + lane step + one S-curve + lane step."""
    resin = ProcessConfig.preset("resin")
    face = face_geometry("square", 1, 2, resin.open_face_pitch_mm * 1000, resin)
    route = route_permutation(face, np.array([1, 0]), 2, resin, lanes="separate")
    s = resin.open_face_pitch_mm
    lane = min_stage_length(resin.min_pitch_mm + resin.route_margin_mm, TAN, R)[0]
    bound = bend_bound_mm(face, np.array([1, 0]), resin)
    assert bound == pytest.approx(2 * resin.end_length_mm + float(bend_length_mm(s, R, THETA)))
    assert len(route.stages) == 3  # step aside, swap, step back
    aside, swap, back = (st.length_mm for st in route.stages)
    assert route.length_mm == pytest.approx(2 * resin.end_length_mm + aside + swap + back)
    assert max(aside, back) <= 1.02 * lane
    assert float(bend_length_mm(s, R, THETA)) <= swap <= 1.10 * float(bend_length_mm(s, R, THETA))
    assert bound < route.length_mm


def _keys():
    """Random keys of every kind, square and hexagonal, on small lattices."""
    for lattice in ("square", "hexagonal"):
        for rows, block, permute in ((8, 4, False), (8, 4, True), (8, 8, False), (12, 4, True)):
            for seed in (0, 1):
                cfg = FaceplateConfig(
                    lattice=lattice, rows=rows, cols=rows, block_size=block,
                    permute_blocks=permute, seed=seed, pitch_um=1000.0, core_diameter_um=600.0,
                )  # fmt: skip
                yield keygen(cfg)


def test_no_routed_key_is_shorter_than_either_bound() -> None:
    resin = ProcessConfig.preset("resin")
    for key in _keys():
        c = key.config
        face = face_geometry(c.lattice, c.rows, c.cols, c.pitch_um, resin)
        route = route_permutation(face, key.routing, c.block_size, resin)
        straight, _ = lower_bound_mm(
            key.routing, c.rows, c.cols, c.block_size, face.pitch_mm, resin.tan_tilt,
            lattice=c.lattice,
        )  # fmt: skip
        bend = bend_bound_mm(face, key.routing, resin)
        assert straight <= bend < route.length_mm, (c, straight, bend, route.length_mm)
        # the floor of routes built this way: spread, passes, gather
        floor = two_lane_floor_mm(face, key.routing, resin)
        assert floor <= route.length_mm, (c, floor, route.length_mm)
        if c.lattice == "square":  # a fiber's move is no longer than its two axis moves
            assert bend <= floor, (c, bend, floor)
        # the bounds are about the fiber that moves furthest, measured on the face
        s = fiber_displacements_mm(face, key.routing)
        assert straight == pytest.approx(s.max() / resin.tan_tilt)
        assert bend == pytest.approx(
            2 * resin.end_length_mm + float(bend_length_mm(s.max(), R, THETA))
        )


def _curve(s: float) -> float:
    return float(bend_length_mm(s, R, THETA))


@pytest.mark.parametrize(
    ("routing", "dx", "dy"),
    [
        ([1, 0, *range(2, 16)], 1, 0),  # two neighbours of the first row swap: x passes only
        ([4, *range(1, 4), 0, *range(5, 16)], 0, 1),  # two of the first column: y only
        ([15, *range(1, 15), 0], 3, 3),  # opposite corners swap: both axes
    ],
)
def test_two_lane_floor_is_spread_passes_and_gather(routing, dx, dy) -> None:
    """4 × 4 packed face at 1 mm, clearance c = 1 mm: lines must spread to 2 mm, so the
    outer row (or column), 1.5 mm from the centre, moves 1.5 mm out and back; each axis on
    which a fiber moves needs its own S-curve."""
    resin = ProcessConfig.preset("resin")
    assert resin.min_pitch_mm == pytest.approx(1.0)
    face = face_geometry("square", 4, 4, 1000.0, resin)
    floor = two_lane_floor_mm(face, np.array(routing), resin)
    passes = sum(_curve(float(k)) for k in (dx, dy) if k)
    assert floor == pytest.approx(2 * resin.end_length_mm + 2 * _curve(1.5) + passes)
    # the identity needs nothing but the straight ends
    ident = two_lane_floor_mm(face, np.arange(16), resin)
    assert ident == pytest.approx(2 * resin.end_length_mm)


def test_two_lane_floor_of_an_open_face_has_no_spread() -> None:
    resin = ProcessConfig.preset("resin")
    pitch = 2.0 * resin.min_pitch_mm  # lanes fit between the lines already
    face = face_geometry("square", 4, 4, pitch * 1000.0, resin)
    floor = two_lane_floor_mm(face, np.array([15, *range(1, 15), 0]), resin)
    assert floor == pytest.approx(2 * resin.end_length_mm + 2 * _curve(3 * pitch))


def test_two_lane_floor_on_a_hexagonal_face_spreads_the_cheaper_axis() -> None:
    """Rows of a hexagonal face are √3/2 pitch apart, columns one pitch: with 8 rows and 4
    columns the columns spread (1.5 × 1 mm) less than the rows (3.5 × 1.134 mm)."""
    resin = ProcessConfig.preset("resin")
    face = face_geometry("hexagonal", 8, 4, 1000.0, resin)
    p = face.pitch_mm
    spread_rows = 3.5 * (2.0 - p * math.sqrt(3) / 2)
    spread_cols = 1.5 * (2.0 - p)
    assert spread_cols < spread_rows
    routing = np.arange(32)
    routing[[0, 1]] = routing[[1, 0]]  # x only: one column's pitch
    floor = two_lane_floor_mm(face, routing, resin)
    assert floor == pytest.approx(2 * resin.end_length_mm + 2 * _curve(spread_cols) + _curve(p))


@pytest.mark.parametrize(("permute", "goal"), [(True, 2.0), (False, 3.0)])
def test_the_default_packed_face_cannot_reach_the_ratio_goals_with_lanes(permute, goal) -> None:
    """What the models page says of the default camera's key: on its packed face the spread
    alone puts the floor of a two-lane route above 2× (blocks permuted) and 3× (in place)
    the bend-aware bound."""
    from sim.config import CameraConfig

    recipe = CameraConfig.default().faceplate.model_dump()
    recipe["permute_blocks"] = permute
    key = keygen(FaceplateConfig(**recipe))
    resin = ProcessConfig.preset("resin")
    c = key.config
    face = face_geometry(c.lattice, c.rows, c.cols, c.pitch_um, resin)
    assert face.pitch_mm == pytest.approx(resin.min_pitch_mm)  # packed
    floor = two_lane_floor_mm(face, key.routing, resin)
    bend = bend_bound_mm(face, key.routing, resin)
    assert floor > goal * bend, (floor, bend)
    # the figures quoted on the models page
    assert (round(floor, 1), round(floor / bend, 2)) == ((94.3, 2.45) if permute else (61.4, 4.04))
