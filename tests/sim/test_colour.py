"""The RGGB Bayer option: filter layout, per-channel light, operator, authorised view."""

from __future__ import annotations

import math

import numpy as np
import pytest

from sim.camera import Camera
from sim.colour import cfa_masks, prepare_colour_scene


@pytest.fixture
def bayer(make_small, small):
    lens = {**small.lens.model_dump(), "wavelength_nm": (610.0, 540.0, 465.0)}
    return make_small(colour="bayer_rggb", lens=lens)


def test_rggb_layout():
    m = cfa_masks("bayer_rggb", (4, 4)).reshape(3, 4, 4)
    assert m[0, 0, 0] == 1 and m[1, 0, 1] == 1 and m[1, 1, 0] == 1 and m[2, 1, 1] == 1
    np.testing.assert_array_equal(m.sum(axis=0), 1.0)
    assert m[1].sum() == 2 * m[0].sum() == 2 * m[2].sum()  # half the pixels are green
    assert np.array_equal(cfa_masks("mono", (2, 3)), np.ones((1, 6)))


def test_grey_scene_becomes_three_equal_channels():
    x = prepare_colour_scene(np.full((10, 20), 0.3), (4, 4))
    assert x.shape == (4, 4, 3) and np.allclose(x, 0.3)


def test_bayer_mean_of_captures_equals_operator(bayer, smooth_scene):
    cam = Camera(bayer)
    assert cam.n_channels == 3
    rgb = np.stack([smooth_scene, 1 - 0.8 * smooth_scene, smooth_scene**2], axis=-1)
    x = np.moveaxis(cam.prepare_scene(rgb), 2, 0).ravel()
    a, b = cam.operator()
    assert a.shape == (32 * 32, 3 * 32 * 32)
    mu = a @ x + b
    np.testing.assert_allclose(mu, cam.expected_dn(rgb, exposure_s=0.01).ravel(), rtol=1e-12)
    n = 300
    f = cam.capture(rgb, rng=np.random.default_rng(4), frames=n).reshape(n, -1).astype(float)
    ok = mu < cam.sensor.max_dn - 6 * np.sqrt(np.maximum(mu, 1.0))
    z = ((f.mean(axis=0) - mu) / np.sqrt(f.var(axis=0, ddof=1) / n))[ok]
    assert abs(np.mean(z**2) - 1.0) < 5 * math.sqrt(2.0 / z.size)


def test_red_light_reaches_only_red_pixels_and_the_red_view(bayer):
    conv = Camera(bayer).conventional()
    red = np.zeros((32, 32, 3))
    red[..., 0] = 1.0
    t = 0.01
    d = conv.expected_dn(red, exposure_s=t).ravel()
    dark = conv.expected_dn(np.zeros((32, 32, 3)), exposure_s=t).ravel()
    m = cfa_masks("bayer_rggb", (32, 32)).astype(bool)
    signal = d - dark
    assert signal[m[0]].max() > 1000
    np.testing.assert_allclose(signal[m[1] | m[2]], 0.0, atol=1e-9)
    view = conv.unscramble(d.reshape(32, 32), exposure_s=t)
    assert view.shape == (8, 8, 3)
    into = (conv.sampling_operator @ (conv.lens_operators[0] @ red[..., 0].ravel())) * t
    np.testing.assert_allclose(view[..., 0].ravel(), into, rtol=5e-3)
    assert np.abs(view[..., 1:]).max() < 5e-3 * into.max()
    with pytest.raises(ValueError, match="lens_operators"):
        conv.lens_operator
