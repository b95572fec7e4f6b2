"""Shared fixtures for the camera tests: a small, fast camera."""

from __future__ import annotations

import numpy as np
import pytest

from sim.config import CameraConfig

SMALL = {
    "exposure": 0.01,
    "samples_per_pitch": 4.0,
    "scene": {"shape_px": [32, 32], "radiance_w_m2_sr": 10.0},
    "lens": {"focal_length_mm": 80.0, "f_number": 2.8, "wavelength_nm": 525.0},
    "faceplate": {
        "rows": 8,
        "cols": 8,
        "block_size": 4,
        "transmission_mean": 0.05,
        "bias_photons_per_s": 3e8,
        "crosstalk_in": 0.02,
        "crosstalk_out": 0.02,
        "seed": 3,
    },
    # the pipeline tests check photometry against the recipe's transmission; the printed
    # transmission has its own tests (test_printed_camera.py)
    "transmission": {"source": "assumed"},
    "coupling": {
        "magnification": 0.021682,
        "blur_um": 2.0,
        "relay_f_number": 1.4,
        "relay_transmission": 0.9,
    },
    "sensor": {"preset": "imx174", "width_px": 32, "height_px": 32},
}


def small_config(**changes) -> CameraConfig:
    """The small test camera (8 x 8 fibers, 32 x 32 px) with top-level ``changes``."""
    return CameraConfig.model_validate({**SMALL, **changes})


@pytest.fixture
def small() -> CameraConfig:
    return small_config()


@pytest.fixture
def make_small():
    """``make_small(**changes)`` -> the small camera with top-level ``changes``."""
    return small_config


@pytest.fixture
def smooth_scene() -> np.ndarray:
    """A smooth 48 x 48 linear scene in [0.1, 0.9] (rows: top to bottom)."""
    y, x = np.mgrid[0:48, 0:48] / 47.0
    return 0.1 + 0.8 * (0.5 + 0.5 * np.sin(2.5 * x + 1.0) * np.cos(1.7 * y))
