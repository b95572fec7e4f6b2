"""EMVA 1288 measurement series on a simulated sensor, and the figures it should recover.

The series (EMVA 1288 Release 4.0, 2021): a fixed irradiance, exposure times in ``steps``
equal increments up to ``overshoot`` times the saturation exposure; at each step two
illuminated and two dark frames; ``L`` dark frames and ``L`` frames at 50 % of saturation,
both at the same exposure time, for the spatial non-uniformities.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable
from typing import Any

import numpy as np

from optics.emva.estimators import (
    QUANTISATION_VARIANCE_DN2,
    EMVAResult,
    MeasurementSeries,
    analyse,
    pair_mean,
    pair_temporal_variance,
    sensitivity_threshold_e,
)
from optics.sensor import Sensor

__all__ = ["ROWS", "characterise", "configured_values", "measured_values", "simulate_series"]


def simulate_series(
    sensor: Sensor,
    *,
    rng: np.random.Generator,
    steps: int = 50,
    stack_frames: int = 16,
    overshoot: float = 1.15,
    exposure_max_s: float = 0.5,
    wrap: Callable[[Iterable[int]], Iterable[int]] | None = None,
) -> MeasurementSeries:
    """Take the EMVA 1288 measurement series with ``sensor``.

    Parameters
    ----------
    sensor : Sensor
        The device under test.
    rng : numpy.random.Generator
        Temporal noise of all frames.
    steps : int
        Number of exposure steps (>= 50 per the standard; >= 10 accepted).
    stack_frames : int
        ``L``, frames in the dark and 50 % stacks (>= 16 per the standard; >= 2 accepted).
    overshoot : float
        Last step's photons relative to :attr:`Sensor.saturation_photons` (> 1: just past
        saturation).
    exposure_max_s : float
        Exposure time of the last step (s). Longer times make the dark current measurable.
    wrap : callable, optional
        Wraps the step iterator (e.g. a progress bar).

    Returns
    -------
    MeasurementSeries
    """
    if steps < 10:
        raise ValueError(f"steps must be >= 10 (the standard asks for >= 50), got {steps}")
    if stack_frames < 2:
        raise ValueError(
            f"stack_frames must be >= 2 (the standard asks for 16), got {stack_frames}"
        )
    if not (overshoot > 1 and math.isfinite(overshoot)):
        raise ValueError(f"overshoot must be > 1 (x saturation), got {overshoot}")
    if not (exposure_max_s > 0 and math.isfinite(exposure_max_s)):
        raise ValueError(f"exposure_max_s must be > 0 s, got {exposure_max_s} s")
    shape = sensor.shape
    photons_max = overshoot * sensor.saturation_photons
    fraction = np.arange(1, steps + 1) / steps
    exposure = exposure_max_s * fraction
    photons = photons_max * fraction
    zeros = np.zeros((2, *shape))
    mu_y, var_y, mu_d, var_d = (np.empty(steps) for _ in range(4))
    it: Iterable[int] = range(steps)
    if wrap is not None:
        it = wrap(it)
    for i in it:
        bright = sensor.expose(
            np.broadcast_to(photons[i], (2, *shape)), exposure_s=exposure[i], rng=rng
        )
        dark = sensor.expose(zeros, exposure_s=exposure[i], rng=rng)
        mu_y[i], var_y[i] = pair_mean(*bright), pair_temporal_variance(*bright)
        mu_d[i], var_d[i] = pair_mean(*dark), pair_temporal_variance(*dark)
    t50 = exposure_max_s * 0.5 / overshoot
    p50 = photons_max * 0.5 / overshoot
    # frame by frame, so a full-size sensor needs memory for one float frame at a time
    stack_bright = np.empty((stack_frames, *shape), dtype=np.uint16)
    stack_dark = np.empty_like(stack_bright)
    bright50, dark50 = np.full(shape, p50), zeros[0]
    for stack, photons_l in ((stack_bright, bright50), (stack_dark, dark50)):
        for frame in stack:
            frame[...] = sensor.expose(photons_l, exposure_s=t50, rng=rng)
    return MeasurementSeries(
        photons=photons,
        exposure_s=exposure,
        mu_y=mu_y,
        var_y=var_y,
        mu_dark=mu_d,
        var_dark=var_d,
        stack_bright=stack_bright,
        stack_dark=stack_dark,
        stack_photons=float(p50),
    )


def characterise(
    sensor: Sensor, *, rng: np.random.Generator, **series_kwargs: Any
) -> tuple[EMVAResult, MeasurementSeries]:
    """Simulate the series on ``sensor`` (see :func:`simulate_series`) and analyse it."""
    series = simulate_series(sensor, rng=rng, **series_kwargs)
    return analyse(series), series


# (key, label, unit, format)
ROWS = [
    ("system_gain_dn_per_e", "system gain K", "DN/e-", ".4f"),
    ("quantum_efficiency", "quantum efficiency", "", ".4f"),
    ("read_noise_e", "temporal dark noise sigma_d", "e-", ".3f"),
    ("dark_variance_dn2", "dark variance K^2 sd^2 + 1/12", "DN^2", ".4f"),
    ("dark_mean_dn", "dark mean (offset)", "DN", ".3f"),
    ("dark_current_e_per_s", "dark current", "e-/s", ".3g"),
    ("dsnu_e", "DSNU", "e-", ".3f"),
    ("prnu_fraction", "PRNU", "", ".5f"),
    ("saturation_e", "saturation capacity", "e-", ".0f"),
    ("snr_max", "SNR_max", "", ".1f"),
    ("snr_max_db", "SNR_max", "dB", ".2f"),
    ("dynamic_range", "dynamic range", "", ".0f"),
    ("dynamic_range_db", "dynamic range", "dB", ".2f"),
]


def configured_values(sensor: Sensor) -> dict[str, float]:
    """The figures the EMVA series should recover, from the sensor's configuration."""
    c = sensor.config
    k = c.system_gain_dn_per_e
    dark_var = k**2 * c.read_noise_e**2 + QUANTISATION_VARIANCE_DN2
    sat = sensor.saturation_e
    dr = sat / sensitivity_threshold_e(max(dark_var, 0.24), k)
    return {
        "system_gain_dn_per_e": k,
        "quantum_efficiency": c.quantum_efficiency,
        "read_noise_e": c.read_noise_e,
        "dark_variance_dn2": dark_var,
        "dark_mean_dn": c.black_level_dn,
        "dark_current_e_per_s": c.dark_current_e_per_s,
        "dsnu_e": c.dsnu_e,
        "prnu_fraction": c.prnu_fraction,
        "saturation_e": sat,
        "snr_max": math.sqrt(sat),
        "snr_max_db": 20 * math.log10(math.sqrt(sat)),
        "dynamic_range": dr,
        "dynamic_range_db": 20 * math.log10(dr),
    }


def measured_values(result: EMVAResult) -> dict[str, float]:
    """The recovered figures of :func:`configured_values`' keys."""
    return {key: float(getattr(result, key)) for key, *_ in ROWS}
