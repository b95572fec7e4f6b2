"""Files in and out of the camera: scene images, frames, sidecars and previews.

Reading
    :func:`read_image` (from :mod:`sim.imread`) validates and decodes 8/16-bit PNG, JPEG and
    TIFF files (grey, RGB, RGBA, palette) into **linear** floats in [0, 1], within the pixel
    limit and the memory budget. Every failure (missing file, folder, FIFO, not an image,
    truncated, zero-size, larger than the pixel limit, a decompression bomb) raises
    :class:`ImageReadError`, a ``ValueError`` whose message names the file; an image whose
    decoding would exceed the memory budget raises :class:`keycam.limits.MemoryLimitError`
    before any pixel is decoded (:func:`decode_bytes`).

Writing
    ``*_bytes`` functions encode frames, stacks, sidecars and previews (for
    :class:`keycam.outputs.OutputSet`, which writes a run's files all or nothing); every
    ``write_*`` function goes through :func:`keycam.fileio.write_bytes_atomic`, so an error
    or Ctrl-C never leaves a half-written file; with ``overwrite=False`` an existing file is never
    replaced (``FileExistsError``). Frames are 16-bit greyscale PNGs (row 0 is the top of
    the image), stacks are ``.npy``, sidecars are sorted, indented JSON, previews are 8-bit
    PNGs composed with Pillow.

The default scene is the photograph ``grace_hopper.jpg`` that ships with matplotlib's sample
data (a public-domain US Navy portrait of Rear Admiral Grace Hopper).
"""

from __future__ import annotations

import importlib.util
import io
import json
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from keycam.fileio import write_bytes_atomic
from sim.imread import (
    DEFAULT_MAX_PIXELS,
    IMAGE_FORMATS,
    ImageReadError,
    SceneImage,
    decode_bytes,
    linear_to_srgb,
    read_image,
    srgb_to_linear,
)

__all__ = [
    "DEFAULT_MAX_PIXELS",
    "DEFAULT_SCENE_CREDIT",
    "IMAGE_FORMATS",
    "REC709_WEIGHTS",
    "ImageReadError",
    "SceneImage",
    "decode_bytes",
    "default_scene_path",
    "frame_png_bytes",
    "json_bytes",
    "linear_to_srgb",
    "luminance",
    "npy_bytes",
    "preview_png_bytes",
    "read_image",
    "srgb_to_linear",
    "write_frame_png",
    "write_json",
    "write_npy",
    "write_preview",
]

#: Rec. 709 / sRGB luminance weights applied to *linear* R, G, B.
REC709_WEIGHTS = (0.2126, 0.7152, 0.0722)

DEFAULT_SCENE_NAME = "grace_hopper.jpg"
DEFAULT_SCENE_CREDIT = (
    "grace_hopper.jpg from matplotlib's sample data: portrait of Rear Admiral Grace Hopper, "
    "US Navy photograph, public domain"
)


def luminance(image: np.ndarray) -> np.ndarray:
    """Relative luminance of a linear image.

    Parameters
    ----------
    image : (H, W) or (H, W, 3) float
        Linear values. A 2-D image is returned unchanged (as float64).

    Returns
    -------
    (H, W) float64
        ``0.2126 R + 0.7152 G + 0.0722 B`` (Rec. 709 primaries, linear light).
    """
    image = np.asarray(image, dtype=np.float64)
    if image.ndim == 2:
        return image
    if image.ndim == 3 and image.shape[2] == 3:
        return image @ np.asarray(REC709_WEIGHTS)
    raise ValueError(f"image: expected shape (H, W) or (H, W, 3), got {image.shape}")


def default_scene_path() -> Path:
    """Path of the bundled default scene (matplotlib's ``grace_hopper.jpg``).

    Found without importing matplotlib (which is slow to import); falls back to
    :func:`matplotlib.get_data_path` if the package layout is unusual.
    """
    spec = importlib.util.find_spec("matplotlib")
    if spec is not None and spec.origin:
        p = Path(spec.origin).parent / "mpl-data" / "sample_data" / DEFAULT_SCENE_NAME
        if p.is_file():
            return p
    import matplotlib

    p = Path(matplotlib.get_data_path()) / "sample_data" / DEFAULT_SCENE_NAME
    if not p.is_file():
        raise FileNotFoundError(2, "default scene not found", str(p))
    return p


def frame_png_bytes(frame: np.ndarray) -> bytes:
    """One raw frame as 16-bit greyscale PNG bytes (DN values unchanged).

    Parameters
    ----------
    frame : (H, W) uint16
        Raw sensor values in DN; row 0 is the top row of the sensor.
    """
    from PIL import Image

    frame = np.asarray(frame)
    if frame.ndim != 2 or frame.dtype != np.uint16:
        raise ValueError(f"frame: expected (H, W) uint16, got {frame.shape} {frame.dtype}")
    buf = io.BytesIO()
    Image.fromarray(np.ascontiguousarray(frame)).save(buf, format="PNG")
    return buf.getvalue()


def npy_bytes(array: np.ndarray) -> bytes:
    """``array`` as ``.npy`` bytes (no pickles)."""
    buf = io.BytesIO()
    np.save(buf, np.asarray(array), allow_pickle=False)
    return buf.getvalue()


def json_bytes(obj: Any) -> bytes:
    """``obj`` as indented JSON with sorted keys (byte-stable across runs), UTF-8."""
    return (json.dumps(obj, indent=2, sort_keys=True, allow_nan=False) + "\n").encode("utf-8")


def write_frame_png(
    path: str | os.PathLike[str], frame: np.ndarray, *, overwrite: bool = True
) -> Path:
    """Write one raw frame as a 16-bit greyscale PNG (see :func:`frame_png_bytes`)."""
    return write_bytes_atomic(path, frame_png_bytes(frame), overwrite=overwrite)


def write_npy(path: str | os.PathLike[str], array: np.ndarray, *, overwrite: bool = True) -> Path:
    """Write ``array`` as a ``.npy`` file (no pickles)."""
    return write_bytes_atomic(path, npy_bytes(array), overwrite=overwrite)


def write_json(path: str | os.PathLike[str], obj: Any, *, overwrite: bool = True) -> Path:
    """Write ``obj`` as indented JSON with sorted keys (byte-stable across runs)."""
    return write_bytes_atomic(path, json_bytes(obj), overwrite=overwrite)


def write_preview(
    path: str | os.PathLike[str],
    panels: Sequence[np.ndarray],
    titles: Sequence[str],
    *,
    suptitle: str = "",
    panel_px: int = 320,
    overwrite: bool = True,
) -> Path:
    """Write :func:`preview_png_bytes` of the panels to ``path`` atomically."""
    data = preview_png_bytes(panels, titles, suptitle=suptitle, panel_px=panel_px)
    return write_bytes_atomic(path, data, overwrite=overwrite)


def preview_png_bytes(
    panels: Sequence[np.ndarray],
    titles: Sequence[str],
    *,
    suptitle: str = "",
    panel_px: int = 320,
) -> bytes:
    """A row of panels side by side, with titles, as 8-bit PNG bytes for people.

    Parameters
    ----------
    panels : sequence of (H, W) or (H, W, 3) float arrays
        Display values in [0, 1] (clipped), grey or RGB, row 0 at the top. Each panel is scaled with
        nearest-neighbour sampling so that its longer side is ``panel_px`` pixels.
    titles : sequence of str
        One title per panel.
    suptitle : str
        A line above the panels.

    Notes
    -----
    Drawn with Pillow (no matplotlib import), so writing a preview costs milliseconds.
    """
    if len(panels) != len(titles) or not panels:
        raise ValueError("panels and titles: need one title per panel, at least one panel")
    from PIL import Image, ImageDraw, ImageFont

    try:
        font = ImageFont.load_default(size=14)
        small = ImageFont.load_default(size=12)
    except (OSError, TypeError):  # pragma: no cover - Pillow without FreeType
        font = small = ImageFont.load_default()
    pad, title_h = 10, 24
    top = 22 if suptitle else 4
    tiles = []
    for img in panels:
        a = np.clip(np.nan_to_num(np.asarray(img, dtype=np.float64)), 0.0, 1.0)
        if a.size == 0 or not (a.ndim == 2 or (a.ndim == 3 and a.shape[2] == 3)):
            raise ValueError(f"panels: each panel must be (H, W) or (H, W, 3), got {a.shape}")
        scale = panel_px / max(a.shape[:2])
        size = (max(1, round(a.shape[1] * scale)), max(1, round(a.shape[0] * scale)))
        tile = Image.fromarray(
            np.round(a * 255).astype(np.uint8), mode="L" if a.ndim == 2 else "RGB"
        )
        tiles.append(tile.resize(size, Image.Resampling.NEAREST))
    colour = any(t.mode == "RGB" for t in tiles)
    width = pad + sum(t.width + pad for t in tiles)
    height = top + title_h + max(t.height for t in tiles) + pad
    canvas = Image.new("RGB" if colour else "L", (width, height), "white")
    draw = ImageDraw.Draw(canvas)
    ink = (0, 0, 0) if colour else 0
    if suptitle:
        draw.text((pad, 4), suptitle, fill=ink, font=small)
    x = pad
    for tile, title in zip(tiles, titles, strict=True):
        draw.text((x, top + 4), title, fill=ink, font=font)
        canvas.paste(tile.convert(canvas.mode), (x, top + title_h))
        x += tile.width + pad
    buf = io.BytesIO()
    canvas.save(buf, format="PNG", optimize=False)
    return buf.getvalue()
