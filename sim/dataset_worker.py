"""The worker side of :mod:`sim.dataset`: one camera per worker, one task per chunk of frames.

A worker (a thread pool's process, a process of a local pool, a ``dask.distributed`` worker)
builds the camera **once**, from the configuration and the key it receives in memory, and
keeps it in a process-wide table under a random token (:func:`install_camera`); every task
of the run looks it up there (:func:`encrypt_chunk`). Nothing of the key is written by a
worker, and the token says nothing about it.

Frame ``i`` of a dataset is ::

    camera.capture(scene_i, rng=numpy.random.default_rng(seeds[i]))

(computed for a whole chunk at once by :meth:`sim.camera.Camera.capture_batch`: the same
frames, bit for bit), with
``seeds[i] = SeedSequence(root, spawn_key=(i,)).generate_state(1, uint64)[0]``
(:func:`frame_seeds`): its noise depends on its index and the run's root seed only, so the
frames are the same for any number of workers, any chunking and any order of the tasks. A
task writes its frames, exposures and seeds into the Zarr store and only then marks its
chunk complete, so an interrupted run leaves complete chunks and unmarked ones, never a
marked chunk with missing data.
"""

from __future__ import annotations

import ctypes
import os
import platform
import sys
import threading
import time
from typing import TYPE_CHECKING, Any

import numpy as np

from sim.dataset_store import store_array

if TYPE_CHECKING:
    from optics.faceplate import Key
    from sim.camera import Camera
    from sim.config import CameraConfig
    from sim.dataset_inputs import Source

__all__ = ["camera_for", "encrypt_chunk", "frame_seeds", "install_camera", "remove_camera"]

_CAMERAS: dict[str, Camera] = {}
_TUNED: set[str] = set()  # cameras installed by install_camera (worker processes)
_LOCK = threading.Lock()


#: glibc ``mallopt`` parameters (malloc.h).
_M_TRIM_THRESHOLD, _M_MMAP_THRESHOLD = -1, -3
#: While a run's camera is installed in a worker process, blocks below this size (every
#: per-frame array of a capture) come from the heap and are reused ...
_MMAP_THRESHOLD_BYTES = 4 << 20
#: ... and up to this much free memory at the top of the heap is kept, not handed back.
_TRIM_THRESHOLD_BYTES = 32 << 20
_GLIBC_DEFAULT_BYTES = 128 << 10


def _mallopt(param: int, value: int) -> bool:
    """glibc ``mallopt(param, value)``; False where there is no glibc."""
    if not sys.platform.startswith("linux") or platform.libc_ver()[0] != "glibc":
        return False
    try:
        return bool(ctypes.CDLL(None).mallopt(param, value))
    except (OSError, AttributeError):
        return False


def _keep_frame_buffers(keep: bool) -> None:
    """Let glibc reuse a capture's buffers (``keep``), or restore its usual thresholds.

    A frame's capture allocates and frees a few dozen arrays of 0.25-0.5 MB. glibc serves
    such blocks with ``mmap`` and returns them at ``free``, so each allocation costs fresh
    zeroed pages, unless its threshold has adapted upwards; a ``dask.distributed`` nanny
    pins the thresholds low (``MALLOC_TRIM_THRESHOLD_=65536``) for its workers, which made
    capture 1.5 to 2 times slower there. Restoring applies the environment's values (or
    glibc's defaults) and hands free memory back to the system.
    """
    if keep:
        _mallopt(_M_MMAP_THRESHOLD, _MMAP_THRESHOLD_BYTES)
        _mallopt(_M_TRIM_THRESHOLD, _TRIM_THRESHOLD_BYTES)
        return
    for param, name in [(_M_MMAP_THRESHOLD, "MMAP"), (_M_TRIM_THRESHOLD, "TRIM")]:
        try:
            value = int(os.environ.get(f"MALLOC_{name}_THRESHOLD_", _GLIBC_DEFAULT_BYTES))
        except ValueError:
            value = _GLIBC_DEFAULT_BYTES
        if _mallopt(param, value) and name == "TRIM":
            ctypes.CDLL(None).malloc_trim(0)


def install_camera(token: str, config: CameraConfig, key: Key) -> None:
    """Build the camera of a run in this (worker) process, once, and keep it under ``token``.

    While a camera is installed this way, glibc keeps the capture's buffers for reuse
    (:func:`_keep_frame_buffers`); :func:`remove_camera` of the last one restores it.
    """
    from sim.camera import Camera

    with _LOCK:
        if token not in _CAMERAS:
            _CAMERAS[token] = Camera(config, key)
            if not _TUNED:
                _keep_frame_buffers(True)
            _TUNED.add(token)


def put_camera(token: str, camera: Camera) -> None:
    """Keep an already built camera under ``token`` (threads of the planning process)."""
    with _LOCK:
        _CAMERAS[token] = camera


def remove_camera(token: str) -> None:
    """Forget the camera kept under ``token`` (end of a run)."""
    with _LOCK:
        _CAMERAS.pop(token, None)
        if token in _TUNED:
            _TUNED.discard(token)
            if not _TUNED:
                _keep_frame_buffers(False)


def camera_for(token: str) -> Camera:
    """The camera installed under ``token`` in this process.

    Raises
    ------
    RuntimeError
        No camera was installed here (a worker that joined without the run's set-up).
    """
    try:
        return _CAMERAS[token]
    except KeyError:
        raise RuntimeError(
            "no camera installed on this worker for this run (was the worker started after "
            "the run began without the camera plugin?)"
        ) from None


def frame_seeds(root: int, start: int, stop: int) -> np.ndarray:
    """Noise seeds of frames ``start .. stop - 1``: ``(stop - start,)`` uint64.

    ``seeds[i] = SeedSequence(root, spawn_key=(i,)).generate_state(1, uint64)[0]``, i.e. the
    first word of the ``i``-th child of ``SeedSequence(root)``; frame ``i`` is captured with
    ``default_rng(seeds[i])``.
    """
    return np.array(
        [
            np.random.SeedSequence(root, spawn_key=(i,)).generate_state(1, np.uint64)[0]
            for i in range(start, stop)
        ],
        dtype=np.uint64,
    )


def _name(source: Source, i: int) -> str:
    if source.kind == "folder":
        return f"scene {i} ({source.files[i - source.offset]})"
    return f"scene {i}"


def _name_bad_scene(
    camera: Camera, source: Source, scenes: Any, start: int, exposure_s: float | None
) -> None:
    """Find the scene of a failed block and raise its error under the scene's name."""
    for k, scene in enumerate(scenes):
        try:
            t = camera.exposure_for(scene) if exposure_s is None else float(exposure_s)
            camera.capture(scene, rng=np.random.default_rng(0), exposure_s=t)
        except ValueError as exc:
            raise ValueError(f"{_name(source, start + k)}: {exc}") from None


def encrypt_chunk(
    token: str,
    store: str,
    source: Source,
    index: int,
    start: int,
    stop: int,
    exposure_s: float | None,
    root: int,
) -> dict[str, Any]:
    """Capture frames ``start .. stop - 1`` and write them as chunk ``index`` of ``store``.

    Parameters
    ----------
    token : str
        The run's camera (see :func:`install_camera`).
    store : str
        Path of the Zarr store (a group with ``frames``, ``exposure_s``, ``seeds``,
        ``chunk_done``).
    source : Source
        Where the scenes come from (at least this chunk's part).
    exposure_s : float or None
        Fixed exposure in seconds; None = the camera's own choice per scene.
    root : int
        Root seed of the run's noise.

    Returns
    -------
    dict
        ``index``, ``frames`` (count) and ``seconds`` (the task's wall time).
    """
    import zarr

    t0 = time.perf_counter()
    camera = camera_for(token)
    seeds = frame_seeds(root, start, stop)
    scenes = source.read(start, stop)
    try:
        frames, exposures = camera.capture_batch(
            scenes, rngs=[np.random.default_rng(int(s)) for s in seeds], exposure_s=exposure_s
        )
    except ValueError:
        _name_bad_scene(camera, source, scenes, start, exposure_s)
        raise
    group = zarr.open_group(store, mode="r+")
    # Data first, the completion mark last: a mark always stands for complete data.
    store_array(group, "frames")[start:stop] = frames
    store_array(group, "exposure_s")[start:stop] = exposures
    store_array(group, "seeds")[start:stop] = seeds
    store_array(group, "chunk_done")[index] = 1
    return {"index": index, "frames": stop - start, "seconds": time.perf_counter() - t0}
