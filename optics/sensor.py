"""CMOS sensor and ADC after the EMVA 1288 linear camera model (Release 4.0, 2021).

Per pixel and per frame, in this order (PHYSICS.md §1):

1. mean photons ``mu_p`` during the exposure (the caller's ``photons`` array);
2. photo-electrons ``Poisson(eta * mu_p * PRNU_map)`` plus dark electrons
   ``Poisson(I_dark * t_exp)`` - drawn as **one** Poisson variate, since a sum of independent
   Poisson variables is Poisson with the summed mean;
3. clip at the full well;
4. ``+ DSNU_map + Normal(0, sigma_d)`` (fixed offset pattern and temporal read noise, e-);
5. ``* K`` (DN/e-) ``+ black level`` (DN);
6. round to the nearest integer (no floor, no dither);
7. clip to ``[0, 2**bit_depth - 1]`` and store as ``uint16``.

The fixed patterns (PRNU gain map, DSNU offset map) are drawn once from ``SensorConfig.seed``
and standardised so that their spatial mean and RMS equal the configured values exactly; a
device is therefore the same device across frames and runs. Temporal noise comes only from the
``rng`` passed to :meth:`Sensor.expose`.

Shot noise is exact Poisson wherever the mean electron count is below
:data:`EXACT_POISSON_BELOW_E` (1000 e-). Above it a normal variate with the same mean and
variance is used: there the Poisson skewness is ``1/sqrt(mean) <= 0.032`` and the excess
kurtosis ``<= 0.001``, far below what a photon-transfer or SNR measurement can resolve, and
it is several times faster than NumPy's Poisson sampler. Where full-well clipping cannot
matter (mean more than 8 sigma below the full well), shot and read noise are drawn together
as one normal variate (a sum of independent normals is normal). Arithmetic runs in float32,
whose 24-bit mantissa resolves 0.004 e- at 32 ke-, well below one DN.
"""

from __future__ import annotations

import math
import tomllib
from collections.abc import Mapping
from os import PathLike
from typing import Any

import numpy as np
from numpy.typing import ArrayLike, NDArray
from pydantic import BaseModel, ConfigDict, Field, ValidationInfo, field_validator

__all__ = ["EXACT_POISSON_BELOW_E", "PRESETS", "Sensor", "SensorConfig"]

#: Mean electron count below which shot noise is drawn from the exact Poisson distribution;
#: at and above it a moment-matched normal approximation is used (see the module docstring).
EXACT_POISSON_BELOW_E = 1000.0

#: Pixels whose mean is within this many standard deviations of the full well get the
#: two-step (shot noise, clip, then read noise) treatment in the normal-approximation region.
_FULL_WELL_GUARD_SIGMA = 8.0


class SensorConfig(BaseModel):
    """Parameters of a CMOS sensor and its ADC in EMVA 1288 terms.

    All fields are validated when the model is built; a bad value raises a pydantic
    ``ValidationError`` naming the field. Instances are frozen: derive variants with
    ``config.model_copy(update={"width_px": 128, "height_px": 128})`` (``model_copy`` does
    not re-validate, so keep updates within the documented bounds, or use
    ``SensorConfig.model_validate({**config.model_dump(), **changes})``).
    """

    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)

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
            If the file is not valid TOML or the table is missing (``tomllib.TOMLDecodeError``
            is a ``ValueError``).
        pydantic.ValidationError
            If a parameter is missing or out of range (the message names the field).
        """
        with open(path, "rb") as fh:
            doc = tomllib.load(fh)
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
#:     PHYSICS.md §1, in line with published EMVA 1288 summaries of IMX174 cameras (FLIR
#:     technical note "Sony Pregius global shutter CMOS imaging performance": QE ~76 %,
#:     6.83 e-, ~32.5 ke-). K = 0.125 DN/e- with a 64 DN black level makes this preset
#:     ADC-limited ((4095 - 64)/0.125 = 32 248 e- < full well), as is usual. Dark current
#:     (3 e-/s), DSNU (2.5 e-) and PRNU (0.6 %) are representative assumptions, not datasheet
#:     values.
#: ``"imx264"``
#:     Sony IMX264-like 2/3" small-pixel (3.45 um) Pregius global-shutter CMOS, 2448 x 2048,
#:     12-bit. QE 0.68 at 525 nm, temporal dark noise 2.3 e-, full well 10.5 ke- (PHYSICS.md
#:     §1 range "QE 0.6-0.8, sigma_d 2-3 e-, full well ~10 ke-"; same FLIR note: ~65-70 %,
#:     ~2.2-2.4 e-, ~10.5 ke-). K = 0.36 DN/e- makes this preset full-well-limited
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


def _standardised(rng: np.random.Generator, shape: tuple[int, int]) -> NDArray[np.float64]:
    """Normal field with spatial mean exactly 0 and RMS exactly 1 (0 if a single pixel)."""
    z = rng.standard_normal(shape)
    z -= z.mean()
    sd = z.std()
    if sd > 0:
        z /= sd
    return z


def _check_exposure(exposure_s: float) -> float:
    try:
        t = float(exposure_s)
    except (TypeError, ValueError):
        raise ValueError(
            f"exposure_s must be a positive number of seconds, got {exposure_s!r}"
        ) from None
    if not math.isfinite(t) or t <= 0:
        raise ValueError(f"exposure_s must be finite and > 0 s, got {exposure_s!r} s")
    return t


class Sensor:
    """A CMOS sensor device: configuration plus its fixed-pattern maps.

    Parameters
    ----------
    config : SensorConfig
        Device parameters. The PRNU and DSNU maps are drawn here, once, from ``config.seed``
        (independent streams, so changing ``dsnu_e`` does not change the PRNU map).

    Attributes
    ----------
    config : SensorConfig
    prnu_map : (H, W) float64, read-only
        Per-pixel gain factors; spatial mean exactly 1, RMS deviation exactly
        ``config.prnu_fraction`` (values floored at 0).
    dsnu_map_e : (H, W) float64, read-only
        Per-pixel dark offsets in electrons; spatial mean exactly 0, RMS exactly
        ``config.dsnu_e``.
    """

    def __init__(self, config: SensorConfig) -> None:
        if not isinstance(config, SensorConfig):
            raise TypeError(f"config must be a SensorConfig, got {type(config).__name__}")
        self.config = config
        shape = (config.height_px, config.width_px)
        prnu_rng, dsnu_rng = (
            np.random.default_rng(s) for s in np.random.SeedSequence(config.seed).spawn(2)
        )
        prnu = 1.0 + config.prnu_fraction * _standardised(prnu_rng, shape)
        np.maximum(prnu, 0.0, out=prnu)
        dsnu = config.dsnu_e * _standardised(dsnu_rng, shape)
        prnu.flags.writeable = False
        dsnu.flags.writeable = False
        self.prnu_map: NDArray[np.float64] = prnu
        self.dsnu_map_e: NDArray[np.float64] = dsnu
        k = config.system_gain_dn_per_e
        # float32 working copies for the fast path, flattened to (H*W,)
        self._gain_e32 = (config.quantum_efficiency * prnu).astype(np.float32).ravel()
        self._offset_dn32 = (config.black_level_dn + k * dsnu).astype(np.float32).ravel()

    def __repr__(self) -> str:
        c = self.config
        return f"Sensor({c.width_px}x{c.height_px} px, seed={c.seed})"

    # ----------------------------------------------------------------- derived figures
    @property
    def shape(self) -> tuple[int, int]:
        """Frame shape ``(H, W)`` in pixels."""
        return (self.config.height_px, self.config.width_px)

    @property
    def max_dn(self) -> int:
        """Largest ADC output value, ``2**bit_depth - 1`` DN."""
        return 2**self.config.bit_depth - 1

    @property
    def adc_limit_e(self) -> float:
        """Electrons that drive the mean signal to the ADC maximum: ``(max_dn - black)/K``."""
        c = self.config
        return (self.max_dn - c.black_level_dn) / c.system_gain_dn_per_e

    @property
    def saturation_e(self) -> float:
        """Saturation capacity in electrons: ``min(full well, ADC limit)`` (PHYSICS.md §1)."""
        return min(self.config.full_well_e, self.adc_limit_e)

    @property
    def saturation_photons(self) -> float:
        """Mean photons per pixel that reach :attr:`saturation_e` (ignoring PRNU and dark)."""
        return self.saturation_e / self.config.quantum_efficiency

    # ------------------------------------------------------------------- validation
    def _check_photons(self, photons: ArrayLike) -> np.ndarray:
        arr = np.asarray(photons)
        if arr.dtype.kind not in "uif":
            raise ValueError(
                f"photons must be a real numeric array (mean photons per pixel), "
                f"got dtype {arr.dtype}"
            )
        h, w = self.shape
        if arr.ndim not in (2, 3) or arr.shape[-2:] != (h, w):
            raise ValueError(
                f"photons must have shape (H, W) = ({h}, {w}) or (F, {h}, {w}) "
                f"to match the sensor, got shape {arr.shape}"
            )
        if arr.size and arr.dtype.kind == "f":
            lo, hi = arr.min(), arr.max()
            if not (np.isfinite(lo) and np.isfinite(hi)):
                n_nan = int(np.isnan(arr).sum())
                what = f"{n_nan} NaN value(s)" if n_nan else "infinite value(s)"
                raise ValueError(f"photons contains {what}; photon counts must be finite")
            if lo < 0:
                raise ValueError(
                    f"photons must be >= 0 (mean photons per pixel), got minimum {lo:g} photons"
                )
        elif arr.size and arr.dtype.kind == "i" and arr.min() < 0:
            raise ValueError(
                f"photons must be >= 0 (mean photons per pixel), got minimum {arr.min()} photons"
            )
        return arr

    # ----------------------------------------------------------------- noise-free mean
    def affine(
        self, exposure_s: float, *, fixed_pattern: bool = True
    ) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
        """Per-pixel affine map from mean photons to mean DN (before rounding and clipping).

        Parameters
        ----------
        exposure_s : float
            Exposure time in seconds (> 0); sets the dark signal ``I_dark * t``.
        fixed_pattern : bool
            Include the PRNU and DSNU maps (default). Match the flag given to :meth:`expose`.

        Returns
        -------
        gain_dn_per_photon : (H, W) float64
            ``K * eta * PRNU_map`` in DN per photon.
        offset_dn : (H, W) float64
            ``black + K * (I_dark * t + DSNU_map)`` in DN.

        Notes
        -----
        The mean of many :meth:`expose` frames equals ``gain * photons + offset`` wherever
        neither the full well nor the ADC range clips (and the signal spans a few DN of noise,
        so that rounding to nearest is unbiased).
        """
        t = _check_exposure(exposure_s)
        c = self.config
        k = c.system_gain_dn_per_e
        shape = self.shape
        if fixed_pattern:
            gain = (k * c.quantum_efficiency) * self.prnu_map
            offset = c.black_level_dn + k * (c.dark_current_e_per_s * t + self.dsnu_map_e)
        else:
            gain = np.full(shape, k * c.quantum_efficiency)
            offset = np.full(shape, c.black_level_dn + k * c.dark_current_e_per_s * t)
        return gain, offset

    def mean_dn(
        self, photons: ArrayLike, *, exposure_s: float, fixed_pattern: bool = True
    ) -> NDArray[np.float64]:
        """Noise-free mean signal in DN before rounding and clipping.

        Parameters
        ----------
        photons : (H, W) or (F, H, W) array_like
            Mean photons per pixel during the exposure (finite, >= 0).
        exposure_s : float
            Exposure time in seconds (> 0).
        fixed_pattern : bool
            Include the PRNU and DSNU maps (default).

        Returns
        -------
        (H, W) or (F, H, W) float64
            ``gain * photons + offset`` from :meth:`affine`.
        """
        arr = self._check_photons(photons)
        gain, offset = self.affine(exposure_s, fixed_pattern=fixed_pattern)
        return gain * arr + offset

    # ------------------------------------------------------------------------ frames
    def expose(
        self,
        photons: ArrayLike,
        *,
        exposure_s: float,
        rng: np.random.Generator,
        shot_noise: bool = True,
        dark_noise: bool = True,
        read_noise: bool = True,
        fixed_pattern: bool = True,
        exact_poisson_below_e: float = EXACT_POISSON_BELOW_E,
    ) -> NDArray[np.uint16]:
        """Record one frame, or a stack of frames, of the given mean photon counts.

        Parameters
        ----------
        photons : (H, W) or (F, H, W) array_like
            Mean number of photons reaching each pixel during the exposure (finite, >= 0).
            A stack gives ``F`` independent frames of (possibly different) scenes.
        exposure_s : float
            Exposure time in seconds (> 0); sets the dark signal ``I_dark * t``.
        rng : numpy.random.Generator
            Source of all temporal noise. The fixed patterns do not depend on it.
        shot_noise : bool
            Poisson statistics of the photo-electrons. Off: the mean ``eta*mu_p*PRNU``.
        dark_noise : bool
            Poisson statistics of the dark electrons. Off: the mean ``I_dark*t``.
        read_noise : bool
            Normal temporal read noise ``sigma_d``.
        fixed_pattern : bool
            PRNU and DSNU maps. Off: every pixel has gain ``eta`` and no dark offset.
        exact_poisson_below_e : float
            Mean electron count below which shot noise is exact Poisson; above it a
            moment-matched normal approximation is used. ``numpy.inf`` makes it exact
            everywhere (slower).

        Returns
        -------
        (H, W) or (F, H, W) uint16
            Raw frame(s) in DN, in ``[0, 2**bit_depth - 1]``. With every noise source off
            the result is deterministic.

        Raises
        ------
        ValueError
            If ``photons`` has the wrong shape or contains NaN, infinite or negative values,
            or ``exposure_s`` is not a positive finite number.
        TypeError
            If ``rng`` is not a ``numpy.random.Generator``.
        """
        arr = self._check_photons(photons)
        t = _check_exposure(exposure_s)
        if not isinstance(rng, np.random.Generator):
            raise TypeError(f"rng must be a numpy.random.Generator, got {type(rng).__name__}")
        try:
            threshold = float(exact_poisson_below_e)
        except (TypeError, ValueError):
            threshold = math.nan
        if not threshold >= 0:
            raise ValueError(
                f"exact_poisson_below_e must be >= 0 electrons, got {exact_poisson_below_e!r}"
            )
        c = self.config
        out_shape = arr.shape
        n_pix = c.height_px * c.width_px
        flat = arr.reshape(-1, n_pix)
        gain_e = self._gain_e32 if fixed_pattern else np.float32(c.quantum_efficiency)
        offset_dn = self._offset_dn32 if fixed_pattern else np.float32(c.black_level_dn)
        lam_photo = np.multiply(flat, gain_e, dtype=np.float32)
        lam_dark = np.float32(c.dark_current_e_per_s * t)
        sigma_d = np.float32(c.read_noise_e if read_noise else 0.0)
        full_well = np.float32(c.full_well_e)

        # Split the electron mean into a Poisson part and a deterministic part.
        det: np.ndarray | np.float32
        lam: np.ndarray | None
        if shot_noise:
            lam = lam_photo
            if dark_noise:
                lam += lam_dark
                det = np.float32(0.0)
            else:
                det = lam_dark
        elif dark_noise and lam_dark > 0:
            lam = np.full(lam_photo.shape, lam_dark, dtype=np.float32)
            det = lam_photo
        else:
            lam = None
            lam_photo += lam_dark
            det = lam_photo

        if lam is None:
            e = np.minimum(det, full_well)
            if sigma_d > 0:
                e += sigma_d * rng.standard_normal(e.shape, dtype=np.float32)
        else:
            e = self._electrons(lam, det, sigma_d, full_well, threshold, rng)

        e *= np.float32(c.system_gain_dn_per_e)
        e += offset_dn
        np.rint(e, out=e)
        np.clip(e, 0, self.max_dn, out=e)
        return e.astype(np.uint16).reshape(out_shape)

    @staticmethod
    def _electrons(
        lam: np.ndarray,
        det: np.ndarray | np.float32,
        sigma_d: np.float32,
        full_well: np.float32,
        threshold: float,
        rng: np.random.Generator,
    ) -> np.ndarray:
        """Electrons after shot noise, full-well clip and read noise (float32, lam's shape).

        ``lam`` is the Poisson mean, ``det`` a deterministic addition (scalar or lam-shaped).
        """
        z = rng.standard_normal(lam.shape, dtype=np.float32)
        det_is_array = isinstance(det, np.ndarray)
        # Bulk: normal approximation of shot + read noise in a single variate.
        e = np.add(lam, sigma_d * sigma_d)
        np.sqrt(e, out=e)
        e *= z
        e += lam
        e += det
        lam_f, e_f, z_f = lam.ravel(), e.ravel(), z.ravel()
        det_f = det.ravel() if det_is_array else det

        # Low counts: exact Poisson (plus the deterministic part), clip, read noise.
        low = np.flatnonzero(lam_f < threshold) if threshold > 0 else np.empty(0, np.intp)
        if low.size:
            k = rng.poisson(lam_f[low].astype(np.float64)).astype(np.float32)
            k += det_f[low] if det_is_array else det_f
            np.minimum(k, full_well, out=k)
            if sigma_d > 0:
                k += sigma_d * z_f[low]
            e_f[low] = k

        # Near the full well: shot noise, clip, then an independent read-noise variate.
        guard = full_well - np.float32(_FULL_WELL_GUARD_SIGMA) * np.sqrt(full_well)
        mean_e = lam_f + det_f if det_is_array else lam_f
        near = np.flatnonzero(mean_e >= (guard if det_is_array else guard - det_f))
        if near.size:
            lam_n = lam_f[near]
            near = near[lam_n >= threshold]
            lam_n = lam_f[near]
        if near.size:
            m = lam_n + np.sqrt(lam_n) * z_f[near]
            m += det_f[near] if det_is_array else det_f
            np.minimum(m, full_well, out=m)
            if sigma_d > 0:
                m += sigma_d * rng.standard_normal(m.shape, dtype=np.float32)
            e_f[near] = m
        return e
