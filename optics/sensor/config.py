"""Configuration of a CMOS sensor in EMVA 1288 terms, and named presets.

:class:`SensorConfig` is the frozen, validated parameter set of one device (units in the
field names); :data:`PRESETS` holds datasheet-like devices. Both are re-exported by
:mod:`optics.sensor`, which is where they are normally imported from.
"""

from __future__ import annotations

from collections.abc import Mapping
from os import PathLike
from typing import Any

from pydantic import Field, ValidationInfo, field_validator

from keycam.config import ConfigModel
from keycam.loading import load_toml

__all__ = ["PRESETS", "SensorConfig"]


class SensorConfig(ConfigModel):
    """Parameters of a CMOS sensor and its ADC in EMVA 1288 terms.

    All fields are validated when the model is built; a bad value raises a pydantic
    ``ValidationError`` naming the field. Instances are frozen: derive variants with
    ``config.model_copy(update={"width_px": 128, "height_px": 128})``. ``model_copy`` does
    not re-validate; :class:`~optics.sensor.Sensor` does, or validate up front with
    ``SensorConfig.model_validate({**config.model_dump(), **changes})``. The JSON schema is
    ``SensorConfig.model_json_schema()``.
    """

    width_px: int = Field(ge=1, le=65536, description="Active width in pixels (columns).")
    height_px: int = Field(ge=1, le=65536, description="Active height in pixels (rows).")
    pixel_pitch_um: float = Field(gt=0, le=1000, description="Pixel pitch in micrometres.")
    quantum_efficiency: float = Field(
        gt=0, le=1, description="Quantum efficiency eta (electrons per photon, 0-1)."
    )
    wavelength_nm: float = Field(
        default=525.0, gt=0, le=20000, description="Wavelength in nm at which the QE applies."
    )
    system_gain_dn_per_e: float = Field(
        gt=0, le=1000, description="Overall system gain K in DN per electron."
    )
    read_noise_e: float = Field(
        ge=0, le=1e4, description="Temporal dark (read) noise sigma_d, RMS electrons."
    )
    dark_current_e_per_s: float = Field(
        default=0.0, ge=0, le=1e7, description="Mean dark current in electrons per second."
    )
    dsnu_e: float = Field(
        default=0.0, ge=0, le=1e4, description="Dark signal non-uniformity, RMS electrons."
    )
    prnu_fraction: float = Field(
        default=0.0,
        ge=0,
        le=0.2,
        description="Photo-response non-uniformity, RMS fraction of the mean gain (0-0.2).",
    )
    full_well_e: float = Field(gt=0, le=1e8, description="Full-well capacity in electrons.")
    bit_depth: int = Field(ge=1, le=16, description="ADC resolution in bits (1-16).")
    black_level_dn: float = Field(
        default=0.0, ge=0, description="Black level (offset) added after the gain, in DN."
    )
    seed: int = Field(
        default=0, ge=0, description="Device seed from which the PRNU and DSNU maps are drawn."
    )

    @field_validator("black_level_dn")
    @classmethod
    def _black_below_adc_max(cls, value: float, info: ValidationInfo) -> float:
        bits = info.data.get("bit_depth")
        if bits is not None and value >= 2**bits - 1:
            raise ValueError(
                f"black level must be below the ADC maximum {2**bits - 1} DN "
                f"of a {bits}-bit ADC, got {value} DN"
            )
        return value

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> SensorConfig:
        """Build a config from a mapping, e.g. a TOML table.

        If the mapping has a ``preset`` key naming an entry of :data:`PRESETS`, that preset
        supplies the defaults and the remaining keys override it
        (``{"preset": "imx174", "width_px": 128, "height_px": 128}``).
        """
        data = dict(data)
        preset = data.pop("preset", None)
        if preset is not None:
            if not isinstance(preset, str) or preset not in PRESETS:
                raise ValueError(
                    f"unknown sensor preset {preset!r}; known presets: {', '.join(PRESETS)}"
                )
            data = {**PRESETS[preset].model_dump(), **data}
        return cls.model_validate(data)

    @classmethod
    def from_toml(cls, path: str | PathLike[str], *, table: str | None = None) -> SensorConfig:
        """Load a config from a TOML file.

        Parameters
        ----------
        path : path-like
            TOML file.
        table : str, optional
            Name of the table holding the sensor parameters. By default the ``[sensor]`` table
            is used if the file has one, else the whole document.

        Raises
        ------
        ValueError
            If the file is not a regular file, too large, nested too deeply, not valid TOML
            (:class:`keycam.loading.InputError`), or the table is missing.
        pydantic.ValidationError
            If a parameter is missing or out of range (the message names the field).
        """
        doc = load_toml(path, what="sensor config")
        if table is None and isinstance(doc.get("sensor"), dict):
            table = "sensor"
        if table is not None:
            if not isinstance(doc.get(table), dict):
                raise ValueError(f"{path}: no [{table}] table")
            doc = doc[table]
        return cls.from_dict(doc)


#: Named sensor presets (full sensor size; crop with ``model_copy(update=...)``).
#:
#: ``"imx174"``
#:     Sony IMX174-like 1/1.2" global-shutter CMOS, 1936 x 1216, 5.86 um pixels, 12-bit.
#:     QE 0.77 at 525 nm, temporal dark noise 6.8 e-, full well 32.7 ke-: the values of
#:     models.md (Sensor), in line with published EMVA 1288 summaries of IMX174 cameras (FLIR
#:     technical note "Sony Pregius global shutter CMOS imaging performance": QE ~76 %,
#:     6.83 e-, ~32.5 ke-). K = 0.125 DN/e- with a 64 DN black level makes this preset
#:     ADC-limited ((4095 - 64)/0.125 = 32 248 e- < full well), as is usual. Dark current
#:     (3 e-/s), DSNU (2.5 e-) and PRNU (0.6 %) are representative assumptions, not datasheet
#:     values.
#: ``"imx264"``
#:     Sony IMX264-like 2/3" small-pixel (3.45 um) Pregius global-shutter CMOS, 2448 x 2048,
#:     12-bit. QE 0.68 at 525 nm, temporal dark noise 2.3 e-, full well 10.5 ke- (the usual
#:     small-pixel range "QE 0.6-0.8, sigma_d 2-3 e-, full well ~10 ke-"; same FLIR note:
#:     ~65-70 %, ~2.2-2.4 e-, ~10.5 ke-). K = 0.36 DN/e- makes this preset full-well-limited
#:     (ADC limit 11 197 e-). Dark current (2 e-/s), DSNU (1.0 e-) and PRNU (0.8 %) are
#:     representative assumptions.
PRESETS: dict[str, SensorConfig] = {
    "imx174": SensorConfig(
        width_px=1936,
        height_px=1216,
        pixel_pitch_um=5.86,
        quantum_efficiency=0.77,
        wavelength_nm=525.0,
        system_gain_dn_per_e=0.125,
        read_noise_e=6.8,
        dark_current_e_per_s=3.0,
        dsnu_e=2.5,
        prnu_fraction=0.006,
        full_well_e=32700.0,
        bit_depth=12,
        black_level_dn=64.0,
        seed=174,
    ),
    "imx264": SensorConfig(
        width_px=2448,
        height_px=2048,
        pixel_pitch_um=3.45,
        quantum_efficiency=0.68,
        wavelength_nm=525.0,
        system_gain_dn_per_e=0.36,
        read_noise_e=2.3,
        dark_current_e_per_s=2.0,
        dsnu_e=1.0,
        prnu_fraction=0.008,
        full_well_e=10500.0,
        bit_depth=12,
        black_level_dn=64.0,
        seed=264,
    ),
}
