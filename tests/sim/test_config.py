"""CameraConfig: TOML loading, validation at load time, schema, sensor presets."""

from __future__ import annotations

import math

import pytest
from pydantic import ValidationError

from optics.sensor import PRESETS
from sim.capture import DEFAULT_MAX_PIXELS, parse_exposure
from sim.config import CameraConfig, CouplingConfig, default_config_path, load_config
from sim.io import DEFAULT_MAX_PIXELS as IO_MAX_PIXELS


def test_default_toml_loads_and_matches_the_printable_design():
    cfg = load_config(default_config_path())
    assert cfg == CameraConfig.default()
    assert cfg.exposure == "auto"
    assert cfg.sensor.bit_depth == 12 and (cfg.sensor.height_px, cfg.sensor.width_px) == (64, 64)
    # preset values survive the override of the ROI
    assert cfg.sensor.read_noise_e == PRESETS["imx174"].read_noise_e
    # fov omitted: the scene just spans the 16 mm face behind the 20 mm lens
    assert cfg.scene_fov_deg == pytest.approx(math.degrees(2 * math.atan(8 / 20)))
    # the faceplate transmission is the printed part's unless a config says otherwise
    assert cfg.transmission.source == "printed" and cfg.transmission.process == "resin"
    assert CameraConfig.model_validate({**cfg.model_dump(), "transmission": {}}).transmission == (
        cfg.transmission.model_copy(update={"attenuation_db_per_cm": None})
    )


def test_unknown_and_bad_fields_fail_at_load_with_their_name(tmp_path, make_small):
    base = default_config_path().read_text()
    (tmp_path / "typo.toml").write_text(base.replace("f_number = 2.8", "fnumber = 2.8"))
    with pytest.raises(ValidationError, match="fnumber"):
        load_config(tmp_path / "typo.toml")
    (tmp_path / "neg.toml").write_text(base.replace("pitch_um = 1000.0", "pitch_um = -1.0"))
    with pytest.raises(ValidationError, match="pitch_um"):
        load_config(tmp_path / "neg.toml")
    (tmp_path / "preset.toml").write_text(base.replace('"imx174"', '"imx999"'))
    with pytest.raises(ValidationError, match="imx999"):
        load_config(tmp_path / "preset.toml")
    for bad in (0, -1, "fast", True, math.inf):
        with pytest.raises(ValidationError, match="exposure"):
            make_small(exposure=bad)
    assert make_small(exposure=0.02).exposure == 0.02
    assert make_small(exposure="AUTO").exposure == "auto"
    with pytest.raises(ValidationError, match="exposure_limits_s"):
        make_small(exposure_limits_s=(1.0, 0.1))
    with pytest.raises(ValidationError, match="magnification"):
        CouplingConfig(magnification=0.0)
    with pytest.raises(ValidationError, match="relay_f_number"):
        CouplingConfig(magnification=0.1)  # a magnified face needs a relay lens


_FAR_PUPIL_TOML = """
[lens]
focal_length_mm = 20.0
f_number = 2.8
exit_pupil_distance_mm = {pupil}

[sensor]
preset = "imx174"
width_px = 64
height_px = 64
"""


def test_camera_toml_places_the_lens_exit_pupil(tmp_path):
    """``[lens] exit_pupil_distance_mm`` loads from a camera file; zero, negative or absurd
    distances fail at load time with the key's name; leaving it out keeps the stop at the lens."""
    path = tmp_path / "telecentric.toml"
    path.write_text(_FAR_PUPIL_TOML.format(pupil="250.0"))
    cfg = load_config(path)
    assert cfg.lens.exit_pupil_distance_mm == 250.0 and cfg.lens.pupil_distance_mm == 250.0
    assert cfg.lens.image_distance_mm == 20.0  # the conjugates, and the field, stay the lens's
    assert (
        cfg.scene_fov_deg
        == CameraConfig.model_validate(
            {**cfg.model_dump(), "lens": {"focal_length_mm": 20.0, "f_number": 2.8}}
        ).scene_fov_deg
    )
    for bad in ("0", "-3.0", "2e6", "nan", "true", '"far"'):
        path.write_text(_FAR_PUPIL_TOML.format(pupil=bad))
        with pytest.raises(ValidationError, match=r"lens\.exit_pupil_distance_mm|exit_pupil"):
            load_config(path)
    path.write_text(_FAR_PUPIL_TOML.replace("exit_pupil_distance_mm = {pupil}\n", ""))
    at_lens = load_config(path).lens
    assert at_lens.exit_pupil_distance_mm is None
    assert at_lens.pupil_distance_mm == at_lens.image_distance_mm == 20.0


def test_rgb_lens_is_refused_for_the_mono_sensor(make_small, small):
    lens = {**small.lens.model_dump(), "wavelength_nm": (610.0, 540.0, 465.0)}
    with pytest.raises(ValidationError, match="monochrome"):
        make_small(lens=lens)


def test_load_config_file_errors(tmp_path):
    with pytest.raises(FileNotFoundError):
        load_config(tmp_path / "nope.toml")
    with pytest.raises(ValueError, match="is a folder"):
        load_config(tmp_path)
    (tmp_path / "bad.toml").write_text("a = = 1")
    with pytest.raises(ValueError, match="not valid TOML"):
        load_config(tmp_path / "bad.toml")
    (tmp_path / "bin.toml").write_bytes(b"\xff\xfe\x00garbage")
    with pytest.raises(ValueError, match=r"bin\.toml"):
        load_config(tmp_path / "bin.toml")


def test_schema_public_dump_and_key_seed(small):
    schema = CameraConfig.model_json_schema()
    assert schema["additionalProperties"] is False
    assert "radiance_w_m2_sr" in schema["$defs"]["SceneConfig"]["properties"]
    dump = small.public_dump()
    assert "seed" not in dump["faceplate"] and dump["sensor"]["width_px"] == 32
    assert small.with_key_seed(123).faceplate.seed == 123
    with pytest.raises(ValidationError):
        small.with_key_seed(-1)


def test_coupling_efficiency_closed_form():
    butt = CouplingConfig(relay_transmission=0.95)
    assert butt.efficiency(0.5) == 0.95
    relay = CouplingConfig(magnification=0.1, relay_f_number=2.0)
    na_r = 0.1 / (2 * 2.0 * 1.1)
    assert relay.efficiency(0.5) == pytest.approx((na_r / 0.5) ** 2)
    assert CouplingConfig(magnification=1.0, relay_f_number=0.5).efficiency(0.1) == 1.0


def test_exposure_argument_units():
    assert parse_exposure("auto") == "auto"
    assert parse_exposure("0.02") == 0.02
    assert parse_exposure("20ms") == pytest.approx(0.02)
    assert parse_exposure("250 us") == pytest.approx(2.5e-4)
    for bad in ("", "-1", "0", "fast", "1 h", "5000"):
        with pytest.raises(ValueError, match="--exposure"):
            parse_exposure(bad)
    assert DEFAULT_MAX_PIXELS == IO_MAX_PIXELS


def test_exposure_with_units_in_the_config(make_small):
    assert make_small(exposure="20 ms").exposure == pytest.approx(0.02)
    assert make_small(exposure="250us").exposure == pytest.approx(2.5e-4)
    assert make_small(exposure=1).exposure == 1.0
    with pytest.raises(ValidationError, match="exposure"):
        make_small(exposure="20 minutes")


def test_sensor_as_preset_name_or_table(small):
    d = small.model_dump()
    whole = CameraConfig.model_validate({**d, "sensor": "imx264"})
    assert whole.sensor == PRESETS["imx264"]
    roi = CameraConfig.model_validate({**d, "sensor": {"preset": "imx264", "width_px": 64}})
    assert roi.sensor.width_px == 64 and roi.sensor.full_well_e == PRESETS["imx264"].full_well_e
    full = CameraConfig.model_validate({**d, "sensor": PRESETS["imx174"].model_dump()})
    assert full.sensor == PRESETS["imx174"]
