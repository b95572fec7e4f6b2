"""Estimators of the EMVA 1288 standard (Release 4.0, 2021), written for keycam.

Pure functions on frames and on per-step statistics; nothing here knows about the simulated
sensor, so the same code characterises measured frames. Conventions (models.md: Sensor):

- mean of a pair ``mu = (mu_0 + mu_1)/2``;
- temporal variance of a pair ``1/(2NM) sum (y_0 - y_1)^2 - (mu_0 - mu_1)^2 / 2``;
- spatial variance from a stack of ``L`` frames: the variance of the averaged frame minus the
  temporal variance divided by ``L``;
- system gain ``K``: slope of ``sigma_y^2 - sigma_y.dark^2`` versus ``mu_y - mu_y.dark``, and
  responsivity ``R``: slope of ``mu_y - mu_y.dark`` versus ``mu_p``, both fitted through the
  origin over the points up to 70 % of the saturation signal; ``QE = R/K``;
- saturation: the step with the largest temporal variance;
- temporal dark noise from the dark variance extrapolated to zero exposure time,
  ``sigma_d = sqrt(sigma_y.dark^2 - 1/12)/K`` (if ``sigma_y.dark^2 < 0.24 DN^2`` the value
  0.24 DN^2 is used and ``sigma_d`` is only an upper bound);
- DSNU ``= s_y.dark / K`` (e-), PRNU ``= sqrt(s_y.50^2 - s_y.dark^2)/(mu_y.50 - mu_y.dark)``;
- ``SNR_max = sqrt(mu_e.sat)``; absolute sensitivity threshold where SNR = 1,
  ``mu_e.min = 1/2 + sqrt(1/4 + sigma_y.dark^2/K^2)``; dynamic range
  ``DR = mu_p.sat / mu_p.min``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np
from numpy.typing import ArrayLike, NDArray

__all__ = [
    "QUANTISATION_VARIANCE_DN2",
    "EMVAResult",
    "MeasurementSeries",
    "analyse",
    "fit_line",
    "fit_through_origin",
    "pair_mean",
    "pair_temporal_variance",
    "saturation_index",
    "sensitivity_fit_range",
    "stack_spatial_variance",
    "stack_temporal_variance",
]

#: Variance of uniform quantisation noise, 1/12 DN^2.
QUANTISATION_VARIANCE_DN2 = 1.0 / 12.0
#: Lower limit of the dark variance used for sigma_d (EMVA 1288): below it the ADC dominates.
_MIN_DARK_VARIANCE_DN2 = 0.24
#: The sensitivity fits use the points up to this fraction of the saturation signal.
SENSITIVITY_FIT_FRACTION = 0.7


def _frames(y: ArrayLike, name: str, min_ndim: int = 2) -> NDArray[np.float64]:
    arr = np.asarray(y, dtype=np.float64)
    if arr.ndim < min_ndim or arr.shape[-1] < 1 or arr.shape[-2] < 1:
        raise ValueError(f"{name} must have shape (..., H, W) with H, W >= 1, got {arr.shape}")
    return arr


def pair_mean(y0: ArrayLike, y1: ArrayLike) -> NDArray[np.float64]:
    """Mean signal of a frame pair, ``(mu_0 + mu_1)/2``.

    Parameters
    ----------
    y0, y1 : (..., H, W) array_like
        The two frames of each pair, in DN.

    Returns
    -------
    (...) float64
        Mean in DN, one value per pair.
    """
    a, b = _frames(y0, "y0"), _frames(y1, "y1")
    if a.shape != b.shape:
        raise ValueError(f"y0 and y1 must have the same shape, got {a.shape} and {b.shape}")
    return 0.5 * (a.mean(axis=(-2, -1)) + b.mean(axis=(-2, -1)))


def pair_temporal_variance(y0: ArrayLike, y1: ArrayLike) -> NDArray[np.float64]:
    """Temporal variance from a frame pair (EMVA 1288).

    ``sigma_y^2 = 1/(2NM) sum (y0 - y1)^2 - (mu_0 - mu_1)^2 / 2``: the difference removes
    every fixed pattern; the second term removes a change of the mean between the frames.

    Parameters
    ----------
    y0, y1 : (..., H, W) array_like
        The two frames of each pair, in DN.

    Returns
    -------
    (...) float64
        Temporal variance in DN^2, one value per pair.
    """
    a, b = _frames(y0, "y0"), _frames(y1, "y1")
    if a.shape != b.shape:
        raise ValueError(f"y0 and y1 must have the same shape, got {a.shape} and {b.shape}")
    d = a - b
    dmu = d.mean(axis=(-2, -1))
    return 0.5 * np.mean(d * d, axis=(-2, -1)) - 0.5 * dmu * dmu


def _stack(stack: ArrayLike) -> np.ndarray:
    s = np.asarray(stack)
    if s.ndim != 3 or s.shape[0] < 2 or s.dtype.kind not in "uif":
        raise ValueError(
            f"stack must be a real (L, H, W) array with L >= 2, got {s.dtype} {s.shape}"
        )
    return s


def _stack_mean_and_temporal_variance(s: np.ndarray) -> tuple[NDArray[np.float64], float]:
    """Mean frame and pixel-averaged temporal variance, one float64 frame at a time."""
    avg = s.mean(axis=0, dtype=np.float64)
    acc = np.zeros(s.shape[1:], dtype=np.float64)
    for frame in s:
        d = frame.astype(np.float64) - avg
        acc += d * d
    return avg, float(acc.mean() / (s.shape[0] - 1))


def stack_temporal_variance(stack: ArrayLike) -> float:
    """Temporal variance of a stack of ``L`` frames, averaged over pixels (DN^2).

    Parameters
    ----------
    stack : (L, H, W) array_like
        ``L >= 2`` frames of the same scene, in DN.
    """
    s = _stack(stack)
    return _stack_mean_and_temporal_variance(s)[1]


def stack_spatial_variance(stack: ArrayLike) -> float:
    """Spatial variance of a stack with the temporal part removed (DN^2).

    ``s_y^2 = var(<y>) - sigma_y.stack^2 / L`` where ``<y>`` is the frame averaged over the
    ``L`` frames (variance over pixels, ``ddof = 1``) and ``sigma_y.stack^2`` is
    :func:`stack_temporal_variance`.

    Parameters
    ----------
    stack : (L, H, W) array_like
        ``L >= 2`` frames of the same scene, in DN.
    """
    s = _stack(stack)
    if s.shape[1] * s.shape[2] < 2:
        raise ValueError(f"stack must have at least 2 pixels per frame, got {s.shape}")
    avg, temporal = _stack_mean_and_temporal_variance(s)
    return float(np.var(avg, ddof=1) - temporal / s.shape[0])


def fit_through_origin(x: ArrayLike, y: ArrayLike) -> float:
    """Least-squares slope of ``y = a x`` (no offset)."""
    xa, ya = np.asarray(x, dtype=np.float64), np.asarray(y, dtype=np.float64)
    sxx = float(np.dot(xa, xa))
    if xa.shape != ya.shape or xa.ndim != 1 or sxx <= 0:
        raise ValueError("fit needs two 1-D arrays of equal length with some non-zero x")
    return float(np.dot(xa, ya)) / sxx


def fit_line(x: ArrayLike, y: ArrayLike) -> tuple[float, float]:
    """Least-squares ``(slope, intercept)`` of ``y = a x + b``."""
    xa, ya = np.asarray(x, dtype=np.float64), np.asarray(y, dtype=np.float64)
    if xa.shape != ya.shape or xa.ndim != 1 or xa.size < 2 or np.ptp(xa) <= 0:
        raise ValueError("line fit needs two 1-D arrays of equal length with distinct x")
    xm, ym = xa.mean(), ya.mean()
    slope = float(np.dot(xa - xm, ya - ym) / np.dot(xa - xm, xa - xm))
    return slope, float(ym - slope * xm)


def saturation_index(var_y: ArrayLike) -> int:
    """Index of the saturation point: the step of largest temporal variance."""
    v = np.asarray(var_y, dtype=np.float64)
    if v.ndim != 1 or v.size == 0:
        raise ValueError("var_y must be a non-empty 1-D array")
    return int(np.argmax(v))


def sensitivity_fit_range(signal_dn: ArrayLike, sat_index: int) -> NDArray[np.intp]:
    """Indices used by the K and R fits: steps up to saturation whose dark-corrected signal
    ``mu_y - mu_y.dark`` is at most 70 % of its value at saturation."""
    s = np.asarray(signal_dn, dtype=np.float64)
    limit = SENSITIVITY_FIT_FRACTION * s[sat_index]
    idx = np.flatnonzero(s[: sat_index + 1] <= limit)
    if idx.size < 2:
        raise ValueError(
            f"only {idx.size} step(s) below 70 % of saturation; the series needs more steps "
            "between dark and saturation"
        )
    return idx


@dataclass(frozen=True)
class MeasurementSeries:
    """Frames statistics of an EMVA 1288 photon-transfer series plus the two stacks.

    Attributes
    ----------
    photons : (S,) float64
        Mean photons per pixel ``mu_p`` at each step.
    exposure_s : (S,) float64
        Exposure time of each step (s); the dark pairs were taken at the same times.
    mu_y, var_y : (S,) float64
        Pair mean (DN) and pair temporal variance (DN^2) of the illuminated pairs.
    mu_dark, var_dark : (S,) float64
        The same for the dark pairs.
    stack_bright : (L, H, W)
        ``L`` frames at about 50 % of saturation, in DN.
    stack_dark : (L, H, W)
        ``L`` dark frames at the same exposure time, in DN.
    stack_photons : float
        Mean photons per pixel of the bright stack.
    """

    photons: NDArray[np.float64]
    exposure_s: NDArray[np.float64]
    mu_y: NDArray[np.float64]
    var_y: NDArray[np.float64]
    mu_dark: NDArray[np.float64]
    var_dark: NDArray[np.float64]
    stack_bright: np.ndarray
    stack_dark: np.ndarray
    stack_photons: float


@dataclass(frozen=True)
class EMVAResult:
    """EMVA 1288 figures recovered from a :class:`MeasurementSeries` (units in names)."""

    system_gain_dn_per_e: float
    quantum_efficiency: float
    responsivity_dn_per_photon: float
    read_noise_e: float
    read_noise_is_upper_bound: bool
    dark_mean_dn: float
    dark_variance_dn2: float
    dark_current_e_per_s: float
    dsnu_e: float
    prnu_fraction: float
    saturation_e: float
    saturation_photons: float
    snr_max: float
    sensitivity_threshold_photons: float
    dynamic_range: float
    sat_index: int
    fit_indices: NDArray[np.intp] = field(repr=False)

    @property
    def snr_max_db(self) -> float:
        """``20 log10(SNR_max)`` in dB."""
        return 20.0 * math.log10(self.snr_max)

    @property
    def dynamic_range_db(self) -> float:
        """``20 log10(DR)`` in dB."""
        return 20.0 * math.log10(self.dynamic_range)


def sensitivity_threshold_e(dark_variance_dn2: float, gain_dn_per_e: float) -> float:
    """Electrons at which SNR = 1: ``1/2 + sqrt(1/4 + sigma_y.dark^2 / K^2)``."""
    return 0.5 + math.sqrt(0.25 + dark_variance_dn2 / gain_dn_per_e**2)


def analyse(series: MeasurementSeries) -> EMVAResult:
    """Apply the EMVA 1288 estimators to a measurement series.

    Parameters
    ----------
    series : MeasurementSeries
        Per-step pair statistics and the dark / 50 % stacks.

    Returns
    -------
    EMVAResult
    """
    s = series
    signal = s.mu_y - s.mu_dark
    sat = saturation_index(s.var_y)
    idx = sensitivity_fit_range(signal, sat)
    k = fit_through_origin(signal[idx], (s.var_y - s.var_dark)[idx])
    if not k > 0:
        raise ValueError(f"photon-transfer slope K = {k:g} DN/e- is not positive")
    resp = fit_through_origin(s.photons[idx], signal[idx])
    qe = resp / k

    if np.ptp(s.exposure_s) > 0:
        dc_slope, dark_mean0 = fit_line(s.exposure_s, s.mu_dark)
        _, dark_var0 = fit_line(s.exposure_s, s.var_dark)
    else:
        dc_slope, dark_mean0, dark_var0 = math.nan, float(s.mu_dark[0]), float(s.var_dark[0])
    upper = dark_var0 < _MIN_DARK_VARIANCE_DN2
    dark_var_used = max(dark_var0, _MIN_DARK_VARIANCE_DN2)
    read_noise = math.sqrt(dark_var_used - QUANTISATION_VARIANCE_DN2) / k

    s2_dark = stack_spatial_variance(s.stack_dark)
    s2_bright = stack_spatial_variance(s.stack_bright)
    dsnu = math.sqrt(max(s2_dark, 0.0)) / k
    mu50 = float(np.mean(s.stack_bright) - np.mean(s.stack_dark))
    prnu = math.sqrt(max(s2_bright - s2_dark, 0.0)) / mu50 if mu50 > 0 else math.nan

    sat_photons = float(s.photons[sat])
    sat_e = qe * sat_photons
    min_photons = sensitivity_threshold_e(dark_var_used, k) / qe
    return EMVAResult(
        system_gain_dn_per_e=k,
        quantum_efficiency=qe,
        responsivity_dn_per_photon=resp,
        read_noise_e=read_noise,
        read_noise_is_upper_bound=bool(upper),
        dark_mean_dn=float(dark_mean0),
        dark_variance_dn2=float(dark_var0),
        dark_current_e_per_s=float(dc_slope / k),
        dsnu_e=dsnu,
        prnu_fraction=prnu,
        saturation_e=sat_e,
        saturation_photons=sat_photons,
        snr_max=math.sqrt(sat_e),
        sensitivity_threshold_photons=min_photons,
        dynamic_range=sat_photons / min_photons,
        sat_index=sat,
        fit_indices=idx,
    )
