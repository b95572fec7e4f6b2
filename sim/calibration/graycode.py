"""Calibration patterns: binary-reflected Gray codes that name every fiber of the input face.

To measure a built faceplate's key, the camera is shown known patterns on its scene grid
(a monitor filling the field of view). Every input fiber ``(row, col)`` of the lattice gets
the binary-reflected Gray code of its column along x and of its row along y; frame ``k`` of
an axis lights the fibers whose code has bit ``k`` set (bit 0 is the least significant,
frames run from the coarsest stripes to the finest), optionally followed by its complement.
A white and a black frame give every output site its own on and off level. With ``b_x =
ceil(log2 cols)`` and ``b_y = ceil(log2 rows)`` bits, the set is ``b_x + b_y + 2`` frames, or
``2 (b_x + b_y) + 2`` with complements.

Scene pixels are assigned to the fiber whose footprint on the scene grid (from the camera's
public lens and sampling stages) is nearest, so the stripes follow the lattice, hexagonal
lattices included.

**Frame tags.** Two Gray frames swapped would decode to a different, equally valid routing.
To make the order checkable, every Gray frame lights its fibers at its own grey level, from
white down to about 60 % (linear) in manifest order; the decoder measures each frame's level
and refuses frames whose levels are out of order. Only the order is used, so any monotone
display response works.

A JSON manifest (:mod:`sim.calibration.manifest`) names each frame's role.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
from scipy.spatial import cKDTree

from sim.config import CameraConfig, comparable

__all__ = [
    "PatternFrame",
    "PatternSet",
    "camera_digest",
    "code_bits",
    "fiber_of_scene_pixel",
    "frames_needed",
    "gray_decode",
    "gray_encode",
    "make_patterns",
    "pattern_summary",
]

#: 8-bit grey value of the dimmest Gray frame: sRGB 203/255 is 60 % linear.
_DIMMEST_CODE = 203
#: A fiber must receive at least this fraction of its light from its own scene pixels.
_MIN_PURITY = 0.8


def gray_encode(i: np.ndarray | int) -> np.ndarray:
    """Binary-reflected Gray code of non-negative integers: ``i ^ (i >> 1)``."""
    i = np.asarray(i, dtype=np.int64)
    return i ^ (i >> 1)


def gray_decode(g: np.ndarray | int) -> np.ndarray:
    """Inverse of :func:`gray_encode` (prefix XOR of the bits)."""
    b = np.array(g, dtype=np.int64, copy=True)
    shift = b >> 1
    while np.any(shift):
        b ^= shift
        shift >>= 1
    return b


def code_bits(n: int) -> int:
    """Bits a Gray code needs to name ``n`` positions: ``ceil(log2 n)`` (0 for ``n <= 1``)."""
    return max(0, int(n) - 1).bit_length()


def _srgb_to_linear(code: int) -> float:
    v = code / 255.0
    return v / 12.92 if v <= 0.04045 else ((v + 0.055) / 1.055) ** 2.4


def camera_digest(config: CameraConfig) -> str:
    """16 hex digits naming what the patterns depend on (scene grid, lens, lattice, sensor).

    The output-face registration (``coupling``) and the key recipe are left out: they are
    what calibration measures.
    """
    fp, s = config.faceplate, config.sensor
    doc = {
        "scene": config.scene.model_dump(mode="json"),
        # a lens field added later counts only where it is set
        "lens": comparable({"lens": config.lens.model_dump(mode="json")})["lens"],
        "samples_per_pitch": config.samples_per_pitch,
        "colour": config.colour,
        "faceplate": {
            f: getattr(fp, f) for f in ("lattice", "rows", "cols", "pitch_um", "core_diameter_um")
        },
        "sensor": {"width_px": s.width_px, "height_px": s.height_px, "bit_depth": s.bit_depth},
    }
    text = json.dumps(doc, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()[:16]


@dataclass(frozen=True)
class PatternFrame:
    """One frame of the pattern set.

    Attributes
    ----------
    name : str
        File stem of the pattern (``NAME.png``) and of the frame recorded for it.
    role : {"white", "black", "gray"}
    axis : {"x", "y"} or None
        Gray frames: the lattice index the code names (x: column, y: row).
    bit : int or None
        Gray frames: bit of the Gray code (0 = least significant).
    inverted : bool
        Gray frames: the complement (lit where the bit is 0).
    code_value : int
        8-bit sRGB grey of the lit parts (0 for the black frame).
    """

    name: str
    role: Literal["white", "black", "gray"]
    axis: Literal["x", "y"] | None = None
    bit: int | None = None
    inverted: bool = False
    code_value: int = 255

    @property
    def level(self) -> float:
        """Linear scene value of the lit parts (sRGB-decoded ``code_value``)."""
        return _srgb_to_linear(self.code_value)


@dataclass(frozen=True)
class PatternSet:
    """Gray-code calibration patterns for one camera.

    Attributes
    ----------
    frames : tuple of PatternFrame
        In display order: white, black, then the Gray frames (x then y, coarse to fine).
    images : (F, rows, cols) float64
        Linear scene values in [0, 1] on the camera's scene grid, row 0 on top.
    lit : (n_fibers, F) bool
        Whether each input fiber (row-major) is lit in each frame.
    digest : str
        :func:`camera_digest` of the camera the set was made for.
    lattice, rows, cols : str, int, int
        The faceplate lattice the codes name.
    bits_x, bits_y : int
        Gray-code bits along x (columns) and y (rows).
    complements : bool
        Whether every Gray frame is followed by its complement.
    scene_shape, sensor_shape : (int, int)
        Scene grid (rows, cols) and sensor (H, W), pixels.
    """

    frames: tuple[PatternFrame, ...]
    images: np.ndarray
    lit: np.ndarray
    digest: str
    lattice: str
    rows: int
    cols: int
    bits_x: int
    bits_y: int
    complements: bool
    scene_shape: tuple[int, int]
    sensor_shape: tuple[int, int]

    @property
    def n_frames(self) -> int:
        """Number of frames in the set."""
        return len(self.frames)

    def index(self, role: str) -> int:
        """Position of the (single) white or black frame."""
        return next(i for i, f in enumerate(self.frames) if f.role == role)

    def display_image(self, j: int) -> np.ndarray:
        """Frame ``j`` as shown: (rows, cols) uint8 sRGB grey values."""
        lit = self.images[j] > 0
        return np.where(lit, self.frames[j].code_value, 0).astype(np.uint8)


def _gray_codes(n_gray: int) -> list[int]:
    """Strictly decreasing 8-bit lit levels, white first, for the Gray frames."""
    span = max(255 - _DIMMEST_CODE, n_gray - 1)
    if n_gray == 1:
        return [255]
    codes = [255 - round(j * span / (n_gray - 1)) for j in range(n_gray)]
    if len(set(codes)) != n_gray or codes[-1] < 64:  # pragma: no cover - 13 bits per axis max
        raise ValueError(f"too many Gray frames ({n_gray}) for distinct 8-bit levels")
    return codes


def fiber_of_scene_pixel(camera: Any) -> tuple[np.ndarray, np.ndarray]:
    """Which input fiber each scene pixel addresses, from the public lens and sampling stages.

    Returns
    -------
    owner : (rows, cols) int64
        Fiber (row-major) whose footprint centroid on the scene grid is nearest.
    purity : (n_fibers,) float64
        Fraction of each fiber's light (white scene) that comes from its own pixels.

    Raises
    ------
    ValueError
        Fibers the scene grid does not reach.
    """
    sl = (camera.sampling_operator @ camera.lens_operators[0]).tocsr()
    rows, cols = camera.scene_shape
    r, c = np.divmod(np.arange(rows * cols), cols)
    total = np.asarray(sl.sum(axis=1)).ravel()
    dark = total <= 1e-12 * max(float(total.max()), 1e-300)
    if dark.any():
        raise ValueError(
            f"the scene grid does not reach {int(dark.sum())} of {total.size} fibers; "
            "widen scene.fov_deg so the patterns cover the whole input face"
        )
    cy = (sl @ r.astype(np.float64)) / total
    cx = (sl @ c.astype(np.float64)) / total
    _, owner = cKDTree(np.column_stack([cy, cx])).query(np.column_stack([r, c]))
    owner = np.asarray(owner, dtype=np.int64)
    coo = sl.tocoo()
    own = np.bincount(coo.row, weights=coo.data * (owner[coo.col] == coo.row), minlength=total.size)
    return owner.reshape(rows, cols), own / total


def make_patterns(camera: Any, *, complements: bool = True) -> PatternSet:
    """The calibration pattern set for a camera.

    Parameters
    ----------
    camera : sim.camera.Camera
        Only its public geometry is used (scene grid, lens, sampling, lattice, sensor size),
        never its key. Monochrome cameras only.
    complements : bool
        Follow every Gray frame by its complement (more robust, twice the Gray frames).

    Returns
    -------
    PatternSet

    Raises
    ------
    ValueError
        A colour camera, a scene grid that misses fibers or is too coarse to address each
        fiber on its own.
    """
    cfg = camera.config
    if cfg.colour != "mono":
        raise ValueError(
            f"colour = {cfg.colour!r}: calibration patterns are for monochrome cameras "
            "(colour = 'mono')"
        )
    fp = cfg.faceplate
    owner, purity = fiber_of_scene_pixel(camera)
    worst = float(purity.min())
    if worst < _MIN_PURITY:
        raise ValueError(
            f"scene.shape_px {tuple(camera.scene_shape)} is too coarse to address every fiber "
            f"on its own (a fiber gets only {100 * worst:.0f} % of its light from its own "
            "pixels); use a finer scene grid"
        )
    bx, by = code_bits(fp.cols), code_bits(fp.rows)
    row, col = np.divmod(np.arange(fp.n_fibers), fp.cols)
    specs: list[tuple[Literal["x", "y"], int, bool]] = []
    axes: tuple[tuple[Literal["x", "y"], int], ...] = (("x", bx), ("y", by))
    for axis, nbits in axes:
        for bit in reversed(range(nbits)):
            specs.append((axis, bit, False))
            if complements:
                specs.append((axis, bit, True))
    codes = _gray_codes(len(specs)) if specs else []
    frames = [PatternFrame("00_white", "white"), PatternFrame("01_black", "black", code_value=0)]
    lit = [np.ones(fp.n_fibers, bool), np.zeros(fp.n_fibers, bool)]
    for j, ((axis, bit, inv), code) in enumerate(zip(specs, codes, strict=True)):
        idx = col if axis == "x" else row
        on = ((gray_encode(idx) >> bit) & 1).astype(bool) ^ inv
        name = f"{j + 2:02d}_{axis}{bit}" + ("_inv" if inv else "")
        frames.append(PatternFrame(name, "gray", axis, bit, inv, code))
        lit.append(on)
    lit_arr = np.column_stack(lit)
    levels = np.array([f.level for f in frames])
    images = lit_arr[owner.ravel()].T * levels[:, None]
    rows, cols = camera.scene_shape
    return PatternSet(
        frames=tuple(frames),
        images=images.reshape(len(frames), rows, cols),
        lit=lit_arr,
        digest=camera_digest(cfg),
        lattice=fp.lattice,
        rows=fp.rows,
        cols=fp.cols,
        bits_x=bx,
        bits_y=by,
        complements=complements,
        scene_shape=(int(rows), int(cols)),
        sensor_shape=tuple(camera.frame_shape),
    )


def pattern_summary(patterns: PatternSet) -> str:
    """One line describing the set, e.g. ``14 frames: 6 + 6 Gray bits, white, black``."""
    comp = " with complements" if patterns.complements else ""
    return (
        f"{patterns.n_frames} frames: {patterns.bits_x} + {patterns.bits_y} Gray bits{comp}, "
        f"white, black ({patterns.rows} x {patterns.cols} {patterns.lattice} lattice)"
    )


def frames_needed(rows: int, cols: int, *, complements: bool) -> int:
    """Frames in the set for a ``rows × cols`` lattice."""
    g = code_bits(cols) + code_bits(rows)
    return 2 + (2 * g if complements else g)
