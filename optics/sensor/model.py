"""CMOS sensor and ADC after the EMVA 1288 linear camera model (Release 4.0, 2021).

Per pixel and per frame, in this order (models.md: Sensor):

1. mean photons ``mu_p`` during the exposure (the caller's ``photons`` array);
2. photo-electrons ``Poisson(eta * mu_p * PRNU_map)`` plus dark electrons
   ``Poisson(I_dark * t_exp)`` - drawn as **one** Poisson variate, since a sum of independent
   Poisson variables is Poisson with the summed mean;
3. clip at the full well;
4. ``+ DSNU_map + Normal(0, sigma_d)`` (fixed offset pattern and temporal read noise, e-);
5. ``* K`` (DN/e-) ``+ black level`` (DN);
6. round to the nearest integer (no floor, no dither);
7. clip to ``[0, 2**bit_depth - 1]`` and store as ``uint16``.

The fixed patterns (PRNU gain map, DSNU offset map) are drawn once from ``SensorConfig.seed``
and standardised so that their spatial mean and RMS equal the configured values exactly; a
device is therefore the same device across frames and runs. Temporal noise comes only from the
``rng`` passed to :meth:`Sensor.expose`.

Shot noise is exact Poisson wherever the mean electron count is below
:data:`EXACT_POISSON_BELOW_E` (1000 e-). Above it a normal variate with the same mean and
variance is used: there the Poisson skewness is ``1/sqrt(mean) <= 0.032`` and the excess
kurtosis ``<= 0.001``, far below what a photon-transfer or SNR measurement can resolve, and
it is several times faster than NumPy's Poisson sampler. Where full-well clipping cannot
matter (mean more than 8 sigma below the full well), shot and read noise are drawn together
as one normal variate (a sum of independent normals is normal). Arithmetic runs in float32,
whose 24-bit mantissa resolves 0.004 e- at 32 ke-, well below one DN. Large frames draw their
variates (:mod:`optics.sensor.sampling`) reproducibly for a given ``rng`` state.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np
from numpy.typing import ArrayLike, NDArray

from keycam.validation import positive
from optics.sensor.config import SensorConfig
from optics.sensor.sampling import poisson_f32, standard_normal_f32

__all__ = ["EXACT_POISSON_BELOW_E", "Sensor"]

#: Mean electron count below which shot noise is drawn from the exact Poisson distribution;
#: at and above it a moment-matched normal approximation is used (see the module docstring).
EXACT_POISSON_BELOW_E = 1000.0

#: Pixels whose mean is within this many standard deviations of the full well get the
#: two-step (shot noise, clip, then read noise) treatment in the normal-approximation region.
_FULL_WELL_GUARD_SIGMA = 8.0


def _standardised(rng: np.random.Generator, shape: tuple[int, int]) -> NDArray[np.float64]:
    """Normal field with spatial mean exactly 0 and RMS exactly 1 (0 if a single pixel)."""
    z = rng.standard_normal(shape)
    z -= z.mean()
    sd = z.std()
    if sd > 0:
        z /= sd
    return z


def _check_rng(rng: object) -> None:
    if not isinstance(rng, np.random.Generator):
        raise TypeError(f"rng must be a numpy.random.Generator, got {type(rng).__name__}")


def _check_threshold(value: object) -> float:
    """``exact_poisson_below_e`` as a float >= 0 (``ValueError`` otherwise)."""
    try:
        threshold = float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        threshold = math.nan
    if not threshold >= 0:
        raise ValueError(f"exact_poisson_below_e must be >= 0 electrons, got {value!r}")
    return threshold


class Sensor:
    """A CMOS sensor device: configuration plus its fixed-pattern maps.

    Parameters
    ----------
    config : SensorConfig
        Device parameters. The PRNU and DSNU maps are drawn here, once, from ``config.seed``
        (independent streams, so changing ``dsnu_e`` does not change the PRNU map).

    Attributes
    ----------
    config : SensorConfig
    prnu_map : (H, W) float64, read-only
        Per-pixel gain factors; spatial mean exactly 1, RMS deviation exactly
        ``config.prnu_fraction`` (values floored at 0).
    dsnu_map_e : (H, W) float64, read-only
        Per-pixel dark offsets in electrons; spatial mean exactly 0, RMS exactly
        ``config.dsnu_e``.
    """

    def __init__(self, config: SensorConfig) -> None:
        if not isinstance(config, SensorConfig):
            raise TypeError(f"config must be a SensorConfig, got {type(config).__name__}")
        # model_copy(update=...) skips validation: check again, naming any bad field
        SensorConfig.model_validate(config.model_dump())
        self.config = config
        shape = (config.height_px, config.width_px)
        prnu_rng, dsnu_rng = (
            np.random.default_rng(s) for s in np.random.SeedSequence(config.seed).spawn(2)
        )
        prnu = 1.0 + config.prnu_fraction * _standardised(prnu_rng, shape)
        np.maximum(prnu, 0.0, out=prnu)
        dsnu = config.dsnu_e * _standardised(dsnu_rng, shape)
        prnu.flags.writeable = False
        dsnu.flags.writeable = False
        self.prnu_map: NDArray[np.float64] = prnu
        self.dsnu_map_e: NDArray[np.float64] = dsnu
        k = config.system_gain_dn_per_e
        # float32 working copies for the fast path, flattened to (H*W,)
        self._gain_e32 = (config.quantum_efficiency * prnu).astype(np.float32).ravel()
        self._offset_dn32 = (config.black_level_dn + k * dsnu).astype(np.float32).ravel()

    def __repr__(self) -> str:
        c = self.config
        return f"Sensor({c.width_px}x{c.height_px} px, seed={c.seed})"

    # ----------------------------------------------------------------- derived figures
    @property
    def shape(self) -> tuple[int, int]:
        """Frame shape ``(H, W)`` in pixels."""
        return (self.config.height_px, self.config.width_px)

    @property
    def max_dn(self) -> int:
        """Largest ADC output value, ``2**bit_depth - 1`` DN."""
        return 2**self.config.bit_depth - 1

    @property
    def adc_limit_e(self) -> float:
        """Electrons that drive the mean signal to the ADC maximum: ``(max_dn - black)/K``."""
        c = self.config
        return (self.max_dn - c.black_level_dn) / c.system_gain_dn_per_e

    @property
    def saturation_e(self) -> float:
        """Saturation capacity in electrons: ``min(full well, ADC limit)`` (models.md: Sensor)."""
        return min(self.config.full_well_e, self.adc_limit_e)

    @property
    def saturation_photons(self) -> float:
        """Mean photons per pixel that reach :attr:`saturation_e` (ignoring PRNU and dark)."""
        return self.saturation_e / self.config.quantum_efficiency

    # ------------------------------------------------------------------- validation
    def _check_photons(self, photons: ArrayLike) -> np.ndarray:
        arr = np.asarray(photons)
        if arr.dtype.kind not in "uif":
            raise ValueError(
                f"photons must be a real numeric array (mean photons per pixel), "
                f"got dtype {arr.dtype}"
            )
        h, w = self.shape
        if arr.ndim not in (2, 3) or arr.shape[-2:] != (h, w):
            raise ValueError(
                f"photons must have shape (H, W) = ({h}, {w}) or (F, {h}, {w}) "
                f"to match the sensor, got shape {arr.shape}"
            )
        if arr.size and arr.dtype.kind == "f":
            lo, hi = arr.min(), arr.max()
            if not (np.isfinite(lo) and np.isfinite(hi)):
                n_nan = int(np.isnan(arr).sum())
                what = f"{n_nan} NaN value(s)" if n_nan else "infinite value(s)"
                raise ValueError(f"photons contains {what}; photon counts must be finite")
            if lo < 0:
                raise ValueError(
                    f"photons must be >= 0 (mean photons per pixel), got minimum {lo:g} photons"
                )
        elif arr.size and arr.dtype.kind == "i" and arr.min() < 0:
            raise ValueError(
                f"photons must be >= 0 (mean photons per pixel), got minimum {arr.min()} photons"
            )
        return arr

    # ----------------------------------------------------------------- noise-free mean
    def affine(
        self, exposure_s: float, *, fixed_pattern: bool = True
    ) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
        """Per-pixel affine map from mean photons to mean DN (before rounding and clipping).

        Parameters
        ----------
        exposure_s : float
            Exposure time in seconds (> 0); sets the dark signal ``I_dark * t``.
        fixed_pattern : bool
            Include the PRNU and DSNU maps (default). Match the flag given to :meth:`expose`.

        Returns
        -------
        gain_dn_per_photon : (H, W) float64
            ``K * eta * PRNU_map`` in DN per photon.
        offset_dn : (H, W) float64
            ``black + K * (I_dark * t + DSNU_map)`` in DN.

        Notes
        -----
        The mean of many :meth:`expose` frames equals ``gain * photons + offset`` wherever
        neither the full well nor the ADC range clips (and the signal spans a few DN of noise,
        so that rounding to nearest is unbiased).
        """
        t = positive("exposure_s", exposure_s, "s")
        c = self.config
        k = c.system_gain_dn_per_e
        shape = self.shape
        if fixed_pattern:
            gain = (k * c.quantum_efficiency) * self.prnu_map
            offset = c.black_level_dn + k * (c.dark_current_e_per_s * t + self.dsnu_map_e)
        else:
            gain = np.full(shape, k * c.quantum_efficiency)
            offset = np.full(shape, c.black_level_dn + k * c.dark_current_e_per_s * t)
        return gain, offset

    def mean_dn(
        self, photons: ArrayLike, *, exposure_s: float, fixed_pattern: bool = True
    ) -> NDArray[np.float64]:
        """Noise-free mean signal in DN before rounding and clipping.

        Parameters
        ----------
        photons : (H, W) or (F, H, W) array_like
            Mean photons per pixel during the exposure (finite, >= 0).
        exposure_s : float
            Exposure time in seconds (> 0).
        fixed_pattern : bool
            Include the PRNU and DSNU maps (default).

        Returns
        -------
        (H, W) or (F, H, W) float64
            ``gain * photons + offset`` from :meth:`affine`.
        """
        arr = self._check_photons(photons)
        gain, offset = self.affine(exposure_s, fixed_pattern=fixed_pattern)
        return gain * arr + offset

    # ------------------------------------------------------------------------ frames
    def expose(
        self,
        photons: ArrayLike,
        *,
        exposure_s: float,
        rng: np.random.Generator,
        shot_noise: bool = True,
        dark_noise: bool = True,
        read_noise: bool = True,
        fixed_pattern: bool = True,
        exact_poisson_below_e: float = EXACT_POISSON_BELOW_E,
    ) -> NDArray[np.uint16]:
        """Record one frame, or a stack of frames, of the given mean photon counts.

        Parameters
        ----------
        photons : (H, W) or (F, H, W) array_like
            Mean number of photons reaching each pixel during the exposure (finite, >= 0).
            A stack gives ``F`` independent frames of (possibly different) scenes.
        exposure_s : float
            Exposure time in seconds (> 0); sets the dark signal ``I_dark * t``.
        rng : numpy.random.Generator
            Source of all temporal noise. The fixed patterns do not depend on it.
        shot_noise : bool
            Poisson statistics of the photo-electrons. Off: the mean ``eta*mu_p*PRNU``.
        dark_noise : bool
            Poisson statistics of the dark electrons. Off: the mean ``I_dark*t``.
        read_noise : bool
            Normal temporal read noise ``sigma_d``.
        fixed_pattern : bool
            PRNU and DSNU maps. Off: every pixel has gain ``eta`` and no dark offset.
        exact_poisson_below_e : float
            Mean electron count below which shot noise is exact Poisson; above it a
            moment-matched normal approximation is used. ``numpy.inf`` makes it exact
            everywhere (slower).

        Returns
        -------
        (H, W) or (F, H, W) uint16
            Raw frame(s) in DN, in ``[0, 2**bit_depth - 1]``. With every noise source off
            the result is deterministic.

        Raises
        ------
        ValueError
            If ``photons`` has the wrong shape or contains NaN, infinite or negative values,
            or ``exposure_s`` is not a positive finite number.
        TypeError
            If ``rng`` is not a ``numpy.random.Generator``.
        """
        arr = self._check_photons(photons)
        t = positive("exposure_s", exposure_s, "s")
        _check_rng(rng)
        threshold = _check_threshold(exact_poisson_below_e)
        return self._expose_checked(
            arr, t, rng, shot_noise, dark_noise, read_noise, fixed_pattern, threshold
        )

    def expose_batch(
        self,
        photons: ArrayLike,
        *,
        exposure_s: float | ArrayLike,
        rngs: Sequence[np.random.Generator],
        shot_noise: bool = True,
        dark_noise: bool = True,
        read_noise: bool = True,
        fixed_pattern: bool = True,
        exact_poisson_below_e: float = EXACT_POISSON_BELOW_E,
    ) -> NDArray[np.uint16]:
        """Record ``F`` frames, each with its own exposure and its own noise generator.

        Frame ``i`` is bit for bit ``expose(photons[i], exposure_s=exposure_s[i],
        rng=rngs[i], ...)``: the inputs are checked once for the whole stack, and each frame
        draws its temporal noise from ``rngs[i]`` alone, in the same order as :meth:`expose`.
        (:meth:`expose` with a stack draws all frames' noise from one generator instead.)

        Parameters
        ----------
        photons : (F, H, W) array_like
            Mean photons per pixel during each frame's exposure (finite, >= 0).
        exposure_s : float or (F,) array_like
            Exposure time(s) in seconds (> 0); one value applies to every frame.
        rngs : sequence of F numpy.random.Generator
            The noise source of each frame.
        shot_noise, dark_noise, read_noise, fixed_pattern, exact_poisson_below_e
            As in :meth:`expose`.

        Returns
        -------
        (F, H, W) uint16
            Raw frames in DN.

        Raises
        ------
        ValueError
            As :meth:`expose`; also a ``photons`` that is not a stack, or a number of
            exposures or generators other than ``F``.
        TypeError
            If an element of ``rngs`` is not a ``numpy.random.Generator``.
        """
        arr = self._check_photons(photons)
        if arr.ndim != 3:
            h, w = self.shape
            raise ValueError(
                f"photons must be a stack of shape (F, {h}, {w}) for expose_batch, "
                f"got shape {arr.shape}"
            )
        n = arr.shape[0]
        if np.ndim(exposure_s) == 0:
            times = [positive("exposure_s", exposure_s, "s")] * n
        else:
            values = np.asarray(exposure_s, dtype=object)
            if values.shape != (n,):
                raise ValueError(
                    f"exposure_s must be one value or {n} values (one per frame), "
                    f"got shape {values.shape}"
                )
            times = [positive("exposure_s", v, "s") for v in values]
        gens = list(rngs)
        if len(gens) != n:
            raise ValueError(f"rngs must hold {n} generators (one per frame), got {len(gens)}")
        for g in gens:
            _check_rng(g)
        threshold = _check_threshold(exact_poisson_below_e)
        out = np.empty(arr.shape, dtype=np.uint16)
        for i in range(n):
            out[i] = self._expose_checked(
                arr[i], times[i], gens[i], shot_noise, dark_noise, read_noise, fixed_pattern,
                threshold,
            )  # fmt: skip
        return out

    def _expose_checked(
        self,
        arr: np.ndarray,
        t: float,
        rng: np.random.Generator,
        shot_noise: bool,
        dark_noise: bool,
        read_noise: bool,
        fixed_pattern: bool,
        threshold: float,
    ) -> NDArray[np.uint16]:
        """:meth:`expose` on arguments already checked."""
        c = self.config
        out_shape = arr.shape
        n_pix = c.height_px * c.width_px
        flat = arr.reshape(-1, n_pix)
        gain_e = self._gain_e32 if fixed_pattern else np.float32(c.quantum_efficiency)
        offset_dn = self._offset_dn32 if fixed_pattern else np.float32(c.black_level_dn)
        lam_photo = np.multiply(flat, gain_e, dtype=np.float32)
        lam_dark = np.float32(c.dark_current_e_per_s * t)
        sigma_d = np.float32(c.read_noise_e if read_noise else 0.0)
        full_well = np.float32(c.full_well_e)

        # Split the electron mean into a Poisson part and a deterministic part.
        det: np.ndarray | np.float32
        lam: np.ndarray | None
        if shot_noise:
            lam = lam_photo
            if dark_noise:
                if lam_dark > 0:
                    lam += lam_dark
                det = np.float32(0.0)
            else:
                det = lam_dark
        elif dark_noise and lam_dark > 0:
            lam = np.full(lam_photo.shape, lam_dark, dtype=np.float32)
            det = lam_photo
        else:
            lam = None
            if lam_dark > 0:
                lam_photo += lam_dark
            det = lam_photo

        if lam is None:
            e = np.minimum(det, full_well)
            if sigma_d > 0:
                e += sigma_d * standard_normal_f32(rng, e.size).reshape(e.shape)
        else:
            e = self._electrons(lam, det, sigma_d, full_well, threshold, rng)

        e *= np.float32(c.system_gain_dn_per_e)
        e += offset_dn
        np.rint(e, out=e)
        np.clip(e, 0, self.max_dn, out=e)
        return e.astype(np.uint16).reshape(out_shape)

    @staticmethod
    def _electrons(
        lam: np.ndarray,
        det: np.ndarray | np.float32,
        sigma_d: np.float32,
        full_well: np.float32,
        threshold: float,
        rng: np.random.Generator,
    ) -> np.ndarray:
        """Electrons after shot noise, full-well clip and read noise (float32, lam's shape).

        ``lam`` is the Poisson mean, ``det`` a deterministic addition (scalar or lam-shaped).
        """
        z = standard_normal_f32(rng, lam.size).reshape(lam.shape)
        det_is_array = isinstance(det, np.ndarray)
        if threshold > 0 and lam.max() < threshold:
            # Dark frame: every pixel exact Poisson, no gathering needed.
            e = poisson_f32(lam, rng).reshape(lam.shape)
            if det_is_array or det != 0:
                e += det
            np.minimum(e, full_well, out=e)
            if sigma_d > 0:
                z *= sigma_d
                e += z
            return e
        # Bulk: normal approximation of shot + read noise in a single variate.
        e = np.add(lam, sigma_d * sigma_d)
        np.sqrt(e, out=e)
        e *= z
        e += lam
        if det_is_array or det != 0:
            e += det
        lam_f, e_f, z_f = lam.ravel(), e.ravel(), z.ravel()
        det_f: Any = det.ravel() if det_is_array else det

        # Low counts: exact Poisson (plus the deterministic part), clip, read noise.
        low = np.flatnonzero(lam_f < threshold) if threshold > 0 else np.empty(0, np.intp)
        if low.size:
            k = poisson_f32(lam_f[low], rng)
            if det_is_array:
                k += det_f[low]
            elif det_f != 0:
                k += det_f
            np.minimum(k, full_well, out=k)
            if sigma_d > 0:
                zl = z_f[low]
                zl *= sigma_d
                k += zl
            e_f[low] = k

        # Near the full well: shot noise, clip, then an independent read-noise variate.
        guard = full_well - np.float32(_FULL_WELL_GUARD_SIGMA) * np.sqrt(full_well)
        mean_e = lam_f + det_f if det_is_array else lam_f
        near = np.flatnonzero(mean_e >= (guard if det_is_array else guard - det_f))
        if near.size:
            lam_n = lam_f[near]
            near = near[lam_n >= threshold]
            lam_n = lam_f[near]
        if near.size:
            m = lam_n + np.sqrt(lam_n) * z_f[near]
            m += det_f[near] if det_is_array else det_f
            np.minimum(m, full_well, out=m)
            if sigma_d > 0:
                m += sigma_d * standard_normal_f32(rng, m.size)
            e_f[near] = m
        return e
