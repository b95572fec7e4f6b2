"""sim.budget: the light budget against closed forms worked out by hand.

Reference numbers for the bundled default camera (sim/data/default_camera.toml): scene
radiance L = 10 W m⁻² sr⁻¹, lens T = 0.9 at f/2.8 (object at infinity, N_w = N), λ = 525 nm;
1 mm square lattice with 0.6 mm cores, NA 0.5; relay m = 0.021682 at f/1.4 with T_r = 0.9;
5.86 µm pixels, QE 0.77.
"""

from __future__ import annotations

import math

import numpy as np
import pytest

from sim.budget import light_budget
from sim.camera import Camera
from sim.config import CameraConfig

H, C = 6.62607015e-34, 299_792_458.0


@pytest.fixture(scope="module")
def camera() -> Camera:
    return Camera.default()


@pytest.fixture(scope="module")
def budget(camera):
    return light_budget(camera)


def test_image_irradiance_is_pi_l_t_over_1_plus_4n2(budget):
    # E = π L T / (1 + 4 N²) = π · 10 · 0.9 / (1 + 4 · 2.8²) = 0.87374 W m⁻²
    assert budget.irradiance_w_m2 == pytest.approx(math.pi * 10 * 0.9 / (1 + 4 * 2.8**2))
    assert budget.irradiance_w_m2 == pytest.approx(0.87374, rel=1e-4)


def test_photons_on_a_cell_and_into_a_core(budget):
    e = math.pi * 10 * 0.9 / (1 + 4 * 2.8**2)
    per_m2 = e * 525e-9 / (H * C)  # photons s⁻¹ m⁻²
    cell = per_m2 * (1e-3) ** 2  # 1 mm square cell
    core = per_m2 * math.pi * (0.3e-3) ** 2  # 0.6 mm core
    assert budget["lens"].closed_form == pytest.approx(cell, rel=1e-9)
    assert budget["fill factor"].closed_form == pytest.approx(core, rel=1e-9)
    assert budget["fill factor"].factor == pytest.approx(math.pi * 0.6**2 / 4)
    # the camera's own pipeline delivers the same light (sampled on-axis; cos⁴ ≈ 1 there,
    # and the exact disk-square areas of the sampling stage)
    # (the fiber nearest the axis of the 16 x 16 face sits 0.71 mm off it, behind a 20 mm
    # lens: cos⁴ = 1 − 2 (0.71/20)² ≈ 0.9975)
    assert budget["lens"].pipeline == pytest.approx(cell, rel=4e-3)
    assert budget["fill factor"].pipeline == pytest.approx(core, rel=4e-3)


def test_relay_collection_is_the_relay_cone_over_the_fiber_cone(budget):
    m, n_r = 0.021682, 1.4
    na_r = m / (2 * n_r * (1 + m))
    na_fiber = (1.54**2 - 1.41**2) ** 0.5  # the printed resin fiber, 0.619
    eta = 0.9 * (na_r / na_fiber) ** 2
    assert budget["relay"].factor == pytest.approx(eta, rel=1e-9)
    assert eta == pytest.approx(1.35e-4, rel=0.01)
    # all of the face's image lands on the sensor: the pipeline loses the same fraction
    assert budget["relay"].pipeline / budget["fiber"].pipeline == pytest.approx(eta, rel=1e-3)


def test_fiber_stage_is_the_transmission_at_the_axis(camera, budget):
    """The budget is taken at the axis: the four fibers around it on the 16 x 16 face."""
    key = camera.key
    rows, cols = camera.config.faceplate.rows, camera.config.faceplate.cols
    centre = [r * cols + c for r in (rows // 2 - 1, rows // 2) for c in (cols // 2 - 1, cols // 2)]
    tau = float(np.mean(np.where(key.dead, 0.0, key.transmission)[centre]))
    assert budget["fiber"].factor == pytest.approx(tau)
    # behind the default's nearly telecentric lens no bend strips light: every fiber passes
    # what attenuation over its path and Fresnel loss at two faces leave, so the axis fibers
    # are within a few percent of the mean (they differ only in path length)
    assert tau == pytest.approx(float(np.mean(key.transmission)), rel=0.06)
    # crosstalk conserves light: the pipeline agrees up to what input crosstalk (2 %) moves
    # from these fibers into their neighbours
    assert budget["fiber"].pipeline / budget["fill factor"].pipeline == pytest.approx(tau, rel=0.01)


def test_electrons_per_pixel(budget):
    px_per_cell = (1000 * 0.021682 / 5.86) ** 2  # 13.69 pixels per 1 mm cell
    assert budget.pixels_per_fiber == pytest.approx(px_per_cell)
    rate = budget["QE"].closed_form
    assert rate == pytest.approx(budget["relay"].closed_form * 0.77)
    assert budget["pixel"].closed_form == pytest.approx(rate * budget.exposure_s / px_per_cell)
    for stage in budget.stages:
        assert stage.pipeline == pytest.approx(stage.closed_form, rel=0.01), stage.name
    # auto exposure puts the bright end at 80 % of saturation: the mean sits below it
    assert 0.05 * budget.saturation_e < budget["pixel"].pipeline < 0.8 * budget.saturation_e


def test_scene_level_and_exposure_scale_linearly(camera, budget):
    half = light_budget(camera, scene=np.full((10, 10), 0.5), exposure_s=budget.exposure_s)
    assert half.radiance_w_m2_sr == pytest.approx(5.0)
    assert half["pixel"].closed_form == pytest.approx(budget["pixel"].closed_form / 2)
    double = light_budget(camera, exposure_s=2 * budget.exposure_s)
    assert double["pixel"].pipeline == pytest.approx(2 * budget["pixel"].pipeline)


def test_hexagonal_cell_area(camera):
    cfg = CameraConfig.default()
    hexa = cfg.model_copy(
        update={"faceplate": cfg.faceplate.model_copy(update={"lattice": "hexagonal"})}
    )
    b = light_budget(Camera(hexa), exposure_s=0.01)
    assert b["fill factor"].factor == pytest.approx(math.pi / (2 * math.sqrt(3)) * 0.36)


def test_bad_input_is_refused(camera):
    with pytest.raises(ValueError, match="scene"):
        light_budget(camera, scene=1.5)
    with pytest.raises(ValueError, match="exposure_s"):
        light_budget(camera, exposure_s=0.0)
