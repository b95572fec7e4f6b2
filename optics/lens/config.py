"""Configuration of a thin, rotationally symmetric lens (see :mod:`optics.lens` for the
conventions: conjugates, field angle, orientation, distortion, defocus)."""

from __future__ import annotations

import math
from typing import Any, ClassVar

from pydantic import Field, field_validator, model_validator

from keycam.config import ConfigModel
from keycam.validation import positive

__all__ = ["LensConfig", "resolve_wavelength"]

_MAX_WAVELENGTHS = 8


class LensConfig(ConfigModel):
    """A thin, rotationally symmetric lens with a circular aperture stop.

    The exit pupil sits at the lens (``s_i`` in front of the image) unless
    ``exit_pupil_distance_mm`` places it elsewhere, e.g. far away for an image-side telecentric
    lens; it sets the chief-ray angle at the image, and with it the natural vignetting and
    the tilt of the light cone entering the faceplate. The cone itself (working f-number) does
    not depend on it.

    Build from keyword arguments or a TOML table; every bad value fails here with the field
    name. Hashable (frozen), so results derived from it can be cached.
    """

    #: Added after the first pattern sets and dataset stores (their lenses: stop at the lens).
    ADDED_LATER: ClassVar[dict[str, Any]] = {"exit_pupil_distance_mm": None}

    focal_length_mm: float = Field(gt=0, le=10_000, description="Focal length f in mm.")
    f_number: float = Field(
        ge=0.5, le=256, description="f-number N = f/D (dimensionless), for an object at infinity."
    )
    wavelength_nm: float | tuple[float, ...] = Field(
        550.0,
        description=(
            "Wavelength(s) in nm, 200-2000: one for a monochrome camera, or a few (e.g. red, "
            "green, blue) - one per scene channel."
        ),
    )
    defocus_waves: float = Field(
        0.0,
        ge=-50,
        le=50,
        description="Defocus W020 in waves at the pupil edge, at the first wavelength.",
    )
    k1: float = Field(0.0, ge=-10, le=10, description="Radial distortion k1 (dimensionless).")
    k2: float = Field(0.0, ge=-100, le=100, description="Radial distortion k2 (dimensionless).")
    k3: float = Field(0.0, ge=-1000, le=1000, description="Radial distortion k3 (dimensionless).")
    p1: float = Field(0.0, ge=-1, le=1, description="Tangential distortion p1 (dimensionless).")
    p2: float = Field(0.0, ge=-1, le=1, description="Tangential distortion p2 (dimensionless).")
    transmission: float = Field(
        1.0, gt=0, le=1, description="Lens transmission, fraction in (0, 1] (dimensionless)."
    )
    vignetting: bool = Field(
        True, description="Apply natural vignetting cos⁴θ (relative illumination)."
    )
    object_distance_mm: float | None = Field(
        None,
        gt=0,
        description="Object distance from the lens in mm (must exceed f); None = infinity.",
    )
    magnification: float | None = Field(
        None,
        ge=0,
        le=100,
        description="Lateral magnification |m| (dimensionless), instead of object_distance_mm.",
    )
    exit_pupil_distance_mm: float | None = Field(
        None,
        gt=0,
        le=1e6,
        description=(
            "Distance from the image plane to the exit pupil, mm; None = at the lens (a thin "
            "lens with its stop at the lens, s_i). Large values approach an image-side "
            "telecentric lens, whose chief rays arrive parallel to the axis."
        ),
    )

    @field_validator("wavelength_nm")
    @classmethod
    def _check_wavelengths(cls, value: float | tuple[float, ...]) -> float | tuple[float, ...]:
        values = value if isinstance(value, tuple) else (value,)
        if not 1 <= len(values) <= _MAX_WAVELENGTHS:
            raise ValueError(
                f"wavelength_nm needs 1 to {_MAX_WAVELENGTHS} values, got {len(values)}"
            )
        for wl in values:
            if not (math.isfinite(wl) and 200.0 <= wl <= 2000.0):
                raise ValueError(f"wavelength_nm must lie in [200, 2000] nm, got {wl} nm")
        return value

    @model_validator(mode="after")
    def _check_conjugates(self) -> LensConfig:
        if self.object_distance_mm is not None and self.magnification is not None:
            raise ValueError("give object_distance_mm or magnification, not both")
        if self.object_distance_mm is not None and self.object_distance_mm <= self.focal_length_mm:
            raise ValueError(
                f"object_distance_mm must exceed focal_length_mm = {self.focal_length_mm} mm "
                f"for a real image, got {self.object_distance_mm} mm"
            )
        return self

    @property
    def wavelengths_nm(self) -> tuple[float, ...]:
        """All wavelengths in nm, one per channel."""
        wl = self.wavelength_nm
        return tuple(float(w) for w in wl) if isinstance(wl, tuple) else (float(wl),)

    @property
    def n_channels(self) -> int:
        """Number of wavelengths (scene channels)."""
        return len(self.wavelengths_nm)

    @property
    def abs_magnification(self) -> float:
        """``|m|`` from ``magnification`` or ``f / (s_o − f)``; 0 at infinity."""
        if self.magnification is not None:
            return float(self.magnification)
        if self.object_distance_mm is not None:
            return self.focal_length_mm / (self.object_distance_mm - self.focal_length_mm)
        return 0.0

    @property
    def image_distance_mm(self) -> float:
        """Image distance ``s_i = f (1 + |m|)`` in mm."""
        return self.focal_length_mm * (1.0 + self.abs_magnification)

    @property
    def pupil_distance_mm(self) -> float:
        """Distance from the image plane to the exit pupil in mm: ``exit_pupil_distance_mm``,
        or the image distance ``s_i`` when that is ``None`` (stop at the lens).

        The chief ray to an image point at radius ``r`` arrives at ``θ' = atan(r / p)``.
        """
        if self.exit_pupil_distance_mm is not None:
            return float(self.exit_pupil_distance_mm)
        return self.image_distance_mm

    @property
    def working_f_number(self) -> float:
        """Working f-number ``N_w = N (1 + |m|)``."""
        return self.f_number * (1.0 + self.abs_magnification)

    @property
    def distortion_coeffs(self) -> tuple[float, float, float, float, float]:
        """``(k1, k2, k3, p1, p2)``."""
        return (self.k1, self.k2, self.k3, self.p1, self.p2)

    def defocus_waves_at(self, wavelength_nm: float) -> float:
        """``W020`` in waves at ``wavelength_nm`` (fixed path error ``W020 λ_0``)."""
        return self.defocus_waves * self.wavelengths_nm[0] / wavelength_nm


def resolve_wavelength(lens: LensConfig, wavelength_nm: float | None) -> float:
    """The wavelength a single-channel computation runs at, nm (the lens's own if ``None``)."""
    if wavelength_nm is None:
        if lens.n_channels != 1:
            raise ValueError(
                f"wavelength_nm must be given for a lens with {lens.n_channels} wavelengths "
                f"{lens.wavelengths_nm} nm"
            )
        return lens.wavelengths_nm[0]
    wl = positive("wavelength_nm", wavelength_nm, "nm")
    if not 200.0 <= wl <= 2000.0:
        raise ValueError(f"wavelength_nm must lie in [200, 2000] nm, got {wl} nm")
    return wl
