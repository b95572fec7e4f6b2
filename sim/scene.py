"""Putting an arbitrary image onto the camera's scene grid.

A scene value is a radiance sample over a small solid angle, so resampling must conserve
the mean over area: :func:`resample_area` averages input pixels over each output cell,
weighted by their overlap (box filter; exact for integer and non-integer ratios, up or down).
Before resampling, :func:`fit_to_aspect` centre-crops the image to the aspect ratio of the
grid so that the scene fills the field of view without distortion.
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np
import scipy.sparse as sp

from sim.io import luminance

__all__ = ["area_matrix", "fit_to_aspect", "prepare_scene", "resample_area"]


@lru_cache(maxsize=32)
def area_matrix(n_in: int, n_out: int) -> sp.csr_matrix:
    """1-D area-averaging matrix from ``n_in`` cells to ``n_out`` cells on the same span.

    Returns
    -------
    (n_out, n_in) csr_matrix
        Row ``j`` holds the overlap of output cell ``j`` with each input cell, divided by the
        output cell's length, so every row sums to 1. Cached: do not modify the result.
    """
    if n_in < 1 or n_out < 1:
        raise ValueError(f"n_in and n_out must be >= 1 cells, got {n_in} and {n_out}")
    # Work in units of the input cell: output cell j spans [j*s, (j+1)*s), s = n_in / n_out.
    s = n_in / n_out
    rows, cols, vals = [], [], []
    for j in range(n_out):
        a, b = j * s, (j + 1) * s
        i0, i1 = int(np.floor(a)), min(int(np.ceil(b)), n_in)
        i = np.arange(i0, i1)
        w = np.minimum(i + 1, b) - np.maximum(i, a)
        keep = w > 1e-12
        rows.append(np.full(int(keep.sum()), j))
        cols.append(i[keep])
        vals.append(w[keep] / s)
    return sp.csr_matrix(
        (np.concatenate(vals), (np.concatenate(rows), np.concatenate(cols))), shape=(n_out, n_in)
    )


def fit_to_aspect(image: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    """Centre-crop ``image`` (H, W[, C]) to the aspect ratio of ``shape`` = (rows, cols)."""
    h, w = image.shape[:2]
    target = shape[1] / shape[0]  # width / height
    if w / h > target * (1 + 1e-9):
        new_w = max(1, round(h * target))
        x0 = (w - new_w) // 2
        return image[:, x0 : x0 + new_w]
    if w / h < target * (1 - 1e-9):
        new_h = max(1, round(w / target))
        y0 = (h - new_h) // 2
        return image[y0 : y0 + new_h]
    return image


def resample_area(image: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    """Area-average a 2-D image onto ``shape`` = (rows, cols) over the same extent.

    The mean of the image is preserved exactly; row 0 stays the top row.
    """
    image = np.asarray(image, dtype=np.float64)
    if image.ndim != 2:
        raise ValueError(f"image: expected a 2-D array, got shape {image.shape}")
    if image.shape == tuple(shape):
        return image.copy()
    rows, cols = (
        _selection(image.shape[0], int(shape[0])),
        _selection(image.shape[1], int(shape[1])),
    )
    if rows is not None and cols is not None:
        # Each output cell lies inside one input cell with weight exactly 1 (upsampling by a
        # power of two, e.g. 64 -> 256 px): the products below would compute 0.0 + 1.0 *
        # value per cell, the same numbers as taking the values directly.
        return (image + 0.0).take(rows, axis=0).take(cols, axis=1)
    rr = area_matrix(image.shape[0], int(shape[0]))
    rc = area_matrix(image.shape[1], int(shape[1]))
    return np.asarray(rc @ (rr @ image).T).T


@lru_cache(maxsize=32)
def _selection(n_in: int, n_out: int) -> np.ndarray | None:
    """The input cell of each output cell if :func:`area_matrix` only selects, else None."""
    m = area_matrix(n_in, n_out)
    if m.nnz != n_out or not np.all(m.data == 1.0) or not np.all(np.diff(m.indptr) == 1):
        return None
    idx = m.indices.copy()
    idx.flags.writeable = False
    return idx


def prepare_scene(scene: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    """Validate a linear scene, reduce colour to luminance, crop to aspect and resample.

    Parameters
    ----------
    scene : (H, W) or (H, W, 3) float
        Linear values in [0, 1] (1.0 is the configured scene radiance).
    shape : (rows, cols)
        The camera's scene grid.

    Returns
    -------
    (rows, cols) float64
        Luminance (Rec. 709 weights on linear RGB) on the scene grid.
    """
    scene = np.asarray(scene)
    if scene.ndim not in (2, 3) or (scene.ndim == 3 and scene.shape[2] != 3):
        raise ValueError(f"scene: expected shape (H, W) or (H, W, 3), got {scene.shape}")
    if scene.shape[0] < 1 or scene.shape[1] < 1:
        raise ValueError(f"scene: zero-size image {scene.shape}")
    if not np.issubdtype(scene.dtype, np.number) or np.issubdtype(scene.dtype, np.complexfloating):
        raise ValueError(f"scene: expected real numbers, got dtype {scene.dtype}")
    lum = luminance(scene)
    lo, hi = float(lum.min()), float(lum.max())
    if not (np.isfinite(lo) and np.isfinite(hi)):
        raise ValueError("scene: contains NaN or infinity")
    if lo < -1e-9 or hi > 1 + 1e-9:
        raise ValueError(
            f"scene: linear values must lie in [0, 1] (1.0 = configured radiance), "
            f"got {lo:g}..{hi:g}"
        )
    return np.clip(resample_area(fit_to_aspect(lum, shape), shape), 0.0, 1.0)
