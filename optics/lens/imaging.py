"""Image formation: scene radiance → photon flux on a sampled image plane.

The same linear map is available two ways, and they agree to rounding error:

* :func:`form_image` — fast, for rendering frames (sparse resampling + FFT convolution);
* :func:`image_operator` — the explicit ``scipy.sparse.csr_matrix`` ``A`` with
  ``A @ scene.ravel() == form_image(scene, ...).ravel()`` for one channel.

**Scene.** ``scene`` is ``(H, W)`` or ``(H, W, C)`` of non-negative linear values in a
rectilinear (pinhole) projection whose full horizontal field of view is ``scene_fov_deg``;
pixels are square in ``tan θ``. A value of 1.0 means a band-integrated radiance of
``radiance_w_m2_sr`` W m⁻² sr⁻¹ (channel ``c`` at the lens' wavelength ``c``); the scene is
zero outside its field.

**Image plane.** ``shape = (ny, nx)`` square samples of side ``dx_um``, centred on the optical
axis (the axis is at the grid's geometric centre), presented upright: row 0 is the top of the
scene, column 0 its left (see :mod:`optics.lens`).

**Model.** Each sample's footprint is pulled back through the inverse distortion to the ideal
image plane (its four corners, made an axis-aligned rectangle with the same edges) and the
piecewise-constant scene is integrated over it exactly (area weighting — no aliasing when the
scene is finer than the samples). Flux per unit area is ``π L T cos⁴θ' / (1 + 4 N_w²)`` on the
ideal plane, so distortion only moves light: stretched regions get dimmer, compressed ones
brighter, total flux is kept. ``θ'`` is the image-side chief-ray angle ``atan(r / p)`` at each
sample's centre (ideal radius ``r``), ``p`` the exit pupil's distance
(:attr:`~optics.lens.LensConfig.pupil_distance_mm`; the field angle ``θ`` for a stop at the
lens). Photons/s are ``E · area · λ/(h c)``.

**PSF.** The blur is the pixel-integrated PSF of :func:`optics.lens.psf` cut to the smallest
centred square holding ``psf_energy`` of its energy (default 0.98; the Airy tail beyond holds
``≈ 2 λ N_w / (π² r)``) and renormalised to 1, so flux is conserved. Light from scene regions
just outside the plane is blurred in (the plane is padded by the kernel radius before the
blur). With ``psf="auto"`` the blur is applied only if it matters on this grid: it is skipped
when the OTF stays ≥ :data:`PSF_NEGLIGIBLE_OTF` (0.9) at every frequency up to the sampling
Nyquist ``1/(2 dx)`` — in focus that is ``dx ≥ 6.3 λ N_w``, i.e. the Airy core (diameter
``2.44 λ N_w``) spans less than about 0.4 of a sample. ``"on"`` and ``"off"`` force it.
The blur acts on the area-integrated samples, each spread as if its light entered at the
sample centre (the kernel is the PSF integrated over one sample); detail finer than a sample
is therefore blurred slightly less than by a continuous model — sample a few times finer
than the detail that matters (e.g. the fiber pitch).

**Cost.** The operator has about ``(2R + 1 + footprint)²`` non-zeros per row, where ``2R + 1``
is the kernel size and ``footprint`` the scene pixels per sample; with the blur applied it is
``≈ (20 λ N_w / dx)²`` at the default ``psf_energy`` — lower ``psf_energy`` (e.g. 0.9) for
large planes sampled much finer than ``λ N_w``. ``form_image`` caches the resampling operator
and the kernel spectrum, so repeated frames through one geometry cost one sparse product and
two FFTs.
"""

from __future__ import annotations

import math
from functools import lru_cache
from typing import Literal

import numpy as np
import scipy.fft
import scipy.sparse as sp

from keycam.validation import int_pair, positive
from optics.lens.config import LensConfig, resolve_wavelength
from optics.lens.diffraction import otf_radial
from optics.lens.distortion import undistort_normalized
from optics.lens.model import psf as _sampled_lens_psf
from optics.lens.radiometry import image_irradiance_w_m2, photons_per_joule

__all__ = ["PSF_NEGLIGIBLE_OTF", "form_image", "image_operator", "psf_is_negligible", "psf_kernel"]

PSF_NEGLIGIBLE_OTF = 0.9
_MAX_KERNEL = 1025
PsfMode = Literal["auto", "on", "off"]


def _check_psf_args(psf_mode: str, psf_energy: float) -> None:
    if psf_mode not in ("auto", "on", "off"):
        raise ValueError(f"psf must be 'auto', 'on' or 'off', got {psf_mode!r}")
    e = float(psf_energy)
    if not (math.isfinite(e) and 0.0 < e < 1.0):
        raise ValueError(f"psf_energy must be a fraction in (0, 1), got {psf_energy!r}")


def psf_is_negligible(lens: LensConfig, *, dx_um: float, wavelength_nm: float) -> bool:
    """True if the OTF is ≥ 0.9 up to the Nyquist frequency ``1/(2 dx)`` of the sample grid."""
    dx = positive("dx_um", dx_um, "µm")
    lambda_n_um = wavelength_nm * 1e-3 * lens.working_f_number
    s_nyq = min(1.0, lambda_n_um / (2.0 * dx))
    s = np.linspace(0.0, s_nyq, 513)
    return bool(np.min(otf_radial(s, lens.defocus_waves_at(wavelength_nm))) >= PSF_NEGLIGIBLE_OTF)


@lru_cache(maxsize=32)
def _kernel_cached(lens: LensConfig, dx_um: float, wl: float, energy: float) -> np.ndarray:
    lambda_n_um = wl * 1e-3 * lens.working_f_number
    r_geom = 4.0 * lens.working_f_number * wl * 1e-3 * abs(lens.defocus_waves_at(wl))
    r_tail = 2.0 * lambda_n_um / (np.pi**2 * (1.0 - energy))
    half = int(np.ceil((r_geom + 1.5 * r_tail + 2.0 * lambda_n_um) / dx_um)) + 1
    n = min(2 * half + 1, _MAX_KERNEL)
    p = _sampled_lens_psf(lens, dx_um=dx_um, n=n, wavelength_nm=wl)
    c = n // 2
    idx = np.abs(np.arange(n) - c)
    cheb = np.maximum(idx[:, None], idx[None, :])
    cum = np.cumsum(np.bincount(cheb.ravel(), weights=p.ravel()))
    r = int(np.searchsorted(cum, energy * cum[-1]))
    r = min(r, c)
    k = p[c - r : c + r + 1, c - r : c + r + 1].copy()
    k /= k.sum()
    k.setflags(write=False)
    return k


def psf_kernel(
    lens: LensConfig,
    *,
    dx_um: float,
    wavelength_nm: float | None = None,
    psf_energy: float = 0.98,
) -> np.ndarray:
    """The blur kernel used by :func:`form_image` and :func:`image_operator`.

    Returns
    -------
    kernel : (2R+1, 2R+1) float64 array, sums to 1, centred at ``(R, R)``
        Pixel-integrated PSF cut to the smallest centred square holding ``psf_energy`` of it.
    """
    _check_psf_args("on", psf_energy)
    dx = positive("dx_um", dx_um, "µm")
    return _kernel_cached(lens, dx, resolve_wavelength(lens, wavelength_nm), float(psf_energy))


def _undistort_grid(
    xc: np.ndarray, yc: np.ndarray, coeffs: tuple[float, float, float, float, float]
) -> tuple[np.ndarray, np.ndarray]:
    """Inverse distortion on the grid ``yc × xc`` (normalised coordinates).

    Large grids are inverted exactly (Newton) on every 8th node and filled in by bicubic
    splines: the mapping is a low-order polynomial, so the interpolation error (≈ h⁴ × its
    4th derivative, h ≤ 8 samples) is far below 1e-9 of a sample for any sane sampling.
    """
    step = 8
    if xc.size * yc.size <= 128 * 128 or min(xc.size, yc.size) < 4 * step:
        return undistort_normalized(xc[None, :], yc[:, None], coeffs)
    ix = np.unique(np.r_[np.arange(0, xc.size, step), xc.size - 1])
    iy = np.unique(np.r_[np.arange(0, yc.size, step), yc.size - 1])
    tx, ty = undistort_normalized(xc[ix][None, :], yc[iy][:, None], coeffs)
    from scipy.interpolate import RectBivariateSpline  # slow import: only distorting lenses

    sx = RectBivariateSpline(yc[iy], xc[ix], tx, kx=3, ky=3)
    sy = RectBivariateSpline(yc[iy], xc[ix], ty, kx=3, ky=3)
    return sx(yc, xc), sy(yc, xc)


@lru_cache(maxsize=4)
def _area_operator(
    lens: LensConfig,
    scene_shape: tuple[int, int],
    fov_deg: float,
    dx_um: float,
    shape: tuple[int, int],
) -> sp.csr_matrix:
    """Area of overlap (ideal-plane, in scene-pixel units) × cos⁴θ', as a sparse matrix."""
    h, w = scene_shape
    ny, nx = shape
    s_i = lens.image_distance_mm
    a = 2.0 * math.tan(math.radians(fov_deg) / 2.0) / w  # scene pixel pitch in tan θ
    step = dx_um * 1e-3 / s_i  # sample pitch, normalised
    xc = (np.arange(nx + 1) - nx / 2.0) * step
    yc = (np.arange(ny + 1) - ny / 2.0) * step
    coeffs = lens.distortion_coeffs
    u: np.ndarray
    v: np.ndarray
    if any(coeffs):
        tx, ty = _undistort_grid(xc, yc, coeffs)
        u = tx / a + w / 2.0
        v = ty / a + h / 2.0
        left = 0.5 * (u[:-1, :-1] + u[1:, :-1])
        right = 0.5 * (u[:-1, 1:] + u[1:, 1:])
        top = 0.5 * (v[:-1, :-1] + v[:-1, 1:])
        bottom = 0.5 * (v[1:, :-1] + v[1:, 1:])
    else:
        u = xc / a + w / 2.0
        v = yc / a + h / 2.0
        left, right = np.broadcast_to(u[:-1], (ny, nx)), np.broadcast_to(u[1:], (ny, nx))
        top = np.broadcast_to(v[:-1, None], (ny, nx))
        bottom = np.broadcast_to(v[1:, None], (ny, nx))
    left, right, top, bottom = (q.reshape(-1) for q in (left, right, top, bottom))
    if lens.vignetting:
        # tan of the field angle at each sample's centre (ideal plane): x / s_i, y / s_i
        tcx = (0.5 * (left + right) - w / 2.0) * a
        tcy = (0.5 * (top + bottom) - h / 2.0) * a
        if lens.exit_pupil_distance_mm is not None:
            # image-side chief ray: tan θ' = r / p = tan θ · s_i / p (stop at the lens: θ' = θ)
            k = s_i / lens.pupil_distance_mm
            tcx, tcy = tcx * k, tcy * k
        cos4 = 1.0 / (1.0 + tcx * tcx + tcy * tcy) ** 2
    else:
        cos4 = np.ones(ny * nx)

    def overlaps(lo: np.ndarray, hi: np.ndarray, size: int) -> tuple[np.ndarray, np.ndarray]:
        """Scene pixel indices and overlap lengths of the intervals [lo, hi), per row."""
        first = np.floor(lo)
        k = int(np.max(np.floor(hi) - first)) + 1
        idx = first[:, None] + np.arange(k)[None, :]
        wgt = np.minimum(idx + 1.0, hi[:, None]) - np.maximum(idx, lo[:, None])
        wgt[(idx < 0) | (idx >= size) | (wgt < 0)] = 0.0
        return np.clip(idx, 0, size - 1).astype(itype), wgt

    itype = np.int32 if h * w < 2**31 - 1 else np.int64
    n_out = ny * nx
    counts = np.empty(n_out, dtype=np.int64)
    data_parts, index_parts = [], []
    chunk = 1 << 16  # rows per block: bounded temporaries, cache friendly
    for lo in range(0, n_out, chunk):
        sl = slice(lo, min(lo + chunk, n_out))
        cols, wx = overlaps(left[sl], right[sl], w)
        rows, wy = overlaps(top[sl], bottom[sl], h)
        wy *= cos4[sl, None]
        data = wy[:, :, None] * wx[:, None, :]
        keep = data > 0
        counts[sl] = np.count_nonzero(keep.reshape(keep.shape[0], -1), axis=1)
        data_parts.append(data[keep])
        index_parts.append((rows[:, :, None] * itype(w) + cols[:, None, :])[keep])
    nnz = int(counts.sum())
    ptype = itype if nnz < 2**31 - 1 else np.int64
    indptr = np.zeros(n_out + 1, dtype=ptype)
    np.cumsum(counts, out=indptr[1:])
    indices = np.concatenate(index_parts).astype(ptype, copy=False)
    op = sp.csr_matrix((np.concatenate(data_parts), indices, indptr), shape=(n_out, h * w))
    op.has_sorted_indices = True
    return op


def _photons_per_unit(
    lens: LensConfig, fov_deg: float, scene_w: int, radiance: float, wl: float
) -> float:
    """Photons/s per (unit scene value × unit overlap area in scene-pixel units)."""
    pitch_m = lens.image_distance_mm * 1e-3 * 2.0 * math.tan(math.radians(fov_deg) / 2.0) / scene_w
    e = float(
        image_irradiance_w_m2(radiance, lens.working_f_number, transmission=lens.transmission)
    )
    return e * pitch_m**2 * photons_per_joule(wl)


def _validate(
    lens: LensConfig,
    scene_shape: object,
    fov_deg: float,
    dx_um: float,
    shape: object,
    radiance: float,
) -> tuple[tuple[int, int], float, float, tuple[int, int], float]:
    if not isinstance(lens, LensConfig):
        raise ValueError(f"lens must be a LensConfig, got {type(lens).__name__}")
    try:
        fov = float(fov_deg)
    except (TypeError, ValueError):
        fov = math.nan
    if not (math.isfinite(fov) and 0.0 < fov < 180.0):
        raise ValueError(f"scene_fov_deg must lie in (0, 180) degrees, got {fov_deg!r}")
    dx = positive("dx_um", dx_um, "µm")
    ny, nx = int_pair("shape", shape, "image-plane samples ny, nx")
    h, w = int_pair("scene_shape", scene_shape, "scene pixels H, W")
    try:
        rad = float(radiance)
    except (TypeError, ValueError):
        rad = math.nan
    if not (math.isfinite(rad) and rad >= 0):
        raise ValueError(f"radiance_w_m2_sr must be finite and >= 0 W m^-2 sr^-1, got {radiance!r}")
    return (h, w), fov, dx, (ny, nx), rad


def _blur_kernel(
    lens: LensConfig, dx: float, wl: float, psf_mode: str, psf_energy: float
) -> np.ndarray | None:
    if psf_mode == "off":
        return None
    if psf_mode == "auto" and psf_is_negligible(lens, dx_um=dx, wavelength_nm=wl):
        return None
    return _kernel_cached(lens, dx, wl, float(psf_energy))


def _conv_operator(kernel: np.ndarray, shape: tuple[int, int]) -> sp.csr_matrix:
    """Valid 2-D convolution of a padded ``(ny+2R, nx+2R)`` plane with ``kernel`` as CSR."""
    ny, nx = shape
    r = kernel.shape[0] // 2
    nxp = nx + 2 * r
    flipped = kernel[::-1, ::-1].ravel()
    ta, tb = np.divmod(np.flatnonzero(flipped > 0), 2 * r + 1)
    taps = flipped[flipped > 0]
    ii, jj = np.divmod(np.arange(ny * nx), nx)
    cols = (ii[:, None] + ta[None, :]) * nxp + (jj[:, None] + tb[None, :])
    indptr = np.arange(ny * nx + 1, dtype=np.int64) * taps.size
    data = np.broadcast_to(taps, cols.shape).ravel()
    n_cols = (ny + 2 * r) * nxp
    return sp.csr_matrix((data, cols.ravel(), indptr), shape=(ny * nx, n_cols))


def image_operator(
    lens: LensConfig,
    *,
    scene_shape: tuple[int, int],
    scene_fov_deg: float,
    dx_um: float,
    shape: tuple[int, int],
    radiance_w_m2_sr: float = 1.0,
    channel: int = 0,
    psf: PsfMode = "auto",
    psf_energy: float = 0.98,
) -> sp.csr_matrix:
    """Sparse linear map from scene values to photons/s per image-plane sample.

    Parameters
    ----------
    lens : LensConfig
    scene_shape : (H, W)
        Scene size in pixels.
    scene_fov_deg : float
        Full horizontal field of view of the scene in degrees, in (0, 180).
    dx_um : float
        Image-plane sample spacing (square samples) in µm.
    shape : (ny, nx)
        Image-plane size in samples, centred on the optical axis.
    radiance_w_m2_sr : float
        Radiance in W m⁻² sr⁻¹ that a scene value of 1.0 stands for.
    channel : int
        Which wavelength of the lens (scene channel) the operator is for.
    psf, psf_energy
        Blur treatment; see the module docstring (same defaults as :func:`form_image`).

    Returns
    -------
    op : scipy.sparse.csr_matrix, shape (ny*nx, H*W), float64
        ``(op @ scene[..., channel].ravel()).reshape(ny, nx)`` equals
        ``form_image(...)[..., channel]`` (row-major ravel, upright orientation).
    """
    _check_psf_args(psf, psf_energy)
    (h, w), fov, dx, (ny, nx), rad = _validate(
        lens, scene_shape, scene_fov_deg, dx_um, shape, radiance_w_m2_sr
    )
    if isinstance(channel, bool) or not isinstance(channel, int | np.integer):
        raise ValueError(f"channel must be an integer index, got {channel!r}")
    if not 0 <= channel < lens.n_channels:
        raise ValueError(
            f"channel must be in [0, {lens.n_channels - 1}] for wavelengths "
            f"{lens.wavelengths_nm} nm, got {channel}"
        )
    wl = lens.wavelengths_nm[channel]
    scale = _photons_per_unit(lens, fov, w, rad, wl)
    kernel = _blur_kernel(lens, dx, wl, psf, psf_energy)
    if kernel is None:
        return (_area_operator(lens, (h, w), fov, dx, (ny, nx)) * scale).tocsr()
    r = kernel.shape[0] // 2
    area = _area_operator(lens, (h, w), fov, dx, (ny + 2 * r, nx + 2 * r))
    op = (_conv_operator(kernel, (ny, nx)) @ area).tocsr()
    op *= scale
    op.sort_indices()
    return op


@lru_cache(maxsize=16)
def _kernel_rfft(kernel_key: tuple, my: int, mx: int) -> np.ndarray:
    lens, dx, wl, energy = kernel_key
    k = _kernel_cached(lens, dx, wl, energy)
    r = k.shape[0] // 2
    pad = np.zeros((my, mx))
    pad[: r + 1, : r + 1] = k[r:, r:]
    pad[: r + 1, mx - r :] = k[r:, :r]
    pad[my - r :, : r + 1] = k[:r, r:]
    pad[my - r :, mx - r :] = k[:r, :r]
    return scipy.fft.rfft2(pad)


def form_image(
    scene: np.ndarray,
    lens: LensConfig,
    *,
    scene_fov_deg: float,
    dx_um: float,
    shape: tuple[int, int],
    radiance_w_m2_sr: float = 1.0,
    psf: PsfMode = "auto",
    psf_energy: float = 0.98,
    workers: int = -1,
) -> np.ndarray:
    """Render a scene onto the image plane as photon flux per sample.

    Parameters
    ----------
    scene : (H, W) or (H, W, C) array_like of float
        Linear, non-negative scene values, row 0 = top; ``C`` must equal the number of lens
        wavelengths (a 2-D scene needs a single-wavelength lens). 1.0 ≙ ``radiance_w_m2_sr``.
    lens : LensConfig
    scene_fov_deg, dx_um, shape, radiance_w_m2_sr, psf, psf_energy
        See :func:`image_operator`.
    workers : int, optional
        Threads for the FFT (``scipy.fft`` ``workers``); -1 (default) uses all cores.

    Returns
    -------
    photons : (ny, nx) or (ny, nx, C) float64 array
        Mean photons per second collected by each image-plane sample, upright orientation.
    """
    arr = np.asarray(scene)
    if arr.ndim not in (2, 3) or not np.issubdtype(arr.dtype, np.number):
        raise ValueError(
            f"scene must be a numeric (H, W) or (H, W, C) array, got shape {arr.shape}"
        )
    n_ch = 1 if arr.ndim == 2 else arr.shape[2]
    if n_ch != lens.n_channels:
        raise ValueError(
            f"scene has {n_ch} channel(s) but the lens has {lens.n_channels} wavelength(s) "
            f"{lens.wavelengths_nm} nm; give one scene channel per wavelength_nm"
        )
    arr = arr.astype(np.float64, copy=False)
    if not np.all(np.isfinite(arr)) or np.any(arr < 0):
        raise ValueError("scene values must be finite and >= 0 (linear radiance units)")
    _check_psf_args(psf, psf_energy)
    (h, w), fov, dx, (ny, nx), rad = _validate(
        lens, arr.shape[:2], scene_fov_deg, dx_um, shape, radiance_w_m2_sr
    )
    planes = arr[:, :, None] if arr.ndim == 2 else arr
    out = np.empty((ny, nx, n_ch))
    for c, wl in enumerate(lens.wavelengths_nm):
        x = np.ascontiguousarray(planes[:, :, c]).ravel()
        scale = _photons_per_unit(lens, fov, w, rad, wl)
        kernel = _blur_kernel(lens, dx, wl, psf, psf_energy)
        if kernel is None:
            img = _area_operator(lens, (h, w), fov, dx, (ny, nx)) @ x
            out[:, :, c] = img.reshape(ny, nx) * scale
            continue
        r = kernel.shape[0] // 2
        nyp, nxp = ny + 2 * r, nx + 2 * r
        img = (_area_operator(lens, (h, w), fov, dx, (nyp, nxp)) @ x).reshape(nyp, nxp)
        my, mx = scipy.fft.next_fast_len(nyp, real=True), scipy.fft.next_fast_len(nxp, real=True)
        kf = _kernel_rfft((lens, dx, wl, float(psf_energy)), my, mx)
        spec = scipy.fft.rfft2(img, s=(my, mx), workers=workers)
        spec *= kf
        full = scipy.fft.irfft2(spec, s=(my, mx), workers=workers)
        out[:, :, c] = full[r : r + ny, r : r + nx] * scale
    return out[:, :, 0] if arr.ndim == 2 else out
