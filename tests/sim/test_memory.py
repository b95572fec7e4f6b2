"""The camera memory estimate: computed from sizes alone, above what a real build allocates."""

from __future__ import annotations

import time
import tracemalloc

import numpy as np
import pytest

from keycam.limits import MemoryLimitError
from sim.camera import Camera
from sim.config import CameraConfig
from sim.memory import camera_memory, check_camera_memory, frames_memory

BASE = CameraConfig.default().model_dump()
# the camera's own operators (routing for the printed transmission is estimated separately,
# test_printed_routing_is_estimated)
BASE["transmission"] = {"source": "assumed"}


def _config(**changes) -> CameraConfig:
    d = {k: (dict(v) if isinstance(v, dict) else v) for k, v in BASE.items()}
    for key, value in changes.items():
        if "__" in key:
            table, field = key.split("__")
            d[table][field] = value
        else:
            d[key] = value
    return CameraConfig.model_validate(d)


def _measured_peak(config: CameraConfig) -> int:
    """Peak bytes (tracemalloc) of building the camera and taking and unscrambling a frame."""
    tracemalloc.start()
    try:
        camera = Camera(config)
        conventional = camera.conventional()
        grid = camera.prepare_scene(np.random.default_rng(0).random((100, 120, 3)))
        t = camera.exposure_for(grid)
        frame = camera.capture(grid, rng=np.random.default_rng(1), exposure_s=t)
        conventional.capture(grid, rng=np.random.default_rng(2), exposure_s=t)
        camera.unscramble(frame, exposure_s=t)
        return tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


@pytest.mark.parametrize(
    "changes",
    [
        {},
        {"faceplate__rows": 96, "faceplate__cols": 96, "faceplate__shuffle": "uniform"},
        {"scene__shape_px": [640, 640]},
        {"samples_per_pitch": 12.0},
        {"sensor__width_px": 256, "sensor__height_px": 256, "coupling__blur_um": 6.0},
        {"faceplate__lattice": "hexagonal", "lens__f_number": 16.0},
    ],
    ids=["default", "fibers", "scene", "samples", "sensor-blur", "hex-psf"],
)
def test_estimate_is_above_the_measured_peak(changes):
    config = _config(**changes)
    t0 = time.perf_counter()
    est = camera_memory(config)
    assert time.perf_counter() - t0 < 1.0  # sizes only: nothing proportional is built
    peak = _measured_peak(config)
    assert est["total"] >= peak, (est, peak)
    assert est["total"] <= 8 * peak + 64e6, (est, peak)  # an estimate, not a wild guess


def test_impossible_cameras_are_refused_in_milliseconds():
    for changes in (
        {"faceplate__rows": 8192, "faceplate__cols": 8192, "faceplate__shuffle": "uniform"},
        {"sensor__width_px": 65536, "sensor__height_px": 65536},
        {"coupling__blur_um": 1000.0, "sensor__width_px": 256, "sensor__height_px": 256},
        {"samples_per_pitch": 64.0, "scene__shape_px": [8192, 8192]},
    ):
        config = _config(**changes)
        t0 = time.perf_counter()
        with pytest.raises(MemoryLimitError, match="KEYCAM_MAX_MEMORY_MB"):
            Camera(config)
        assert time.perf_counter() - t0 < 2.0, changes


def test_the_budget_can_be_raised(monkeypatch):
    config = _config(sensor__width_px=1024, sensor__height_px=1024)
    with pytest.raises(MemoryLimitError, match="coupling"):
        check_camera_memory(config)
    monkeypatch.setenv("KEYCAM_MAX_MEMORY_MB", "4096")
    assert check_camera_memory(config)["total"] < 4096 << 20


def test_frames_memory_counts_the_stack():
    config = _config()
    h, w = config.sensor.height_px, config.sensor.width_px
    assert frames_memory(config, 10_000) > 10_000 * h * w * 2


def test_printed_routing_is_estimated():
    from fabrication.export import routing_memory

    assumed = camera_memory(_config())
    printed = camera_memory(_config(transmission__source="printed"))
    assert "printed" not in assumed
    assert printed["printed"] == routing_memory(16 * 16)
    assert printed["total"] >= assumed["total"]
