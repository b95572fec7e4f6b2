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
        # the bounds are about the fiber that moves furthest, measured on the face
        s = fiber_displacements_mm(face, key.routing)
        assert straight == pytest.approx(s.max() / resin.tan_tilt)
        assert bend == pytest.approx(
            2 * resin.end_length_mm + float(bend_length_mm(s.max(), R, THETA))
        )
