"""Raw frames from a real camera, read as DN for :meth:`sim.camera.Camera.readout`.

A frame is kept exactly as the camera's ADC gave it: no sRGB decoding, no scaling. Accepted
files: 16-bit greyscale PNG or TIFF (one frame; a multi-page TIFF gives one frame per page)
and NumPy ``.npy`` arrays of unsigned integers, shaped ``(H, W)`` or ``(F, H, W)`` (no
pickles). Many cameras store an ``n``-bit ADC value in the **top** bits of a 16-bit sample
(MSB-aligned, e.g. 12-bit data as multiples of 16); ``msb_aligned=True`` shifts such data back
down. Every value must fit the ADC (``< 2**bit_depth``), else the file is refused with its name.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

__all__ = ["FrameReadError", "read_frames"]


class FrameReadError(ValueError):
    """A raw-frame file that cannot be used (the message names the file and the reason)."""


def _from_image(p: Path, max_pixels: int) -> np.ndarray:
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(p) as im:
            if im.width * im.height > max_pixels:
                raise FrameReadError(
                    f"{p}: {im.width} x {im.height} px is more than max_pixels = {max_pixels}"
                )
            frames = []
            for i in range(int(getattr(im, "n_frames", 1))):
                im.seek(i)
                if im.mode not in ("I;16", "I;16B", "I;16L", "I"):
                    raise FrameReadError(
                        f"{p}: Pillow mode {im.mode!r} is not a 16-bit greyscale frame "
                        "(8-bit and colour files are pictures, not raw sensor data)"
                    )
                frames.append(np.array(im, dtype=np.int64))
    except (UnidentifiedImageError, OSError) as exc:
        raise FrameReadError(f"{p}: not a readable PNG/TIFF image ({exc})") from None
    return np.stack(frames)


def _from_npy(p: Path, max_pixels: int) -> np.ndarray:
    try:
        a = np.load(p, allow_pickle=False, mmap_mode="r")
    except (ValueError, OSError) as exc:
        raise FrameReadError(f"{p}: not a NumPy .npy array without pickles ({exc})") from None
    if a.ndim not in (2, 3) or a.shape[-1] * a.shape[-2] > max_pixels:
        raise FrameReadError(
            f"{p}: expected (H, W) or (F, H, W) with at most {max_pixels} px per frame, "
            f"got shape {a.shape}"
        )
    if a.dtype.kind != "u":
        raise FrameReadError(f"{p}: expected unsigned integer DN, got dtype {a.dtype}")
    a = np.asarray(a, dtype=np.int64)
    return a[None] if a.ndim == 2 else a


def read_frames(
    path: str | os.PathLike[str],
    *,
    bit_depth: int,
    msb_aligned: bool = False,
    max_pixels: int = 50_000_000,
) -> np.ndarray:
    """Read raw frames in DN from a 16-bit PNG/TIFF or an ``.npy`` file.

    Parameters
    ----------
    path : path-like
        ``.png``, ``.tif``/``.tiff`` (16-bit greyscale) or ``.npy`` (unsigned integers).
    bit_depth : int
        ADC resolution of the camera in bits, 1..16 (``SensorConfig.bit_depth``).
    msb_aligned : bool
        The file holds the ADC value in the top ``bit_depth`` of 16 (shift right by
        ``16 - bit_depth``); the low bits must then be zero.
    max_pixels : int
        Largest accepted frame, pixels.

    Returns
    -------
    (F, H, W) uint16
        Frames in DN, row 0 on top, in ``[0, 2**bit_depth - 1]``.

    Raises
    ------
    FrameReadError
        Missing or unreadable file, not 16-bit greyscale, wrong shape or dtype, values
        beyond the ADC range, or non-zero low bits in MSB-aligned data.
    """
    if isinstance(bit_depth, bool) or not isinstance(bit_depth, int) or not 1 <= bit_depth <= 16:
        raise ValueError(f"bit_depth: must be an integer 1..16 bits, got {bit_depth!r}")
    p = Path(path)
    if not p.is_file():
        raise FrameReadError(f"{p}: no such file")
    suffix = p.suffix.lower()
    if suffix == ".npy":
        a = _from_npy(p, max_pixels)
    elif suffix in (".png", ".tif", ".tiff"):
        a = _from_image(p, max_pixels)
    else:
        raise FrameReadError(f"{p}: unknown frame format {suffix!r} (use .png, .tif or .npy)")
    if msb_aligned:
        shift = 16 - bit_depth
        if a.max(initial=0) > 0xFFFF or np.any(a & ((1 << shift) - 1)):
            raise FrameReadError(
                f"{p}: not MSB-aligned {bit_depth}-bit data (values with the low {shift} "
                "bits set, or above 16 bits)"
            )
        a = a >> shift
    top = (1 << bit_depth) - 1
    if a.min(initial=0) < 0 or a.max(initial=0) > top:
        hint = "" if msb_aligned else "; MSB-aligned data? pass msb_aligned=True"
        raise FrameReadError(
            f"{p}: values {int(a.min())}..{int(a.max())} DN exceed a {bit_depth}-bit ADC "
            f"(0..{top} DN){hint}"
        )
    return a.astype(np.uint16)
