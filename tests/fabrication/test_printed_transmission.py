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
        "process", "attenuation_db_per_cm", "bundle_length_mm", "transmission_mean",
        "transmission_min",
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
