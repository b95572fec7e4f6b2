"""Per-fiber transmission of the printed device, from its geometry.

Models and sources: models.md (Faceplate, Fabrication).

``T = T_attenuation · T_bend · T_fresnel`` for each fiber:

- attenuation over the fiber's printed length ``L``: ``10^(−α L / 10)``, α in dB/cm;
- bend loss at the fiber's tightest bend ``R``: a ray at angle ψ to the axis stays guided if
  ``R ≥ a (cos ψ + n2/n1)/(cos ψ − n2/n1)`` with ``a`` the core radius, i.e.
  up to ``cos ψ_R = (n2/n1)(R + a)/(R − a)``; with the acceptance cone uniformly filled
  (Lambertian within the NA) the retained fraction is the solid-angle ratio
  ``(1 − cos ψ_R)/(1 − n2/n1)`` (modes stripped at the tightest bend stay lost). Behind a
  lens (:class:`Launch`) the fiber is filled only by the lens's cone, tilted by the chief
  ray at the fiber's site: with the pupil uniformly filled, the rays are uniform in direction
  cosines (the sine condition), a disk of radius NA_lens around the chief ray's
  ``sin χ``; the retained fraction is the part of that disk inside the bend's guided disk
  (radius ``n1 sin ψ_R / n0``) over the part inside the acceptance disk
  (radius ``NA = sqrt(n1² − n2²) / n0``), two circle-intersection areas;
- Fresnel reflection at the input and output faces: ``(1 − ((n1 − n0)/(n1 + n0))²)²``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from fabrication.process import ProcessConfig

__all__ = [
    "Launch",
    "bend_transmission",
    "disk_overlap",
    "fiber_transmission",
    "fresnel_transmission",
]


@dataclass(frozen=True)
class Launch:
    """Light launched into the input face by a lens with a uniformly filled pupil.

    Attributes
    ----------
    na : float
        Image-side numerical aperture of the lens in air, ``sin`` of the cone half-angle
        (``sin(atan(1/(2 N_w)))`` for a working f-number ``N_w``), in (0, 1].
    pupil_distance_mm : float or None
        Distance from the input face back to the lens's exit pupil, mm: the chief ray to a
        site at radius ``r`` tilts by ``χ`` with ``sin χ = r / sqrt(r² + D²)``. ``None``:
        image-side telecentric (every chief ray along the axis).
    """

    na: float
    pupil_distance_mm: float | None = None

    def __post_init__(self) -> None:
        if not (math.isfinite(self.na) and 0.0 < self.na <= 1.0):
            raise ValueError(f"launch na must be in (0, 1], got {self.na!r}")
        d = self.pupil_distance_mm
        if d is not None and not (math.isfinite(d) and d > 0):
            raise ValueError(f"pupil_distance_mm must be a finite number > 0, got {d!r}")

    @classmethod
    def from_f_number(
        cls, working_f_number: float, pupil_distance_mm: float | None = None
    ) -> Launch:
        """The launch of a lens at working f-number ``N_w`` (cone half-angle atan(1/(2 N_w)))."""
        if not (math.isfinite(working_f_number) and working_f_number > 0):
            raise ValueError(f"working f-number must be > 0, got {working_f_number!r}")
        return cls(math.sin(math.atan(0.5 / working_f_number)), pupil_distance_mm)

    def chief_sin(self, sites_mm: np.ndarray) -> np.ndarray:
        """``(n,)`` sine of the chief ray's tilt at each site ``(n, 2)`` (mm from the axis)."""
        r = np.hypot(*np.asarray(sites_mm, dtype=np.float64).T)
        if self.pupil_distance_mm is None:
            return np.zeros_like(r)
        return r / np.hypot(r, self.pupil_distance_mm)

    def summary(self) -> dict[str, float | None]:
        """The launch as plain numbers (for reports and sidecars)."""
        return {"na": self.na, "pupil_distance_mm": self.pupil_distance_mm}


def disk_overlap(
    r1: np.ndarray | float, r2: np.ndarray | float, d: np.ndarray | float
) -> np.ndarray:
    """Area of the intersection of two disks of radii ``r1``, ``r2`` with centres ``d`` apart.

    The lens formula ``r1² acos(u1) + r2² acos(u2) − ½ √((−d+r1+r2)(d+r1−r2)(d−r1+r2)(d+r1+r2))``
    with ``u1 = (d² + r1² − r2²)/(2 d r1)``; ``π min(r1, r2)²`` when one disk holds the other,
    0 when they are apart.
    """
    r1, r2, d = np.broadcast_arrays(*(np.asarray(v, dtype=np.float64) for v in (r1, r2, d)))
    out = np.zeros(r1.shape)
    inside = d <= np.abs(r1 - r2)
    out[inside] = math.pi * np.minimum(r1, r2)[inside] ** 2
    part = ~inside & (d < r1 + r2)
    if np.any(part):
        a, b, c = r1[part], r2[part], d[part]
        u1 = np.clip((c * c + a * a - b * b) / (2 * c * a), -1.0, 1.0)
        u2 = np.clip((c * c + b * b - a * a) / (2 * c * b), -1.0, 1.0)
        k = (-c + a + b) * (c + a - b) * (c - a + b) * (c + a + b)
        out[part] = a * a * np.arccos(u1) + b * b * np.arccos(u2) - 0.5 * np.sqrt(np.maximum(k, 0))
    return out


def bend_transmission(
    bend_radius_mm: np.ndarray | float,
    core_radius_mm: float,
    n_core: float,
    n_clad: float,
    *,
    launch_na: float | None = None,
    chief_sin: np.ndarray | float = 0.0,
    n_outside: float = 1.0,
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
    launch_na : float, optional
        Numerical aperture of the lens that fills the fiber (:class:`Launch`). ``None``: the
        acceptance cone is uniformly filled (the solid-angle ratio, a worst case).
    chief_sin : array or float
        Sine of the chief ray's tilt at each fiber's input site (with ``launch_na``).
    n_outside : float
        Refractive index in front of the input face.

    Returns
    -------
    array
        Fraction in [0, 1]; 0 when ``R <= a`` or no ray can stay guided, and 0 for a fiber
        whose launch cone misses its acceptance entirely.
    """
    if not n_clad < n_core:
        raise ValueError(f"n_clad ({n_clad}) must be smaller than n_core ({n_core})")
    r = np.asarray(bend_radius_mm, dtype=np.float64)
    a = float(core_radius_mm)
    q = n_clad / n_core
    with np.errstate(divide="ignore", invalid="ignore"):
        cos_r = np.where(np.isinf(r), q, q * (r + a) / (r - a))
    cos_r = np.where(r <= a, 2.0, cos_r)  # no guidance at all
    cos_r = np.minimum(cos_r, 1.0)
    if launch_na is None:
        frac = (1.0 - cos_r) / (1.0 - q)
        return np.clip(frac, 0.0, 1.0)
    # direction cosines in front of the face: guided after the bend within n1 sin ψ_R / n0,
    # accepted at all within NA / n0 (sin of an angle: at most 1)
    rho_bend = np.minimum(n_core * np.sqrt(1.0 - cos_r**2) / n_outside, 1.0)
    rho_acc = min(math.sqrt(n_core**2 - n_clad**2) / n_outside, 1.0)
    rho_bend = np.minimum(rho_bend, rho_acc)
    c = np.asarray(chief_sin, dtype=np.float64)
    accepted = disk_overlap(launch_na, rho_acc, c)
    kept = disk_overlap(launch_na, rho_bend, c)
    with np.errstate(divide="ignore", invalid="ignore"):
        frac = np.where(accepted > 0, kept / np.where(accepted > 0, accepted, 1.0), 0.0)
    return np.clip(frac, 0.0, 1.0)


def fresnel_transmission(n_core: float, n_outside: float = 1.0) -> float:
    """Transmission through both faces at normal incidence, ``(1 − R)²``."""
    refl = ((n_core - n_outside) / (n_core + n_outside)) ** 2
    return (1.0 - refl) ** 2


def fiber_transmission(
    length_mm: np.ndarray,
    min_bend_radius_mm: np.ndarray,
    process: ProcessConfig,
    *,
    launch: Launch | None = None,
    sites_mm: np.ndarray | None = None,
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
    launch : Launch, optional
        The lens that fills the fibers (bend loss of its cone); ``None``: a uniformly filled
        acceptance cone.
    sites_mm : (n, 2) float, optional
        Input-face site of every fiber, mm from the axis (needed with ``launch``).

    Returns
    -------
    dict
        ``"total"``, ``"attenuation"``, ``"bend"``, ``"fresnel"``: ``(n,)`` fractions.
    """
    length_mm = np.asarray(length_mm, dtype=np.float64)
    if np.any(length_mm < 0) or not np.all(np.isfinite(length_mm)):
        raise ValueError("length_mm must be finite and non-negative (mm)")
    att = 10.0 ** (-process.attenuation_db_per_cm * (length_mm / 10.0) / 10.0)
    if launch is None:
        bend = bend_transmission(
            min_bend_radius_mm, process.core_diameter_mm / 2.0, process.n_core, process.n_clad
        )
    else:
        if sites_mm is None:
            raise ValueError("sites_mm is needed with a launch")
        bend = bend_transmission(
            min_bend_radius_mm,
            process.core_diameter_mm / 2.0,
            process.n_core,
            process.n_clad,
            launch_na=launch.na,
            chief_sin=launch.chief_sin(sites_mm),
            n_outside=process.n_outside,
        )
    fres = np.full_like(att, fresnel_transmission(process.n_core, process.n_outside))
    return {
        "total": att * bend * fres,
        "attenuation": att,
        "bend": bend,
        "fresnel": fres,
        "length_mm": length_mm,
        "min_bend_radius_mm": np.asarray(min_bend_radius_mm, dtype=np.float64),
    }
