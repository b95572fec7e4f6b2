"""Calibration frames in and out: reading recorded frames, simulating them.

A recorded frame of pattern ``NAME`` is ``NAME.png`` (16-bit greyscale), ``NAME.tif`` /
``NAME.tiff`` (16-bit, several pages averaged) or ``NAME.npy`` (integer DN, ``(H, W)`` or a
``(k, H, W)`` stack, averaged), in one folder with the manifest. 8-bit or colour images are
refused: they are not raw frames (often the patterns themselves).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

__all__ = [
    "FRAME_SUFFIXES",
    "MAX_STACK",
    "find_frames",
    "read_frame",
    "read_frames",
    "simulate_frames",
]

FRAME_SUFFIXES = (".png", ".tif", ".tiff", ".npy")
MAX_STACK = 1000


def read_frame(path: str | Path, shape: tuple[int, int]) -> Any:
    """Read one recorded frame (or a stack to average) as float64 DN, shape ``(H, W)``.

    Accepts a 16-bit greyscale PNG or TIFF (several TIFF pages are averaged) or a ``.npy``
    array of integer DN, ``(H, W)`` or ``(k, H, W)`` (averaged). ``shape`` is the sensor's
    ``(H, W)``; a frame of another size is refused before it is decoded.

    Raises
    ------
    ValueError
        Unreadable file, 8-bit or colour image, wrong size, non-integer or negative values.
    """
    p = Path(path)
    h, w = shape
    if p.suffix.lower() == ".npy":
        try:
            a = np.load(p, allow_pickle=False, mmap_mode="r")
        except (OSError, ValueError) as exc:
            raise ValueError(f"frame {p}: not a readable .npy array ({exc})") from None
        if a.ndim not in (2, 3) or a.shape[-2:] != (h, w) or (a.ndim == 3 and a.shape[0] < 1):
            raise ValueError(
                f"frame {p}: array of shape {a.shape}; this camera's frames are "
                f"(H, W) = ({h}, {w}) or a (k, {h}, {w}) stack"
            )
        if a.ndim == 3 and a.shape[0] > MAX_STACK:
            raise ValueError(f"frame {p}: more than {MAX_STACK} frames in the stack")
        if not (np.issubdtype(a.dtype, np.integer) or a.dtype == np.bool_):
            raise ValueError(f"frame {p}: dtype {a.dtype}; raw frames hold integer DN")
        a = np.asarray(a, dtype=np.float64)
        return a.mean(axis=0) if a.ndim == 3 else a
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(p) as im:
            if im.size != (w, h):
                raise ValueError(
                    f"frame {p}: {im.size[0]}x{im.size[1]} px, this camera's sensor is "
                    f"{w}x{h} px (a frame from another camera?)"
                )
            if not im.mode.startswith("I"):
                kind = "an 8-bit" if im.mode in ("L", "P", "1") else f"a {im.mode}"
                raise ValueError(
                    f"frame {p}: {kind} image; raw frames are 16-bit greyscale "
                    "(PNG/TIFF) or .npy (is this a pattern, not a recorded frame?)"
                )
            pages = []
            for k in range(getattr(im, "n_frames", 1)):
                im.seek(k)
                pages.append(np.asarray(im, dtype=np.float64))
                if len(pages) > MAX_STACK:
                    raise ValueError(f"frame {p}: more than {MAX_STACK} pages")
    except ValueError:
        raise
    except (UnidentifiedImageError, OSError, SyntaxError, EOFError) as exc:
        reason = " ".join(str(exc).split()) or type(exc).__name__
        raise ValueError(f"frame {p}: not a readable 16-bit image ({reason})") from None
    a = np.mean(pages, axis=0)
    if a.min() < 0:
        raise ValueError(f"frame {p}: negative values; raw frames hold DN >= 0")
    return a


def find_frames(folder: str | Path, names: list[str]) -> list[Path]:
    """The frame file of every pattern name in ``folder``, in the given order.

    Raises
    ------
    ValueError
        A missing frame, a pattern with two frame files (two formats), or a frame file that
        belongs to no pattern of the set (naming the file).
    """
    d = Path(folder)
    found: dict[str, list[Path]] = {}
    for q in sorted(d.iterdir()):
        if q.is_file() and q.suffix.lower() in FRAME_SUFFIXES and not q.name.startswith("."):
            found.setdefault(q.stem, []).append(q)
    extra = sorted(set(found) - set(names))
    if extra:
        raise ValueError(
            f"{found[extra[0]][0]}: not a frame of the pattern set (the manifest lists "
            f"{len(names)} frames; {len(extra)} other frame file(s) in {d})"
        )
    out = []
    for name in names:
        files = found.get(name, [])
        if not files:
            raise ValueError(
                f"frame for pattern {name!r} is missing: expected {d / name}.png "
                "(or .tif, .tiff, .npy)"
            )
        if len(files) > 1:
            raise ValueError(
                f"pattern {name!r} has {len(files)} frame files "
                f"({', '.join(q.name for q in files)}); keep one"
            )
        out.append(files[0])
    return out


def read_frames(folder: str | Path, patterns: Any) -> np.ndarray:
    """All frames of a pattern set from ``folder``, ``(F, H, W)`` float64 DN, in set order.

    Each frame is ``NAME.png``, ``NAME.tif``, ``NAME.tiff`` or ``NAME.npy`` for the
    pattern ``NAME`` (:func:`find_frames`; :func:`read_frame` for the formats).
    """
    paths = find_frames(folder, [f.name for f in patterns.frames])
    return np.stack([read_frame(q, patterns.sensor_shape) for q in paths])


def simulate_frames(
    camera: Any, patterns: Any, *, rng: Any, exposure_s: float | None = None
) -> tuple[Any, float]:
    """Capture every pattern through the simulated camera (all noise on), one exposure.

    Parameters
    ----------
    camera : sim.camera.Camera
        The device (its key is what calibration should recover).
    patterns : sim.calibration.PatternSet
    rng : numpy.random.Generator
        Temporal noise.
    exposure_s : float, optional
        Default: the camera's exposure for the white pattern (``exposure_for``).

    Returns
    -------
    frames : (F, H, W) uint16
    exposure_s : float
    """
    white = patterns.images[patterns.index("white")]
    t = camera.exposure_for(white) if exposure_s is None else float(exposure_s)
    frames = np.stack([camera.capture(img, rng=rng, exposure_s=t) for img in patterns.images])
    return frames, t
