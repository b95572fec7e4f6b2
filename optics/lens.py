"""Thin-lens camera optics: diffraction PSF/MTF, defocus, vignetting, distortion, radiometry.

The lens forms the scene on the faceplate's input face (PHYSICS.md §2). Conventions:

* **Conjugates.** Thin lens ``1/f = 1/s_o + 1/s_i``; ``|m| = s_i/s_o = f/(s_o − f)``; image
  distance ``s_i = f (1 + |m|)``; working f-number ``N_w = N (1 + |m|)``. Everything image-side
  (PSF, MTF, irradiance) uses ``N_w``; for an object at infinity ``N_w = N`` and ``s_i = f``.
* **Field angle.** A point at ideal (undistorted) image radius ``r`` sees the scene at
  ``θ = atan(r / s_i)`` (``atan(r/f)`` at infinity).
* **Orientation.** A thin lens inverts the image. keycam presents the image plane *upright*,
  as seen looking at the scene: row 0 is the top of the scene, column 0 its left edge, ``x``
  to the right and ``y`` **down** (OpenCV's camera frame). The physical image on the faceplate
  is this array rotated by 180° when viewed from behind the lens looking at the scene.
* **Distortion.** Brown–Conrady in normalised coordinates ``x/s_i`` (``x/f`` at infinity),
  exactly OpenCV's model (see :mod:`optics.distortion`).
* **Defocus.** ``defocus_waves`` is ``W020`` in waves at the first listed wavelength; the
  physical path error is fixed, so at wavelength ``λ`` it is ``W020 λ_0 / λ``. Image shift
  ``Δz = 8 N_w² λ W020``, geometric blur diameter ``Δz / N_w``.

Image formation (``form_image``, ``image_operator``) lives in :mod:`optics.imaging` and is
re-exported here.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from optics.diffraction import otf_radial, sampled_psf
from optics.distortion import distort_normalized, undistort_normalized
from optics.radiometry import image_irradiance_w_m2, photons_per_joule

if TYPE_CHECKING:  # pragma: no cover
    from optics.imaging import form_image, image_operator, psf_kernel

__all__ = [
    "LensConfig",
    "cutoff_frequency_cyc_per_mm",
    "distort",
    "form_image",
    "image_irradiance",
    "image_operator",
    "mtf",
    "photon_flux_per_sample",
    "psf",
    "psf_kernel",
    "relative_illumination",
    "undistort",
]

_MAX_WAVELENGTHS = 8


class LensConfig(BaseModel):
    """A thin, rotationally symmetric lens with a circular aperture stop at the lens.

    Build from keyword arguments or a TOML table; every bad value fails here with the field
    name. Hashable (frozen), so results derived from it can be cached.
    """

    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)

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


def _positive(name: str, value: Any, unit: str) -> float:
    try:
        v = float(value)
    except (TypeError, ValueError):
        raise ValueError(f"{name} must be a positive number in {unit}, got {value!r}") from None
    if not (math.isfinite(v) and v > 0):
        raise ValueError(f"{name} must be a positive finite number in {unit}, got {value!r}")
    return v


def _wavelength(lens: LensConfig, wavelength_nm: float | None) -> float:
    if wavelength_nm is None:
        if lens.n_channels != 1:
            raise ValueError(
                f"wavelength_nm must be given for a lens with {lens.n_channels} wavelengths "
                f"{lens.wavelengths_nm} nm"
            )
        return lens.wavelengths_nm[0]
    wl = _positive("wavelength_nm", wavelength_nm, "nm")
    if not 200.0 <= wl <= 2000.0:
        raise ValueError(f"wavelength_nm must lie in [200, 2000] nm, got {wl} nm")
    return wl


def cutoff_frequency_cyc_per_mm(lens: LensConfig, *, wavelength_nm: float | None = None) -> float:
    """Diffraction cutoff ``ν_c = 1/(λ N_w)`` in cycles/mm (454.5 at 550 nm, N = 4)."""
    wl = _wavelength(lens, wavelength_nm)
    return 1.0 / (wl * 1e-6 * lens.working_f_number)


def psf(
    lens: LensConfig, *, dx_um: float, n: int, wavelength_nm: float | None = None
) -> np.ndarray:
    """Incoherent PSF (diffraction + defocus) integrated over square samples.

    Parameters
    ----------
    lens : LensConfig
    dx_um : float
        Sample spacing and size in µm.
    n : int
        Grid size; the PSF peak sits at index ``(n // 2, n // 2)``.
    wavelength_nm : float, optional
        Required when the lens has several wavelengths.

    Returns
    -------
    psf : (n, n) float64 array
        Fraction of the image-plane energy of a point source (on the optical axis, centred on
        sample ``n // 2``) that lands in each sample; sums to 1. The grid is periodic, so the
        far tails of the Airy pattern wrap round instead of being discarded.
    """
    dx = _positive("dx_um", dx_um, "µm")
    if isinstance(n, bool) or not isinstance(n, int | np.integer) or n < 1:
        raise ValueError(f"n must be a positive integer number of samples, got {n!r}")
    wl = _wavelength(lens, wavelength_nm)
    lambda_n_um = wl * 1e-3 * lens.working_f_number
    return sampled_psf(lambda_n_um, lens.defocus_waves_at(wl), dx, int(n))


def mtf(
    lens: LensConfig, freq_cyc_per_mm: np.ndarray | float, *, wavelength_nm: float | None = None
) -> np.ndarray:
    """Diffraction MTF of the lens, including defocus.

    In focus this is the closed form ``(2/π)[arccos s − s sqrt(1 − s²)]``, ``s = ν/ν_c``,
    ``ν_c = 1/(λ N_w)``; with defocus it is ``|OTF|`` from Hopkins' integral.

    Parameters
    ----------
    freq_cyc_per_mm : array_like of float
        Spatial frequency in cycles/mm (image side), any shape, ``≥ 0``.

    Returns
    -------
    mtf : ndarray of float, same shape; 0 at and beyond the cutoff.
    """
    f = np.asarray(freq_cyc_per_mm, dtype=float)
    if not np.all(np.isfinite(f)) or np.any(f < 0):
        raise ValueError("freq_cyc_per_mm must be finite and >= 0 cycles/mm")
    wl = _wavelength(lens, wavelength_nm)
    s = f / cutoff_frequency_cyc_per_mm(lens, wavelength_nm=wl)
    return np.abs(otf_radial(s, lens.defocus_waves_at(wl)))


def relative_illumination(lens: LensConfig, r_mm: np.ndarray | float) -> np.ndarray:
    """Natural vignetting ``cos⁴θ`` with ``θ = atan(r / s_i)``; ones if ``vignetting`` is off.

    Parameters
    ----------
    r_mm : array_like of float
        Ideal (undistorted) image radius in mm, any shape.
    """
    r = np.asarray(r_mm, dtype=float)
    if not np.all(np.isfinite(r)):
        raise ValueError("r_mm must be finite (mm)")
    if not lens.vignetting:
        return np.ones_like(r)
    t2 = (r / lens.image_distance_mm) ** 2
    return 1.0 / (1.0 + t2) ** 2  # cos⁴(atan t) = 1 / (1 + t²)²


def distort(
    lens: LensConfig, x_mm: np.ndarray | float, y_mm: np.ndarray | float
) -> tuple[np.ndarray, np.ndarray]:
    """Forward distortion: ideal image position → distorted image position (both in mm).

    Coordinates are on the image plane relative to the optical axis, in the presented
    orientation (``x`` right, ``y`` down); normalised by ``s_i`` for the Brown–Conrady model.
    """
    s_i = lens.image_distance_mm
    xd, yd = distort_normalized(
        np.asarray(x_mm, float) / s_i, np.asarray(y_mm, float) / s_i, lens.distortion_coeffs
    )
    return xd * s_i, yd * s_i


def undistort(
    lens: LensConfig, x_mm: np.ndarray | float, y_mm: np.ndarray | float
) -> tuple[np.ndarray, np.ndarray]:
    """Inverse of :func:`distort`: distorted image position → ideal position (mm).

    Raises ``ValueError`` where the distortion folds over (no unique preimage).
    """
    s_i = lens.image_distance_mm
    x, y = undistort_normalized(
        np.asarray(x_mm, float) / s_i, np.asarray(y_mm, float) / s_i, lens.distortion_coeffs
    )
    return x * s_i, y * s_i


def image_irradiance(
    lens: LensConfig, radiance_w_m2_sr: np.ndarray | float, r_mm: np.ndarray | float = 0.0
) -> np.ndarray:
    """Image irradiance ``E = π L T cos⁴θ / (1 + 4 N_w²)`` in W m⁻² (no distortion).

    Parameters
    ----------
    radiance_w_m2_sr : array_like of float
        Scene radiance in W m⁻² sr⁻¹ (band-integrated).
    r_mm : array_like of float
        Ideal image radius in mm (broadcast with the radiance).
    """
    return image_irradiance_w_m2(
        radiance_w_m2_sr,
        lens.working_f_number,
        transmission=lens.transmission,
        cos4=relative_illumination(lens, r_mm),
    )


def photon_flux_per_sample(
    lens: LensConfig,
    radiance_w_m2_sr: np.ndarray | float,
    *,
    dx_um: float,
    r_mm: np.ndarray | float = 0.0,
    wavelength_nm: float | None = None,
) -> np.ndarray:
    """Photons per second on a square sample of side ``dx_um``: ``E dx² λ/(h c)``."""
    dx = _positive("dx_um", dx_um, "µm")
    wl = _wavelength(lens, wavelength_nm)
    e = image_irradiance(lens, radiance_w_m2_sr, r_mm)
    return e * (dx * 1e-6) ** 2 * photons_per_joule(wl)


def __getattr__(name: str) -> Any:
    # Image formation is a separate module that itself imports this one; re-export lazily.
    if name in ("form_image", "image_operator", "psf_kernel"):
        from optics import imaging

        return getattr(imaging, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
