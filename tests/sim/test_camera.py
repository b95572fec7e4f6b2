"""The composed camera: operator vs captures, photometry, exposure, keys, privacy."""

from __future__ import annotations

import math

import numpy as np
import pytest

from optics.faceplate import FaceplateConfig, keygen
from optics.lens.radiometry import photons_per_joule
from sim.camera import Camera
from sim.scene import resample_area


def _corr(a: np.ndarray, b: np.ndarray) -> float:
    a = np.ravel(a) - np.mean(a)
    b = np.ravel(b) - np.mean(b)
    return float(a @ b / math.sqrt((a @ a) * (b @ b)))


def test_mean_of_400_captures_equals_operator(small, smooth_scene):
    cam = Camera(small)
    x = cam.prepare_scene(smooth_scene)
    a, b = cam.operator()
    mu = a @ x.ravel() + b
    n = 400
    frames = cam.capture(smooth_scene, rng=np.random.default_rng(11), frames=n)
    assert frames.shape == (n, 32, 32) and frames.dtype == np.uint16
    f = frames.reshape(n, -1).astype(np.float64)
    top = cam.sensor.max_dn
    ok = mu < top - 6 * np.sqrt(np.maximum(mu, 1.0))  # far from ADC clipping
    assert ok.mean() > 0.9
    assert mu.max() > 1000  # the test covers a real signal range, not just the dark level
    z = (f.mean(axis=0) - mu) / np.sqrt(f.var(axis=0, ddof=1) / n)
    z = z[ok]
    # z ~ N(0, 1) per pixel if the operator is the mean: chi²/dof within 5 sigma of 1.
    dof = z.size
    assert abs(np.mean(z**2) - 1.0) < 5 * math.sqrt(2.0 / dof)
    assert np.max(np.abs(z)) < 5.5


def test_operator_matches_expected_dn_and_stages(small, smooth_scene):
    cam = Camera(small)
    a, b = cam.operator(exposure_s=0.02)
    x = cam.prepare_scene(smooth_scene).ravel()
    assert a.shape == (32 * 32, 32 * 32) and b.shape == (32 * 32,)
    np.testing.assert_allclose(
        a @ x + b, cam.expected_dn(smooth_scene, exposure_s=0.02).ravel(), rtol=1e-12
    )
    # The stages compose to the same thing.
    gain, offset = cam.sensor.affine(0.02)
    k, t = cam.coupling_operator, cam.transfer_operator
    photons = 0.02 * (k @ (t @ (cam.sampling_operator @ (cam.lens_operator @ x))))
    photons += 0.02 * (k @ cam.transfer_bias)
    np.testing.assert_allclose(a @ x + b, gain.ravel() * photons + offset.ravel(), rtol=1e-12)


def test_photometry_of_a_white_scene_matches_closed_form(make_small, small):
    """Flux entering a central fiber core = E · core area · λ/(hc), E = πLT/(1+4N²) cos⁴θ."""
    cfg = make_small(lens={**small.lens.model_dump(), "vignetting": False})
    conv = Camera(cfg).conventional()
    fp, lens = cfg.faceplate, cfg.lens
    e = math.pi * cfg.scene.radiance_w_m2_sr * lens.transmission / (1 + 4 * lens.f_number**2)
    core_m2 = math.pi * (0.5 * fp.core_diameter_um * 1e-6) ** 2
    into_core = e * core_m2 * photons_per_joule(lens.wavelength_nm)
    sl = conv.sampling_operator @ (conv.lens_operator @ np.ones(32 * 32))
    centre = [27, 28, 35, 36]  # the four central fibers of the 8 x 8 lattice
    np.testing.assert_allclose(sl[centre], into_core, rtol=1e-9)
    # Coherent faceplate: mean transmission, plus the mean stray light (crosstalk conserves a
    # uniform field at interior sites).
    out = conv.transfer_operator @ sl + conv.transfer_bias
    want = into_core * fp.transmission_mean + fp.bias_photons_per_s
    np.testing.assert_allclose(out[centre], want, rtol=1e-9)
    # Relay: every central site delivers efficiency = T (|m| / (2 N (1+|m|)) / NA)² of it.
    cp = cfg.coupling
    m = abs(cp.magnification)
    eff = cp.relay_transmission * (m / (2 * cp.relay_f_number * (1 + m)) / 0.5) ** 2
    col = np.asarray(conv.coupling_operator.sum(axis=0)).ravel()
    np.testing.assert_allclose(col[centre], eff, rtol=1e-6)


def test_auto_exposure_puts_percentile_at_target(make_small, small, smooth_scene):
    cfg = make_small(exposure="auto")
    cam = Camera(cfg)
    t = cam.exposure_for(smooth_scene)
    s = cam.sensor
    electrons = (
        s.config.quantum_efficiency * s.prnu_map * cam.photon_rate(smooth_scene) * t
        + s.config.dark_current_e_per_s * t
    )
    got = np.percentile(electrons, 99.5)
    assert got == pytest.approx(0.8 * s.saturation_e, rel=1e-9)
    # and capture uses it: the 99.5th percentile of a frame sits near 80 % of the ADC range
    f = cam.capture(smooth_scene, rng=np.random.default_rng(0)).astype(float)
    frac = (np.percentile(f, 99.5) - s.config.black_level_dn) / (s.max_dn - s.config.black_level_dn)
    assert 0.7 < frac < 0.9


def test_fixed_exposure_and_override(small, smooth_scene):
    cam = Camera(small)
    assert cam.exposure_for(smooth_scene) == 0.01
    d1 = cam.expected_dn(smooth_scene, exposure_s=0.01)
    d2 = cam.expected_dn(smooth_scene, exposure_s=0.02)
    off = cam.sensor.affine(0.01)[1]
    off2 = cam.sensor.affine(0.02)[1]
    np.testing.assert_allclose(d2 - off2, 2 * (d1 - off), rtol=1e-12, atol=1e-9)


def test_rgb_scene_is_seen_as_rec709_luminance(small, smooth_scene):
    cam = Camera(small)
    rgb = np.stack([smooth_scene, smooth_scene**2, 0.5 * smooth_scene], axis=-1)
    lum = 0.2126 * rgb[..., 0] + 0.7152 * rgb[..., 1] + 0.0722 * rgb[..., 2]
    np.testing.assert_allclose(cam.photon_rate(rgb), cam.photon_rate(lum), rtol=1e-12)


def test_orientation_row0_is_top(small):
    """A bright top-left quadrant lands top-left on a conventional camera's frame."""
    conv = Camera(small).conventional()
    scene = np.zeros((32, 32))
    scene[:16, :16] = 1.0
    d = conv.expected_dn(scene, exposure_s=0.01)
    q = [d[:16, :16].mean(), d[:16, 16:].mean(), d[16:, :16].mean(), d[16:, 16:].mean()]
    assert int(np.argmax(q)) == 0 and q[0] > 5 * max(q[1:])


def test_key_reuse_gives_identical_fixed_patterns(small, smooth_scene):
    key = keygen(small.faceplate)
    c1, c2 = Camera(small, key), Camera(small, key)
    a1, b1 = c1.operator()
    a2, b2 = c2.operator()
    assert (a1 != a2).nnz == 0 and np.array_equal(b1, b2)
    f1 = c1.capture(smooth_scene, rng=np.random.default_rng(5))
    f2 = c2.capture(smooth_scene, rng=np.random.default_rng(5))
    assert np.array_equal(f1, f2)
    # another key: another fixed pattern
    other = Camera(small.with_key_seed(99))
    assert other.key.fingerprint != key.fingerprint
    assert not np.allclose(other.operator()[1], b1) or (other.operator()[0] != a1).nnz > 0


def test_default_key_comes_from_config_seed(small):
    assert Camera(small).key == keygen(small.faceplate)
    assert Camera(small.with_key_seed(4)).key != Camera(small).key


def test_key_for_another_lattice_is_refused(small):
    other = keygen(FaceplateConfig(rows=16, cols=16, block_size=4))
    with pytest.raises(ValueError, match="another lattice"):
        Camera(small, other)


def test_capture_rejects_bad_scenes_and_frames(small):
    cam = Camera(small)
    rng = np.random.default_rng(0)
    for bad in (np.full((8, 8), 1.5), np.full((8, 8), np.nan), np.zeros((8, 8, 4)), np.zeros(5)):
        with pytest.raises(ValueError, match="scene"):
            cam.capture(bad, rng=rng)
    with pytest.raises(ValueError, match="frames"):
        cam.capture(np.zeros((8, 8)), rng=rng, frames=0)


def test_unscramble_recovers_the_fiber_image(make_small, small, smooth_scene):
    """Noise-free: the authorised view equals the light that entered each fiber."""
    cfg = make_small(faceplate={**small.faceplate.model_dump(), "dead_fraction": 0.0})
    cam = Camera(cfg)
    t = 0.01
    d = cam.expected_dn(smooth_scene, exposure_s=t)
    x = cam.prepare_scene(smooth_scene).ravel()
    into = (cam.sampling_operator @ (cam.lens_operator @ x)) * t
    got = cam.unscramble(d, exposure_s=t).ravel()
    np.testing.assert_allclose(got, into, rtol=2e-3)


@pytest.fixture(scope="module")
def default_views():
    from sim.io import default_scene_path, read_image

    cam = Camera.default()
    scene = read_image(default_scene_path()).data
    t = cam.exposure_for(cam.prepare_scene(scene))
    rng = np.random.default_rng(2)
    enc = cam.capture(scene, rng=rng, exposure_s=t)
    conv = cam.conventional().capture(scene, rng=rng, exposure_s=t)
    return cam, scene, t, enc, conv


def test_conventional_reproduces_scene_encrypted_does_not(default_views):
    cam, scene, t, enc, conv = default_views
    rows, cols = cam.config.faceplate.rows, cam.config.faceplate.cols
    truth = resample_area(cam.prepare_scene(scene), (rows, cols))
    # per-fiber readout (public binning through the coupling operator)
    r_conv = cam.conventional().readout(conv, exposure_s=t).reshape(rows, cols)
    r_enc = cam.readout(enc, exposure_s=t).reshape(rows, cols)
    assert _corr(r_conv, truth) > 0.95
    assert abs(_corr(r_enc, truth)) < 0.1
    # raw frames binned over the face's footprint on the sensor (to the nearest pixel)
    fp, s = cam.config.faceplate, cam.sensor.config
    half = cols * fp.pitch_um * abs(cam.config.coupling.magnification) / s.pixel_pitch_um / 2
    lo, hi = round(s.width_px / 2 - half), round(s.width_px / 2 + half)
    c_conv = resample_area(conv[lo:hi, lo:hi].astype(float), (rows, cols))
    c_enc = resample_area(enc[lo:hi, lo:hi].astype(float), (rows, cols))
    assert _corr(c_conv, truth) > 0.95
    assert abs(_corr(c_enc, truth)) < 0.1
    # the key holder sees the scene again
    assert _corr(cam.unscramble(enc, exposure_s=t), truth) > 0.95


def test_default_camera_is_the_printable_design(default_views):
    cam = default_views[0]
    fp, s = cam.config.faceplate, cam.sensor.config
    assert (fp.rows, fp.cols, fp.pitch_um, fp.core_diameter_um) == (16, 16, 1000.0, 600.0)
    assert fp.block_size == 4 and fp.permute_blocks
    # simulated as printed: the transmission of the routed part, resin at 0.5 dB/cm
    assert cam.config.transmission.source == "printed"
    assert cam.transmission_info["source"] == "printed"
    assert cam.transmission_info["attenuation_db_per_cm"] == 0.5
    assert s.bit_depth == 12 and cam.frame_shape == (64, 64)
    px_per_fiber = abs(cam.config.coupling.magnification) * fp.pitch_um / s.pixel_pitch_um
    assert 3 < px_per_fiber < 5 and abs(px_per_fiber - round(px_per_fiber)) > 0.1
    assert fp.cols * px_per_fiber <= s.width_px  # the whole face is on the sensor
