"""The printed device's transmission: the geometry model, one source for export and camera."""

from __future__ import annotations

import math

import numpy as np
import pytest

from fabrication.export import route_key
from fabrication.printed import printed_transmission, routing_digest
from fabrication.process import ProcessConfig
from optics.faceplate import FaceplateConfig, keygen


def _fresnel(p: ProcessConfig) -> float:
    r = ((p.n_core - p.n_outside) / (p.n_core + p.n_outside)) ** 2
    return (1 - r) ** 2


def test_straight_fibers_lose_only_attenuation_and_fresnel(resin: ProcessConfig) -> None:
    """Identity key: every fiber is a straight guide of the two end lengths."""
    key = keygen(FaceplateConfig(rows=4, cols=4, block_size=1, seed=0))
    pt = printed_transmission(key, resin)
    length = 2 * resin.end_length_mm
    want = _fresnel(resin) * 10 ** (-resin.attenuation_db_per_cm * (length / 10) / 10)
    assert pt.bundle_length_mm == pytest.approx(length)
    np.testing.assert_allclose(pt.total, want, rtol=1e-12)
    np.testing.assert_allclose(pt.bend, 1.0)


def test_printed_transmission_equals_the_geometry_model(make_key, resin: ProcessConfig) -> None:
    """Per fiber: 10^(−αL/10) · bend(R_min) · Fresnel, with L and R_min measured here.

    Length and tightest bend come from a dense sampling of the smooth centerlines (0.02 mm
    steps, finite differences), independent of the printed polylines; bend loss from the
    ray criterion R ≥ a (cos ψ + n2/n1)/(cos ψ − n2/n1) with the cone filled uniformly.
    """
    key = make_key(8, 4, True)
    pt = printed_transmission(key, resin)
    route = route_key(key, resin)
    z = np.arange(0.0, route.length_mm, 0.02)
    z = np.append(z, route.length_mm)
    pos, _, _ = route.evaluate(z)
    dz = np.diff(z)[:, None]
    seg = np.sqrt(np.sum(np.diff(pos, axis=0) ** 2, axis=2) + dz**2)
    length = seg.sum(axis=0)
    v = np.gradient(pos, z, axis=0)
    acc = np.gradient(v, z, axis=0)
    twist = v[..., 0] * acc[..., 1] - v[..., 1] * acc[..., 0]
    cross = np.sqrt(acc[..., 1] ** 2 + acc[..., 0] ** 2 + twist**2)
    kappa = (cross / (1 + np.sum(v**2, axis=2)) ** 1.5)[2:-2].max(axis=0)
    r = 1.0 / kappa
    q, a = resin.n_clad / resin.n_core, resin.core_diameter_mm / 2
    cos_r = q * (r + a) / (r - a)
    bend = (1 - np.minimum(cos_r, 1.0)) / (1 - q)
    att = 10 ** (-resin.attenuation_db_per_cm * (length / 10) / 10)
    want = att * bend * _fresnel(resin)
    # sampling error: chords of the printed polylines (0.01 mm tolerance) and the 1-2 %
    # error of finite-difference curvature at the peak
    np.testing.assert_allclose(pt.total, want, rtol=0.02)
    assert pt.bundle_length_mm == pytest.approx(route.length_mm)
    assert pt.checks_passed
    s = pt.summary()
    assert set(s) == {
        "process", "attenuation_db_per_cm", "bundle_length_mm", "launch", "bend_mean",
        "transmission_mean", "transmission_min",
    }  # fmt: skip
    assert s["transmission_mean"] == pytest.approx(float(pt.total.mean()))


def test_lower_attenuation_and_gentler_bends_transmit_more(make_key) -> None:
    key = make_key(8, 4, False)
    base = printed_transmission(key, ProcessConfig.preset("resin"))
    clearer = printed_transmission(key, ProcessConfig.preset("resin", attenuation_db_per_cm=0.26))
    assert np.all(clearer.total > base.total)
    ratio = clearer.attenuation / base.attenuation
    # same geometry, so the attenuation ratio is 10^((0.5 − 0.26) L / 100) per fiber
    length = -100 * np.log10(base.attenuation) / 0.5
    np.testing.assert_allclose(ratio, 10 ** ((0.5 - 0.26) * length / 100), rtol=1e-9)
    assert math.isclose(clearer.bundle_length_mm, base.bundle_length_mm)


def test_routing_digest_depends_on_routing_and_process_only(make_key) -> None:
    key = make_key(8, 4, True)
    resin = ProcessConfig.preset("resin")
    d = routing_digest(key, resin)
    assert len(d) == 64 and key.fingerprint not in d
    assert routing_digest(key.with_transmission(np.full(key.n_fibers, 0.3)), resin) == d
    assert routing_digest(make_key(8, 4, True, seed=2), resin) != d
    assert routing_digest(key, ProcessConfig.preset("resin", attenuation_db_per_cm=0.3)) != d


# -- bend loss behind a lens ------------------------------------------------------------------


def test_disk_overlap_closed_forms() -> None:
    from fabrication.transmission import disk_overlap

    r = 0.7
    # two equal disks through each other's centres: r² (2π/3 − √3/2)
    assert disk_overlap(r, r, r) == pytest.approx(r * r * (2 * math.pi / 3 - math.sqrt(3) / 2))
    assert disk_overlap(0.2, 0.5, 0.1) == pytest.approx(math.pi * 0.04)  # one holds the other
    assert disk_overlap(0.2, 0.5, 0.71) == 0.0  # apart
    # an independent count on a fine grid
    g = np.linspace(-1.5, 1.5, 3001)
    x, y = np.meshgrid(g, g)
    inside = (x**2 + y**2 <= 0.6**2) & ((x - 0.5) ** 2 + y**2 <= 0.35**2)
    assert disk_overlap(0.6, 0.35, 0.5) == pytest.approx(
        inside.sum() * (g[1] - g[0]) ** 2, rel=2e-3
    )


def _psi_r(radius: float, p: ProcessConfig) -> float:
    """Largest internal ray angle a bend of centerline radius R keeps guided."""
    a, q = p.core_diameter_mm / 2, p.n_clad / p.n_core
    return math.acos(q * (radius + a) / (radius - a))


def test_bend_loss_of_a_lens_launch_closed_forms(resin: ProcessConfig) -> None:
    from fabrication.transmission import Launch, bend_transmission

    n1, n2 = resin.n_core, resin.n_clad
    a = resin.core_diameter_mm / 2
    psi = _psi_r(10.0, resin)  # 13.5° for the resin preset
    assert math.degrees(psi) == pytest.approx(13.5, abs=0.1)
    # an f/2.8 cone on axis is 6.55° inside the core: the 10 mm bend keeps all of it
    f28 = Launch.from_f_number(2.8)
    assert math.degrees(math.asin(f28.na / n1)) == pytest.approx(6.55, abs=0.01)
    assert bend_transmission(10.0, a, n1, n2, launch_na=f28.na) == pytest.approx(1.0)
    # a cone wider than the acceptance, on axis: the guided part of a uniformly filled
    # direction-cosine disk, (n1 sin ψ_R)² / (n1² − n2²)
    want = (n1 * math.sin(psi)) ** 2 / (n1**2 - n2**2)
    assert bend_transmission(10.0, a, n1, n2, launch_na=1.0) == pytest.approx(want)
    # a straight fiber keeps every launched ray, whatever the chief ray
    assert bend_transmission(math.inf, a, n1, n2, launch_na=0.3, chief_sin=0.4) == 1.0


def test_bend_loss_of_a_tilted_cone_matches_a_ray_count(resin: ProcessConfig) -> None:
    """Rays spread uniformly over the pupil (uniform in direction cosines around the chief
    ray), counted one by one: kept if guided after the bend, among those accepted."""
    from fabrication.transmission import bend_transmission

    n1, n2, a = resin.n_core, resin.n_clad, resin.core_diameter_mm / 2
    rng = np.random.default_rng(0)
    na, chief = 0.18, 0.3
    u = rng.random((400_000, 2))
    rho = na * np.sqrt(u[:, 0])
    phi = 2 * math.pi * u[:, 1]
    sx, sy = chief + rho * np.cos(phi), rho * np.sin(phi)  # direction cosines in air
    s_in = np.hypot(sx, sy) / n1  # sin of the internal angle (Snell)
    accepted = s_in <= math.sqrt(n1**2 - n2**2) / n1
    kept = accepted & (s_in <= math.sin(_psi_r(12.0, resin)))
    got = bend_transmission(12.0, a, n1, n2, launch_na=na, chief_sin=chief)
    assert got == pytest.approx(kept.sum() / accepted.sum(), abs=3e-3)
    assert 0.05 < got < 0.95  # a case where the tilt matters


def test_the_lens_launch_sets_the_bend_loss_of_the_printed_part(make_key, resin) -> None:
    from fabrication.transmission import Launch

    key = make_key(8, 4, True)
    uniform = printed_transmission(key, resin)
    telecentric = printed_transmission(key, resin, Launch.from_f_number(2.8))
    tilted = printed_transmission(key, resin, Launch.from_f_number(2.8, 20.0))
    np.testing.assert_array_equal(telecentric.attenuation, uniform.attenuation)
    np.testing.assert_allclose(telecentric.bend, 1.0)  # every bend here is ≥ 10 mm
    assert np.all(tilted.bend <= telecentric.bend + 1e-12)
    assert np.all(uniform.bend <= tilted.bend + 1e-12)
    assert routing_digest(key, resin) != routing_digest(key, resin, Launch.from_f_number(2.8))
    assert tilted.summary()["launch"] == {"na": tilted.launch.na, "pupil_distance_mm": 20.0}
