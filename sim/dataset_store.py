"""The Zarr store of an encrypted dataset: its layout, its attributes, creating and checking it.

Layout (a Zarr v3 group; ``N`` frames of ``H x W`` pixels, chunks of ``C`` frames):

``frames`` (N, H, W) uint16
    Raw frames in DN, row 0 = top of the sensor; chunks (C, H, W), Blosc/LZ4 bit-shuffled.
``exposure_s`` (N,) float64
    Exposure of each frame, seconds.
``seeds`` (N,) uint64
    Noise seed of each frame: frame ``i`` is ``Camera.capture(scene_i,
    rng=numpy.random.default_rng(seeds[i]))``.
``chunk_done`` (ceil(N / C),) uint8
    1 once a chunk's frames, exposures and seeds are written (they are written first).
``labels`` (N,) int64, optional
    Class of each frame; ``attrs["labels"]["classes"]`` names them (folder inputs).
``sources`` (N,) str, optional
    Image file of each frame, relative to the input folder (folder inputs).

Attributes: ``keycam_dataset`` (format tag), ``software``, ``complete``, ``frames`` (count,
shape, chunking), ``camera`` (the public configuration: no key seed), ``key_fingerprint``,
``exposure`` (rule and fixed value), ``noise`` (root seed of the frame seeds and the rule),
``source`` (kind, path, fingerprint of the input) and ``labels``. The key, and any seed it
was drawn from, is never stored.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from sim.config import comparable

if TYPE_CHECKING:
    from sim.camera import Camera
    from sim.dataset_inputs import Source

__all__ = ["FORMAT", "check_resume", "create_store", "is_dataset", "open_dataset", "plan_attrs"]

FORMAT = {"format": "keycam-dataset", "version": 1}


def store_array(group: Any, name: str) -> Any:
    """The array ``name`` of an open Zarr group (``ValueError`` if it is missing or a group)."""
    import zarr

    node = group[name]
    if not isinstance(node, zarr.Array):
        raise ValueError(f"{name!r} in the store is not an array")
    return node


def store_attrs(path: str | os.PathLike[str]) -> dict[str, Any]:
    """The attributes of the store at ``path``, as a plain dict."""
    import zarr

    return dict(zarr.open_group(str(path), mode="r").attrs.asdict())


def open_dataset(path: str | os.PathLike[str], *, allow_incomplete: bool = False):
    """Open a store written by :func:`encrypt_dataset` for reading.

    Returns
    -------
    zarr.Group
        With arrays ``frames``, ``exposure_s``, ``seeds``, ``chunk_done`` and, when present,
        ``labels`` and ``sources``; attributes as described in the module docstring.

    Raises
    ------
    ValueError
        Not a keycam dataset store, or (unless ``allow_incomplete``) an unfinished one.
    """
    import zarr

    p = Path(path)
    if not is_dataset(p):
        raise ValueError(f"{p}: not a keycam dataset store (made by python -m sim.dataset)")
    group = zarr.open_group(str(p), mode="r")
    if not allow_incomplete and not group.attrs.get("complete", False):
        raise ValueError(
            f"{p}: dataset is incomplete; finish it with python -m sim.dataset --resume"
        )
    return group


def is_dataset(p: Path) -> bool:
    try:
        meta = json.loads((p / "zarr.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return False
    tag = meta.get("attributes", {}).get("keycam_dataset", {})
    return isinstance(tag, dict) and tag.get("format") == FORMAT["format"]


def create_store(out: Path, attrs: dict[str, Any], source: Source, frame_shape, chunk: int):
    import zarr
    from zarr.codecs import BloscCodec

    n = source.n
    group = zarr.open_group(str(out), mode="w-", attributes=attrs)
    blosc = BloscCodec(cname="lz4", clevel=5, shuffle="bitshuffle")
    group.create_array(
        "frames", shape=(n, *frame_shape), chunks=(chunk, *frame_shape), dtype="uint16",
        fill_value=0, compressors=blosc,
    )  # fmt: skip
    group.create_array("exposure_s", shape=(n,), chunks=(chunk,), dtype="float64", fill_value=0)
    group.create_array("seeds", shape=(n,), chunks=(chunk,), dtype="uint64", fill_value=0)
    n_chunks = -(-n // chunk)
    group.create_array("chunk_done", shape=(n_chunks,), chunks=(1,), dtype="uint8", fill_value=0)
    big = min(n, 1 << 16)
    if source.labels is not None:
        lab = group.create_array("labels", shape=(n,), chunks=(big,), dtype="int64", fill_value=0)
        lab[:] = source.labels
    if source.kind == "folder":
        names = group.create_array("sources", shape=(n,), chunks=(big,), dtype=str)
        names[:] = np.array(source.files, dtype=object)
    return group


def store_bytes(out: Path) -> int:
    return sum(f.stat().st_size for f in out.rglob("*") if f.is_file())


def _version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("keycam")
    except PackageNotFoundError:  # running from a source tree without installing
        return "(not installed)"


def plan_attrs(source: Source, camera: Camera, exposure, fixed_s, root: int, chunk: int) -> dict:
    mode = "white" if exposure == "white" else ("auto" if fixed_s is None else "fixed")
    return {
        "keycam_dataset": FORMAT,
        "software": f"keycam {_version()} sim.dataset",
        "complete": False,
        "frames": {
            "count": source.n,
            "shape": list(camera.frame_shape),
            "dtype": "uint16",
            "units": "DN",
            "orientation": "row 0 = top of the sensor",
            "chunk_frames": chunk,
        },
        "camera": camera.public_config(),
        "key_fingerprint": camera.key.fingerprint,
        "exposure": {"mode": mode, "exposure_s": fixed_s},
        "noise": {
            "root_seed": str(root),
            "rule": "frame i = Camera.capture(scene_i, rng=numpy.random.default_rng(seeds[i])), "
            "seeds[i] = SeedSequence(root_seed, spawn_key=(i,)).generate_state(1, uint64)[0]",
        },
        "source": {
            "kind": source.kind,
            "path": source.path,
            "count": source.n,
            "fingerprint": source.fingerprint,
            "array_encoding": source.encoding if source.kind != "folder" else "srgb (files)",
        },
        "labels": None if source.labels is None else {"classes": list(source.classes)},
    }


_MUST_MATCH = ("key_fingerprint", "source", "frames", "camera", "exposure", "labels")


def check_resume(out: Path, plan: dict, seed_given: bool, chunk_given: bool) -> None:

    old = store_attrs(out)
    if chunk_given and old["frames"]["chunk_frames"] != plan["frames"]["chunk_frames"]:
        raise ValueError(
            f"--resume: {out} is chunked by {old['frames']['chunk_frames']} frames, "
            f"not {plan['frames']['chunk_frames']} (omit --chunk to resume)"
        )
    if seed_given and old["noise"]["root_seed"] != plan["noise"]["root_seed"]:
        raise ValueError(f"--resume: {out} was made with another --seed (omit --seed to resume)")
    what = {"frames": "frame count or shape", "key_fingerprint": "key", "source": "input"}
    for name in _MUST_MATCH:
        was, now = old.get(name), plan.get(name)
        if name == "camera" and isinstance(was, dict) and isinstance(now, dict):
            was, now = comparable(was), comparable(now)  # stores from before a field existed
        if was != now:
            raise ValueError(
                f"--resume: {out} was made with another {what.get(name, name)}; use the same "
                "input, --config, --key and --exposure, or --force to start over"
            )
