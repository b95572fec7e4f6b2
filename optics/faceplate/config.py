"""Geometry of a fiber faceplate and the recipe of its key."""

from __future__ import annotations

import math
from typing import Any, ClassVar, Literal

import numpy as np
from pydantic import Field, model_validator

from keycam.config import ConfigModel
from optics.faceplate import lattice as _lat

__all__ = ["FaceplateConfig"]


class FaceplateConfig(ConfigModel):
    """Geometry of a fiber faceplate and the recipe of its key.

    The defaults are a 64 × 64 square lattice at 1 mm pitch with 0.6 mm cores and an 8 × 8
    block key with block permutation (the bundled camera, ``sim/data/default_camera.toml``,
    sets its own 16 × 16 face).
    """

    #: Added after the first key files, which were all drawn uniformly.
    ADDED_LATER: ClassVar[dict[str, Any]] = {"shuffle": "uniform"}

    lattice: Literal["square", "hexagonal"] = Field(
        "square", description="Lattice kind: 'square' or 'hexagonal' (odd rows shifted by pitch/2)."
    )
    rows: int = Field(64, ge=1, le=8192, description="Number of fiber rows (sites).")
    cols: int = Field(64, ge=1, le=8192, description="Number of fiber columns (sites).")
    pitch_um: float = Field(1000.0, gt=0, description="Centre-to-centre fiber pitch, µm.")
    core_diameter_um: float = Field(
        600.0,
        gt=0,
        description="Fiber core diameter, µm (must be smaller than pitch_um). In a camera "
        "whose faceplate is printed ([transmission] source = 'printed'), the process's core.",
    )
    numerical_aperture: float = Field(
        0.5,
        gt=0,
        le=2.0,
        description="Fiber numerical aperture sqrt(n_core² − n_clad²), unitless. In a camera "
        "whose faceplate is printed, the process's (resin: 0.619).",
    )
    block_size: int = Field(
        8,
        ge=1,
        description="Key block size b, fibers: routing permutes within b×b blocks "
        "(1 = coherent faceplate, >= lattice size = global permutation).",
    )
    permute_blocks: bool = Field(
        True,
        description="Also permute whole blocks across the lattice, each block travelling as a "
        "sub-bundle (ignored for block_size 1, which stays coherent).",
    )
    shuffle: Literal["uniform", "rows_then_columns"] = Field(
        "uniform",
        description="How the key permutes: 'uniform' draws every permutation inside a block "
        "(and of the blocks) with equal probability; 'rows_then_columns' moves every fiber "
        "along its row, then along its column (inside its block, and the blocks on the grid "
        "of blocks), each line shuffled so that no three fibers reverse their order: every "
        "site still reaches every other, and the printed bundle is much shorter.",
    )
    transmission_mean: float = Field(
        1.0,
        gt=0,
        le=1.0,
        description="Mean fiber transmission, fraction (attenuation, Fresnel losses); "
        "fabrication can write back measured values.",
    )
    transmission_rms: float = Field(
        0.05, ge=0, le=0.5, description="RMS fabrication variation of transmission, fraction."
    )
    gain_key_rms: float = Field(
        0.0, ge=0, le=0.5, description="RMS of a deliberate per-fiber gain key, fraction."
    )
    bias_photons_per_s: float = Field(
        0.0,
        ge=0,
        description="Mean per-fiber stray-light offset at the output face, photons/s "
        "(each fiber's offset is uniform in [0, 2 × mean]).",
    )
    crosstalk_in: float = Field(
        0.0, ge=0, lt=0.5, description="Nearest-neighbour coupling at the input face, fraction."
    )
    crosstalk_out: float = Field(
        0.0, ge=0, lt=0.5, description="Nearest-neighbour coupling at the output face, fraction."
    )
    dead_fraction: float = Field(0.0, ge=0, le=0.5, description="Fraction of dead fibers.")
    seed: int = Field(
        0, ge=0, description="Key seed (keep secret; the key is a deterministic function of it)."
    )

    @model_validator(mode="after")
    def _core_fits(self) -> FaceplateConfig:
        if self.core_diameter_um >= self.pitch_um:
            raise ValueError(
                f"core_diameter_um ({self.core_diameter_um} µm) must be smaller than "
                f"pitch_um ({self.pitch_um} µm)"
            )
        if self.shuffle == "rows_then_columns":
            self._check_rows_then_columns()
        return self

    def _check_rows_then_columns(self) -> None:
        b, rows, cols = self.block_size, self.rows, self.cols
        longest = _lat.MAX_TWO_LANE_LINE
        if max(min(b, rows), min(b, cols)) > longest:
            raise ValueError(
                f"shuffle 'rows_then_columns' shuffles lines of at most {longest} fibers: "
                f"block_size ({b}) must be <= {longest} (or use shuffle = 'uniform')"
            )
        if self.permute_blocks and 1 < b < max(rows, cols):
            if rows % b or cols % b:
                raise ValueError(
                    f"shuffle 'rows_then_columns' with permute_blocks needs block_size ({b}) "
                    f"to divide rows ({rows}) and cols ({cols}) (or use shuffle = 'uniform')"
                )
            if max(rows // b, cols // b) > longest:
                raise ValueError(
                    f"shuffle 'rows_then_columns' with permute_blocks shuffles at most "
                    f"{longest} blocks per line: {rows // b} x {cols // b} blocks is too many "
                    f"(use a larger block_size, or shuffle = 'uniform')"
                )

    @property
    def n_fibers(self) -> int:
        """Number of fibers (= sites), ``rows × cols``."""
        return self.rows * self.cols

    @property
    def fill_factor(self) -> float:
        """Core area fraction of the face (see :func:`optics.faceplate.lattice.fill_factor`)."""
        return _lat.fill_factor(self.lattice, self.pitch_um, self.core_diameter_um)

    @property
    def acceptance_half_angle_deg(self) -> float:
        """Acceptance half-angle ``asin(min(NA, 1))`` of the fibers, degrees."""
        return math.degrees(math.asin(min(self.numerical_aperture, 1.0)))

    def site_centers_um(self) -> np.ndarray:
        """``(n, 2)`` site centres in µm, x right, y down, from the face centre."""
        return _lat.site_centers_um(self.lattice, self.rows, self.cols, self.pitch_um)
