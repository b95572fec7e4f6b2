"""Sparse linear operators of the faceplate: sampling, transfer and coupling.

All three are built once as ``scipy.sparse`` CSR matrices and reused across frames:

- :func:`sampling_operator` ``S`` — image-plane samples → flux entering each fiber core;
- :func:`transfer_operator` ``T, b`` — fiber inputs → output sites (crosstalk, transmission,
  routing) plus the stray-light bias;
- :func:`coupling_operator` ``C`` — output sites → sensor pixels.

so that the light on the sensor is ``C (T S x + b)`` for an image-plane picture ``x``.

Geometry follows :mod:`optics.faceplate.lattice` (x right, y down, µm from the face centre;
row 0 on top).
Overlaps of a circular core with a square sample or pixel are computed **analytically**
(exact area of a disk ∩ rectangle), so flat fields, moiré and misalignment are exact rather
than supersampling artefacts.
"""

from __future__ import annotations

import math

import numpy as np
import scipy.sparse as sp
from scipy.special import ndtr

from keycam.validation import int_pair, positive
from optics.faceplate.config import FaceplateConfig
from optics.faceplate.key import Key

__all__ = [
    "coupling_operator",
    "disk_grid_overlap",
    "sampling_operator",
    "transfer_factors",
    "transfer_operator",
]

_CHUNK_EVALS = 1 << 21  # corner evaluations per chunk (bounds temporary memory)


def _corner_area(x: np.ndarray, y: np.ndarray, radius: float) -> np.ndarray:
    """Signed area of ``disk(0, radius) ∩ [0, x] × [0, y]`` (odd in x and in y)."""
    r2 = radius * radius
    ax = np.minimum(np.abs(x), radius)
    ay = np.minimum(np.abs(y), radius)
    xc = np.sqrt(np.maximum(r2 - ay * ay, 0.0))
    # ∫_0^t sqrt(R² − u²) du = ½ (t sqrt(R² − t²) + R² asin(t/R))
    i_ax = 0.5 * (ax * np.sqrt(np.maximum(r2 - ax * ax, 0.0)) + r2 * np.arcsin(ax / radius))
    i_xc = 0.5 * (xc * ay + r2 * np.arcsin(np.minimum(xc / radius, 1.0)))
    outside = ax * ax + ay * ay > r2
    area = np.where(outside, ay * xc + i_ax - i_xc, ax * ay)
    return np.sign(x) * np.sign(y) * area


def disk_grid_overlap(
    centers_um: np.ndarray,
    radius_um: float,
    *,
    pitch_um: float,
    shape: tuple[int, int],
    origin_um: tuple[float, float],
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Exact overlap areas of disks with the cells of a square grid.

    Parameters
    ----------
    centers_um : (n, 2) float
        Disk centres ``(x, y)``, µm.
    radius_um : float
        Disk radius, µm.
    pitch_um : float
        Grid cell size, µm.
    shape : (ny, nx)
        Grid size in cells; cell ``(r, c)`` has flat index ``r * nx + c``.
    origin_um : (x0, y0)
        Position of the top-left corner of cell ``(0, 0)``, µm; cell ``(r, c)`` spans
        ``[x0 + c p, x0 + (c+1) p] × [y0 + r p, y0 + (r+1) p]``.

    Returns
    -------
    disk, cell : (m,) int64
        Indices of every overlapping (disk, cell) pair.
    area : (m,) float64
        Overlap area, µm² (> 0).
    """
    centers = np.asarray(centers_um, dtype=np.float64)
    ny, nx = (int(v) for v in shape)
    p = float(pitch_um)
    r = float(radius_um)
    x0, y0 = (float(v) for v in origin_um)
    k = math.ceil(2.0 * r / p) + 1  # cells a disk can touch along one axis
    n = centers.shape[0]
    per_disk = (k + 1) ** 2
    chunk = max(1, _CHUNK_EVALS // per_disk)
    j = np.arange(k + 1)
    out_d, out_c, out_a = [], [], []
    for s in range(0, n, chunk):
        cx = centers[s : s + chunk, 0]
        cy = centers[s : s + chunk, 1]
        c_lo = np.floor((cx - r - x0) / p).astype(np.int64)
        r_lo = np.floor((cy - r - y0) / p).astype(np.int64)
        ex = (x0 + (c_lo[:, None] + j[None, :]) * p) - cx[:, None]  # (m, k+1) edges rel. centre
        ey = (y0 + (r_lo[:, None] + j[None, :]) * p) - cy[:, None]
        g = _corner_area(ex[:, None, :], ey[:, :, None], r)  # (m, k+1 [y], k+1 [x])
        area = g[:, 1:, 1:] - g[:, :-1, 1:] - g[:, 1:, :-1] + g[:, :-1, :-1]  # (m, k, k)
        rr = r_lo[:, None, None] + j[None, :k, None]
        cc = c_lo[:, None, None] + j[None, None, :k]
        keep = (area > 1e-12 * r * r) & (rr >= 0) & (rr < ny) & (cc >= 0) & (cc < nx)
        d_idx = np.broadcast_to(np.arange(s, s + cx.size)[:, None, None], area.shape)
        out_d.append(d_idx[keep])
        out_c.append((rr * nx + cc)[keep])
        out_a.append(area[keep])
    if not out_d:
        e = np.zeros(0, dtype=np.int64)
        return e, e.copy(), np.zeros(0)
    return np.concatenate(out_d), np.concatenate(out_c), np.concatenate(out_a)


def sampling_operator(
    config: FaceplateConfig, *, dx_um: float, shape: tuple[int, int]
) -> sp.csr_matrix:
    """Image-plane samples → flux entering each fiber core.

    The image is a grid of ``shape = (ny, nx)`` square samples of side ``dx_um`` centred on
    the face centre, row 0 on top (y down). Entry ``(i, k)`` is the fraction of sample ``k``'s
    area covered by core ``i`` (exact disk ∩ square area / dx²), so an image holding the flux
    per sample (e.g. photons/s) gives the flux entering each core in the same unit, and a flat
    field covering the face delivers ``fill_factor ×`` its flux to the cores.

    Returns
    -------
    (n_fibers, ny * nx) float64 CSR, indexed by input fiber (row-major).
    """
    dx = positive("dx_um", dx_um, "µm")
    ny, nx = int_pair("shape", shape, "image-plane samples ny, nx")
    centers = config.site_centers_um()
    d, c, a = disk_grid_overlap(
        centers,
        0.5 * config.core_diameter_um,
        pitch_um=dx,
        shape=(ny, nx),
        origin_um=(-0.5 * nx * dx, -0.5 * ny * dx),
    )
    m = sp.csr_matrix((a / (dx * dx), (d, c)), shape=(config.n_fibers, ny * nx))
    m.sum_duplicates()
    return m


def transfer_factors(key: Key) -> tuple[sp.csr_matrix, sp.csr_matrix, sp.csr_matrix, np.ndarray]:
    """The transfer operator as its sparse factors: ``T = C_out @ PD @ C_in``.

    Applying the three factors in turn costs fewer operations than the explicit product when
    both faces have crosstalk (about 11 vs 23 non-zeros per fiber on a square lattice), so hot
    loops may prefer them; :func:`transfer_operator` returns the product.

    Returns
    -------
    c_out : (n, n) CSR
        Output-face crosstalk (``Key.crosstalk_out``).
    pd : (n, n) CSR
        Routing times transmission: ``pd[routing[i], i] = transmission[i]`` (0 for dead fibers).
    c_in : (n, n) CSR
        Input-face crosstalk (``Key.crosstalk_in``).
    bias : (n,) float64
        Stray-light offset at each output site, unit of ``Key.bias`` (photons/s).
    """
    n = key.n_fibers
    routing = np.asarray(key.routing)
    alive = ~np.asarray(key.dead)
    t = np.asarray(key.transmission) * alive
    # One entry per column: build CSC directly, then convert.
    pd = sp.csc_matrix((t, routing, np.arange(n + 1)), shape=(n, n)).tocsr()
    bias_sites = np.zeros(n)
    bias_sites[routing] = np.asarray(key.bias) * alive
    c_out = key.crosstalk_out
    bias = bias_sites if _is_identity(c_out) else c_out @ bias_sites
    return c_out, pd, key.crosstalk_in, np.asarray(bias, dtype=np.float64)


def transfer_operator(key: Key) -> tuple[sp.csr_matrix, np.ndarray]:
    """Fiber inputs → output sites: ``y = T x + bias``.

    ``T = C_out · P · diag(transmission, 0 for dead) · C_in`` where ``P[routing[i], i] = 1``.

    Returns
    -------
    T : (n_sites, n_fibers) float64 CSR
        Columns indexed by input fiber, rows by output site (row-major).
    bias : (n_sites,) float64
        Stray-light offset at each output site, in the unit of ``Key.bias`` (photons/s).
    """
    c_out, m, c_in, bias = transfer_factors(key)
    if not _is_identity(c_in):
        m = m @ c_in
    if not _is_identity(c_out):
        m = c_out @ m
    m = sp.csr_matrix(m)
    m.sort_indices()
    return m, bias


def _is_identity(m: sp.csr_matrix) -> bool:
    n = m.shape[0]
    if m.nnz != n:
        return False
    return bool(
        np.array_equal(m.indptr, np.arange(n + 1))
        and np.array_equal(m.indices, np.arange(n))
        and np.all(m.data == 1.0)
    )


def _gauss_band(n: int, sigma_px: float) -> sp.csr_matrix:
    """``(n, n)`` matrix: fraction of light at pixel j's centre landing in pixel i (Gaussian)."""
    half = min(math.ceil(5.0 * sigma_px) + 1, n - 1)  # no band beyond the sensor's edge
    offs = np.arange(-half, half + 1)
    w = ndtr((offs + 0.5) / sigma_px) - ndtr((offs - 0.5) / sigma_px)
    return sp.diags(w, offs, shape=(n, n), format="csr")


def coupling_operator(
    config: FaceplateConfig,
    *,
    pixel_pitch_um: float,
    sensor_shape: tuple[int, int],
    magnification: float = 1.0,
    offset_um: tuple[float, float] = (0.0, 0.0),
    rotation_deg: float = 0.0,
    blur_um: float = 0.0,
) -> sp.csr_matrix:
    """Output sites → sensor pixels: where each output core's light lands.

    The output face is imaged onto the sensor with magnification ``m`` (``m = 1``: butt
    coupling; ``0 < |m| < 1``: relay lens; negative ``m``: inverting relay), rotated by
    ``rotation_deg`` (clockwise as displayed, i.e. from +x towards +y with y down) about the
    face centre and shifted by ``offset_um`` (sensor µm, x right, y down); the face centre
    lands on the sensor centre plus the offset. Each core is a uniformly lit disk of diameter
    ``|m| · core_diameter_um``; entry ``(k, j)`` is the fraction of that disk on pixel ``k``
    (exact overlap area / disk area), so columns sum to 1 for cores fully on the sensor and
    beat patterns between fiber and pixel pitch (moiré) appear naturally.

    ``blur_um`` is the Gaussian σ (µm on the sensor) of the relay's PSF. It is applied as a
    separable pixel-to-pixel redistribution; as that step treats the light of each pixel as
    if it sat at the pixel centre (adding the pixel's own box variance p²/12), the applied σ
    is ``sqrt(blur_um² − p²/12)`` (no extra blur when ``blur_um`` is below ``p/√12``). Light
    blurred beyond the sensor edge is lost.

    Returns
    -------
    (H * W, n_sites) float64 CSR; pixel index ``row * W + col`` (row 0 on top), sites row-major.
    """
    p = positive("pixel_pitch_um", pixel_pitch_um, "µm")
    h, w = int_pair("sensor_shape", sensor_shape, "sensor pixels H, W")
    m = float(magnification)
    if not (math.isfinite(m) and m != 0.0):
        raise ValueError(f"magnification must be a finite non-zero number, got {magnification}")
    try:
        ox, oy = (float(v) for v in offset_um)
    except (TypeError, ValueError):
        raise ValueError(f"offset_um must be (x, y) in µm, got {offset_um!r}") from None
    rot = float(rotation_deg)
    blur = float(blur_um)
    if not (math.isfinite(ox) and math.isfinite(oy) and math.isfinite(rot)):
        raise ValueError(
            f"offset_um and rotation_deg must be finite, got {offset_um}, {rotation_deg}"
        )
    if not (math.isfinite(blur) and blur >= 0):
        raise ValueError(f"blur_um must be >= 0 µm, got {blur_um} µm")

    xy = config.site_centers_um()
    th = math.radians(rot)
    cs, sn = math.cos(th), math.sin(th)
    x = m * (cs * xy[:, 0] - sn * xy[:, 1]) + ox
    y = m * (sn * xy[:, 0] + cs * xy[:, 1]) + oy
    radius = 0.5 * abs(m) * config.core_diameter_um
    d, c, a = disk_grid_overlap(
        np.column_stack([x, y]),
        radius,
        pitch_um=p,
        shape=(h, w),
        origin_um=(-0.5 * w * p, -0.5 * h * p),
    )
    cm = sp.csr_matrix((a / (math.pi * radius * radius), (c, d)), shape=(h * w, config.n_fibers))
    cm.sum_duplicates()
    sigma2 = blur * blur - p * p / 12.0
    if sigma2 > 0:
        s_px = math.sqrt(sigma2) / p
        cm = sp.csr_matrix(sp.kron(_gauss_band(h, s_px), _gauss_band(w, s_px), format="csr") @ cm)
        cm.eliminate_zeros()
    return cm
