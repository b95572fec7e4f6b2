"""EMVA 1288 estimators and the ``optics.emva`` characterisation command.

Tolerances from models.md (Sensor) (128 x 128 sensor, 50 steps): K, QE, sigma_d within 2 %;
DSNU, PRNU within 5 %; dark pair variance K^2 sd^2 + 1/12 within 3 %; dark mean within
0.05 DN of the black level; saturation capacity 90-100 % of min(full well, ADC limit).
Monte Carlo over 20 seeds gave spreads (1 sd) of 0.3 % for K, QE, sigma_d, <= 0.7 % for
DSNU and PRNU, 0.001 DN for the dark mean, and saturation at 96.5 +- 0.6 %.
"""

import json
import math
import os

import numpy as np
import pytest
from keycam_testing import assert_refused, run_module

from optics.emva import characterise, configured_values, simulate_series
from optics.emva.estimators import (
    analyse,
    fit_line,
    fit_through_origin,
    pair_mean,
    pair_temporal_variance,
    saturation_index,
    sensitivity_fit_range,
    stack_spatial_variance,
    stack_temporal_variance,
)
from optics.sensor import PRESETS, Sensor, SensorConfig

H = W = 128


# ------------------------------------------------------------------ estimators alone
def test_pair_estimators_by_hand():
    y0 = np.array([[0.0, 2.0], [4.0, 6.0]])
    y1 = np.array([[1.0, 1.0], [1.0, 1.0]])
    assert pair_mean(y0, y1) == pytest.approx(0.5 * (3.0 + 1.0))
    d = y0 - y1  # -1, 1, 3, 5: mean 2
    expected = 0.5 * np.mean(d**2) - 0.5 * 2.0**2
    assert pair_temporal_variance(y0, y1) == pytest.approx(expected)
    # vectorised over leading axes
    v = pair_temporal_variance(np.stack([y0, y0]), np.stack([y1, y0]))
    np.testing.assert_allclose(v, [expected, 0.0])
    with pytest.raises(ValueError, match="same shape"):
        pair_temporal_variance(y0, y1[:1])


def test_pair_variance_removes_fixed_pattern_and_mean_drift():
    rng = np.random.default_rng(0)
    pattern = rng.normal(0, 50, (256, 256))  # huge fixed pattern
    y0 = 100 + pattern + rng.normal(0, 2.0, pattern.shape)
    y1 = 130 + pattern + rng.normal(0, 2.0, pattern.shape)  # mean drifted by 30 DN
    assert pair_temporal_variance(y0, y1) == pytest.approx(4.0, rel=0.02)


def test_stack_spatial_variance_removes_temporal_part():
    rng = np.random.default_rng(1)
    pattern = rng.normal(0, 1.0, (256, 256))
    stack = pattern + rng.normal(0, 3.0, (16, 256, 256))
    assert stack_temporal_variance(stack) == pytest.approx(9.0, rel=0.01)
    # uncorrected: 1 + 9/16; corrected: 1
    assert np.var(stack.mean(axis=0), ddof=1) == pytest.approx(1 + 9 / 16, rel=0.03)
    assert stack_spatial_variance(stack) == pytest.approx(np.var(pattern, ddof=1), rel=0.03)


def test_fits_and_saturation_index():
    x = np.arange(1.0, 11.0)
    assert fit_through_origin(x, 2.5 * x) == pytest.approx(2.5)
    assert fit_line(x, 3.0 * x - 4.0) == pytest.approx((3.0, -4.0))
    assert saturation_index([1.0, 3.0, 7.0, 2.0, 0.0]) == 2
    signal = np.array([10.0, 20, 30, 40, 50, 60, 70, 80, 100, 100])
    np.testing.assert_array_equal(sensitivity_fit_range(signal, 8), np.arange(7))
    with pytest.raises(ValueError, match="steps"):
        sensitivity_fit_range(signal, 0)


# -------------------------------------------------------- characterisation of presets
@pytest.fixture(scope="module", params=["imx174", "imx264"])
def characterised(request):
    cfg = PRESETS[request.param].model_copy(update={"width_px": W, "height_px": H})
    sensor = Sensor(cfg)
    result, series = characterise(sensor, rng=np.random.default_rng(2024))
    return sensor, result, series


def test_series_follows_the_standard(characterised):
    sensor, result, series = characterised
    assert series.photons.size >= 50
    assert series.photons[-1] > sensor.saturation_photons  # just past saturation
    assert series.stack_bright.shape == series.stack_dark.shape == (16, H, W)
    assert series.stack_photons == pytest.approx(0.5 * sensor.saturation_photons)
    assert result.fit_indices.size >= 20


def test_recovers_gain_qe_and_dark_noise(characterised):
    sensor, r, _ = characterised
    c = sensor.config
    assert r.system_gain_dn_per_e == pytest.approx(c.system_gain_dn_per_e, rel=0.02)
    assert r.quantum_efficiency == pytest.approx(c.quantum_efficiency, rel=0.02)
    assert r.read_noise_e == pytest.approx(c.read_noise_e, rel=0.02)
    assert not r.read_noise_is_upper_bound


def test_dark_pair_variance_and_mean(characterised):
    sensor, r, series = characterised
    c = sensor.config
    expected = c.system_gain_dn_per_e**2 * c.read_noise_e**2 + 1 / 12
    assert r.dark_variance_dn2 == pytest.approx(expected, rel=0.03)  # extrapolated to t = 0
    assert series.var_dark[0] == pytest.approx(expected, rel=0.03)  # shortest exposure
    assert abs(r.dark_mean_dn - c.black_level_dn) < 0.05
    assert abs(series.mu_dark[0] - c.black_level_dn) < 0.05


def test_recovers_dsnu_and_prnu(characterised):
    sensor, r, _ = characterised
    assert r.dsnu_e == pytest.approx(sensor.config.dsnu_e, rel=0.05)
    assert r.prnu_fraction == pytest.approx(sensor.config.prnu_fraction, rel=0.05)


def test_saturation_snr_and_dynamic_range(characterised):
    sensor, r, _ = characterised
    assert 0.90 * sensor.saturation_e <= r.saturation_e <= 1.00 * sensor.saturation_e
    assert r.snr_max == pytest.approx(math.sqrt(r.saturation_e))
    cfg = configured_values(sensor)
    # DR follows from saturation (90-100 %) and sigma_d (2 %)
    assert 0.88 * cfg["dynamic_range"] <= r.dynamic_range <= 1.02 * cfg["dynamic_range"]
    assert r.snr_max_db == pytest.approx(20 * math.log10(r.snr_max))


def test_estimators_see_a_different_sensor():
    # The tolerances bite: a sensor with 5 % more gain is recovered as such.
    base = PRESETS["imx264"].model_copy(update={"width_px": 64, "height_px": 64})
    other = base.model_copy(update={"system_gain_dn_per_e": 0.36 * 1.05})
    r, _ = characterise(Sensor(other), rng=np.random.default_rng(3))
    assert r.system_gain_dn_per_e == pytest.approx(0.378, rel=0.02)
    assert abs(r.system_gain_dn_per_e / 0.36 - 1) > 0.02


def test_low_gain_gives_read_noise_upper_bound():
    # K sigma_d = 0.1 DN: the ADC hides the read noise (models.md, Sensor: needs K sd >~ 0.5 DN)
    cfg = SensorConfig(
        width_px=64,
        height_px=64,
        pixel_pitch_um=5.0,
        quantum_efficiency=0.7,
        system_gain_dn_per_e=0.05,
        read_noise_e=2.0,
        full_well_e=20000.0,
        bit_depth=12,
        black_level_dn=50.0,
    )
    r = analyse(simulate_series(Sensor(cfg), rng=np.random.default_rng(0)))
    assert r.read_noise_is_upper_bound
    assert r.read_noise_e > 2.0


def test_series_rejects_bad_parameters():
    s = Sensor(PRESETS["imx174"].model_copy(update={"width_px": 8, "height_px": 8}))
    with pytest.raises(ValueError, match="steps"):
        simulate_series(s, rng=np.random.default_rng(0), steps=3)
    with pytest.raises(ValueError, match="overshoot"):
        simulate_series(s, rng=np.random.default_rng(0), overshoot=0.9)


# ------------------------------------------------------------------------------- CLI
def _run(*args, cwd):
    return run_module("optics.emva", *args, cwd=cwd, env={"MPLBACKEND": "Agg"}, timeout=120)


def test_cli_default_prints_table(tmp_path):
    p = _run("--quiet", cwd=tmp_path)
    assert p.returncode == 0, p.stderr
    assert "imx174" in p.stdout and "128x128" in p.stdout
    for label in ("system gain K", "quantum efficiency", "DSNU", "PRNU", "saturation capacity"):
        assert label in p.stdout
    assert os.listdir(tmp_path) == []


def test_cli_config_plot_and_json(tmp_path):
    cfg = tmp_path / "sensor.toml"
    cfg.write_text('[sensor]\npreset = "imx264"\nseed = 3\n')
    plot = tmp_path / "ptc.png"
    p = _run("--config", str(cfg), "--plot", str(plot), "--json", "--seed", "5", cwd=tmp_path)
    assert p.returncode == 0, p.stderr
    out = json.loads(p.stdout)
    assert (out["width_px"], out["height_px"]) == (128, 128)
    conf, meas = out["configured"], out["measured"]
    assert meas["system_gain_dn_per_e"] == pytest.approx(conf["system_gain_dn_per_e"], rel=0.02)
    assert meas["prnu_fraction"] == pytest.approx(0.008, rel=0.05)
    assert plot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert sorted(os.listdir(tmp_path)) == ["ptc.png", "sensor.toml"]


def _assert_bad(p, tmp_path, before, *words):
    assert_refused(p, *words)
    assert p.stdout == ""
    assert sorted(os.listdir(tmp_path)) == before


def test_cli_bad_inputs(tmp_path):
    bad_toml = tmp_path / "bad.toml"
    bad_toml.write_text("[sensor\nwidth_px = 3\n")
    bad_value = tmp_path / "value.toml"
    bad_value.write_text('[sensor]\npreset = "imx174"\nquantum_efficiency = 1.7\n')
    before = sorted(os.listdir(tmp_path))
    cases = [
        (["--preset", "nope"], ["nope"]),
        (["--config", str(bad_toml)], ["bad.toml", "TOML"]),
        (["--config", str(bad_value)], ["quantum_efficiency"]),
        (["--config", str(tmp_path / "missing.toml")], ["missing.toml"]),
        (["--plot", str(tmp_path / "no_dir" / "out.png")], ["no_dir"]),
        (["--plot", str(tmp_path / "out.xyz")], [".xyz"]),
        (["--plot", str(tmp_path)], ["directory"]),
        (["--roi", "12xx"], ["--roi"]),
    ]
    for args, words in cases:
        _assert_bad(_run(*args, cwd=tmp_path), tmp_path, before, *words)


@pytest.mark.skipif(os.geteuid() == 0, reason="root ignores folder permissions")
def test_cli_unwritable_plot_folder(tmp_path):
    locked = tmp_path / "locked"
    locked.mkdir(mode=0o500)
    try:
        p = _run("--plot", str(locked / "out.png"), cwd=tmp_path)
        _assert_bad(p, tmp_path, ["locked"], "not writable")
        assert os.listdir(locked) == []
    finally:
        locked.chmod(0o700)
