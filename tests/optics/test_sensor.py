"""CMOS sensor model against the EMVA 1288 linear model (models.md: Sensor).

Statistical checks are seeded; tolerances are those of models.md (Sensor) and were sized by
Monte Carlo runs (observed spreads are several times smaller than the tolerances).
"""

import math

import numpy as np
import pytest
from pydantic import ValidationError
from scipy import stats

from optics.sensor import EXACT_POISSON_BELOW_E, PRESETS, Sensor, SensorConfig, sampling

H = W = 128


def roi(name="imx174", **update):
    return PRESETS[name].model_copy(update={"width_px": W, "height_px": H, **update})


def ideal(**update):
    """Unit-gain sensor with every non-ideality off unless asked for."""
    base = dict(
        width_px=W,
        height_px=H,
        pixel_pitch_um=5.0,
        quantum_efficiency=1.0,
        system_gain_dn_per_e=1.0,
        read_noise_e=0.0,
        dark_current_e_per_s=0.0,
        dsnu_e=0.0,
        prnu_fraction=0.0,
        full_well_e=60000.0,
        bit_depth=16,
        black_level_dn=0.0,
        seed=1,
    )
    base.update(update)
    return SensorConfig(**base)


QUIET = dict(shot_noise=False, dark_noise=False, read_noise=False, fixed_pattern=False)


# --------------------------------------------------------------------------- config
def test_presets_match_published_figures():
    a, b = PRESETS["imx174"], PRESETS["imx264"]
    # models.md (Sensor): IMX174 5.86 um, FW ~32.7 ke-, sigma_d ~6.8 e-, QE ~0.77, 12 bit
    assert a.pixel_pitch_um == 5.86 and a.bit_depth == 12
    assert a.full_well_e == pytest.approx(32700, rel=0.02)
    assert a.read_noise_e == pytest.approx(6.8, rel=0.02)
    assert a.quantum_efficiency == pytest.approx(0.77, abs=0.01)
    # small-pixel global shutter: QE 0.6-0.8, sigma_d 2-3 e-, FW ~10 ke-, 12 bit
    assert b.pixel_pitch_um < 4 and b.bit_depth == 12
    assert 0.6 <= b.quantum_efficiency <= 0.8 and 2 <= b.read_noise_e <= 3
    assert 9000 <= b.full_well_e <= 11000


def test_saturation_is_min_of_full_well_and_adc_limit():
    s174, s264 = Sensor(roi("imx174")), Sensor(roi("imx264"))
    assert s174.max_dn == 4095
    assert s174.saturation_e == pytest.approx((4095 - 64) / 0.125)  # ADC-limited
    assert s264.saturation_e == pytest.approx(10500)  # full-well-limited
    assert s264.saturation_photons == pytest.approx(10500 / 0.68)


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("quantum_efficiency", 1.5),
        ("quantum_efficiency", 0.0),
        ("read_noise_e", -1.0),
        ("system_gain_dn_per_e", float("nan")),
        ("full_well_e", float("inf")),
        ("bit_depth", 17),
        ("prnu_fraction", 0.5),
        ("width_px", 0),
        ("black_level_dn", 4095.0),
    ],
)
def test_invalid_config_names_the_field(field, value):
    data = {**PRESETS["imx174"].model_dump(), field: value}
    with pytest.raises(ValidationError) as err:
        SensorConfig.model_validate(data)
    assert field in str(err.value)
    assert {e["loc"][0] for e in err.value.errors()} == {field}


def test_sensor_revalidates_copied_configs():
    bad = PRESETS["imx174"].model_copy(update={"width_px": 0})  # model_copy does not validate
    with pytest.raises(ValidationError, match="width_px"):
        Sensor(bad)


def test_unknown_field_and_frozen():
    with pytest.raises(ValidationError, match="read_noise"):
        SensorConfig.model_validate({**PRESETS["imx174"].model_dump(), "read_noise": 1.0})
    with pytest.raises(ValidationError):
        PRESETS["imx174"].width_px = 10


def test_from_toml_with_preset_and_overrides(tmp_path):
    p = tmp_path / "cam.toml"
    p.write_text('[sensor]\npreset = "imx264"\nwidth_px = 64\nheight_px = 32\nseed = 7\n')
    cfg = SensorConfig.from_toml(p)
    assert (cfg.width_px, cfg.height_px, cfg.seed) == (64, 32, 7)
    assert cfg.full_well_e == PRESETS["imx264"].full_well_e
    flat = tmp_path / "flat.toml"
    flat.write_text("\n".join(f"{k} = {v!r}" for k, v in PRESETS["imx174"].model_dump().items()))
    assert SensorConfig.from_toml(flat) == PRESETS["imx174"]
    bad = tmp_path / "bad.toml"
    bad.write_text('[sensor]\npreset = "imx174"\nquantum_efficiency = 2.0\n')
    with pytest.raises(ValidationError, match="quantum_efficiency"):
        SensorConfig.from_toml(bad)
    with pytest.raises(ValueError, match="unknown sensor preset"):
        SensorConfig.from_dict({"preset": "nope"})


# -------------------------------------------------------------------- fixed patterns
def test_fixed_patterns_have_configured_statistics():
    s = Sensor(roi("imx174"))
    c = s.config
    assert s.prnu_map.shape == s.dsnu_map_e.shape == (H, W)
    assert s.prnu_map.mean() == pytest.approx(1.0, abs=1e-12)
    assert s.prnu_map.std() == pytest.approx(c.prnu_fraction, rel=1e-9)
    assert s.dsnu_map_e.mean() == pytest.approx(0.0, abs=1e-12)
    assert s.dsnu_map_e.std() == pytest.approx(c.dsnu_e, rel=1e-9)
    assert not s.prnu_map.flags.writeable


def test_fixed_patterns_depend_only_on_device_seed():
    a, b = Sensor(roi(seed=5)), Sensor(roi(seed=5))
    np.testing.assert_array_equal(a.prnu_map, b.prnu_map)
    np.testing.assert_array_equal(a.dsnu_map_e, b.dsnu_map_e)
    c = Sensor(roi(seed=6))
    assert np.corrcoef(a.prnu_map.ravel(), c.prnu_map.ravel())[0, 1] < 0.05
    # independent streams: changing the DSNU level leaves the PRNU map alone
    d = Sensor(roi(seed=5, dsnu_e=7.0))
    np.testing.assert_array_equal(a.prnu_map, d.prnu_map)


def test_fixed_patterns_unchanged_by_frame_rng():
    s = Sensor(roi("imx174"))
    prnu, dsnu = s.prnu_map.copy(), s.dsnu_map_e.copy()
    photons = np.full((H, W), 0.5 * s.saturation_photons)
    quiet_fp = dict(QUIET, fixed_pattern=True)
    f1 = s.expose(photons, exposure_s=0.01, rng=np.random.default_rng(1), **quiet_fp)
    s.expose(np.stack([photons] * 4), exposure_s=0.01, rng=np.random.default_rng(2))
    f2 = s.expose(photons, exposure_s=0.01, rng=np.random.default_rng(3), **quiet_fp)
    np.testing.assert_array_equal(s.prnu_map, prnu)
    np.testing.assert_array_equal(s.dsnu_map_e, dsnu)
    np.testing.assert_array_equal(f1, f2)
    # the pattern is really in the frame: it follows the PRNU map
    assert np.corrcoef(f1.ravel(), prnu.ravel())[0, 1] > 0.95


# ---------------------------------------------------------------- determinism, order
def test_same_seed_same_frames_and_all_off_is_deterministic():
    s = Sensor(roi("imx174"))
    photons = np.random.default_rng(0).uniform(0, s.saturation_photons, (3, H, W))
    a = s.expose(photons, exposure_s=0.02, rng=np.random.default_rng(42))
    b = s.expose(photons, exposure_s=0.02, rng=np.random.default_rng(42))
    c = s.expose(photons, exposure_s=0.02, rng=np.random.default_rng(43))
    np.testing.assert_array_equal(a, b)
    assert np.any(a != c)
    assert a.dtype == np.uint16 and a.shape == (3, H, W)
    # stacked frames are independent draws
    same = s.expose(np.stack([photons[0]] * 2), exposure_s=0.02, rng=np.random.default_rng(1))
    assert np.any(same[0] != same[1])
    flags = dict(shot_noise=False, dark_noise=False, read_noise=False)
    d1 = s.expose(photons, exposure_s=0.02, rng=np.random.default_rng(1), **flags)
    d2 = s.expose(photons, exposure_s=0.02, rng=np.random.default_rng(2), **flags)
    np.testing.assert_array_equal(d1, d2)
    # ...and equals the affine mean rounded to nearest and clipped to the ADC range, up to
    # float32 arithmetic (~1e-4 DN), which only matters exactly at half-integers
    mean = s.mean_dn(photons, exposure_s=0.02)
    expected = np.clip(np.rint(mean), 0, s.max_dn)
    off = d1 != expected
    assert off.mean() < 1e-3
    assert np.all(np.abs(np.abs(mean[off] - np.floor(mean[off])) - 0.5) < 1e-3)
    assert np.all(np.abs(d1[off] - expected[off]) == 1)


def test_rounds_to_nearest_not_floor():
    s = Sensor(ideal(black_level_dn=10.0))
    photons = np.full((H, W), 2.4)
    photons[:, W // 2 :] = 2.6
    f = s.expose(photons, exposure_s=1.0, rng=np.random.default_rng(0), **QUIET)
    assert np.all(f[:, : W // 2] == 12) and np.all(f[:, W // 2 :] == 13)


def test_adc_clips_at_both_ends_without_wrapping():
    s = Sensor(ideal(bit_depth=12, read_noise_e=3.0, black_level_dn=0.0))
    dark = s.expose(np.zeros((H, W)), exposure_s=1.0, rng=np.random.default_rng(0))
    assert dark.min() == 0 and dark.max() < 30  # negative read noise clips to 0, no wrap
    assert 0.5 < dark.mean() < 2.0  # half-normal mean 3*sqrt(2/pi)/2 ~ 1.2 DN
    bright = s.expose(np.full((H, W), 1e5), exposure_s=1.0, rng=np.random.default_rng(0))
    assert np.all(bright == 4095)


def test_full_well_clip_comes_before_dsnu_and_read_noise():
    # FW = 1000 e-, far below the ADC limit: saturated pixels keep the DSNU offset and the
    # read noise (stage order of models.md (Sensor)), so their temporal variance is K^2 sd^2 + 1/12.
    cfg = ideal(full_well_e=1000.0, read_noise_e=5.0, dsnu_e=4.0, black_level_dn=100.0)
    s = Sensor(cfg)
    photons = np.full((8, H, W), 1e6)
    f = s.expose(photons, exposure_s=1.0, rng=np.random.default_rng(3)).astype(float)
    expected_mean = 100.0 + 1000.0 + s.dsnu_map_e
    assert np.abs(f.mean(axis=0) - expected_mean).max() < 5 * 5.0 / math.sqrt(8)
    temporal = np.var(f, axis=0, ddof=1).mean()
    assert temporal == pytest.approx(25.0 + 1.0 / 12.0, rel=0.03)


# ------------------------------------------------------------------ noise statistics
def _poisson_chi2(counts_e, mean):
    values = counts_e.ravel().astype(int)
    top = int(stats.poisson.ppf(1 - 1e-4, mean))
    observed = np.bincount(np.minimum(values, top), minlength=top + 1)
    pmf = stats.poisson.pmf(np.arange(top), mean)
    expected = values.size * np.append(pmf, 1 - pmf.sum())
    return stats.chisquare(observed, expected).pvalue


def test_shot_noise_at_3_electrons_is_poisson():
    # eta = 0.5, 6 photons -> 3 e-; K = 1 so DN = electrons. 8 x 128 x 128 samples.
    s = Sensor(ideal(quantum_efficiency=0.5))
    f = s.expose(np.full((8, H, W), 6.0), exposure_s=1.0, rng=np.random.default_rng(11))
    assert _poisson_chi2(f, 3.0) > 1e-3
    assert f.mean() == pytest.approx(3.0, rel=0.01)
    # the test has power: a rounded normal with the same mean and variance is rejected
    fake = np.clip(np.rint(np.random.default_rng(11).normal(3, math.sqrt(3), f.shape)), 0, None)
    assert _poisson_chi2(fake, 3.0) < 1e-6


def test_dark_current_shot_noise_is_poisson():
    s = Sensor(ideal(dark_current_e_per_s=30.0))
    f = s.expose(np.zeros((8, H, W)), exposure_s=0.1, rng=np.random.default_rng(5))
    assert _poisson_chi2(f, 3.0) > 1e-3


@pytest.mark.parametrize("threshold", [EXACT_POISSON_BELOW_E, np.inf])
@pytest.mark.parametrize("electrons", [999.0, 1000.0, 5000.0])
def test_variance_equals_mean_at_high_counts(electrons, threshold):
    s = Sensor(ideal(black_level_dn=100.0))
    f = s.expose(
        np.full((8, H, W), electrons),
        exposure_s=1.0,
        rng=np.random.default_rng(7),
        exact_poisson_below_e=threshold,
    ).astype(float)
    signal = f - 100.0
    assert signal.mean() == pytest.approx(electrons, rel=2e-3)
    # rounding to whole DN adds 1/12 DN^2 to a continuous variate; negligible here
    assert signal.var() == pytest.approx(signal.mean(), rel=0.03)
    assert abs(stats.skew(signal.ravel())) < 0.02 + 1 / math.sqrt(electrons)


@pytest.mark.parametrize("electrons", [100.0, 999.0, 1000.0, 5000.0])
def test_photon_transfer_with_read_noise_on_both_sides_of_threshold(electrons):
    # EMVA 1288: sigma_y^2 = K^2 (sigma_d^2 + mu_e) + 1/12, whichever shot-noise path is used
    k, sd = 0.5, 30.0
    s = Sensor(ideal(system_gain_dn_per_e=k, read_noise_e=sd, black_level_dn=500.0))
    f = s.expose(np.full((8, H, W), electrons), exposure_s=1.0, rng=np.random.default_rng(8))
    var = np.var(f.astype(float), axis=0, ddof=1).mean()
    assert var == pytest.approx(k**2 * (sd**2 + electrons) + 1 / 12, rel=0.03)


def test_normal_approximation_near_full_well_matches_exact_poisson():
    # mean = full well: about half the pixels clip. The two-step approximate path must
    # clip like exact Poisson does (clip fraction, mean and variance).
    s = Sensor(ideal(full_well_e=2000.0, read_noise_e=2.0))
    photons = np.full((4, H, W), 2000.0)
    approx = s.expose(photons, exposure_s=1.0, rng=np.random.default_rng(1)).astype(float)
    exact = s.expose(
        photons, exposure_s=1.0, rng=np.random.default_rng(2), exact_poisson_below_e=np.inf
    ).astype(float)
    for a, e in [((approx >= 1998).mean(), (exact >= 1998).mean()), (approx.mean(), exact.mean())]:
        assert a == pytest.approx(e, rel=0.02)
    assert approx.var() == pytest.approx(exact.var(), rel=0.05)


def test_frame_mean_equals_affine_mean():
    # The camera's operator is built from Sensor.affine: the mean of many frames must equal
    # gain * photons + offset within statistical error, with every noise source on.
    s = Sensor(roi("imx174"))
    c = s.config
    t = 0.05
    scene = np.random.default_rng(9).uniform(20, 0.9 * s.saturation_photons, (H, W))
    n = 48
    frames = s.expose(np.broadcast_to(scene, (n, H, W)), exposure_s=t, rng=np.random.default_rng(4))
    gain, offset = s.affine(t)
    np.testing.assert_allclose(gain, c.system_gain_dn_per_e * c.quantum_efficiency * s.prnu_map)
    mean = s.mean_dn(scene, exposure_s=t)
    np.testing.assert_allclose(mean, gain * scene + offset)
    k = c.system_gain_dn_per_e
    electrons = c.quantum_efficiency * s.prnu_map * scene + c.dark_current_e_per_s * t
    var = k**2 * (c.read_noise_e**2 + electrons) + 1 / 12
    z = (frames.mean(axis=0) - mean) / np.sqrt(var / n)
    assert abs(z.mean()) < 5 / math.sqrt(z.size)  # no bias
    assert z.std() == pytest.approx(1.0, abs=0.05)  # variance as the EMVA model says
    assert np.abs(z).max() < 5.5


def test_noise_switches_act_on_their_own_source():
    s = Sensor(roi("imx174", dark_current_e_per_s=1000.0))
    zeros = np.zeros((4, H, W))
    rng = np.random.default_rng
    only_read = s.expose(zeros, exposure_s=1e-6, rng=rng(1), **dict(QUIET, read_noise=True))
    k, sd = s.config.system_gain_dn_per_e, s.config.read_noise_e
    assert only_read.astype(float).var() == pytest.approx(k**2 * sd**2 + 1 / 12, rel=0.05)
    only_dark = s.expose(zeros, exposure_s=1.0, rng=rng(1), **dict(QUIET, dark_noise=True))
    assert only_dark.astype(float).var() == pytest.approx(k**2 * 1000 + 1 / 12, rel=0.05)
    assert only_dark.mean() == pytest.approx(64 + k * 1000, abs=0.05)
    only_fp = s.expose(zeros, exposure_s=1e-6, rng=rng(1), **dict(QUIET, fixed_pattern=True))
    for frame in only_fp:
        np.testing.assert_array_equal(frame, np.rint(64 + k * s.dsnu_map_e))


# -------------------------------------------------------------------------- bad input
@pytest.mark.parametrize(
    ("photons", "match"),
    [
        (np.full((H, W), np.nan), "NaN"),
        (np.full((H, W), np.inf), "infinite"),
        (np.full((H, W), -1.0), ">= 0"),
        (np.zeros((64, 64)), "shape"),
        (np.zeros(H * W), "shape"),
        (np.zeros((1, 1, H, W)), "shape"),
        (np.zeros((H, W), complex), "real numeric"),
    ],
)
def test_bad_photons_rejected(photons, match):
    s = Sensor(roi())
    with pytest.raises(ValueError, match=match):
        s.expose(photons, exposure_s=0.01, rng=np.random.default_rng(0))
    with pytest.raises(ValueError, match=match):
        s.mean_dn(photons, exposure_s=0.01)


@pytest.mark.parametrize("exposure", [0.0, -1.0, float("nan"), float("inf"), "abc", None])
def test_bad_exposure_rejected(exposure):
    s = Sensor(roi())
    with pytest.raises(ValueError, match="exposure_s"):
        s.expose(np.zeros((H, W)), exposure_s=exposure, rng=np.random.default_rng(0))
    with pytest.raises(ValueError, match="exposure_s"):
        s.affine(exposure)


def test_bad_rng_and_threshold_rejected():
    s = Sensor(roi())
    with pytest.raises(TypeError, match="rng"):
        s.expose(np.zeros((H, W)), exposure_s=0.01, rng=0)
    with pytest.raises(ValueError, match="exact_poisson_below_e"):
        s.expose(
            np.zeros((H, W)),
            exposure_s=0.01,
            rng=np.random.default_rng(0),
            exact_poisson_below_e=-1,
        )


# ------------------------------------------------- large frames
def test_large_requests_are_reproducible():
    n = 1 << 19
    lam = np.linspace(0, 50, n)
    a = sampling.standard_normal_f32(np.random.default_rng(5), n)
    pa = sampling.poisson_f32(lam, np.random.default_rng(6))
    np.testing.assert_array_equal(a, sampling.standard_normal_f32(np.random.default_rng(5), n))
    np.testing.assert_array_equal(pa, sampling.poisson_f32(lam, np.random.default_rng(6)))
    assert np.abs(pa - lam).mean() < 6 and np.all(pa == np.round(pa))
    assert a.mean() == pytest.approx(0, abs=0.01) and a.std() == pytest.approx(1, rel=0.01)


def test_large_frames_shot_noise_is_poisson():
    s = Sensor(ideal(quantum_efficiency=0.5))
    photons = np.full((16, H, W), 6.0)
    f = s.expose(photons, exposure_s=1.0, rng=np.random.default_rng(12))
    assert _poisson_chi2(f, 3.0) > 1e-3
    g = s.expose(photons, exposure_s=1.0, rng=np.random.default_rng(12))
    np.testing.assert_array_equal(f, g)


@pytest.mark.parametrize("mean", [1e-3, 0.03, 0.2, 0.2499])
def test_tiny_means_are_exact_poisson(mean):
    # means below TINY_MEAN use a one-uniform inversion instead of NumPy's sampler
    assert mean < sampling.TINY_MEAN
    x = sampling.poisson_f32(np.full(1 << 20, mean), np.random.default_rng(21))
    assert np.all(x == np.round(x))
    assert _poisson_chi2(x, mean) > 1e-3
    assert x.mean() == pytest.approx(mean, rel=5 / math.sqrt(mean * x.size))


def test_mixed_tiny_and_larger_means_keep_their_places():
    lam = np.tile([0.1, 0.0, 7.0], 1 << 17)
    x = sampling.poisson_f32(lam, np.random.default_rng(22))
    assert np.all(x[1::3] == 0)
    assert _poisson_chi2(x[0::3], 0.1) > 1e-3
    assert _poisson_chi2(x[2::3], 7.0) > 1e-3


def test_dark_frame_with_small_dark_signal_is_poisson():
    # 0.05 e- of dark signal per pixel: the common case of a short exposure in the dark
    s = Sensor(ideal(dark_current_e_per_s=5.0))
    f = s.expose(np.zeros((16, H, W)), exposure_s=0.01, rng=np.random.default_rng(23))
    assert _poisson_chi2(f, 0.05) > 1e-3


# ------------------------------------------------- many frames, one generator each
def test_expose_batch_is_expose_frame_by_frame():
    s = Sensor(roi("imx174", dark_current_e_per_s=50.0))
    rng = np.random.default_rng(30)
    # dark, low (exact Poisson), bulk (normal approximation), near and at the full well
    levels = [0.0, 0.3, 40.0, 5e3, 0.98 * s.saturation_photons, 2 * s.saturation_photons]
    photons = np.stack([rng.uniform(0, 1, (H, W)) * v for v in levels])
    times = [0.01, 0.02, 0.5, 0.001, 0.02, 3.0]
    seeds = [11, 12, 13, 14, 15, 16]
    got = s.expose_batch(photons, exposure_s=times, rngs=[np.random.default_rng(x) for x in seeds])
    assert got.shape == photons.shape and got.dtype == np.uint16
    for i in range(len(levels)):
        want = s.expose(photons[i], exposure_s=times[i], rng=np.random.default_rng(seeds[i]))
        np.testing.assert_array_equal(got[i], want)
    # one exposure for all, and a switch passed through
    gens = [np.random.default_rng(1), np.random.default_rng(1)]
    one = s.expose_batch(photons[:2], exposure_s=0.05, rngs=gens, read_noise=False)
    for i in range(2):
        want = s.expose(photons[i], exposure_s=0.05, rng=np.random.default_rng(1), read_noise=False)
        np.testing.assert_array_equal(one[i], want)


def test_expose_batch_refuses_bad_stacks():
    s = Sensor(roi())
    rngs = [np.random.default_rng(0), np.random.default_rng(1)]
    with pytest.raises(ValueError, match="stack of shape"):
        s.expose_batch(np.zeros((H, W)), exposure_s=0.01, rngs=rngs[:1])
    with pytest.raises(ValueError, match="2 generators"):
        s.expose_batch(np.zeros((2, H, W)), exposure_s=0.01, rngs=rngs[:1])
    with pytest.raises(ValueError, match="one value or 2 values"):
        s.expose_batch(np.zeros((2, H, W)), exposure_s=[0.01, 0.02, 0.03], rngs=rngs)
    with pytest.raises(ValueError, match="exposure_s"):
        s.expose_batch(np.zeros((2, H, W)), exposure_s=[0.01, -1.0], rngs=rngs)
    with pytest.raises(ValueError, match="NaN"):
        s.expose_batch(np.full((2, H, W), np.nan), exposure_s=0.01, rngs=rngs)
    with pytest.raises(TypeError, match="rng"):
        s.expose_batch(np.zeros((2, H, W)), exposure_s=0.01, rngs=[rngs[0], 3])
