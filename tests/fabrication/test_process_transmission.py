"""Process presets, refusal of unprintable lattices, and transmission from geometry."""

from __future__ import annotations

import math

import numpy as np
import pytest
from pydantic import ValidationError

from fabrication.process import ProcessConfig, face_geometry
from fabrication.transmission import (
    bend_transmission,
    fiber_transmission,
    fresnel_transmission,
)


def test_presets_follow_physics_limits() -> None:
    resin = ProcessConfig.preset("resin")
    assert resin.core_diameter_mm == 0.6 and resin.min_wall_mm >= 0.4
    assert resin.min_bend_radius_mm >= 10 and resin.max_tilt_deg <= 30
    assert resin.attenuation_db_per_cm == 0.5
    assert resin.min_pitch_mm == pytest.approx(1.0)
    fdm = ProcessConfig.preset("fdm")
    assert fdm.channel_diameter_mm == pytest.approx(fdm.core_diameter_mm + 0.3)
    assert fdm.min_wall_mm >= 0.8
    assert ProcessConfig.preset("resin", min_bend_radius_mm=15).min_bend_radius_mm == 15


def test_polygon_sides_meet_the_chord_tolerance() -> None:
    for name in ("resin", "fdm"):
        p = ProcessConfig.preset(name)
        n = p.polygon_sides()
        r = p.channel_diameter_mm / 2
        assert n >= 16
        assert r * (1 - math.cos(math.pi / n)) < 0.01
    big = ProcessConfig.preset("resin", core_diameter_mm=3.0)
    n = big.polygon_sides()
    assert n > 16 and 1.5 * (1 - math.cos(math.pi / n)) < 0.01


def test_bad_process_values_fail_at_load_time() -> None:
    with pytest.raises(ValidationError, match="min_wall_mm"):
        ProcessConfig.preset("resin", min_wall_mm=-1)
    with pytest.raises(ValidationError, match="n_clad"):
        ProcessConfig.preset("resin", n_clad=1.6)
    with pytest.raises(ValueError, match="process must be one of"):
        ProcessConfig.preset("sla9000")


def test_process_that_cannot_fit_the_lattice_is_refused() -> None:
    fdm = ProcessConfig.preset("fdm")  # needs 0.8 + 0.8 = 1.6 mm
    with pytest.raises(ValueError, match=r"cannot fit the key's lattice.*1600"):
        face_geometry("square", 8, 8, 1000.0, fdm)
    face = face_geometry("square", 8, 8, 1600.0, fdm)
    assert face.pitch_mm == pytest.approx(1.6)
    d = np.diff(np.sort(np.unique(face.sites_mm[:, 0])))
    assert np.allclose(d, 1.6)


def test_fresnel_matches_closed_form() -> None:
    # models.md (Faceplate): ~4 % per face at n = 1.5
    assert fresnel_transmission(1.5) == pytest.approx((1 - 0.04) ** 2)


def test_attenuation_matches_decibel_law(resin: ProcessConfig) -> None:
    out = fiber_transmission(np.array([0.0, 100.0]), np.array([np.inf, np.inf]), resin)
    assert out["attenuation"][0] == pytest.approx(1.0)
    assert out["attenuation"][1] == pytest.approx(10 ** (-0.5 * 10 / 10))  # 0.5 dB/cm x 10 cm
    assert out["bend"] == pytest.approx([1.0, 1.0])
    assert out["total"][1] == pytest.approx(
        out["attenuation"][1] * fresnel_transmission(resin.n_core)
    )


def test_bend_loss_criterion() -> None:
    n1, n2, a = 1.5, 1.4, 0.3
    q = n2 / n1
    # straight fiber keeps everything; at R = a (1 + q)/(1 - q) even the axial ray is lost
    assert bend_transmission(np.inf, a, n1, n2) == pytest.approx(1.0)
    r_cut = a * (1 + q) / (1 - q)
    assert bend_transmission(r_cut, a, n1, n2) == pytest.approx(0.0, abs=1e-12)
    assert bend_transmission(a / 2, a, n1, n2) == 0.0
    # a ray at psi survives R iff R >= a (cos psi + q)/(cos psi - q): check at one radius
    r = 10.0
    cos_r = q * (r + a) / (r - a)
    psi = math.acos(cos_r)
    assert r == pytest.approx(a * (math.cos(psi) + q) / (math.cos(psi) - q))
    assert bend_transmission(r, a, n1, n2) == pytest.approx((1 - cos_r) / (1 - q))
    # monotone in R
    rs = np.array([5.0, 10.0, 20.0, 100.0])
    t = bend_transmission(rs, a, n1, n2)
    assert np.all(np.diff(t) > 0)
