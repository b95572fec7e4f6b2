"""Files in and out of the camera: scene images, frames, sidecars and previews.

Reading
    :func:`read_image` validates and decodes 8/16-bit PNG, JPEG and TIFF files (grey, RGB,
    RGBA, palette) into **linear** floats in [0, 1]: integer images are taken as sRGB-encoded
    and linearised (IEC 61966-2-1); 32-bit float TIFFs are taken as already linear. Alpha is
    dropped with a note. 16-bit colour PNGs, which Pillow reduces to 8 bits, are decoded at
    full precision by :mod:`sim.png16`. Every failure (missing file, not an image,
    truncated, zero-size, larger than the pixel limit) raises :class:`ImageReadError`, a
    ``ValueError`` whose message names the file.

Writing
    Every writer goes through :func:`keycam.fileio.write_bytes_atomic`, so an error or Ctrl-C
    never leaves a half-written file; with ``overwrite=False`` an existing file is never
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
import warnings
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from keycam.fileio import write_bytes_atomic

__all__ = [
    "DEFAULT_MAX_PIXELS",
    "DEFAULT_SCENE_CREDIT",
    "REC709_WEIGHTS",
    "ImageReadError",
    "SceneImage",
    "default_scene_path",
    "linear_to_srgb",
    "luminance",
    "read_image",
    "srgb_to_linear",
    "write_frame_png",
    "write_json",
    "write_npy",
    "write_preview",
]

#: Largest accepted image, in pixels (width x height); configurable per call / ``--max-pixels``.
DEFAULT_MAX_PIXELS = 50_000_000

#: Rec. 709 / sRGB luminance weights applied to *linear* R, G, B.
REC709_WEIGHTS = (0.2126, 0.7152, 0.0722)

DEFAULT_SCENE_NAME = "grace_hopper.jpg"
DEFAULT_SCENE_CREDIT = (
    "grace_hopper.jpg from matplotlib's sample data: portrait of Rear Admiral Grace Hopper, "
    "US Navy photograph, public domain"
)


class ImageReadError(ValueError):
    """A scene file that cannot be used; the message names the file and the reason."""


@dataclass(frozen=True)
class SceneImage:
    """A decoded scene.

    Attributes
    ----------
    data : (H, W) or (H, W, 3) float64
        Linear values in [0, 1]; row 0 is the top of the image.
    source : str
        Where the scene came from (a path, or the default-scene credit).
    mode : str
        Pillow mode of the file (``"L"``, ``"I;16"``, ``"RGB"``, ...).
    bits : int
        Bits per channel in the file.
    notes : tuple of str
        Things the user should know (alpha dropped, precision reduced, ...).
    """

    data: np.ndarray
    source: str
    mode: str
    bits: int
    notes: tuple[str, ...] = field(default_factory=tuple)


def srgb_to_linear(v: np.ndarray) -> np.ndarray:
    """sRGB-encoded values in [0, 1] -> linear values in [0, 1] (IEC 61966-2-1)."""
    v = np.asarray(v, dtype=np.float64)
    return np.where(v <= 0.04045, v / 12.92, ((v + 0.055) / 1.055) ** 2.4)


def linear_to_srgb(v: np.ndarray) -> np.ndarray:
    """Linear values in [0, 1] -> sRGB-encoded values in [0, 1] (IEC 61966-2-1)."""
    v = np.clip(np.asarray(v, dtype=np.float64), 0.0, 1.0)
    return np.where(v <= 0.0031308, 12.92 * v, 1.055 * v ** (1 / 2.4) - 0.055)


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


def _bits_of(mode: str) -> int:
    if mode in ("1",):
        return 1
    if mode.startswith("I;16") or mode == "I":
        return 16
    if mode == "F":
        return 32
    return 8


def _png_is_16bit_colour(path: Path) -> bool:
    """True for a 16-bit RGB(A) PNG, which Pillow decodes at 8-bit precision."""
    with open(path, "rb") as fh:
        head = fh.read(29)
    return (
        len(head) == 29
        and head[:8] == b"\x89PNG\r\n\x1a\n"
        and head[12:16] == b"IHDR"
        and head[24] == 16
        and head[25] in (2, 6)
    )


def read_image(path: str | os.PathLike[str], *, max_pixels: int = DEFAULT_MAX_PIXELS) -> SceneImage:
    """Read and validate a scene image as linear floats.

    Parameters
    ----------
    path : path-like
        PNG (8/16-bit), JPEG or TIFF file; grey, RGB, RGBA or palette.
    max_pixels : int
        Largest accepted width x height, in pixels. Also bounds Pillow's
        decompression-bomb guard.

    Returns
    -------
    SceneImage
        ``data`` is (H, W) for grey files and (H, W, 3) for colour files, float64 linear in
        [0, 1]: integer samples are sRGB-decoded, float TIFF samples are clipped to [0, 1].

    Raises
    ------
    ImageReadError
        Missing file, directory, empty file, not an image, truncated or corrupt image,
        zero-size image, or more than ``max_pixels`` pixels.
    """
    if int(max_pixels) < 1:
        raise ValueError(f"max_pixels: must be >= 1 pixel, got {max_pixels}")
    from PIL import Image, UnidentifiedImageError

    p = Path(path)
    if not p.exists():
        raise ImageReadError(f"scene {p}: no such file")
    if p.is_dir():
        raise ImageReadError(f"scene {p}: is a directory, not an image file")
    size = p.stat().st_size
    if size == 0:
        raise ImageReadError(f"scene {p}: empty file (0 bytes), not an image")
    # Pillow warns above MAX_IMAGE_PIXELS and refuses above twice that, at open time; we
    # check the header ourselves and keep Pillow's guard (set to our limit, restored after)
    # as a second line of defence.
    notes: list[str] = []
    too_large = (
        f"scene {p}: image exceeds the limit of {int(max_pixels)} pixels "
        "(raise it with --max-pixels)"
    )
    saved_limit = Image.MAX_IMAGE_PIXELS
    Image.MAX_IMAGE_PIXELS = int(max_pixels)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            with Image.open(p) as opened:
                im: Image.Image = opened
                w, h = im.size
                if w == 0 or h == 0:
                    raise ImageReadError(f"scene {p}: zero-size image ({w}x{h} pixels)")
                if w * h > max_pixels:
                    raise ImageReadError(
                        f"scene {p}: {w}x{h} = {w * h} pixels exceeds the limit of "
                        f"{int(max_pixels)} pixels (raise it with --max-pixels)"
                    )
                im.load()
                mode = im.mode
                bits = _bits_of(mode)
                n_frames = int(getattr(im, "n_frames", 1))
                if n_frames > 1:
                    notes.append(f"{p.name}: {n_frames} frames in file, using the first")
                if mode in ("RGBA", "LA", "PA") or (mode == "P" and "transparency" in im.info):
                    notes.append(f"{p.name}: alpha channel dropped")
                if mode == "P":
                    im = im.convert("RGBA" if "transparency" in im.info else "RGB")
                if mode in ("CMYK", "YCbCr", "LAB", "HSV"):
                    im = im.convert("RGB")
                arr = np.asarray(im)
    except ImageReadError:
        raise
    except UnidentifiedImageError:
        raise ImageReadError(f"scene {p}: not a readable image (PNG, JPEG or TIFF)") from None
    except Image.DecompressionBombError:
        raise ImageReadError(too_large) from None
    except (OSError, SyntaxError, ValueError, EOFError) as exc:
        reason = " ".join(str(exc).split()) or type(exc).__name__
        raise ImageReadError(f"scene {p}: truncated or corrupt image ({reason})") from None
    finally:
        Image.MAX_IMAGE_PIXELS = saved_limit

    if _png_is_16bit_colour(p):
        # Pillow decodes 16-bit colour PNGs at 8 bits; decode them ourselves at 16 bits.
        from sim.png16 import read_png16_colour

        try:
            full = read_png16_colour(p)
        except ValueError:
            full = None
        if full is not None and full.shape[:2] == arr.shape[:2]:
            arr, bits = full, 16
        else:
            bits = 8
            notes.append(f"{p.name}: 16-bit colour PNG read at 8-bit precision (interlaced)")

    if arr.ndim == 3 and arr.shape[2] in (2, 4):  # LA / RGBA: drop alpha
        arr = arr[..., :-1]
    if arr.ndim == 3 and arr.shape[2] == 1:
        arr = arr[..., 0]
    if arr.ndim not in (2, 3) or (arr.ndim == 3 and arr.shape[2] != 3):
        raise ImageReadError(f"scene {p}: unsupported image layout {arr.shape} (mode {mode})")

    if arr.dtype == np.bool_:
        data = arr.astype(np.float64)
    elif np.issubdtype(arr.dtype, np.floating):
        data = np.asarray(arr, dtype=np.float64)
        if not np.all(np.isfinite(data)):
            raise ImageReadError(f"scene {p}: float image contains NaN or infinity")
        lo, hi = float(data.min()), float(data.max())
        if lo < 0.0 or hi > 1.0:
            notes.append(f"{p.name}: float samples outside [0, 1] ({lo:g}..{hi:g}) clipped")
        data = np.clip(data, 0.0, 1.0)
    elif np.issubdtype(arr.dtype, np.integer):
        if arr.dtype in (np.uint8, np.uint16) and bits in (8, 16):
            # Look-up table of the sRGB decoding: exact, and fast for large photos.
            full = 2**bits - 1
            lut = srgb_to_linear(np.arange(full + 1) / full)
            data = lut[np.minimum(arr, full)]
        else:
            top = 65535.0 if bits == 16 else float(np.iinfo(arr.dtype).max)
            data = srgb_to_linear(np.clip(arr.astype(np.float64) / top, 0.0, 1.0))
    else:  # pragma: no cover - Pillow only yields the types above
        raise ImageReadError(f"scene {p}: unsupported sample type {arr.dtype}")
    return SceneImage(data=data, source=str(p), mode=mode, bits=bits, notes=tuple(notes))


def _png_bytes(frame: np.ndarray) -> bytes:
    from PIL import Image

    buf = io.BytesIO()
    Image.fromarray(np.ascontiguousarray(frame, dtype=np.uint16)).save(buf, format="PNG")
    return buf.getvalue()


def write_frame_png(
    path: str | os.PathLike[str], frame: np.ndarray, *, overwrite: bool = True
) -> Path:
    """Write one raw frame as a 16-bit greyscale PNG (DN values unchanged).

    Parameters
    ----------
    frame : (H, W) uint16
        Raw sensor values in DN; row 0 is the top row of the sensor.
    """
    frame = np.asarray(frame)
    if frame.ndim != 2 or frame.dtype != np.uint16:
        raise ValueError(f"frame: expected (H, W) uint16, got {frame.shape} {frame.dtype}")
    return write_bytes_atomic(path, _png_bytes(frame), overwrite=overwrite)


def write_npy(path: str | os.PathLike[str], array: np.ndarray, *, overwrite: bool = True) -> Path:
    """Write ``array`` as a ``.npy`` file (no pickles)."""
    buf = io.BytesIO()
    np.save(buf, np.asarray(array), allow_pickle=False)
    return write_bytes_atomic(path, buf.getvalue(), overwrite=overwrite)


def write_json(path: str | os.PathLike[str], obj: Any, *, overwrite: bool = True) -> Path:
    """Write ``obj`` as indented JSON with sorted keys (byte-stable across runs)."""
    text = json.dumps(obj, indent=2, sort_keys=True, allow_nan=False) + "\n"
    return write_bytes_atomic(path, text.encode("utf-8"), overwrite=overwrite)


def write_preview(
    path: str | os.PathLike[str],
    panels: Sequence[np.ndarray],
    titles: Sequence[str],
    *,
    suptitle: str = "",
    panel_px: int = 320,
    overwrite: bool = True,
) -> Path:
    """Write a row of panels side by side, with titles, as an 8-bit PNG for people.

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
    return write_bytes_atomic(path, buf.getvalue(), overwrite=overwrite)
