"""Printing processes: what a printer and a material allow (models.md: Fabrication).

Two presets: ``"resin"`` (cores printed in clear resin inside a lower-index resin matrix) and
``"fdm"`` (a printed scaffold with channels into which plastic optical fiber is threaded; the
channel is the fiber plus a clearance). Every field can be overridden::

    ProcessConfig.preset("resin", min_bend_radius_mm=15.0)

The face pitch of the printed device is the key's lattice pitch; a lattice finer than channel
plus wall is refused (:func:`face_geometry`), because the printed output face would no longer
match the key. A lattice at :attr:`ProcessConfig.open_face_pitch_mm` or coarser is an *open
face*: it is routed without a fan-out, at the price of a lower fill factor.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
from pydantic import Field, model_validator

from keycam.config import ConfigModel
from optics.faceplate import lattice as lat

__all__ = ["PRESETS", "FaceGeometry", "ProcessConfig", "face_geometry"]


class ProcessConfig(ConfigModel):
    """Limits and materials of one printing process. Lengths in mm, angles in degrees."""

    name: str = Field("resin", description="Process name (free text, for reports).")
    core_diameter_mm: float = Field(
        0.6, gt=0, le=10, description="Diameter of the light-guiding core or fiber, mm."
    )
    channel_clearance_mm: float = Field(
        0.0,
        ge=0,
        le=5,
        description="Extra channel diameter around a threaded fiber, mm (0 for printed cores).",
    )
    min_wall_mm: float = Field(0.4, gt=0, le=10, description="Minimum wall between channels, mm.")
    min_bend_radius_mm: float = Field(10.0, gt=0, description="Minimum centerline bend radius, mm.")
    max_tilt_deg: float = Field(
        30.0, gt=0, lt=80, description="Maximum tilt of a fiber from the build (z) axis, degrees."
    )
    end_straight_mm: float | None = Field(
        None,
        gt=0,
        description="Straight, face-normal length at each face, mm (default 3 core diameters).",
    )
    attenuation_db_per_cm: float = Field(
        0.5, ge=0, description="Propagation loss of the core material, dB/cm."
    )
    n_core: float = Field(1.54, gt=1, lt=4, description="Refractive index of the core, unitless.")
    n_clad: float = Field(
        1.41, ge=1, lt=4, description="Refractive index around the core (matrix or cladding)."
    )
    n_outside: float = Field(
        1.0, ge=1, lt=4, description="Refractive index at both faces (air = 1), unitless."
    )
    min_feature_mm: float = Field(
        0.3, gt=0, description="Smallest printable feature (wall or core width), mm."
    )
    housing_margin_mm: float = Field(
        2.0, gt=0, description="Matrix material around the outermost fiber, mm."
    )
    route_margin_mm: float = Field(
        0.05,
        ge=0,
        le=1,
        description="Extra clearance kept between lanes while routing (above core + wall), mm.",
    )
    chord_tolerance_mm: float = Field(
        0.01,
        gt=0,
        le=0.1,
        description="Largest deviation of a mesh facet or path chord from the true surface, mm.",
    )
    min_polygon_sides: int = Field(16, ge=8, le=256, description="Minimum tube polygon sides.")

    @model_validator(mode="after")
    def _indices(self) -> ProcessConfig:
        if self.n_clad >= self.n_core:
            raise ValueError(
                f"n_clad ({self.n_clad}) must be smaller than n_core ({self.n_core}) "
                "for the core to guide light"
            )
        return self

    @classmethod
    def preset(cls, name: str, **overrides: Any) -> ProcessConfig:
        """The named preset (``"resin"`` or ``"fdm"``) with fields overridden."""
        if name not in PRESETS:
            raise ValueError(f"process must be one of {sorted(PRESETS)}, got {name!r}")
        return cls(**{**PRESETS[name], **overrides})

    # -- derived quantities ---------------------------------------------------------------------
    @property
    def channel_diameter_mm(self) -> float:
        """Diameter of the printed channel (core plus clearance), mm."""
        return self.core_diameter_mm + self.channel_clearance_mm

    @property
    def min_pitch_mm(self) -> float:
        """Smallest centre distance the process allows: channel + wall, mm."""
        return self.channel_diameter_mm + self.min_wall_mm

    @property
    def numerical_aperture(self) -> float:
        """Numerical aperture of the printed fiber in air, ``min(1, sqrt(n_core² − n_clad²))``."""
        return min(1.0, math.sqrt(self.n_core**2 - self.n_clad**2))

    @property
    def open_face_pitch_mm(self) -> float:
        """Face pitch of an *open face*: the routing pitch ``2 (channel + wall + margin)``, mm.

        A key lattice at this pitch (or coarser) is routed without fanning out: every line
        already has a free lane beside it. The cores then cover less of the face (fill factor
        ``π/4 (d/s)²`` on a square lattice), which costs light before it enters a fiber.
        """
        return 2.0 * (self.min_pitch_mm + self.route_margin_mm)

    @property
    def tan_tilt(self) -> float:
        """``tan(max_tilt_deg)``."""
        return math.tan(math.radians(self.max_tilt_deg))

    @property
    def end_length_mm(self) -> float:
        """Straight length at each face, mm."""
        return self.end_straight_mm if self.end_straight_mm else 3.0 * self.core_diameter_mm

    def polygon_sides(self) -> int:
        """Sides of the tube cross-section: enough for the chord tolerance, at least the minimum.

        A regular n-gon with vertices on the radius ``r`` deviates from the circle by the
        sagitta ``r (1 − cos(π/n))``.
        """
        r = self.channel_diameter_mm / 2.0
        ratio = max(-1.0, min(1.0, 1.0 - self.chord_tolerance_mm / r))
        n = math.ceil(math.pi / math.acos(ratio)) if ratio < 1.0 else self.min_polygon_sides
        n = max(n, self.min_polygon_sides)
        # sagitta must be strictly below the tolerance
        while r * (1.0 - math.cos(math.pi / n)) >= self.chord_tolerance_mm:
            n += 1
        return n


PRESETS: dict[str, dict[str, Any]] = {
    # Clear resin cores (0.6 mm) in a low-index (fluorinated) resin matrix, NA ≈ 0.62;
    # limits of models.md (Fabrication). With a weaker index step (n_clad ≳ 1.47) the bend-loss
    # criterion strips every ray at the 10 mm bends, so the matrix index matters.
    "resin": {
        "name": "resin",
        "core_diameter_mm": 0.6,
        "channel_clearance_mm": 0.0,
        "min_wall_mm": 0.4,
        "min_bend_radius_mm": 10.0,
        "max_tilt_deg": 30.0,
        "attenuation_db_per_cm": 0.5,
        "n_core": 1.54,
        "n_clad": 1.41,
        "min_feature_mm": 0.3,
        "housing_margin_mm": 2.0,
    },
    # FDM scaffold with channels for 0.5 mm PMMA fiber: channel = fiber + 0.3 mm, wall 0.8 mm.
    "fdm": {
        "name": "fdm",
        "core_diameter_mm": 0.5,
        "channel_clearance_mm": 0.3,
        "min_wall_mm": 0.8,
        "min_bend_radius_mm": 15.0,
        "max_tilt_deg": 30.0,
        "attenuation_db_per_cm": 0.0015,
        "n_core": 1.49,
        "n_clad": 1.41,
        "min_feature_mm": 0.4,
        "housing_margin_mm": 3.0,
    },
}


@dataclass(frozen=True)
class FaceGeometry:
    """Where the fibers sit on the printed faces.

    Attributes
    ----------
    lattice : str
        ``"square"`` or ``"hexagonal"``.
    rows, cols : int
        Lattice size.
    pitch_mm : float
        Centre distance of neighbouring sites on the printed faces, mm.
    sites_mm : (rows * cols, 2) float
        Site centres in mm, x right, y down, from the face centre (the key's convention,
        seen from the input side looking along +z); both faces use the same sites.
    """

    lattice: Literal["square", "hexagonal"]
    rows: int
    cols: int
    pitch_mm: float
    sites_mm: np.ndarray


def face_geometry(
    lattice: Literal["square", "hexagonal"],
    rows: int,
    cols: int,
    lattice_pitch_um: float,
    process: ProcessConfig,
) -> FaceGeometry:
    """Face pitch and site centres for a key lattice printed with ``process``.

    The face pitch is the key's lattice pitch. It must leave room for the channel plus the
    wall; otherwise the process cannot print this lattice and ``ValueError`` is raised.
    """
    pitch_mm = float(lattice_pitch_um) / 1000.0
    need = process.min_pitch_mm
    if pitch_mm < need - 1e-9:
        raise ValueError(
            f"process {process.name!r} cannot fit the key's lattice: pitch_um is "
            f"{lattice_pitch_um:g} µm but channel {process.channel_diameter_mm:g} mm + wall "
            f"{process.min_wall_mm:g} mm needs at least {need * 1000:g} µm"
        )
    sites = lat.site_centers_um(lattice, rows, cols, lattice_pitch_um) / 1000.0
    return FaceGeometry(lattice, rows, cols, pitch_mm, sites)
