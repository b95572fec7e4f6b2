"""The light budget of a camera: from scene radiance to electrons per pixel, stage by stage.

For a uniform scene of radiance ``L`` (W m⁻² sr⁻¹) on the optical axis, light reaches a
pixel through these factors (models.md: Lens, Faceplate, Coupling, Sensor)::

    E    = π L T / (1 + 4 N_w²)                      image irradiance on the input face, W m⁻²
    Φ_c  = E · λ/(h c) · A_cell                      photons/s on one lattice cell
    Φ_in = Φ_c · F,     F = A_core / A_cell           into the fiber core (fill factor)
    Φ_out = Φ_in · τ                                  out of the fiber (its transmission)
    Φ_s  = Φ_out · η_relay                            onto the sensor (relay collection)
    n_e  = Φ_s · QE · t · p² / (A_cell m²)            electrons per pixel in an exposure t

with ``A_cell`` the area of one lattice cell (``s²`` square, ``(√3/2) s²`` hexagonal),
``A_core = π d²/4``, ``τ`` the key's mean transmission over the fibers at the axis (within
1.5 pitches; dead fibers count as 0),
``η_relay = CouplingConfig.efficiency(NA)``, ``p`` the pixel pitch and ``m`` the relay
magnification. :func:`light_budget` evaluates these closed forms from a camera's
configuration and key, and measures the same quantities on the camera's own pipeline
(:attr:`sim.camera.Camera.pipeline`, applied to the uniform scene) and sensor, so the two
can be compared and neither can drift from the code that makes frames.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from optics.lens.radiometry import photons_per_joule
from sim.camera import Camera

__all__ = ["BudgetStage", "LightBudget", "light_budget"]


@dataclass(frozen=True)
class BudgetStage:
    """One step of the light budget.

    Attributes
    ----------
    name : str
        Short name (``"lens"``, ``"fill factor"``, ...).
    what : str
        What the value is, in words.
    unit : str
        Unit of ``closed_form`` and ``pipeline``.
    factor : float
        Fraction of the previous stage's light that this stage passes (dimensionless; for
        the first stage, the lens factor ``π T / (1 + 4 N_w²)`` in sr).
    closed_form : float
        The value from the closed form, in ``unit``.
    pipeline : float
        The same quantity measured on the camera's pipeline, in ``unit``.
    """

    name: str
    what: str
    unit: str
    factor: float
    closed_form: float
    pipeline: float


@dataclass(frozen=True)
class LightBudget:
    """A camera's light budget for a uniform scene (see :func:`light_budget`).

    Attributes
    ----------
    radiance_w_m2_sr : float
        Scene radiance the budget starts from, W m⁻² sr⁻¹.
    irradiance_w_m2 : float
        Image irradiance on the input face on axis, ``E = π L T / (1 + 4 N_w²)``, W m⁻².
    wavelength_nm : float
        Wavelength of the photon counts, nm.
    exposure_s : float
        Exposure the electrons per pixel are given for, s.
    pixels_per_fiber : float
        Pixels covered by the image of one lattice cell on the sensor, ``A_cell m² / p²``.
    stages : tuple of BudgetStage
        ``lens`` (photons/s on one cell), ``fill factor`` (into the core), ``fiber``
        (out of the fiber), ``relay`` (onto the sensor), ``QE`` (electrons/s per fiber),
        ``pixel`` (electrons per pixel in the exposure).
    saturation_e : float
        The sensor's saturation capacity, e⁻ (for comparison with the last stage).
    """

    radiance_w_m2_sr: float
    irradiance_w_m2: float
    wavelength_nm: float
    exposure_s: float
    pixels_per_fiber: float
    stages: tuple[BudgetStage, ...]
    saturation_e: float

    def __getitem__(self, name: str) -> BudgetStage:
        for s in self.stages:
            if s.name == name:
                return s
        raise KeyError(f"no stage {name!r}; stages: {[s.name for s in self.stages]}")

    @property
    def overall_fraction(self) -> float:
        """Photo-electrons per photon landing on a lattice cell (fill × τ × η_relay × QE)."""
        return float(np.prod([s.factor for s in self.stages[1:5]]))

    def table(self) -> str:
        """The budget as a plain-text table (closed form next to the pipeline's value)."""
        rows = [f"{'stage':<13}{'factor':>11}{'closed form':>14}{'pipeline':>12}  unit"]
        for s in self.stages:
            rows.append(
                f"{s.name:<13}{s.factor:>11.3g}{s.closed_form:>14.4g}{s.pipeline:>12.4g}  {s.unit}"
            )
        return "\n".join(rows)


def _cell_area_um2(lattice: str, pitch_um: float) -> float:
    return pitch_um**2 if lattice == "square" else math.sqrt(3.0) / 2.0 * pitch_um**2


def light_budget(
    camera: Camera, scene: float | np.ndarray | None = None, *, exposure_s: float | None = None
) -> LightBudget:
    """Follow the light of a uniform scene through ``camera`` to electrons per pixel.

    Parameters
    ----------
    camera : sim.camera.Camera
        A monochrome camera (``colour = "mono"``).
    scene : float or (H, W) array of float, optional
        Linear scene value in [0, 1] (1.0 = ``config.scene.radiance_w_m2_sr``); an image
        stands for a uniform scene of its mean value. Default 1.0 (a white scene).
    exposure_s : float, optional
        Exposure for the electrons per pixel, s; default the camera's exposure for that
        uniform scene (``camera.exposure_for``).

    Returns
    -------
    LightBudget
        Closed-form values and the same quantities measured on ``camera.pipeline``: the
        lens stage at the central image-plane sample, the light into the cores as the mean
        of the fibers within 1.5 pitches of the axis, the fiber and relay factors as ratios
        of totals over the face, the QE as the sensor's mean gain in e⁻ per photon.

    Raises
    ------
    ValueError
        A colour camera, a scene value outside [0, 1] or a non-positive exposure.
    """
    cfg = camera.config
    if camera.n_channels != 1:
        raise ValueError(f"light_budget: colour = {cfg.colour!r}; only 'mono' cameras")
    level = 1.0 if scene is None else float(np.mean(np.asarray(scene, dtype=np.float64)))
    if not 0.0 <= level <= 1.0:
        raise ValueError(f"scene: mean linear value must be in [0, 1], got {level}")
    x = np.full(camera.scene_shape, level)
    t = camera.exposure_for(x) if exposure_s is None else float(exposure_s)
    if not t > 0:
        raise ValueError(f"exposure_s must be > 0 s, got {t} s")

    lens, fp, cp, sc = cfg.lens, cfg.faceplate, cfg.coupling, cfg.sensor
    radiance = cfg.scene.radiance_w_m2_sr * level
    wavelength_nm = lens.wavelengths_nm[0]
    lens_factor = math.pi * lens.transmission / (1.0 + 4.0 * lens.working_f_number**2)
    irradiance = radiance * lens_factor  # W m^-2
    photons_per_um2 = irradiance * photons_per_joule(wavelength_nm) * 1e-12  # photons/s/µm²
    a_cell = _cell_area_um2(fp.lattice, fp.pitch_um)
    a_core = math.pi * fp.core_diameter_um**2 / 4.0
    key = camera.key
    # the fibers at the axis (within 1.5 pitches), where the rest of the budget is taken: a
    # printed part's transmission varies across the face (length, bends behind the lens)
    xy = fp.site_centers_um()
    near = np.hypot(xy[:, 0], xy[:, 1]) <= 1.5 * fp.pitch_um
    tau = float(np.mean(np.where(key.dead, 0.0, key.transmission)[near]))
    eta = cp.efficiency(fp.numerical_aperture)
    qe = sc.quantum_efficiency
    px_per_cell = a_cell * cp.magnification**2 / sc.pixel_pitch_um**2

    # The same quantities on the camera's own pipeline (no stray light: matrices only).
    pipe = camera.pipeline
    v = x.ravel()
    on_samples = pipe["lens"].matrix @ v
    into_cores = pipe["sampling"].matrix @ on_samples
    out_sites = pipe["transfer"].matrix @ into_cores
    on_pixels = pipe["coupling"].matrix @ out_sites
    ny, nx = camera.sample_shape
    centre = on_samples.reshape(ny, nx)[(ny - 1) // 2 : ny // 2 + 1, (nx - 1) // 2 : nx // 2 + 1]
    p_lens = float(centre.mean()) / camera.sample_pitch_um**2 * a_cell
    p_in = float(into_cores[near].mean())
    # the light of the near fibers alone, through the keyed transfer (crosstalk conserves it)
    from_near = pipe["transfer"].matrix @ np.where(near, into_cores, 0.0)
    p_tau = float(from_near.sum() / into_cores[near].sum())
    p_eta = float(on_pixels.sum() / out_sites.sum())
    # electrons per photon as the sensor applies it (mean over the pixels: QE times PRNU)
    gain_dn, _ = camera.sensor.affine(t)
    p_qe = float(np.mean(gain_dn)) / sc.system_gain_dn_per_e

    c_lens = photons_per_um2 * a_cell
    c_in = c_lens * a_core / a_cell
    stages = (
        BudgetStage(
            "lens", "photons/s on one lattice cell of the input face", "photons/s",
            lens_factor, c_lens, p_lens,
        ),
        BudgetStage(
            "fill factor", "photons/s entering one fiber core", "photons/s",
            a_core / a_cell, c_in, p_in,
        ),
        BudgetStage(
            "fiber", "photons/s leaving one fiber (its transmission, at the axis)", "photons/s",
            tau, c_in * tau, p_in * p_tau,
        ),
        BudgetStage(
            "relay", "photons/s of one fiber reaching the sensor", "photons/s",
            eta, c_in * tau * eta, p_in * p_tau * p_eta,
        ),
        BudgetStage(
            "QE", "photo-electrons/s from one fiber's light", "e-/s",
            qe, c_in * tau * eta * qe, p_in * p_tau * p_eta * p_qe,
        ),
        BudgetStage(
            "pixel", "photo-electrons per pixel in the exposure", "e-",
            t / px_per_cell, c_in * tau * eta * qe * t / px_per_cell,
            p_in * p_tau * p_eta * p_qe * t / px_per_cell,
        ),
    )  # fmt: skip
    return LightBudget(
        radiance_w_m2_sr=radiance,
        irradiance_w_m2=irradiance,
        wavelength_nm=wavelength_nm,
        exposure_s=t,
        pixels_per_fiber=px_per_cell,
        stages=stages,
        saturation_e=camera.sensor.saturation_e,
    )
