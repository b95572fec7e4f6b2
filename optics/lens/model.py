"""The lens as functions of its configuration: diffraction PSF and MTF, relative illumination,
distortion, image irradiance."""

from __future__ import annotations

import numpy as np

from keycam.validation import positive
from optics.lens.config import LensConfig, resolve_wavelength
from optics.lens.diffraction import otf_radial, sampled_psf
from optics.lens.distortion import distort_normalized, undistort_normalized
from optics.lens.radiometry import image_irradiance_w_m2, photons_per_joule

__all__ = [
    "cutoff_frequency_cyc_per_mm",
    "distort",
    "image_irradiance",
    "mtf",
    "photon_flux_per_sample",
    "psf",
    "relative_illumination",
    "undistort",
]


def cutoff_frequency_cyc_per_mm(lens: LensConfig, *, wavelength_nm: float | None = None) -> float:
    """Diffraction cutoff ``ν_c = 1/(λ N_w)`` in cycles/mm (454.5 at 550 nm, N = 4)."""
    wl = resolve_wavelength(lens, wavelength_nm)
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
    dx = positive("dx_um", dx_um, "µm")
    if isinstance(n, bool) or not isinstance(n, int | np.integer) or n < 1:
        raise ValueError(f"n must be a positive integer number of samples, got {n!r}")
    wl = resolve_wavelength(lens, wavelength_nm)
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
    wl = resolve_wavelength(lens, wavelength_nm)
    s = f / cutoff_frequency_cyc_per_mm(lens, wavelength_nm=wl)
    return np.abs(otf_radial(s, lens.defocus_waves_at(wl)))


def relative_illumination(lens: LensConfig, r_mm: np.ndarray | float) -> np.ndarray:
    """Natural vignetting ``cos⁴θ'``, the cos⁴ law of the exit pupil; ones if ``vignetting`` is off.

    ``θ' = atan(r / p)`` is the image-side chief-ray angle, ``p`` the distance from the image
    to the exit pupil (:attr:`LensConfig.pupil_distance_mm`: ``s_i`` for a stop at the lens,
    where ``θ'`` equals the field angle; ``θ' → 0`` and no fall-off for an image-side
    telecentric lens).

    Parameters
    ----------
    r_mm : array_like of float
        Ideal (undistorted) image radius in mm, any shape.

    Returns
    -------
    ri : ndarray of float, same shape, in (0, 1]; 1 on the axis.
    """
    r = np.asarray(r_mm, dtype=float)
    if not np.all(np.isfinite(r)):
        raise ValueError("r_mm must be finite (mm)")
    if not lens.vignetting:
        return np.ones_like(r)
    t2 = (r / lens.pupil_distance_mm) ** 2  # tan²θ'
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
    """Image irradiance ``E = π L T cos⁴θ' / (1 + 4 N_w²)`` in W m⁻² (no distortion).

    ``θ'`` is the image-side chief-ray angle (see :func:`relative_illumination`).

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
    dx = positive("dx_um", dx_um, "µm")
    wl = resolve_wavelength(lens, wavelength_nm)
    e = image_irradiance(lens, radiance_w_m2_sr, r_mm)
    return e * (dx * 1e-6) ** 2 * photons_per_joule(wl)
