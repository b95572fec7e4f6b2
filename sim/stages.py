"""The public stages of a camera: everything built from its configuration, not its key.

Lens (one operator per colour channel), image-plane sampling, output-face coupling (with
the relay's collection efficiency), colour filter masks and the sensor device. Building
them is the expensive part of :class:`sim.camera.Camera`; a camera and its conventional
twin share them.
"""

from __future__ import annotations

import math
from typing import Any

from optics.faceplate import Key, coupling_operator, sampling_operator
from optics.lens import image_operator
from optics.sensor import Sensor
from sim.colour import cfa_masks, n_channels
from sim.config import CameraConfig

__all__ = ["build_public_stages", "check_key"]

_LATTICE_FIELDS = ("lattice", "rows", "cols", "pitch_um", "core_diameter_um")


def check_key(config: CameraConfig, key: Key) -> None:
    """Raise ``ValueError`` unless ``key`` fits the lattice of ``config.faceplate``."""
    if not isinstance(key, Key):
        raise TypeError(f"key must be an optics.faceplate.Key, got {type(key).__name__}")
    want, have = config.faceplate, key.config
    if any(getattr(want, f) != getattr(have, f) for f in _LATTICE_FIELDS):

        def desc(c: Any) -> str:
            return (
                f"{c.rows}x{c.cols} {c.lattice} lattice at {c.pitch_um:g} µm pitch, "
                f"{c.core_diameter_um:g} µm cores"
            )

        raise ValueError(
            f"key {key.fingerprint} is for another lattice: {desc(have)}; "
            f"this camera's faceplate is a {desc(want)}"
        )


def build_public_stages(config: CameraConfig) -> dict[str, Any]:
    """Build everything of a camera that does not depend on its key, once.

    Returns a dict with ``sensor`` (:class:`optics.sensor.Sensor`), ``L`` (lens operators,
    one per channel), ``S`` (sampling), ``SL`` (``S @ L`` per channel), ``K`` (coupling
    times relay efficiency), ``masks`` (colour filter masks), ``dx_um`` and ``sample_shape``
    (the image-plane grid on the input face, covering every core).
    """
    fp, sc = config.faceplate, config.scene
    dx = fp.pitch_um / config.samples_per_pitch
    xy = fp.site_centers_um()
    ext_x = float(xy[:, 0].max() - xy[:, 0].min()) + fp.core_diameter_um
    ext_y = float(xy[:, 1].max() - xy[:, 1].min()) + fp.core_diameter_um
    sample_shape = (math.ceil(ext_y / dx - 1e-9), math.ceil(ext_x / dx - 1e-9))
    lens_ops = tuple(
        image_operator(
            config.lens,
            scene_shape=sc.shape_px,
            scene_fov_deg=config.scene_fov_deg,
            dx_um=dx,
            shape=sample_shape,
            radiance_w_m2_sr=sc.radiance_w_m2_sr,
            channel=c,
        )
        for c in range(n_channels(config.colour))
    )
    s = sampling_operator(fp, dx_um=dx, shape=sample_shape)
    cp = config.coupling
    geom = coupling_operator(
        fp,
        pixel_pitch_um=config.sensor.pixel_pitch_um,
        sensor_shape=(config.sensor.height_px, config.sensor.width_px),
        magnification=cp.magnification,
        offset_um=cp.offset_um,
        rotation_deg=cp.rotation_deg,
        blur_um=cp.blur_um,
    )
    k = (geom * cp.efficiency(fp.numerical_aperture)).tocsr()
    return {
        "sensor": Sensor(config.sensor),
        "L": lens_ops,
        "S": s,
        "SL": tuple((s @ op).tocsr() for op in lens_ops),
        "K": k,
        "masks": cfa_masks(config.colour, (config.sensor.height_px, config.sensor.width_px)),
        "dx_um": dx,
        "sample_shape": sample_shape,
    }
