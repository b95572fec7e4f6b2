"""Colour: the monochrome sensor (luminance) and the RGGB Bayer option.

``colour = "mono"`` (default)
    The sensor has no colour filters and sees luminance: colour scenes are reduced with
    Rec. 709 weights on linear RGB; the lens has one wavelength.
``colour = "bayer_rggb"``
    An RGGB colour filter array sits on the sensor: pixel ``(r, c)`` sees red where ``r`` and
    ``c`` are even, blue where both are odd, green elsewhere (ideal filters: each pixel
    receives exactly its channel's band). The lens has three wavelengths ``(R, G, B)``, one
    per scene channel, each a band-integrated radiance of ``radiance_w_m2_sr`` at 1.0. The
    faceplate treats all bands alike; its stray light reaches every pixel whatever its
    filter. Frames stay raw mosaics (one value per pixel, ``uint16``).
"""

from __future__ import annotations

import numpy as np

from sim.scene import fit_to_aspect, prepare_scene, resample_area

__all__ = ["COLOURS", "cfa_masks", "n_channels", "prepare_colour_scene"]

COLOURS = ("mono", "bayer_rggb")


def n_channels(colour: str) -> int:
    """Number of scene channels a sensor of kind ``colour`` records (1 or 3)."""
    if colour not in COLOURS:
        raise ValueError(f"colour must be one of {COLOURS}, got {colour!r}")
    return 1 if colour == "mono" else 3


def cfa_masks(colour: str, shape: tuple[int, int]) -> np.ndarray:
    """Which pixel sees which channel.

    Returns
    -------
    (n_channels, H * W) float64
        1 where the pixel (row-major) sees the channel, else 0; columns sum to 1.
    """
    h, w = shape
    if n_channels(colour) == 1:
        return np.ones((1, h * w))
    r, c = np.divmod(np.arange(h * w), w)
    red = (r % 2 == 0) & (c % 2 == 0)
    blue = (r % 2 == 1) & (c % 2 == 1)
    return np.stack([red, ~(red | blue), blue]).astype(np.float64)


def prepare_colour_scene(scene: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    """Linear (H, W) or (H, W, 3) scene in [0, 1] -> (rows, cols, 3) on the scene grid.

    A grey scene becomes three equal channels; each channel is centre-cropped and
    area-resampled like :func:`sim.scene.prepare_scene` does for luminance.
    """
    scene = np.asarray(scene)
    if scene.ndim == 2:
        grey = prepare_scene(scene, shape)
        return np.repeat(grey[:, :, None], 3, axis=2)
    prepare_scene(scene, (1, 1))  # validates shape, dtype, range
    cropped = fit_to_aspect(np.asarray(scene, dtype=np.float64), shape)
    out = np.stack([resample_area(cropped[:, :, k], shape) for k in range(3)], axis=2)
    return np.clip(out, 0.0, 1.0)
