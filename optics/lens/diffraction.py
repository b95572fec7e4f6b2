"""Incoherent diffraction of a circular pupil with defocus: OTF and pixel-integrated PSF.

Pure functions of the image-side (working) f-number ``N``, the wavelength ``λ`` and the
defocus coefficient ``W020`` (waves at the edge of the pupil). Formulas follow models.md (Lens):

* cutoff frequency ``ν_c = 1/(λN)``; normalised frequency ``s = ν/ν_c``;
* in focus, ``OTF(s) = (2/π)[arccos s − s sqrt(1 − s²)]`` (the MTF of a circular pupil);
* with defocus, the OTF is the normalised autocorrelation of the pupil
  ``exp(2πi W020 ρ²)``, which for a circular pupil reduces to Hopkins' one-dimensional integral
  ``OTF(s) = (4/π) ∫_0^{arccos s} sin²φ cos(8π W020 s (cos φ − s)) dφ``
  (exact; evaluated by Gauss–Legendre quadrature, splined in ``s``).

The sampled PSF is built in the frequency domain: the OTF times the Fourier transform of one
square sample (``sinc(f_x dx) sinc(f_y dx)``), with every alias folded back, then one inverse
FFT. The result is the energy falling inside each square sample of a periodic grid, so it sums
to one exactly and needs no supersampling.
"""

from __future__ import annotations

from functools import lru_cache
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    from scipy.interpolate import CubicSpline

__all__ = ["otf_radial", "sampled_psf"]

# Largest |W020| for which the tabulated OTF is built (waves). Beyond this the image is a
# geometric blur of hundreds of diffraction widths and the pupil model is not the point.
MAX_DEFOCUS_WAVES = 50.0


def _in_focus_otf(s: np.ndarray) -> np.ndarray:
    s = np.clip(s, 0.0, 1.0)
    return (2.0 / np.pi) * (np.arccos(s) - s * np.sqrt(1.0 - s * s))


@lru_cache(maxsize=32)
def _defocus_table(defocus_waves: float) -> CubicSpline:
    """Hopkins' defocus OTF on ``s ∈ [0, 1]`` as a cubic spline (error ≲ 1e-5).

    The OTF oscillates with period ≈ 1/(4 W020) in ``s`` and the integrand has at most
    ``W020`` cycles in ``φ``: 128 table points and 8 Gauss–Legendre nodes per wave resolve both.
    """
    w = abs(defocus_waves)
    s = np.linspace(0.0, 1.0, int(1025 + 128 * w))
    xq, wq = np.polynomial.legendre.leggauss(int(48 + 8 * w))
    values = np.empty_like(s)
    for lo in range(0, s.size, 1024):  # bounded memory
        sc = s[lo : lo + 1024, None]
        phi_max = np.arccos(sc)
        phi = 0.5 * (xq[None, :] + 1.0) * phi_max
        integrand = np.sin(phi) ** 2 * np.cos(8.0 * np.pi * w * sc * (np.cos(phi) - sc))
        values[lo : lo + 1024] = (4.0 / np.pi) * np.sum(0.5 * wq * phi_max * integrand, axis=1)
    values[-1] = 0.0
    # scipy.interpolate costs ~0.25 s to import; only defocused lenses need it.
    from scipy.interpolate import CubicSpline

    return CubicSpline(s, values)


def otf_radial(s: np.ndarray | float, defocus_waves: float = 0.0) -> np.ndarray:
    """Optical transfer function of a circular pupil with defocus.

    Parameters
    ----------
    s : array_like of float
        Normalised spatial frequency ``ν / ν_c`` with ``ν_c = 1/(λN)``; any shape, ``s ≥ 0``.
    defocus_waves : float
        Defocus wavefront coefficient ``W020`` in waves at the pupil edge (sign irrelevant).

    Returns
    -------
    otf : ndarray of float, same shape as ``s``
        Real OTF (may be negative with defocus); exactly zero for ``s ≥ 1``. Its absolute
        value is the MTF.
    """
    s = np.asarray(np.abs(np.asarray(s, dtype=np.float64)))
    out = np.zeros_like(s)
    inside = s < 1.0
    if defocus_waves == 0.0:
        out[inside] = _in_focus_otf(s[inside])
        return out
    if abs(defocus_waves) > MAX_DEFOCUS_WAVES:
        raise ValueError(
            f"defocus_waves must satisfy |W020| <= {MAX_DEFOCUS_WAVES} waves, got {defocus_waves}"
        )
    out[inside] = _defocus_table(float(abs(defocus_waves)))(s[inside])
    return out


def sampled_psf(lambda_n_um: float, defocus_waves: float, dx_um: float, n: int) -> np.ndarray:
    """Energy of the incoherent PSF falling in each square sample of an ``n × n`` grid.

    Parameters
    ----------
    lambda_n_um : float
        Product ``λ N`` in µm (wavelength times working f-number); ``ν_c = 1/(λN)``.
    defocus_waves : float
        ``W020`` in waves.
    dx_um : float
        Sample spacing (and square sample size) in µm.
    n : int
        Grid size; the PSF is centred on sample ``n // 2`` in both axes.

    Returns
    -------
    psf : (n, n) float64 array
        Non-negative, sums to 1. The grid is periodic (period ``n dx``): the far tails of the
        PSF wrap around rather than being cut off, so the energy is exact.
    """
    nu_c = 1.0 / lambda_n_um  # cy/µm
    k_max = nu_c * n * dx_um  # cutoff in units of the DFT frequency step 1/(n dx)
    # Every frequency index K with |K| < k_max contributes to DFT bin K mod n (aliasing).
    # Lay K out from -n*M so that bins are aligned, then sum row chunks (bounded memory).
    m = int(np.ceil((k_max + 1) / n))
    k_all = np.arange(-n * m, n * m)
    inside = np.flatnonzero(np.abs(k_all) < k_max)
    i0, i1 = int(inside[0]), int(inside[-1]) + 1
    f_all = k_all / (n * dx_um)
    sinc_all = np.sinc(k_all / n)  # transform of one square sample of width dx
    fx, sinc_x = f_all[i0:i1], sinc_all[i0:i1]
    g = np.zeros((n, n))
    row = np.zeros((1, 2 * n * m))
    chunk = max(1, (1 << 22) // (i1 - i0))
    for start in range(i0, i1, chunk):
        stop = min(start + chunk, i1)
        fy = f_all[start:stop]
        otf = otf_radial(np.hypot(fy[:, None], fx[None, :]) / nu_c, defocus_waves)
        if row.shape[0] != stop - start:
            row = np.zeros((stop - start, 2 * n * m))
        row[:, i0:i1] = otf * (sinc_all[start:stop, None] * sinc_x[None, :])
        folded = row.reshape(stop - start, 2 * m, n).sum(axis=1)  # fold columns
        np.add.at(g, np.arange(start, stop) % n, folded)  # fold rows
    p = np.fft.fftshift(np.fft.ifft2(g).real)
    np.clip(p, 0.0, None, out=p)
    p /= p.sum()
    return p
