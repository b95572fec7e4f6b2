"""Image-plane radiometry: scene radiance → irradiance → photon flux.

models.md (Lens): a lens of working f-number ``N_w`` and transmission ``T`` forms, from a
Lambertian scene of radiance ``L``, the image irradiance

    E = π L T cos⁴θ / (1 + 4 N_w²)            [W m⁻²]

and a sample of area ``A`` receives ``Φ = E A λ / (h c)`` photons per second (models.md (Sensor),
handy form ``μp = 50.34 · A[µm²] · t[ms] · λ[µm] · E[µW/cm²]``).
"""

from __future__ import annotations

import numpy as np

__all__ = [
    "C_LIGHT_M_PER_S",
    "H_PLANCK_J_S",
    "image_irradiance_w_m2",
    "photons_per_joule",
]

H_PLANCK_J_S = 6.62607015e-34
C_LIGHT_M_PER_S = 299_792_458.0


def image_irradiance_w_m2(
    radiance_w_m2_sr: np.ndarray | float,
    working_f_number: float,
    *,
    transmission: float = 1.0,
    cos4: np.ndarray | float = 1.0,
) -> np.ndarray:
    """Image irradiance ``E = π L T cos⁴θ / (1 + 4 N_w²)`` in W m⁻².

    Parameters
    ----------
    radiance_w_m2_sr : array_like of float
        Scene radiance (band-integrated) in W m⁻² sr⁻¹.
    working_f_number : float
        ``N_w = N (1 + |m|)``.
    transmission : float
        Lens transmission in (0, 1].
    cos4 : array_like of float
        Relative illumination ``cos⁴θ`` (1 on axis).
    """
    return (
        np.pi
        * np.asarray(radiance_w_m2_sr, dtype=float)
        * transmission
        * np.asarray(cos4, dtype=float)
        / (1.0 + 4.0 * working_f_number**2)
    )


def photons_per_joule(wavelength_nm: float) -> float:
    """Photons per joule at ``wavelength_nm``: ``λ / (h c)`` (≈ 2.77e18 at 550 nm)."""
    return wavelength_nm * 1e-9 / (H_PLANCK_J_S * C_LIGHT_M_PER_S)
