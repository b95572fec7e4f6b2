"""Camera.capture_batch: the frames of capture(), frame by frame, bit for bit."""

from __future__ import annotations

import numpy as np
import pytest

from optics.faceplate import keygen
from sim.camera import Camera, CameraConfig
from sim.quantile import upper_percentile


@pytest.fixture(scope="module")
def default_camera() -> Camera:
    cfg = CameraConfig.default()
    return Camera(cfg, keygen(cfg.with_key_seed(7).faceplate))


def _scenes() -> list[np.ndarray]:
    rng = np.random.default_rng(3)
    scenes: list[np.ndarray] = [rng.random((64, 64)) ** 2 for _ in range(9)]
    scenes.append(np.zeros((40, 40)))  # dark: auto exposure at its upper limit
    scenes.append(np.ones((64, 64)))  # uniform white: clips nowhere, saturates nothing
    scenes.append(rng.random((50, 70, 3)))  # colour, another size and aspect
    scenes.append(np.full((8, 8), 0.3))
    return scenes


def _seeds(n: int) -> list[int]:
    return [int(s) for s in np.random.SeedSequence(5).generate_state(n, np.uint64)]


def _loop(camera: Camera, scenes, seeds, exposure_s=None):
    frames = [
        camera.capture(s, rng=np.random.default_rng(x), exposure_s=exposure_s)
        for s, x in zip(scenes, seeds, strict=True)
    ]
    return np.stack(frames)


def test_batch_equals_capture_per_frame_with_auto_exposure(default_camera):
    cam, scenes = default_camera, _scenes()
    seeds = _seeds(len(scenes))  # 13 frames: more than one block of the sensor
    frames, times = cam.capture_batch(scenes, rngs=[np.random.default_rng(x) for x in seeds])
    assert frames.dtype == np.uint16 and frames.shape == (len(scenes), *cam.frame_shape)
    np.testing.assert_array_equal(frames, _loop(cam, scenes, seeds))
    assert times.tolist() == [cam.exposure_for(s) for s in scenes]
    assert len(set(times.tolist())) > 5  # the exposure really follows each scene
    # frames differ from scene to scene and from seed to seed
    again, _ = cam.capture_batch(scenes[:1] * 2, rngs=[np.random.default_rng(x) for x in seeds[:2]])
    assert not np.array_equal(again[0], again[1])


def test_batch_equals_capture_with_a_fixed_exposure(default_camera):
    cam, scenes = default_camera, _scenes()[:5]
    seeds = _seeds(5)
    frames, times = cam.capture_batch(
        iter(scenes), rngs=[np.random.default_rng(x) for x in seeds], exposure_s=0.004
    )
    np.testing.assert_array_equal(frames, _loop(cam, scenes, seeds, exposure_s=0.004))
    assert times.tolist() == [0.004] * 5


def test_batch_on_a_colour_camera_with_a_configured_exposure(make_small, small, smooth_scene):
    lens = {**small.lens.model_dump(), "wavelength_nm": [610.0, 540.0, 465.0]}
    cam = Camera(make_small(colour="bayer_rggb", lens=lens))
    assert cam.n_channels == 3
    rgb = np.stack([smooth_scene, smooth_scene[::-1], smooth_scene.T], axis=2)
    scenes = [rgb, smooth_scene, rgb[::2, ::3]]
    seeds = _seeds(3)
    frames, times = cam.capture_batch(scenes, rngs=[np.random.default_rng(x) for x in seeds])
    np.testing.assert_array_equal(frames, _loop(cam, scenes, seeds))
    assert times.tolist() == [cam.config.exposure] * 3


def test_empty_batch(small):
    frames, times = Camera(small).capture_batch([], rngs=[])
    assert frames.shape == (0, 32, 32) and frames.dtype == np.uint16 and times.shape == (0,)


def test_batch_refuses_what_capture_refuses(small, smooth_scene):
    cam = Camera(small)
    rngs = [np.random.default_rng(0), np.random.default_rng(1)]
    with pytest.raises(ValueError, match="one generator per scene: 2 for 1"):
        cam.capture_batch([smooth_scene], rngs=rngs)
    bad = np.full((8, 8), 2.0)
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        cam.capture(bad, rng=rngs[0])
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        cam.capture_batch([smooth_scene, bad], rngs=rngs)
    with pytest.raises(ValueError, match="exposure_s"):
        cam.capture_batch([smooth_scene], rngs=rngs[:1], exposure_s=-1.0)
    with pytest.raises(TypeError, match="rng"):
        cam.capture_batch([smooth_scene], rngs=[0])


def test_auto_exposure_is_the_numpy_percentile_rule(default_camera):
    # exposure_for uses a faster percentile; the rule is still numpy.percentile's, exactly
    cam = default_camera
    c, s = cam.config, cam.sensor
    for scene in _scenes():
        rate_e = cam._gain_e * cam.photon_rate(scene).ravel() + s.config.dark_current_e_per_s
        bright = float(np.percentile(rate_e, c.auto_percentile))
        lo, hi = c.exposure_limits_s
        want = (
            hi
            if not bright > 0
            else float(np.clip(c.auto_target * s.saturation_e / bright, lo, hi))
        )
        assert cam.exposure_for(scene) == want


@pytest.mark.parametrize("n", [1, 7, 4095, 4096, 5000, 65536, 100_003])
def test_upper_percentile_is_numpy_percentile_bit_for_bit(n):
    rng = np.random.default_rng(n)
    qs = [0.0, 12.5, 50.0, 90.0, 99.0, 99.5, 99.9, 99.99, 100.0, float(rng.uniform(50, 100))]
    arrays = [
        rng.random(n),
        rng.standard_normal(n) * 1e6,
        rng.random(n) ** 8,  # a long bright tail, like a frame
        np.round(rng.random(n) * 7),  # heavy ties
        np.full(n, 3.25),
        np.sort(rng.random(n))[::-1].copy(),  # ordered: the strided guess sees only the top
        np.sort(rng.random(n)),
    ]
    for x in arrays:
        before = x.copy()
        for q in qs:
            got = upper_percentile(x, q)
            assert isinstance(got, float)
            assert got == float(np.percentile(x, q)), (q, n)
        np.testing.assert_array_equal(x, before)  # the input is left alone


def test_upper_percentile_with_nan_is_nan():
    x = np.random.default_rng(0).random(10_000)
    x[17] = np.nan
    assert np.isnan(upper_percentile(x, 99.5))
