"""Camera configuration: scene, lens, faceplate, coupling, sensor and exposure in one model.

A :class:`CameraConfig` is a frozen pydantic model (unknown keys are errors) that loads from
TOML with :func:`load_config`; every bad value fails at load time with the field's name.
``CameraConfig.model_json_schema()`` (or ``python -m sim.capture --print-schema``) publishes
its JSON schema. The bundled default camera is ``sim/data/default_camera.toml`` (documented
inline): a printable 16 × 16-fiber design, simulated with the transmission of the part as
printed (``[transmission]``, :mod:`sim.printed`).
"""

from __future__ import annotations

import math
import os
from importlib import resources
from pathlib import Path
from typing import Any, Literal

from pydantic import Field, field_validator, model_validator

from keycam.config import ConfigModel
from keycam.loading import load_toml
from optics.faceplate import FaceplateConfig
from optics.lens import LensConfig
from optics.sensor import SensorConfig
from sim.printed import TransmissionConfig
from sim.units import parse_exposure

__all__ = [
    "ADDED_LATER",
    "CameraConfig",
    "CouplingConfig",
    "SceneConfig",
    "TransmissionConfig",
    "comparable",
    "default_config_path",
    "load_config",
]


class SceneConfig(ConfigModel):
    """Geometry and brightness of the scene the camera looks at."""

    shape_px: tuple[int, int] = Field(
        (256, 256),
        description="Scene grid (rows, cols), pixels: every scene is centre-cropped to this "
        "aspect ratio and area-resampled onto it before it enters the camera.",
    )
    fov_deg: float | None = Field(
        None,
        gt=0,
        lt=180,
        description="Full horizontal field of view of the scene grid, degrees; None = the "
        "field whose image exactly spans the faceplate's width.",
    )
    radiance_w_m2_sr: float = Field(
        10.0,
        gt=0,
        le=1e7,
        description="Band-integrated radiance that a linear scene value of 1.0 stands for, "
        "W m⁻² sr⁻¹ (at the lens wavelength).",
    )

    @field_validator("shape_px")
    @classmethod
    def _shape_ok(cls, v: tuple[int, int]) -> tuple[int, int]:
        if not (1 <= v[0] <= 8192 and 1 <= v[1] <= 8192):
            raise ValueError(f"shape_px must be two pixel counts in 1..8192, got {v}")
        return v


class CouplingConfig(ConfigModel):
    """How the faceplate's output face reaches the sensor (models.md: Coupling).

    ``magnification = 1`` with ``relay_f_number = None`` is butt coupling (the face lies on
    the sensor); ``0 < |m| < 1`` with a relay f-number images the face through a relay lens.
    """

    magnification: float = Field(
        1.0,
        ge=-10,
        le=10,
        description="Lateral magnification face -> sensor (dimensionless, non-zero; "
        "negative = inverting relay).",
    )
    offset_um: tuple[float, float] = Field(
        (0.0, 0.0), description="Shift of the face image on the sensor (x right, y down), µm."
    )
    rotation_deg: float = Field(
        0.0, ge=-180, le=180, description="Rotation of the face image on the sensor, degrees."
    )
    blur_um: float = Field(
        0.0, ge=0, le=1000, description="Gaussian σ of the relay PSF on the sensor, µm."
    )
    relay_f_number: float | None = Field(
        None,
        ge=0.5,
        le=64,
        description="Relay lens f-number (dimensionless); None = butt coupling (no relay).",
    )
    relay_transmission: float = Field(
        1.0, gt=0, le=1, description="Relay lens transmission, fraction."
    )

    @field_validator("magnification")
    @classmethod
    def _nonzero(cls, v: float) -> float:
        if v == 0:
            raise ValueError("magnification must be non-zero (dimensionless)")
        return v

    @model_validator(mode="after")
    def _relay_if_magnified(self) -> CouplingConfig:
        if self.relay_f_number is None and abs(self.magnification) != 1.0:
            raise ValueError(
                f"magnification {self.magnification} needs a relay lens: set relay_f_number "
                "(butt coupling, relay_f_number unset, has magnification 1)"
            )
        return self

    def efficiency(self, fiber_na: float) -> float:
        """Fraction of the light leaving a fiber that reaches the sensor.

        A fiber radiates into its numerical aperture ``NA_f``; a relay of f-number ``N`` at
        magnification ``m`` accepts object-side ``NA_r = |m| / (2 N (1 + |m|))``, i.e. the
        fraction ``min(1, (NA_r / NA_f)²)`` of a uniformly filled cone, times the relay
        transmission. Butt coupling collects everything (times ``relay_transmission``).
        """
        if self.relay_f_number is None:
            return self.relay_transmission
        m = abs(self.magnification)
        na_r = m / (2.0 * self.relay_f_number * (1.0 + m))
        return self.relay_transmission * min(1.0, (na_r / min(fiber_na, 1.0)) ** 2)


def _sensor_from_any(value: Any) -> Any:
    if isinstance(value, str):
        return SensorConfig.from_dict({"preset": value})
    if isinstance(value, dict) and "preset" in value:
        return SensorConfig.from_dict(value)
    return value


class CameraConfig(ConfigModel):
    """Everything that defines a keycam camera, in physical units.

    ``sensor`` accepts a full table, a preset name (``sensor = "imx174"``) or a preset with
    overrides (``[sensor] preset = "imx174"; width_px = 256``); it is stored expanded.
    """

    scene: SceneConfig = Field(default_factory=SceneConfig, description="Scene grid and radiance.")
    lens: LensConfig = Field(description="Camera lens forming the scene on the input face.")
    faceplate: FaceplateConfig = Field(
        default_factory=FaceplateConfig, description="Fiber faceplate and the recipe of its key."
    )
    transmission: TransmissionConfig = Field(
        default_factory=TransmissionConfig,
        description="Where the faceplate transmission comes from: the printed part (routed "
        "geometry of the device key, default) or the key's assumed values.",
    )
    coupling: CouplingConfig = Field(
        default_factory=CouplingConfig, description="Output face -> sensor coupling."
    )
    sensor: SensorConfig = Field(description="CMOS sensor (ROI) and ADC, EMVA 1288 terms.")
    colour: Literal["mono", "bayer_rggb"] = Field(
        "mono",
        description="'mono': no colour filters, the sensor sees luminance (one lens "
        "wavelength); 'bayer_rggb': RGGB colour filter array (three lens wavelengths R, G, B).",
    )
    exposure: Literal["auto"] | float = Field(
        "auto",
        description="'auto' (bright end of the scene at auto_target of saturation) or a "
        "fixed exposure time: seconds, or a string with a unit ('20 ms', '250 us').",
    )
    auto_target: float = Field(
        0.8, gt=0, le=1, description="Auto exposure: target fraction of saturation."
    )
    auto_percentile: float = Field(
        99.5, gt=0, le=100, description="Auto exposure: percentile of pixels put at the target."
    )
    exposure_limits_s: tuple[float, float] = Field(
        (1e-6, 10.0), description="Auto exposure range (shortest, longest), seconds."
    )
    samples_per_pitch: float = Field(
        4.0,
        ge=1,
        le=64,
        description="Image-plane samples per fiber pitch (sampling of the lens image on the "
        "input face), dimensionless.",
    )

    @field_validator("sensor", mode="before")
    @classmethod
    def _expand_sensor(cls, v: Any) -> Any:
        return _sensor_from_any(v)

    @field_validator("exposure", mode="before")
    @classmethod
    def _exposure_ok(cls, v: Any) -> Any:
        return parse_exposure(v)

    @model_validator(mode="before")
    @classmethod
    def _printed_fiber(cls, data: Any) -> Any:
        """A printed faceplate's fibers are the process's: core diameter and NA come from it.

        Left out of ``[faceplate]``, they are filled in from the process; given there, they
        must agree with it to rounding (NA ± 0.005, core ± 0.5 µm) and are replaced by its exact
        values: a camera that simulates one fiber and prints another is refused.
        """
        if not isinstance(data, dict):
            return data
        try:
            tr = TransmissionConfig.model_validate(data.get("transmission") or {})
        except ValueError:
            return data  # reported by field validation, with its location
        if tr.source != "printed":
            return data
        fp = data.get("faceplate") or {}
        if isinstance(fp, FaceplateConfig):
            given, values = set(fp.model_fields_set), fp.model_dump()
        elif isinstance(fp, dict):
            given, values = set(fp), dict(fp)
        else:
            return data
        process = tr.process_config()
        fiber = (
            ("numerical_aperture", process.numerical_aperture, 0.005, "", "NA"),
            ("core_diameter_um", 1000.0 * process.core_diameter_mm, 0.5, " µm", "core diameter"),
        )
        for name, want, tol, unit, what in fiber:
            have = values.get(name)
            if name in given and not isinstance(have, (int, float)):
                continue  # not a number: reported by field validation, with its location
            if name in given and abs(have - want) > tol:
                raise ValueError(
                    f"faceplate.{name} = {have:g}{unit} disagrees with the {what} of the fiber "
                    f"printed with process {process.name!r} ({want:.3g}{unit}); leave it out "
                    'to use the printed fiber\'s, or set [transmission] source = "assumed" '
                    "for a faceplate that is not printed"
                )
            values[name] = want  # a value given rounded (0.62) becomes the exact one
        return {**data, "faceplate": values}

    @model_validator(mode="after")
    def _consistent(self) -> CameraConfig:
        lo, hi = self.exposure_limits_s
        if not (0 < lo <= hi <= 3600):
            raise ValueError(
                f"exposure_limits_s must satisfy 0 < lo <= hi <= 3600 s, got {lo}, {hi}"
            )
        need = 1 if self.colour == "mono" else 3
        if self.lens.n_channels != need:
            kind = "a monochrome" if need == 1 else "an RGGB colour"
            raise ValueError(
                f"lens.wavelength_nm: {kind} sensor (colour = {self.colour!r}) needs {need} "
                f"wavelength(s), got {self.lens.wavelengths_nm} nm"
            )
        return self

    # ------------------------------------------------------------------ conveniences
    @classmethod
    def default(cls) -> CameraConfig:
        """The bundled default camera (``sim/data/default_camera.toml``)."""
        return load_config(default_config_path())

    def with_key_seed(self, seed: int) -> CameraConfig:
        """A copy whose faceplate key is drawn from ``seed`` (an integer >= 0)."""
        fp = FaceplateConfig.model_validate({**self.faceplate.model_dump(), "seed": int(seed)})
        return self.model_copy(update={"faceplate": fp})

    def public_dump(self) -> dict[str, Any]:
        """JSON-ready dump without the key seed (safe for sidecars and logs)."""
        d = self.model_dump(mode="json")
        d["faceplate"].pop("seed", None)
        return d

    @property
    def scene_fov_deg(self) -> float:
        """Horizontal field of view of the scene grid, degrees (resolved if ``fov_deg`` is None)."""
        if self.scene.fov_deg is not None:
            return float(self.scene.fov_deg)
        xy = self.faceplate.site_centers_um()
        width_mm = (float(xy[:, 0].max() - xy[:, 0].min()) + self.faceplate.pitch_um) * 1e-3
        return math.degrees(2.0 * math.atan(0.5 * width_mm / self.lens.image_distance_mm))


#: The tables of a camera whose models have fields added after files were first made with
#: them (``ConfigModel.ADDED_LATER``), by table name.
_TABLES: dict[str, type[ConfigModel]] = {"lens": LensConfig, "faceplate": FaceplateConfig}

#: Fields added to the camera configuration after files were first made with it, with the value
#: every older file implicitly had, by table. Where a camera holds that value the field is left
#: out of what is compared with older files (Gray-code pattern sets, dataset stores), so that
#: those files still match the camera they were made for.
ADDED_LATER: dict[str, dict[str, Any]] = {t: m.ADDED_LATER for t, m in _TABLES.items()}


def comparable(dump: dict[str, Any]) -> dict[str, Any]:
    """A camera dump (or one table of it, as ``{"lens": {...}}``) without the fields of
    :data:`ADDED_LATER` that hold their implicit value."""
    out = dict(dump)
    for table, model in _TABLES.items():
        if isinstance(out.get(table), dict):
            out[table] = model.without_added_later(out[table])
    return out


def default_config_path() -> Path:
    """Path of the bundled ``default_camera.toml``."""
    return Path(str(resources.files("sim") / "data" / "default_camera.toml"))


def load_config(path: str | os.PathLike[str]) -> CameraConfig:
    """Load a :class:`CameraConfig` from a TOML file (bounded: :func:`keycam.loading.load_toml`).

    Raises
    ------
    FileNotFoundError
        No file at ``path``.
    keycam.loading.InputError
        (a ``ValueError``) Not a regular file, larger than 1 MB, nested too deeply, or not
        valid TOML (the message names the file).
    pydantic.ValidationError
        A missing, unknown or out-of-range field (the message names it).
    """
    return CameraConfig.model_validate(load_toml(path, what="config"))
