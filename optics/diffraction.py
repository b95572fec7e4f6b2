"""Incoherent diffraction of a circular pupil with defocus: OTF and pixel-integrated PSF.

Pure functions of the image-side (working) f-number ``N``, the wavelength ``λ`` and the
defocus coefficient ``W020`` (waves at the edge of the pupil). Formulas follow PHYSICS.md §2:

* cutoff frequency ``ν_c = 1/(λN)``; normalised frequency ``s = ν/ν_c``;
* in focus, ``OTF(s) = (2/π)[arccos s − s sqrt(1 − s²)]`` (the MTF of a circular pupil);
* with defocus, the OTF is the normalised autocorrelation of the pupil
  ``exp(2πi W020 ρ²)``, which for a circular pupil reduces to Hopkins' one-dimensional integral
  ``OTF(s) = (4/π) ∫_0^{arccos s} sin²φ cos(8π W020 s (cos φ − s)) dφ``
  (exact; evaluated by Gauss–Legendre quadrature and tabulated in ``s``).

The sampled PSF is built in the frequency domain: the OTF times the Fourier transform of one
square sample (``sinc(f_x dx) sinc(f_y dx)``), with every alias folded back, then one inverse
FFT. The result is the energy falling inside each square sample of a periodic grid, so it sums
to one exactly and needs no supersampling.
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np

__all__ = ["otf_radial", "sampled_psf"]

# Largest |W020| for which the tabulated OTF is built (waves). Beyond this the image is a
# geometric blur of hundreds of diffraction widths and the pupil model is not the point.
MAX_DEFOCUS_WAVES = 100.0


def _in_focus_otf(s: np.ndarray) -> np.ndarray:
    s = np.clip(s, 0.0, 1.0)
    return (2.0 / np.pi) * (np.arccos(s) - s * np.sqrt(1.0 - s * s))


@lru_cache(maxsize=32)
def _defocus_table(defocus_waves: float) -> tuple[np.ndarray, np.ndarray]:
    """Tabulate Hopkins' defocus OTF on ``s ∈ [0, 1]`` (resolves its oscillations)."""
    w = abs(defocus_waves)
    n_s = int(2049 + 512 * w)
    n_q = int(64 + 12 * w)
    s = np.linspace(0.0, 1.0, n_s)
    xq, wq = np.polynomial.legendre.leggauss(n_q)
    phi_max = np.arccos(s)[:, None]
    phi = 0.5 * (xq[None, :] + 1.0) * phi_max
    weights = 0.5 * wq[None, :] * phi_max
    integrand = np.sin(phi) ** 2 * np.cos(8.0 * np.pi * w * s[:, None] * (np.cos(phi) - s[:, None]))
    values = (4.0 / np.pi) * np.sum(weights * integrand, axis=1)
    values[-1] = 0.0
    values.setflags(write=False)
    s.setflags(write=False)
    return s, values


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
    s = np.abs(np.asarray(s, dtype=float))
    out = np.zeros_like(s)
    inside = s < 1.0
    if defocus_waves == 0.0:
        out[inside] = _in_focus_otf(s[inside])
        return out
    if abs(defocus_waves) > MAX_DEFOCUS_WAVES:
        raise ValueError(
            f"defocus_waves must satisfy |W020| <= {MAX_DEFOCUS_WAVES} waves, got {defocus_waves}"
        )
    table_s, table_v = _defocus_table(float(abs(defocus_waves)))
    out[inside] = np.interp(s[inside], table_s, table_v)
    return out


def _fold(values: np.ndarray, n: int, axis: int) -> np.ndarray:
    """Sum ``values`` whose index along ``axis`` is ``K + offset`` into ``K mod n`` bins.

    ``values`` is laid out for integer frequency indices ``-n*M ... n*M - 1``.
    """
    shape = list(values.shape)
    new_shape = [*shape[:axis], shape[axis] // n, n, *shape[axis + 1 :]]
    # Index i stands for K = i - n*M ≡ i (mod n), so the layout is already aligned.
    return values.reshape(new_shape).sum(axis=axis)


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
    k_max = int(np.ceil(nu_c * n * dx_um))  # highest integer frequency index inside the cutoff
    if 2 * k_max < n:
        k = np.fft.fftfreq(n, d=1.0 / n)  # integer indices, DFT order
        kx = k
        fold = False
    else:
        m = int(np.ceil((k_max + 1) / n))
        kx = np.arange(-n * m, n * m, dtype=float)
        fold = True
    fx = kx / (n * dx_um)  # cy/µm
    sinc = np.sinc(kx / n)  # transform of one square sample of width dx
    keep = np.abs(fx) < nu_c
    # Build the separable 2-D grid only over frequencies inside the cutoff disc's bounding box.
    fk = fx[keep]
    otf = otf_radial(np.hypot(fk[:, None], fk[None, :]) / nu_c, defocus_waves)
    g_small = otf * sinc[keep][:, None] * sinc[keep][None, :]
    g = np.zeros((kx.size, kx.size))
    idx = np.flatnonzero(keep)
    g[np.ix_(idx, idx)] = g_small
    if fold:
        # kx runs from -n*m: index i corresponds to K = i - n*m ≡ i (mod n).
        g = _fold(_fold(g, n, 0), n, 1)
    p = np.fft.fftshift(np.fft.ifft2(g).real)
    np.clip(p, 0.0, None, out=p)
    p /= p.sum()
    return p
