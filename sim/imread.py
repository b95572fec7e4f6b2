"""Reading scene images: bounded, validated decoding into linear floats.

:func:`read_image` validates and decodes 8/16-bit PNG, JPEG and TIFF files (grey, RGB, RGBA,
palette) into **linear** floats in [0, 1]: integer images are taken as sRGB-encoded and
linearised (IEC 61966-2-1); 32-bit float TIFFs are taken as already linear. Alpha is dropped
with a note. 16-bit colour PNGs, which Pillow reduces to 8 bits, are decoded at full
precision by :mod:`sim.png16` (with a bounded inflate).

Bounded: only a regular file is opened (a FIFO or device is refused at once); the header's
size is checked against ``max_pixels`` and the estimated decoding memory
(:func:`decode_bytes`) against the memory budget (:func:`keycam.limits.check_memory`) before
any pixel is decoded. Every failure raises :class:`ImageReadError`, a ``ValueError`` whose
message names the file, or :class:`keycam.limits.MemoryLimitError`.

The sRGB transfer functions (IEC 61966-2-1) live here too. The names are also available
from :mod:`sim.io`.
"""

from __future__ import annotations

import os
import struct
import warnings
import zlib
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from keycam.limits import MemoryLimitError, check_memory
from keycam.loading import InputError, open_regular
from sim.png16 import read_png16_colour, read_png16_header

__all__ = [
    "DEFAULT_MAX_PIXELS",
    "IMAGE_FORMATS",
    "ImageReadError",
    "SceneImage",
    "decode_bytes",
    "linear_to_srgb",
    "read_image",
    "srgb_to_linear",
]


def srgb_to_linear(v: np.ndarray) -> np.ndarray:
    """sRGB-encoded values in [0, 1] -> linear values in [0, 1] (IEC 61966-2-1)."""
    v = np.asarray(v, dtype=np.float64)
    return np.where(v <= 0.04045, v / 12.92, ((v + 0.055) / 1.055) ** 2.4)


def linear_to_srgb(v: np.ndarray) -> np.ndarray:
    """Linear values in [0, 1] -> sRGB-encoded values in [0, 1] (IEC 61966-2-1)."""
    v = np.clip(np.asarray(v, dtype=np.float64), 0.0, 1.0)
    return np.where(v <= 0.0031308, 12.92 * v, 1.055 * v ** (1 / 2.4) - 0.055)


#: Largest accepted image, in pixels (width x height); configurable per call / ``--max-pixels``.
DEFAULT_MAX_PIXELS = 50_000_000


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


def _bits_of(mode: str) -> int:
    if mode in ("1",):
        return 1
    if mode.startswith("I;16") or mode == "I":
        return 16
    if mode == "F":
        return 32
    return 8


#: Formats :func:`read_image` opens (Pillow's names; JPEG includes multi-picture files).
IMAGE_FORMATS = ("PNG", "JPEG", "TIFF")

# Bytes per pixel of Pillow's own storage of a mode, and of ``np.asarray`` of it.
_PIL_BYTES = {"1": 1, "L": 1, "P": 1, "I;16": 2, "I;16B": 2, "I;16L": 2, "I;16N": 2}
_ARRAY_BYTES = {"1": 1, "L": 1, "P": 3, "LA": 2, "PA": 4, "RGB": 3, "I;16": 2, "I;16B": 2}
_ARRAY_BYTES.update({"I;16L": 2, "I;16N": 2, "I": 4, "F": 4})
_GREY_MODES = ("1", "L", "LA", "La", "I", "F", "I;16", "I;16B", "I;16L", "I;16N")


def decode_bytes(width: int, height: int, mode: str, *, png16_channels: int = 0) -> int:
    """Estimated peak memory of reading a ``width x height`` image of Pillow ``mode``, bytes.

    Covers :func:`read_image` and putting the result on a scene grid (luminance and area
    resampling, :func:`sim.scene.prepare_scene`): the largest of Pillow's decoded image with
    its conversion and array copy, the array with the float64 result, and the result with a
    float64 luminance plane. ``png16_channels`` (3 or 4) selects the full-precision 16-bit
    colour PNG decoder (:func:`sim.png16.decode_bytes_per_pixel`).
    """
    n = int(width) * int(height)
    out = 8 if mode in _GREY_MODES else 24
    if png16_channels:
        from sim.png16 import decode_bytes_per_pixel

        arr = 2 * png16_channels
        stages = (decode_bytes_per_pixel(png16_channels), arr + out, out + 8)
    else:
        pil = _PIL_BYTES.get(mode, 4)
        conv = 4 if mode in ("P", "PA", "CMYK", "YCbCr", "LAB", "HSV") else 0
        arr = _ARRAY_BYTES.get(mode, 4)
        extra = 9 if mode == "F" else arr  # float path: isfinite mask and clipped copy
        stages = (pil + conv + arr, arr + extra + out, out + 8)
    return n * max(stages) + (1 << 20)


def read_image(path: str | os.PathLike[str], *, max_pixels: int = DEFAULT_MAX_PIXELS) -> SceneImage:
    """Read and validate a scene image as linear floats, within size and memory limits.

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
        Missing file, folder, FIFO or device, empty file, not an image, truncated or corrupt
        image, zero-size image, more than ``max_pixels`` pixels, or a 16-bit PNG stream that
        inflates past its declared size.
    keycam.limits.MemoryLimitError
        Decoding the image would need more memory than the budget
        (:func:`keycam.limits.check_memory`; estimated from the header by :func:`decode_bytes`
        before any pixel is decoded).

    Notes
    -----
    Only the header is read before the size and memory checks. Pillow's
    ``MAX_IMAGE_PIXELS`` is set to ``max_pixels`` while the file is open, as a second guard.
    """
    try:
        max_pixels = int(max_pixels)
    except (TypeError, ValueError):
        max_pixels = 0
    if max_pixels < 1:
        raise ValueError(f"max_pixels: must be >= 1 pixel, got {max_pixels}")
    from PIL import Image, UnidentifiedImageError

    p = Path(path)
    try:
        fh = open_regular(p, what="scene")
    except FileNotFoundError:
        raise ImageReadError(f"scene {p}: no such file") from None
    except InputError as exc:
        raise ImageReadError(str(exc)) from None
    except OSError as exc:
        raise ImageReadError(f"scene {p}: cannot read ({exc.strerror or exc})") from None
    notes: list[str] = []
    saved_limit = Image.MAX_IMAGE_PIXELS
    Image.MAX_IMAGE_PIXELS = max_pixels
    try:
        with fh, warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            if os.fstat(fh.fileno()).st_size == 0:
                raise ImageReadError(f"scene {p}: empty file (0 bytes), not an image")
            png = read_png16_header(fh)
            fh.seek(0)
            with Image.open(fh, formats=IMAGE_FORMATS) as opened:
                im: Image.Image = opened
                w, h = im.size
                mode = im.mode
                if w == 0 or h == 0:
                    raise ImageReadError(f"scene {p}: zero-size image ({w}x{h} pixels)")
                if w * h > max_pixels:
                    raise ImageReadError(
                        f"scene {p}: {w}x{h} = {w * h} pixels exceeds the limit of "
                        f"{max_pixels} pixels (raise it with --max-pixels)"
                    )
                channels16 = png.channels if png is not None and png.is_16bit_colour else 0
                full16 = channels16 > 0
                check_memory(
                    f"scene {p} ({w}x{h} pixels, {mode})",
                    decode_bytes(w, h, mode, png16_channels=channels16),
                    reduce="the image size (or --max-pixels)",
                )
                bits = _bits_of(mode)
                n_frames = int(getattr(im, "n_frames", 1))
                if n_frames > 1:
                    notes.append(f"{p.name}: {n_frames} frames in file, using the first")
                arr: np.ndarray | None = None
                if full16:
                    # Pillow decodes 16-bit colour PNGs at 8 bits; decode them ourselves.
                    arr = read_png16_colour(fh, max_pixels=max_pixels)
                    bits = 16
                    if arr is not None and arr.shape[2] == 4:
                        notes.append(f"{p.name}: alpha channel dropped")
                else:
                    if png is not None and png.bit_depth == 16 and png.colour_type in (2, 6):
                        notes.append(f"{p.name}: 16-bit colour PNG read at 8-bit precision "
                                     "(interlaced)")  # fmt: skip
                    im.load()
                    if mode in ("RGBA", "LA", "PA") or (mode == "P" and "transparency" in im.info):
                        notes.append(f"{p.name}: alpha channel dropped")
                    if mode == "P":
                        im = im.convert("RGBA" if "transparency" in im.info else "RGB")
                    if mode in ("CMYK", "YCbCr", "LAB", "HSV"):
                        im = im.convert("RGB")
                    arr = np.asarray(im)
                    im.close()
    except (ImageReadError, MemoryLimitError):
        raise
    except UnidentifiedImageError:
        raise ImageReadError(f"scene {p}: not a readable image (PNG, JPEG or TIFF)") from None
    except Image.DecompressionBombError:
        raise ImageReadError(
            f"scene {p}: image exceeds the limit of {max_pixels} pixels "
            "(raise it with --max-pixels)"
        ) from None
    # Pillow reports some malformed files (TIFF tags) as KeyError, TypeError or IndexError.
    except (
        OSError, SyntaxError, ValueError, EOFError, KeyError, TypeError, IndexError,
        struct.error, zlib.error,
    ) as exc:  # fmt: skip
        reason = " ".join(str(exc).split())[:200] or type(exc).__name__
        raise ImageReadError(f"scene {p}: truncated or corrupt image ({reason})") from None
    finally:
        Image.MAX_IMAGE_PIXELS = saved_limit
    assert arr is not None

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
            top = 2**bits - 1
            lut = srgb_to_linear(np.arange(top + 1) / top)
            full_range = int(np.iinfo(arr.dtype).max) <= top
            data = lut[arr if full_range else np.minimum(arr, top)]
        else:
            top_f = 65535.0 if bits == 16 else float(np.iinfo(arr.dtype).max)
            data = srgb_to_linear(np.clip(arr.astype(np.float64) / top_f, 0.0, 1.0))
    else:  # pragma: no cover - Pillow only yields the types above
        raise ImageReadError(f"scene {p}: unsupported sample type {arr.dtype}")
    return SceneImage(data=data, source=str(p), mode=mode, bits=bits, notes=tuple(notes))
