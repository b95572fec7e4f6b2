"""Per-fiber transmission of the printed device, from its geometry.

Models and sources: models.md (Faceplate, Fabrication).

``T = T_attenuation · T_bend · T_fresnel`` for each fiber:

- attenuation over the fiber's printed length ``L``: ``10^(−α L / 10)``, α in dB/cm;
- bend loss at the fiber's tightest bend ``R``: a ray at angle ψ to the axis stays guided if
  ``R ≥ a (cos ψ + n2/n1)/(cos ψ − n2/n1)`` with ``a`` the core radius, i.e.
  up to ``cos ψ_R = (n2/n1)(R + a)/(R − a)``; with the acceptance cone uniformly filled
  (Lambertian within the NA) the retained fraction is the solid-angle ratio
  ``(1 − cos ψ_R)/(1 − n2/n1)`` (modes stripped at the tightest bend stay lost);
- Fresnel reflection at the input and output faces: ``(1 − ((n1 − n0)/(n1 + n0))²)²``.
"""

from __future__ import annotations

import numpy as np

from fabrication.process import ProcessConfig

__all__ = ["bend_transmission", "fiber_transmission", "fresnel_transmission"]


def bend_transmission(
    bend_radius_mm: np.ndarray | float, core_radius_mm: float, n_core: float, n_clad: float
) -> np.ndarray:
    """Fraction of guided light kept by a bend of centerline radius ``bend_radius_mm``.

    Parameters
    ----------
    bend_radius_mm : array or float
        Smallest bend radius of each fiber, mm (``inf`` for a straight fiber).
    core_radius_mm : float
        Core radius ``a``, mm.
    n_core, n_clad : float
        Refractive indices, ``n_clad < n_core``.

    Returns
    -------
    array
        Fraction in [0, 1]; 0 when ``R <= a`` or no ray can stay guided.
    """
    if not n_clad < n_core:
        raise ValueError(f"n_clad ({n_clad}) must be smaller than n_core ({n_core})")
    r = np.asarray(bend_radius_mm, dtype=np.float64)
    a = float(core_radius_mm)
    q = n_clad / n_core
    with np.errstate(divide="ignore", invalid="ignore"):
        cos_r = np.where(np.isinf(r), q, q * (r + a) / (r - a))
    cos_r = np.where(r <= a, 2.0, cos_r)  # no guidance at all
    frac = (1.0 - np.minimum(cos_r, 1.0)) / (1.0 - q)
    return np.clip(frac, 0.0, 1.0)


def fresnel_transmission(n_core: float, n_outside: float = 1.0) -> float:
    """Transmission through both faces at normal incidence, ``(1 − R)²``."""
    refl = ((n_core - n_outside) / (n_core + n_outside)) ** 2
    return (1.0 - refl) ** 2


def fiber_transmission(
    length_mm: np.ndarray, min_bend_radius_mm: np.ndarray, process: ProcessConfig
) -> dict[str, np.ndarray]:
    """Transmission of every fiber and its factors.

    Parameters
    ----------
    length_mm : (n,) float
        Printed length of each fiber, mm.
    min_bend_radius_mm : (n,) float
        Tightest bend radius of each fiber, mm (``inf`` if straight).
    process : ProcessConfig
        Attenuation, indices and core diameter.

    Returns
    -------
    dict
        ``"total"``, ``"attenuation"``, ``"bend"``, ``"fresnel"``: ``(n,)`` fractions.
    """
    length_mm = np.asarray(length_mm, dtype=np.float64)
    if np.any(length_mm < 0) or not np.all(np.isfinite(length_mm)):
        raise ValueError("length_mm must be finite and non-negative (mm)")
    att = 10.0 ** (-process.attenuation_db_per_cm * (length_mm / 10.0) / 10.0)
    bend = bend_transmission(
        min_bend_radius_mm, process.core_diameter_mm / 2.0, process.n_core, process.n_clad
    )
    fres = np.full_like(att, fresnel_transmission(process.n_core, process.n_outside))
    return {"total": att * bend * fres, "attenuation": att, "bend": bend, "fresnel": fres}
