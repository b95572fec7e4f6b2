"""Registration of the output face on the sensor, from a flat-field (white minus black) frame.

Which sensor pixels sit behind which output site is public geometry (the lattice and the
relay, :func:`optics.faceplate.coupling_operator`); what a built device gets wrong is its
placement: the face image lands a few pixels off, turned by a degree, a few percent larger.
:func:`register_face` estimates that placement as a similarity transform of the nominal site
positions on the sensor:

1. **Translation** -- the peak of the cross-correlation (FFT, zero-padded) of the measured
   flat field with the nominal one. The face outline makes the true peak the highest of the
   lattice's periodic peaks.
2. **Similarity** -- each lit site's centroid is measured in a disk of radius 0.42 pitch
   around its predicted position, and ``X = s R(φ) P + t`` is fitted by least squares
   (outliers trimmed). The fit starts with the sites near the face centre, where the
   prediction is already within a fraction of a pitch, and widens to the whole face as the
   rotation and scale settle.

Coordinates: sensor micrometres, x right, y down, origin at the sensor centre, as in
:func:`optics.faceplate.coupling_operator`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np
import scipy.sparse as sp
from scipy import ndimage

from sim.stages import sensor_coupling

__all__ = ["Registration", "register_face", "registered_coupling"]

_WINDOW = 0.42  # centroid disk radius, fiber pitches on the sensor
_FIRST_RADIUS = 0.15  # fraction of the face radius fitted first
_GROW = 1.6  # widening of the fitted part once it has settled
_MAX_PASSES = 40
_MIN_PITCH_PX = 2.0


@dataclass(frozen=True)
class Registration:
    """Placement of the output face image on the sensor.

    Attributes
    ----------
    magnification : float
        Face -> sensor magnification (sign of the nominal relay kept).
    rotation_deg : float
        Rotation of the face image, degrees (as ``CouplingConfig.rotation_deg``).
    offset_um : (float, float)
        Position of the face centre on the sensor, µm from the sensor centre (x right, y down).
    shift_px : (float, float)
        Offset change against the configuration, pixels (x, y).
    rotation_change_deg : float
        Rotation change against the configuration, degrees.
    scale_change_percent : float
        Magnification change against the configuration, percent.
    sites_used : int
        Output sites whose centroids entered the final fit.
    centroid_rms_px : float
        RMS distance of those centroids from the fitted positions, pixels.
    """

    magnification: float
    rotation_deg: float
    offset_um: tuple[float, float]
    shift_px: tuple[float, float]
    rotation_change_deg: float
    scale_change_percent: float
    sites_used: int
    centroid_rms_px: float

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready figures (public geometry, no key material)."""
        return {
            "magnification": self.magnification,
            "rotation_deg": self.rotation_deg,
            "offset_um": list(self.offset_um),
            "shift_px": list(self.shift_px),
            "rotation_change_deg": self.rotation_change_deg,
            "scale_change_percent": self.scale_change_percent,
            "sites_used": self.sites_used,
            "centroid_rms_px": self.centroid_rms_px,
        }


def _pixel_xy(config: Any) -> tuple[float, float, float]:
    """Pixel pitch and the µm position of pixel (0, 0)'s centre."""
    s = config.sensor
    p = float(s.pixel_pitch_um)
    return p, -0.5 * s.width_px * p + 0.5 * p, -0.5 * s.height_px * p + 0.5 * p


def _rot(deg: float) -> np.ndarray:
    t = math.radians(deg)
    return np.array([[math.cos(t), -math.sin(t)], [math.sin(t), math.cos(t)]])


def registered_coupling(camera: Any, reg: Registration) -> sp.csr_matrix:
    """Coupling operator (pixels × sites, with the relay's efficiency) for a registration."""
    cfg = camera.config
    placed = cfg.coupling.model_copy(
        update={
            "magnification": reg.magnification,
            "offset_um": reg.offset_um,
            "rotation_deg": reg.rotation_deg,
        }
    )
    return sensor_coupling(cfg.model_copy(update={"coupling": placed}))


def _translation_px(image: np.ndarray, model: np.ndarray, max_shift: float) -> np.ndarray:
    """Shift (dx, dy) in pixels that best moves ``model`` onto ``image`` (sub-pixel)."""
    h, w = image.shape
    fh, fw = 2 * h, 2 * w
    c = np.fft.irfft2(np.fft.rfft2(image, (fh, fw)) * np.conj(np.fft.rfft2(model, (fh, fw))))
    c = np.fft.fftshift(c, axes=(0, 1))  # zero shift at (h, w)
    yy = np.arange(fh) - h
    xx = np.arange(fw) - w
    ok = (np.abs(yy)[:, None] <= max_shift) & (np.abs(xx)[None, :] <= max_shift)
    masked = np.where(ok, c, -np.inf)
    iy, ix = np.unravel_index(int(np.argmax(masked)), c.shape)

    def vertex(a: float, b: float, d: float) -> float:
        den = a - 2 * b + d
        return 0.0 if den >= 0 else float(np.clip(0.5 * (a - d) / den, -0.5, 0.5))

    dy = vertex(c[iy - 1, ix], c[iy, ix], c[(iy + 1) % fh, ix]) if 0 < iy else 0.0
    dx = vertex(c[iy, ix - 1], c[iy, ix], c[iy, (ix + 1) % fw]) if 0 < ix else 0.0
    return np.array([xx[ix] + dx, yy[iy] + dy])


def _outline(image: np.ndarray, pitch_px: float) -> np.ndarray:
    """Where the face is, every lit site weighted alike: thresholded, blurred by a pitch.

    Sub-pitch detail is smoothed away so that a cross-correlation aligns the face outline
    rather than the nearest lattice phase; brightness (vignetting, transmission) is ignored.
    """
    lit = image[image > 0]
    if lit.size == 0:
        return np.zeros_like(image)
    mask = (image > 0.25 * float(np.percentile(lit, 99))).astype(np.float64)
    return ndimage.gaussian_filter(mask, sigma=pitch_px, mode="constant")


def _centroids(
    image: np.ndarray, pos_px: np.ndarray, radius_px: float
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Intensity centroids in disks around ``pos_px`` ((n, 2) as x, y in pixel indices).

    Returns centroids (n, 2), disk sums (n,) and a mask of disks fully on the sensor.
    """
    h, w = image.shape
    half = math.ceil(radius_px) + 1
    off = np.arange(-half, half + 1)
    n = pos_px.shape[0]
    cen = np.full((n, 2), np.nan)
    tot = np.zeros(n)
    inside = (
        (pos_px[:, 0] - radius_px >= -0.5)
        & (pos_px[:, 0] + radius_px <= w - 0.5)
        & (pos_px[:, 1] - radius_px >= -0.5)
        & (pos_px[:, 1] + radius_px <= h - 0.5)
    )
    chunk = max(1, 4_000_000 // off.size**2)
    for s in range(0, n, chunk):
        p = pos_px[s : s + chunk]
        cx = np.rint(p[:, 0]).astype(np.int64)[:, None, None] + off[None, None, :]
        cy = np.rint(p[:, 1]).astype(np.int64)[:, None, None] + off[None, :, None]
        d2 = (cx - p[:, 0, None, None]) ** 2 + (cy - p[:, 1, None, None]) ** 2
        on = (d2 <= radius_px**2) & (cx >= 0) & (cx < w) & (cy >= 0) & (cy < h)
        v = image[np.clip(cy, 0, h - 1), np.clip(cx, 0, w - 1)] * on
        sv = v.sum(axis=(1, 2))
        tot[s : s + chunk] = sv
        with np.errstate(invalid="ignore", divide="ignore"):
            cen[s : s + chunk, 0] = (v * cx).sum(axis=(1, 2)) / sv
            cen[s : s + chunk, 1] = (v * cy).sum(axis=(1, 2)) / sv
    return cen, tot, inside


def _fit_similarity(u: np.ndarray, x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Least squares ``x ≈ A u + t`` with ``A = [[a, -b], [b, a]]``; returns (A, t)."""
    n = u.shape[0]
    m = np.zeros((2 * n, 4))
    m[0::2] = np.column_stack([u[:, 0], -u[:, 1], np.ones(n), np.zeros(n)])
    m[1::2] = np.column_stack([u[:, 1], u[:, 0], np.zeros(n), np.ones(n)])
    sol, *_ = np.linalg.lstsq(m, x.reshape(-1), rcond=None)
    a, b, tx, ty = sol
    return np.array([[a, -b], [b, a]]), np.array([tx, ty])


def register_face(camera: Any, flat: np.ndarray) -> Registration:
    """Estimate where the output face lies on the sensor from a flat-field frame.

    Parameters
    ----------
    camera : sim.camera.Camera
        Supplies the public geometry (lattice, relay, sensor); its key is not used.
    flat : (H, W) float
        White minus black frame, any linear unit (e.g. photons); row 0 on top.

    Returns
    -------
    Registration

    Raises
    ------
    ValueError
        Fibers smaller than two pixels on the sensor, or a frame in which too few lit sites
        can be found near their expected places.
    """
    cfg = camera.config
    fp, cp = cfg.faceplate, cfg.coupling
    flat = np.clip(np.asarray(flat, dtype=np.float64), 0.0, None)
    h, w = flat.shape
    p, x0, y0 = _pixel_xy(cfg)
    pitch_px = abs(cp.magnification) * fp.pitch_um / p
    if pitch_px < _MIN_PITCH_PX:
        raise ValueError(
            f"the fiber pitch on the sensor is {pitch_px:.2f} px; calibration needs at least "
            f"{_MIN_PITCH_PX:g} px per fiber to tell output sites apart"
        )
    m0, rot0 = float(cp.magnification), float(cp.rotation_deg)
    o0 = np.asarray(cp.offset_um, dtype=np.float64)
    u = (m0 * (_rot(rot0) @ fp.site_centers_um().T)).T  # nominal, relative to the face centre
    nominal = np.asarray(camera.coupling_operator.sum(axis=1)).reshape(h, w)
    max_shift = max(0.25 * min(h, w), 3.0 * pitch_px)
    t = o0 + _translation_px(_outline(flat, pitch_px), _outline(nominal, pitch_px), max_shift) * p
    a = np.eye(2)
    radius_um = np.hypot(u[:, 0], u[:, 1])
    r_max = float(radius_um.max()) or 1.0
    n_min = min(fp.n_fibers, 12)
    frac = _FIRST_RADIUS
    used = np.zeros(fp.n_fibers, bool)
    resid_px = np.zeros(0)
    for _ in range(_MAX_PASSES):
        x = u @ a.T + t
        pos = np.column_stack([(x[:, 0] - x0) / p, (x[:, 1] - y0) / p])
        cen, tot, inside = _centroids(flat, pos, _WINDOW * pitch_px)
        lit = inside & np.isfinite(cen[:, 0])
        if lit.sum() >= 3:
            lit &= tot > 0.2 * np.median(tot[lit])
        near = radius_um <= frac * r_max
        if (near & lit).sum() < n_min and lit.sum() >= 3:
            near = radius_um <= np.sort(radius_um[lit])[min(n_min, int(lit.sum())) - 1]
        used = lit & near
        if used.sum() < 3:
            raise ValueError(
                "cannot register the output face: no lit fiber sites near their expected "
                "places in the white frame (frames from another camera, or the face is off "
                "the sensor)"
            )
        cen_um = np.column_stack([cen[:, 0] * p + x0, cen[:, 1] * p + y0])
        for _ in range(3):  # trim outliers (sites caught on a neighbour's light)
            a_new, t_new = _fit_similarity(u[used], cen_um[used])
            r = np.hypot(*((u[used] @ a_new.T + t_new) - cen_um[used]).T) / p
            mad = 1.4826 * float(np.median(np.abs(r - np.median(r))))
            keep = r <= max(3.0 * mad + float(np.median(r)), 0.05)
            if keep.all() or keep.sum() < 3:
                break
            idx = np.flatnonzero(used)
            used[idx[~keep]] = False
        a_new, t_new = _fit_similarity(u[used], cen_um[used])
        resid_px = np.hypot(*((u[used] @ a_new.T + t_new) - cen_um[used]).T) / p
        move = float(np.abs(u[near] @ (a_new - a).T + (t_new - t)).max()) / p
        a, t = a_new, t_new
        if frac >= 1.0 and move < 1e-3:
            break
        if move < 0.05:  # settled on this part of the face: widen
            frac = min(1.0, _GROW * frac)
    scale = float(math.hypot(a[0, 0], a[1, 0]))
    dphi = math.degrees(math.atan2(a[1, 0], a[0, 0]))
    rot = (rot0 + dphi + 180.0) % 360.0 - 180.0
    return Registration(
        magnification=m0 * scale,
        rotation_deg=rot,
        offset_um=(float(t[0]), float(t[1])),
        shift_px=(float((t[0] - o0[0]) / p), float((t[1] - o0[1]) / p)),
        rotation_change_deg=dphi,
        scale_change_percent=100.0 * (scale - 1.0),
        sites_used=int(used.sum()),
        centroid_rms_px=float(np.sqrt(np.mean(resid_px**2))) if resid_px.size else 0.0,
    )
