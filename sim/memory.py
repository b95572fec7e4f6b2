"""Memory a camera will need, estimated from its configuration before anything is built.

A configuration can be valid field by field and still be impossible to run: 8192 × 8192
fibers, a 65536² sensor, a relay blur of hundreds of pixels, 64 samples per fiber pitch on a
large face. :func:`camera_memory` estimates, from sizes alone (no array proportional to the
camera is allocated), the peak memory of building a :class:`sim.camera.Camera` and taking
frames with it, stage by stage; :func:`check_camera_memory` compares it with the memory
budget (:func:`keycam.limits.check_memory`) and names the stage and the fields to reduce.

Each stage's estimate is (upper bound of its non-zeros) × (bytes per non-zero while it is
built, including temporaries). The non-zero bounds follow from the operators' construction
(:mod:`sim.stages`): the lens operator has at most ``(ceil(r) + 1)²`` scene pixels per image
sample of pitch ``r`` scene pixels before the PSF, times the PSF kernel's support; a fiber
core covers at most ``(ceil(d / dx) + 2)²`` samples; a fiber's spot on the sensor at most
``(ceil((d |m| + 2 · 5 σ) / p) + 3)²`` pixels; a Gaussian relay blur of half-width ``h``
pixels makes ``(H · min(2h + 3, H)) · (W · min(2h + 3, W))`` non-zeros. The bytes per
non-zero were calibrated against ``tracemalloc`` peaks of real builds and include a safety
margin; the tests check that the estimate stays above the measured peak.
"""

from __future__ import annotations

import math
from typing import Any

from keycam.limits import check_memory
from sim.colour import n_channels
from sim.config import CameraConfig

__all__ = ["camera_memory", "check_camera_memory", "frames_memory"]

_HEX_ROW = math.sqrt(3.0) / 2.0
# Bytes per non-zero of a sparse operator while it is built: CSR data + indices (12-16 B)
# plus COO/concatenation/product temporaries.
_NNZ_BUILD = 48
_NNZ_KEEP = 16
_BAND_BUILD = 36  # the relay blur's Kronecker band and its product with the spots
_PER_FIBER = 400  # key arrays, crosstalk, transfer product, readout vectors, bias (bytes)
_PER_PIXEL = 120  # sensor maps (PRNU, DSNU), gain/offset planes, frame temporaries (bytes)


def _face_extent_um(fp: Any) -> tuple[float, float]:
    """Width and height of the fiber site centres' bounding box plus one core, µm."""
    if fp.lattice == "square":
        w = (fp.cols - 1) * fp.pitch_um
        h = (fp.rows - 1) * fp.pitch_um
    else:
        w = (fp.cols - 1 + (0.5 if fp.rows > 1 else 0.0)) * fp.pitch_um
        h = (fp.rows - 1) * fp.pitch_um * _HEX_ROW
    return w + fp.core_diameter_um, h + fp.core_diameter_um


def _kernel_radius(config: CameraConfig, dx_um: float) -> int:
    """Radius in samples of the largest PSF kernel the lens operators will use (0: none)."""
    from optics.lens import psf_is_negligible, psf_kernel

    radius = 0
    for wl in config.lens.wavelengths_nm:
        if not psf_is_negligible(config.lens, dx_um=dx_um, wavelength_nm=wl):
            radius = max(
                radius, psf_kernel(config.lens, dx_um=dx_um, wavelength_nm=wl).shape[0] // 2
            )
    return radius


def camera_memory(config: CameraConfig) -> dict[str, float]:
    """Estimated peak memory of building a camera and taking one frame, bytes per stage.

    Returns
    -------
    dict
        Per stage, what it keeps plus what building it needs on top: ``lens``, ``sampling``,
        ``coupling``, ``key`` (key and transfer, twice: the camera and its conventional
        twin), ``sensor``, ``readout`` (the public per-site readout's factorisation),
        ``printed`` (routing the key for its printed transmission, if the camera uses it); and
        ``total``: everything kept plus the largest building stage (stages are built one
        after another).
    """
    fp, sc, sn, cp = config.faceplate, config.scene, config.sensor, config.coupling
    n_f = fp.rows * fp.cols
    rows_s, cols_s = sc.shape_px
    n_scene = rows_s * cols_s
    ch = n_channels(config.colour)
    h_px, w_px = sn.height_px, sn.width_px
    n_px = h_px * w_px
    dx = fp.pitch_um / config.samples_per_pitch
    ext_x, ext_y = _face_extent_um(fp)
    ny, nx = math.ceil(ext_y / dx - 1e-9), math.ceil(ext_x / dx - 1e-9)
    n_s = ny * nx

    # lens: scene pixels per sample r, from the field of view (as CameraConfig resolves it)
    if sc.fov_deg is not None:
        fov = math.radians(float(sc.fov_deg))
    else:
        fov = 2.0 * math.atan(0.5 * (ext_x - fp.core_diameter_um + fp.pitch_um) * 1e-3
                              / config.lens.image_distance_mm)  # fmt: skip
    scene_px_um = config.lens.image_distance_mm * 1e3 * 2.0 * math.tan(fov / 2.0) / cols_s
    r = dx / scene_px_um
    per_sample = (math.ceil(r) + 1) ** 2
    if any(config.lens.distortion_coeffs):
        per_sample *= 4
    # A cheap first bound; the PSF kernel is looked at only if this fits the budget.
    lens_nnz = float(n_s * min(per_sample, n_scene))
    radius = 0
    if lens_nnz * _NNZ_BUILD * ch < 64 * 2**30:
        radius = _kernel_radius(config, dx)
    lens_build = lens_nnz  # the area operator
    if radius:
        taps = (2 * radius + 1) ** 2
        lens_build = (ny + 2 * radius) * (nx + 2 * radius) * per_sample + n_s * taps
        lens_nnz = n_s * min((math.ceil((2 * radius + 1) * r) + 2) ** 2, n_scene)
        lens_build += lens_nnz
    core_s = math.ceil(fp.core_diameter_um / dx) + 2
    sampling_nnz = n_f * core_s**2
    fused_nnz = n_f * min(
        (math.ceil((fp.core_diameter_um / dx + 2 * radius) * r) + 3) ** 2, n_scene
    )

    # coupling: fiber spots on the sensor, then the relay blur as a Kronecker band product
    p = sn.pixel_pitch_um
    sigma2 = cp.blur_um**2 - p * p / 12.0
    half = math.ceil(5.0 * math.sqrt(sigma2) / p) + 1 if sigma2 > 0 else 0
    spot = math.ceil((fp.core_diameter_um * abs(cp.magnification) + 2 * half * p) / p) + 3
    coupling_nnz = n_f * min(spot**2, n_px)
    band = min(2 * half + 1, h_px) * h_px * min(2 * half + 1, w_px) * w_px if half else 0
    # K^T K and its LU factors (direct up to 40 000 sites, fill grows like n^1.5)
    overlap = (spot / max(abs(cp.magnification) * fp.pitch_um / p, 1e-9) + 2) ** 2
    normal_nnz = n_f * min(overlap, n_f)

    # (kept while the camera lives, transient while the stage is built), bytes
    stages = {
        "lens": (
            ch * (lens_nnz + fused_nnz) * _NNZ_KEEP + n_s * 64,
            ch * (lens_build + fused_nnz) * _NNZ_BUILD,
        ),
        "sampling": (sampling_nnz * _NNZ_KEEP, sampling_nnz * _NNZ_BUILD),
        "coupling": (coupling_nnz * _NNZ_KEEP, band * _BAND_BUILD + coupling_nnz * _NNZ_BUILD),
        "key": (2.0 * n_f * _PER_FIBER, n_f * _PER_FIBER),
        "sensor": (n_px * _PER_PIXEL * ch / 3, n_px * _PER_PIXEL * ch),
        "readout": (
            ch * (coupling_nnz * _NNZ_KEEP + 10.0 * n_f**1.5),
            normal_nnz * _NNZ_BUILD,
        ),
    }
    if config.transmission.source == "printed":
        # routing, sampling and checking the key once, for its printed transmission (cached)
        from fabrication.export import routing_memory

        stages["printed"] = (0.0, routing_memory(n_f))
    kept = sum(k for k, _ in stages.values())
    parts = {name: float(k + t) for name, (k, t) in stages.items()}
    parts["total"] = float(kept + max(t for _, t in stages.values()))
    return parts


_REDUCE = {
    "lens": "scene.shape_px, samples_per_pitch or faceplate.rows/cols",
    "sampling": "samples_per_pitch or faceplate.rows/cols",
    "coupling": "coupling.blur_um, coupling.magnification or sensor.width_px/height_px",
    "key": "faceplate.rows/cols",
    "sensor": "sensor.width_px/height_px",
    "readout": "faceplate.rows/cols or coupling.blur_um",
    "printed": 'faceplate.rows/cols, or transmission.source = "assumed"',
}


def check_camera_memory(config: CameraConfig, *, extra_bytes: float = 0.0) -> dict[str, float]:
    """Refuse a camera whose estimated memory (plus ``extra_bytes``) exceeds the budget.

    Returns the estimate (:func:`camera_memory`) when it fits.

    Raises
    ------
    keycam.limits.MemoryLimitError
        The message names the largest stage and the configuration fields that shrink it.
    """
    est = camera_memory(config)
    biggest = max((k for k in est if k != "total"), key=lambda k: est[k])
    check_memory(
        f"this camera ({biggest} stage the largest)",
        est["total"] + extra_bytes,
        reduce=_REDUCE[biggest],
    )
    return est


def frames_memory(config: CameraConfig, frames: int, *, chunk: int = 16) -> float:
    """Estimated memory of capturing ``frames`` frames at once (the stack plus a chunk), bytes."""
    n_px = config.sensor.width_px * config.sensor.height_px
    return float(frames) * n_px * 2 + min(frames, chunk) * n_px * 8 * 4
