"""Scene sources for :mod:`sim.dataset`: a folder of image files or an array of images.

A source is opened once, in the process that plans the run (:func:`open_source`), which
checks everything that can be checked cheaply: the files exist, are images of an accepted
size, the array has the shape ``(N, H, W)`` or ``(N, H, W, 3)`` and a numeric type, labels
match the images. It returns a small picklable :class:`Source` that any worker -- a thread,
a process, a machine of a cluster that sees the same files -- uses to read the scenes of one
chunk (:meth:`Source.read`) as linear values in [0, 1]:

- **image files** (PNG, JPEG, TIFF; recursive) are decoded by :func:`sim.io.read_image`
  exactly as ``python -m sim.capture`` decodes them (sRGB integer samples linearised);
  with class sub-folders (``ROOT/CLASS/.../image.png``) the first folder level is the label,
  classes numbered in sorted order;
- **arrays** (``.npy``, memory-mapped; ``.npz``; a Zarr array or a group holding ``images``)
  are taken as linear: floats as they are, integers divided by their type's maximum (uint8
  by 255), unless ``encoding="srgb"`` decodes integers like image files. Labels come from a
  ``labels`` array beside the images (``.npz`` member, Zarr group member) or a separate file.

Only ``.npy`` and Zarr sources are read chunk by chunk on the workers; an ``.npz`` member is
read whole by the planning process (fine for small sets such as the bundled 5000 digits).
"""

from __future__ import annotations

import hashlib
import json
import os
import warnings
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Literal

import numpy as np

from sim.io import DEFAULT_MAX_PIXELS, ImageReadError, read_image, srgb_to_linear

__all__ = ["IMAGE_SUFFIXES", "Source", "open_source"]

#: File name endings taken as scene images in a folder (compared in lower case).
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".tif", ".tiff")

Encoding = Literal["linear", "srgb"]


@dataclass(frozen=True)
class Source:
    """Where the scenes of a dataset come from; picklable, small, read on the workers.

    Attributes
    ----------
    kind : {"folder", "npy", "npz", "zarr"}
    path : str
        Absolute path of the folder or array file/store.
    n : int
        Number of scenes (of this part, see :meth:`part`).
    files : tuple of str
        Image paths relative to ``path`` (folders), sorted.
    array : ndarray or None
        The images of an ``.npz`` source (read whole).
    array_name : str
        Member holding the images in a Zarr group (``""`` for a bare array).
    encoding : {"linear", "srgb"}
        How integer array samples become linear values.
    max_pixels : int
        Largest accepted image, pixels.
    labels : (n,) int64 or None
        Class of each scene.
    classes : tuple of str
        Class names (folder sources: the sub-folder names, label ``k`` = ``classes[k]``).
    fingerprint : str
        Hash of what identifies the input (file names and sizes, or shape, type and size of
        the array), so that a resumed run can check it reads the same input.
    offset : int
        Index of this part's first scene in the whole source (0 for a whole source).
    """

    kind: str
    path: str
    n: int
    files: tuple[str, ...] = ()
    array: np.ndarray | None = field(default=None, repr=False)
    array_name: str = ""
    encoding: Encoding = "linear"
    max_pixels: int = DEFAULT_MAX_PIXELS
    labels: np.ndarray | None = field(default=None, repr=False)
    classes: tuple[str, ...] = ()
    fingerprint: str = ""
    offset: int = 0

    def part(self, start: int, stop: int) -> Source:
        """The same source cut down to scenes ``start .. stop - 1`` (what one task needs).

        File lists and in-memory arrays are sliced, so a task carries only its own chunk;
        indices stay those of the whole source.
        """
        a, b = start - self.offset, stop - self.offset
        return replace(
            self,
            files=self.files[a:b],
            array=None if self.array is None else np.array(self.array[a:b]),
            labels=None,
            n=b - a,
            offset=start,
        )

    def read(self, start: int, stop: int) -> list[np.ndarray]:
        """Scenes ``start .. stop - 1`` as linear (H, W) or (H, W, 3) float arrays in [0, 1].

        Raises
        ------
        sim.io.ImageReadError
            An image file that cannot be decoded (the message names it).
        ValueError
            Array samples that are not finite or lie outside [0, 1] (floats); the message
            names the scene index.
        """
        if not self.offset <= start <= stop <= self.offset + self.n:
            raise IndexError(f"scenes {start}..{stop - 1} are not in this part of the source")
        if self.kind == "folder":
            root = Path(self.path)
            a, b = start - self.offset, stop - self.offset
            return [read_image(root / f, max_pixels=self.max_pixels).data for f in self.files[a:b]]
        block = self._array_block(start, stop)
        return [self._linear(block[k], start + k) for k in range(len(block))]

    def _array_block(self, start: int, stop: int) -> np.ndarray:
        if self.kind == "npz":
            assert self.array is not None  # an npz source always carries its array
            return self.array[start - self.offset : stop - self.offset]
        if self.kind == "npy":
            return np.load(self.path, mmap_mode="r", allow_pickle=False)[start:stop]
        import zarr

        node: Any = zarr.open(self.path, mode="r")
        arr = node[self.array_name] if self.array_name else node
        return np.asarray(arr[start:stop])

    def _linear(self, image: np.ndarray, index: int) -> np.ndarray:
        a = np.asarray(image)
        if a.dtype == np.bool_:
            return a.astype(np.float64)
        if np.issubdtype(a.dtype, np.integer):
            top = float(np.iinfo(a.dtype).max)
            if a.min() < 0:
                raise ValueError(f"scene {index}: negative integer samples in {self.path}")
            v = a.astype(np.float64) / top
            return srgb_to_linear(v) if self.encoding == "srgb" else v
        v = a.astype(np.float64)
        if not np.all(np.isfinite(v)):
            raise ValueError(f"scene {index}: NaN or infinite samples in {self.path}")
        lo, hi = float(v.min()), float(v.max())
        if lo < 0.0 or hi > 1.0:
            raise ValueError(
                f"scene {index}: float samples must be linear values in [0, 1], "
                f"got {lo:g}..{hi:g} in {self.path}"
            )
        return v


def _digest(obj: Any) -> str:
    return hashlib.sha256(json.dumps(obj, sort_keys=True).encode()).hexdigest()[:16]


def _probe_image(path: Path, max_pixels: int) -> None:
    """Cheap header check of one image file (full decoding happens on the workers)."""
    from PIL import Image, UnidentifiedImageError

    try:
        size = path.stat().st_size
    except OSError as exc:
        raise ImageReadError(f"scene {path}: cannot read ({exc.strerror})") from None
    if size == 0:
        raise ImageReadError(f"scene {path}: empty file (0 bytes), not an image")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            with Image.open(path) as im:
                w, h = im.size
    except UnidentifiedImageError:
        raise ImageReadError(f"scene {path}: not a readable image (PNG, JPEG or TIFF)") from None
    except Exception as exc:  # Pillow raises many types for damaged headers
        reason = " ".join(str(exc).split()) or type(exc).__name__
        raise ImageReadError(f"scene {path}: truncated or corrupt image ({reason})") from None
    if w == 0 or h == 0:
        raise ImageReadError(f"scene {path}: zero-size image ({w}x{h} pixels)")
    if w * h > max_pixels:
        raise ImageReadError(
            f"scene {path}: {w}x{h} = {w * h} pixels exceeds the limit of {max_pixels} "
            "pixels (raise it with --max-pixels)"
        )


def _folder(root: Path, max_pixels: int) -> Source:
    files: list[str] = []
    sizes: list[int] = []
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames[:] = sorted(d for d in dirnames if not d.startswith("."))
        for name in sorted(filenames):
            if name.startswith(".") or not name.lower().endswith(IMAGE_SUFFIXES):
                continue
            p = Path(dirpath) / name
            _probe_image(p, max_pixels)
            files.append(p.relative_to(root).as_posix())
            sizes.append(p.stat().st_size)
    if not files:
        raise ValueError(
            f"input {root}: no image files ({', '.join(IMAGE_SUFFIXES)}) in the folder "
            "or its sub-folders"
        )
    order = sorted(range(len(files)), key=lambda k: files[k])
    files = [files[k] for k in order]
    sizes = [sizes[k] for k in order]
    nested = ["/" in f for f in files]
    labels: np.ndarray | None = None
    classes: tuple[str, ...] = ()
    if all(nested):
        tops = [f.split("/", 1)[0] for f in files]
        classes = tuple(sorted(set(tops)))
        index = {c: k for k, c in enumerate(classes)}
        labels = np.array([index[t] for t in tops], dtype=np.int64)
    elif any(nested):
        loose = next(f for f, n in zip(files, nested, strict=True) if not n)
        raise ValueError(
            f"input {root}: images both at the top ({loose}) and in sub-folders; put every "
            "image in a class sub-folder (labels) or none (no labels)"
        )
    return Source(
        kind="folder",
        path=str(root.resolve()),
        n=len(files),
        files=tuple(files),
        max_pixels=max_pixels,
        labels=labels,
        classes=classes,
        fingerprint=_digest(["folder", files, sizes]),
    )


def _check_images(shape: tuple[int, ...], dtype: np.dtype, what: str, max_pixels: int) -> None:
    if len(shape) not in (3, 4) or (len(shape) == 4 and shape[3] != 3):
        raise ValueError(f"{what}: expected images of shape (N, H, W) or (N, H, W, 3), got {shape}")
    if shape[0] < 1 or shape[1] < 1 or shape[2] < 1:
        raise ValueError(f"{what}: no images (shape {shape})")
    if not (
        dtype == np.bool_ or np.issubdtype(dtype, np.integer) or np.issubdtype(dtype, np.floating)
    ):
        raise ValueError(f"{what}: expected real numbers, got dtype {dtype}")
    if shape[1] * shape[2] > max_pixels:
        raise ValueError(
            f"{what}: {shape[2]}x{shape[1]} = {shape[1] * shape[2]} pixels per image exceeds "
            f"the limit of {max_pixels} pixels (raise it with --max-pixels)"
        )


def _check_labels(labels: Any, n: int, what: str) -> np.ndarray:
    lab = np.asarray(labels)
    if lab.ndim != 1 or not np.issubdtype(lab.dtype, np.integer):
        raise ValueError(
            f"{what}: labels must be a 1-D integer array, got shape {lab.shape} dtype {lab.dtype}"
        )
    if len(lab) != n:
        raise ValueError(f"{what}: {len(lab)} labels for {n} images")
    return lab.astype(np.int64)


def _load_npz(path: Path, images_name: str) -> tuple[np.ndarray, np.ndarray | None]:
    try:
        with np.load(path, allow_pickle=False) as f:
            if images_name not in f.files:
                raise ValueError(
                    f"input {path}: no array {images_name!r} (has {', '.join(f.files) or 'none'})"
                )
            images = f[images_name]
            labels = f["labels"] if "labels" in f.files else None
    except (OSError, EOFError) as exc:
        raise ValueError(f"input {path}: not a readable .npz file ({exc})") from None
    return images, labels


def _zarr_node(path: Path, images_name: str) -> tuple[Any, str, Any]:
    import zarr

    try:
        node = zarr.open(str(path), mode="r")
    except Exception as exc:  # zarr raises several types for a folder that is no store
        raise ValueError(f"input {path}: not a Zarr array or group ({exc})") from None
    if isinstance(node, zarr.Group):
        if images_name not in node:
            raise ValueError(f"input {path}: Zarr group has no array {images_name!r}")
        labels = node["labels"] if "labels" in node else None
        return node[images_name], images_name, labels
    return node, "", None


def open_source(
    path: str | os.PathLike[str],
    *,
    labels: str | os.PathLike[str] | None = None,
    encoding: Encoding = "linear",
    max_pixels: int = DEFAULT_MAX_PIXELS,
    images_name: str = "images",
) -> Source:
    """Check an input and describe it for the workers.

    Parameters
    ----------
    path : path-like
        A folder of images (searched recursively; hidden files skipped), an ``.npy`` or
        ``.npz`` file, or a Zarr store (array, or group with an ``images`` array).
    labels : path-like, optional
        An ``.npy`` file with one integer label per image (array inputs without labels).
    encoding : {"linear", "srgb"}
        How integer array samples are read (image files are always sRGB-decoded).
    max_pixels : int
        Largest accepted image, pixels.
    images_name : str
        Name of the images array in an ``.npz`` file or Zarr group.

    Raises
    ------
    ValueError
        An unusable input (the message names the file and the problem).
    """
    p = Path(path)
    if not p.exists():
        raise ValueError(f"input {p}: no such file or folder")
    if encoding not in ("linear", "srgb"):
        raise ValueError(f"encoding must be 'linear' or 'srgb', got {encoding!r}")
    is_zarr = p.is_dir() and ((p / "zarr.json").is_file() or (p / ".zarray").is_file())
    is_zarr = is_zarr or (p / ".zgroup").is_file()
    if p.is_dir() and not is_zarr:
        src = _folder(p, max_pixels)
        if labels is not None:
            raise ValueError(
                f"--labels: the folder {p} is labelled by its class sub-folders (or has no "
                "labels); --labels is for array inputs"
            )
        return src
    extra = None
    if labels is not None:
        lp = Path(labels)
        try:
            extra = np.load(lp, allow_pickle=False)
        except (OSError, ValueError, EOFError) as exc:
            raise ValueError(f"--labels {lp}: not a readable .npy file ({exc})") from None
        if isinstance(extra, np.lib.npyio.NpzFile):
            extra.close()
            raise ValueError(f"--labels {lp}: expected an .npy file, got an .npz archive")
    stat_size = 0
    array = None
    array_name = ""
    if is_zarr:
        arr, array_name, own = _zarr_node(p, images_name)
        shape, dtype = tuple(arr.shape), np.dtype(arr.dtype)
        kind = "zarr"
        own_labels = None if own is None else np.asarray(own[:])
    elif p.suffix.lower() == ".npy":
        try:
            arr = np.load(p, mmap_mode="r", allow_pickle=False)
        except (OSError, ValueError, EOFError) as exc:
            raise ValueError(f"input {p}: not a readable .npy file ({exc})") from None
        shape, dtype = arr.shape, arr.dtype
        kind, own_labels = "npy", None
        stat_size = p.stat().st_size
    elif p.suffix.lower() == ".npz":
        array, own_labels = _load_npz(p, images_name)
        shape, dtype = array.shape, array.dtype
        kind = "npz"
        stat_size = p.stat().st_size
    else:
        raise ValueError(
            f"input {p}: expected a folder of images, an .npy/.npz file or a Zarr store"
        )
    what = f"input {p}"
    _check_images(tuple(shape), np.dtype(dtype), what, max_pixels)
    n = int(shape[0])
    if extra is not None and own_labels is not None:
        raise ValueError(f"--labels: {p} already holds a 'labels' array; give one or the other")
    lab = extra if extra is not None else own_labels
    lab = None if lab is None else _check_labels(lab, n, what if extra is None else "--labels")
    return Source(
        kind=kind,
        path=str(p.resolve()),
        n=n,
        array=array,
        array_name=array_name,
        encoding=encoding,
        max_pixels=max_pixels,
        labels=lab,
        fingerprint=_digest([kind, list(shape), np.dtype(dtype).str, stat_size, encoding]),
    )
