"""The public stages of a camera: everything built from its configuration, not its key.

Lens (one operator per colour channel), image-plane sampling, output-face coupling (with
the relay's collection efficiency), colour filter masks and the sensor device. Building
them is the expensive part of :class:`sim.camera.Camera`; a camera and its conventional
twin share them.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np
import scipy.sparse as sp

from optics.faceplate import Key, coupling_operator, sampling_operator
from optics.lens import image_operator
from optics.sensor import Sensor
from sim.colour import cfa_masks, n_channels
from sim.config import CameraConfig
from sim.pipeline import AffineStage, Pipeline

__all__ = ["PublicStages", "build_public_stages", "check_key", "sensor_coupling"]

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


@dataclass(frozen=True, eq=False)
class PublicStages:
    """Everything of a camera that does not depend on its key, built once.

    Attributes
    ----------
    sensor : optics.sensor.Sensor
        The sensor device.
    lens : tuple of (n_samples, rows * cols) CSR
        ``L`` per colour channel: scene values -> photons/s per image-plane sample.
    sampling : (n_fibers, n_samples) CSR
        ``S``: image-plane samples -> flux entering each fiber core.
    lens_sampling : tuple of (n_fibers, rows * cols) CSR
        ``S L`` per channel, fused once (far fewer non-zeros than ``L``).
    coupling : (n_pixels, n_sites) CSR
        ``K_c``: output sites -> pixels, times the relay's collection efficiency.
    masks : (n_channels, n_pixels) float
        Colour filter masks (all ones for a monochrome sensor).
    dx_um : float
        Image-plane sample pitch on the input face, µm.
    sample_shape : (int, int)
        The image-plane grid on the input face, covering every core.
    """

    sensor: Sensor
    lens: tuple[sp.csr_matrix, ...]
    sampling: sp.csr_matrix
    lens_sampling: tuple[sp.csr_matrix, ...]
    coupling: sp.csr_matrix
    masks: np.ndarray
    dx_um: float
    sample_shape: tuple[int, int]

    @property
    def n_channels(self) -> int:
        """Scene channels: 1 (mono) or 3 (RGGB Bayer)."""
        return len(self.lens)

    def _blocks(self, m: sp.csr_matrix, description: str, name: str) -> AffineStage:
        if self.n_channels == 1:
            return AffineStage(name, m, None, description)
        return AffineStage(
            name, sp.block_diag([m] * self.n_channels, format="csr"), None, description
        )

    def pipeline(self, transfer: sp.csr_matrix, bias_rate: np.ndarray, *, fused: bool) -> Pipeline:
        """The photon-rate pipeline of a camera with faceplate transfer ``transfer``.

        Scene grid (channels side by side) -> photons/s per pixel. ``bias_rate`` is the
        stray light per pixel (``K_c · bias``), added where the light reaches the pixels.
        With ``fused`` the lens and sampling stages are one (the cheaper form to apply).
        """
        c = self.n_channels

        def per_channel(ms: tuple[sp.csr_matrix, ...]) -> sp.csr_matrix:
            return ms[0] if c == 1 else sp.block_diag(ms, format="csr")

        if fused:
            head = [
                AffineStage(
                    "lens+sampling",
                    per_channel(self.lens_sampling),
                    None,
                    "scene -> photons/s entering each fiber core",
                )
            ]
        else:
            head = [
                AffineStage(
                    "lens",
                    per_channel(self.lens),
                    None,
                    "scene -> photons/s per image-plane sample",
                ),
                self._blocks(self.sampling, "image-plane samples -> fiber cores", "sampling"),
            ]
        tail = [self._blocks(transfer, "fiber inputs -> output sites (the key)", "transfer")]
        if c == 1:
            tail.append(
                AffineStage(
                    "coupling",
                    self.coupling,
                    bias_rate,
                    "output sites -> photons/s per pixel, plus stray light",
                )
            )
        else:
            tail.append(self._blocks(self.coupling, "output sites -> pixels", "coupling"))
            cfa = sp.hstack([sp.diags(m) for m in self.masks], format="csr")
            tail.append(
                AffineStage(
                    "colour_filter", cfa, bias_rate, "colour filter mosaic, plus stray light"
                )
            )
        return Pipeline([*head, *tail])


def sensor_coupling(config: CameraConfig) -> sp.csr_matrix:
    """``K_c`` (pixels × output sites): the output face imaged onto the sensor as placed by
    ``config.coupling`` (magnification, offset, rotation, blur), times the relay's collection
    efficiency. Public: it depends on the geometry only, never on the key."""
    fp, cp = config.faceplate, config.coupling
    geom = coupling_operator(
        fp,
        pixel_pitch_um=config.sensor.pixel_pitch_um,
        sensor_shape=(config.sensor.height_px, config.sensor.width_px),
        magnification=cp.magnification,
        offset_um=cp.offset_um,
        rotation_deg=cp.rotation_deg,
        blur_um=cp.blur_um,
    )
    return (geom * cp.efficiency(fp.numerical_aperture)).tocsr()


def build_public_stages(config: CameraConfig) -> PublicStages:
    """Build everything of a camera that does not depend on its key, once."""
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
    return PublicStages(
        sensor=Sensor(config.sensor),
        lens=lens_ops,
        sampling=s,
        lens_sampling=tuple((s @ op).tocsr() for op in lens_ops),
        coupling=sensor_coupling(config),
        masks=cfa_masks(config.colour, (config.sensor.height_px, config.sensor.width_px)),
        dx_um=dx,
        sample_shape=sample_shape,
    )
