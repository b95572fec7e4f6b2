"""Privacy of the faceplate key on a natural photograph (models.md: Faceplate).

The scene is matplotlib's bundled ``grace_hopper.jpg``: sRGB decoded to linear luminance,
the central square cropped and box-averaged onto the 64 × 64 lattice.

Figures measured with this test's preprocessing (mean over seeds 0–7, local key, total
Pearson correlation scrambled vs plain): b = 2: 0.83, 4: 0.56, 8: 0.31, 16: 0.16. On the
sRGB-encoded (gamma) grey image they are 0.87 / 0.67 / 0.44 / 0.30, close to the
0.80 / 0.61 / 0.41 / 0.29 measured on other gamma-encoded 64 x 64 photographs: the linear
image keeps more of its variance in a few bright regions, so less of it survives as block
means. With ``permute_blocks`` the total is ≈ 0 (|r| < 0.1) for every b ≥ 2.
"""

from __future__ import annotations

import itertools

import matplotlib.cbook as cbook
import numpy as np
import pytest
from PIL import Image

from optics.faceplate import (
    FaceplateConfig,
    coupling_operator,
    keygen,
    scramble,
    site_readout,
    unscramble,
)
from optics.faceplate.lattice import block_ids

N = 64


@pytest.fixture(scope="module")
def scene() -> np.ndarray:
    path = cbook.get_sample_data("grace_hopper.jpg", asfileobj=False)
    srgb = np.asarray(Image.open(path).convert("RGB"), dtype=np.float64) / 255.0
    lin = np.where(srgb <= 0.04045, srgb / 12.92, ((srgb + 0.055) / 1.055) ** 2.4)
    grey = lin @ np.array([0.2126, 0.7152, 0.0722])  # relative luminance (Rec. 709)
    h, w = grey.shape
    side = min(h, w) // N * N
    r0, c0 = (h - side) // 2, (w - side) // 2
    f = side // N
    return grey[r0 : r0 + side, c0 : c0 + side].reshape(N, f, N, f).mean(axis=(1, 3))


def _corr(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.corrcoef(np.ravel(a), np.ravel(b))[0, 1])


def _remove_block_means(img: np.ndarray, b: int) -> np.ndarray:
    bid = block_ids(N, N, b)
    v = np.ravel(img)
    means = np.bincount(bid, v) / np.bincount(bid)
    return v - means[bid]


def _key(b: int, permute_blocks: bool, seed: int = 0, **kw):
    return keygen(FaceplateConfig(block_size=b, permute_blocks=permute_blocks, seed=seed, **kw))


def test_scene_is_a_natural_image(scene):
    assert scene.shape == (N, N)
    assert 0.0 < scene.min() < scene.max() <= 1.0
    # Natural images are strongly correlated between neighbours.
    assert _corr(scene[:, 1:], scene[:, :-1]) > 0.7


@pytest.mark.parametrize("b", [2, 4, 8, 16, 32])
def test_local_key_hides_detail_but_leaks_the_thumbnail(scene, b):
    totals = []
    for seed in range(3):
        scr = scramble(scene, _key(b, False, seed, transmission_rms=0.0))
        residual = _corr(_remove_block_means(scr, b), _remove_block_means(scene, b))
        assert abs(residual) < 0.1, (b, seed, residual)
        totals.append(_corr(scr, scene))
    # Closed form: scrambled = block mean + permuted residual with corr ≈ 0, so the total
    # correlation is the share of the image variance carried by the block means.
    bm = np.ravel(scene) - _remove_block_means(scene, b)
    leak = np.var(bm) / np.var(scene)
    assert np.mean(totals) == pytest.approx(leak, abs=0.05)
    if b <= 8:
        assert np.mean(totals) > 0.25  # the thumbnail leak is real, not noise


def test_local_leak_shrinks_with_block_size(scene):
    totals = [
        np.mean(
            [_corr(scramble(scene, _key(b, False, s, transmission_rms=0.0)), scene) for s in (0, 1)]
        )
        for b in (1, 2, 4, 8, 16, 64)
    ]
    assert totals[0] == pytest.approx(1.0)
    assert all(a > b for a, b in itertools.pairwise(totals))
    assert abs(totals[-1]) < 0.05  # global permutation


@pytest.mark.parametrize(
    "b,shuffle", [(4, "uniform"), (8, "uniform"), (16, "uniform"), (8, "rows_then_columns")]
)
def test_block_permutation_hides_the_thumbnail(scene, b, shuffle):
    key = _key(b, True, seed=0, transmission_rms=0.0, shuffle=shuffle)
    scr = scramble(scene, key)
    assert abs(_corr(scr, scene)) < 0.1
    assert abs(_corr(_remove_block_means(scr, b), _remove_block_means(scene, b))) < 0.1


def test_unscrambled_frame_matches_the_scene(scene):
    """Full path with a realistic key and shot noise: the authorised view is the scene."""
    key = _key(
        8,
        True,
        seed=11,
        transmission_rms=0.05,
        gain_key_rms=0.2,
        bias_photons_per_s=500.0,
        crosstalk_in=0.05,
        crosstalk_out=0.05,
        dead_fraction=0.005,
    )
    cfg = key.config
    # Relay: 1 mm pitch imaged at m = 0.1 onto 20 µm pixels (5 px per fiber), slightly
    # rotated and off-centre, as in an assembled camera.
    coupling = coupling_operator(
        cfg,
        pixel_pitch_um=20.0,
        sensor_shape=(336, 336),
        magnification=0.1,
        offset_um=(13.0, -9.0),
        rotation_deg=0.7,
        blur_um=8.0,
    )
    flux = 2e5 * scene  # photons per fiber during the exposure
    exposure_s = 1.0
    mean_frame = coupling @ scramble(flux, key, bias_scale=exposure_s).ravel()
    rng = np.random.default_rng(2024)
    frame = rng.poisson(mean_frame).astype(np.float64).reshape(336, 336)
    # Binning the frame per output site needs only the public output-face geometry; what it
    # shows is still scrambled.
    assert abs(_corr(site_readout(frame, coupling), scene)) < 0.1
    view = unscramble(frame, key, coupling=coupling, bias_scale=exposure_s)
    assert view.shape == (N, N)
    assert _corr(view, scene) > 0.99
    np.testing.assert_allclose(view.mean(), flux.mean(), rtol=0.01)
