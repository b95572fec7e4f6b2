"""``python -m sim.dataset``: encrypt a whole dataset through one device key, on Dask.

Usage::

    python -m sim.dataset INPUT --key FILE [--out STORE] [--config TOML] [--seed N]
                          [--exposure auto|white|SECONDS] [--chunk N] [--workers N]
                          [--processes] [--scheduler ADDRESS] [--resume] [--force] [--quiet]
                          [--labels NPY] [--array-encoding linear|srgb] [--images-name NAME]
                          [--max-pixels N]

``INPUT`` is a folder of images (recursive; class sub-folders become labels) or an array of
images (``.npy``, ``.npz``, Zarr); see :mod:`sim.dataset_inputs`. Every scene is photographed
once through the camera with all sensor noise into the Zarr store ``STORE``: raw uint16
frames chunked by ``--chunk`` frames, per-frame exposures and noise seeds, labels when the
input has them, the camera's public configuration and the key fingerprint (layout:
:mod:`sim.dataset_store`). The key itself, and any seed it was drawn from, is never written.

Work runs on Dask: the local threaded scheduler by default (``--workers N``; ``--processes``
for a process pool), or a running ``dask.distributed`` cluster (``--scheduler
tcp://HOST:PORT``; its workers must see the input and the store at the same paths). Each
worker builds the camera once, from the configuration and key passed in memory, and
captures a chunk at a time with :meth:`sim.camera.Camera.capture_batch`
(:mod:`sim.dataset_worker`). Frame ``i``'s noise comes from its own seed, so the frames do
not depend on the number of workers or the chunking; a killed run is finished with
``--resume``, which computes only the chunks not marked done. Needs the ``dataset`` extra:
``pip install "keycam[dataset]"``.
"""

from __future__ import annotations

import os
import secrets
import shutil
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from keycam.cli import ArgumentParser, CLIError, int_at_least, run
from sim.dataset_store import (
    check_resume,
    create_store,
    is_dataset,
    open_dataset,
    plan_attrs,
    store_array,
    store_attrs,
    store_bytes,
)
from sim.units import parse_exposure

if TYPE_CHECKING:
    from sim.camera import Camera
    from sim.config import CameraConfig
    from sim.dataset_inputs import Source

__all__ = ["DEFAULT_CHUNK", "encrypt_dataset", "main", "open_dataset"]

DEFAULT_CHUNK = 64
DEFAULT_OUT = "keycam_dataset.zarr"
INSTALL_HINT = 'sim.dataset needs Dask and Zarr: pip install "keycam[dataset]"'


def _need_dataset_extra() -> None:
    try:
        import dask  # noqa: F401
        import zarr  # noqa: F401
    except ImportError:
        raise CLIError(INSTALL_HINT) from None


# ---------------------------------------------------------------------------- running
class _Bar:
    """A tqdm bar on a terminal (stderr), nothing otherwise or when quiet."""

    def __init__(self, total: int, quiet: bool) -> None:
        self._bar = None
        if not quiet and sys.stderr.isatty():
            from tqdm import tqdm

            self._bar = tqdm(total=total, desc="frames", unit="frame", leave=False)

    def update(self, n: int) -> None:
        if self._bar is not None:
            self._bar.update(n)

    def close(self) -> None:
        if self._bar is not None:
            self._bar.close()


def worker_config(camera: Camera) -> CameraConfig:
    """The configuration a worker builds the run's camera from, with ``camera.key``.

    The key a camera holds already carries its faceplate transmission (the printed part's,
    computed once here), so workers take it as given (``source = "assumed"``): they never
    route the key again, and nothing derived from the key is cached on a worker's disk.
    """
    from sim.printed import TransmissionConfig

    return camera.config.model_copy(update={"transmission": TransmissionConfig(source="assumed")})


def _run_local(tasks, camera: Camera, token: str, workers: int, processes: bool, bar) -> list:
    import dask
    from dask.callbacks import Callback

    from sim import dataset_worker as dw

    class _Progress(Callback):
        def _posttask(self, key, result, dsk, state, worker_id):
            if isinstance(result, dict) and "frames" in result:
                bar.update(result["frames"])

    delayed = [
        dask.delayed(dw.encrypt_chunk, pure=False, traverse=False)(*args, dask_key_name=name)
        for name, args in tasks
    ]
    if not processes:
        dw.put_camera(token, camera)
        try:
            with _Progress():
                return list(dask.compute(*delayed, scheduler="threads", num_workers=workers))
        finally:
            dw.remove_camera(token)
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor

    pool = ProcessPoolExecutor(
        max_workers=workers,
        mp_context=multiprocessing.get_context("spawn"),
        initializer=dw.install_camera,
        initargs=(token, worker_config(camera), camera.key),
    )
    with pool, _Progress():
        return list(dask.compute(*delayed, scheduler="processes", pool=pool))


def _run_cluster(tasks, camera: Camera, token: str, address, bar) -> list:
    from distributed import Client, as_completed

    from sim import dataset_worker as dw
    from sim.dataset_cluster import CameraPlugin

    own = not hasattr(address, "submit")
    try:
        client = Client(address, timeout="20s", set_as_default=False) if own else address
    except (OSError, TimeoutError) as exc:
        raise OSError(
            f"--scheduler {address}: cannot connect to a Dask scheduler ({exc})"
        ) from None
    name = f"keycam-camera-{token}"
    try:
        client.register_plugin(CameraPlugin(token, worker_config(camera), camera.key), name=name)
        try:
            futures = [
                client.submit(dw.encrypt_chunk, *args, key=f"{name}-{key}", pure=False)
                for key, args in tasks
            ]
            results = []
            for fut in as_completed(futures, loop=client.loop):
                res = fut.result()
                bar.update(res["frames"])
                results.append(res)
            return results
        finally:
            client.unregister_worker_plugin(name)
    finally:
        if own:
            client.close()


def encrypt_dataset(
    source: Source,
    out: str | os.PathLike[str],
    camera: Camera,
    *,
    chunk_frames: int | None = None,
    seed: int | None = None,
    exposure: str | float | None = None,
    workers: int | None = None,
    processes: bool = False,
    scheduler: Any = None,
    resume: bool = False,
    force: bool = False,
    quiet: bool = True,
) -> dict[str, Any]:
    """Photograph every scene of ``source`` through ``camera`` into the Zarr store ``out``.

    Parameters
    ----------
    source : Source
        The scenes (:func:`sim.dataset_inputs.open_source`).
    out : path-like
        The store (a folder). An existing one is refused unless ``resume`` or ``force``.
    camera : Camera
        The camera with its device key.
    chunk_frames : int, optional
        Frames per chunk (one task, one stored chunk); default 64 (or the store's on resume).
    seed : int, optional
        Root seed of the noise (>= 0); default fresh entropy (or the store's on resume).
    exposure : "auto", "white", float or None
        ``"auto"``: the camera's auto exposure for each scene; ``"white"``: one exposure
        for all frames, the auto exposure of a uniform scene of value 1; seconds: fixed;
        None: the camera configuration's own rule.
    workers : int, optional
        Local workers (threads, or processes with ``processes=True``); default the CPU count.
    scheduler : str or distributed.Client, optional
        A ``dask.distributed`` scheduler address (or client) instead of the local scheduler.
    resume, force : bool
        Finish an interrupted store / replace an existing one.
    quiet : bool
        No progress bar.

    Returns
    -------
    dict
        ``frames`` (total), ``computed`` (frames computed now), ``chunks_computed``,
        ``seconds``, ``frames_per_s``, ``store_bytes``, ``raw_bytes``, ``key_fingerprint``.

    Raises
    ------
    ValueError, FileExistsError
        Bad input or an existing store (messages name the problem). On an error while
        computing, a store this call created is removed; a resumed store keeps its complete
        chunks.
    """
    import zarr

    out = Path(out)
    if resume and force:
        raise ValueError("--resume and --force: give one or the other")
    if chunk_frames is not None and chunk_frames < 1:
        raise ValueError(f"--chunk: must be >= 1 frame, got {chunk_frames}")
    if seed is not None and seed < 0:
        raise ValueError(f"--seed: must be >= 0, got {seed}")
    exists = out.exists()
    if exists and not (resume or force):
        raise FileExistsError(
            f"{out} already exists; pass --resume to finish it, or --force to replace it"
        )
    if exists and not is_dataset(out):
        raise ValueError(f"{out} exists and is not a keycam dataset store; will not touch it")
    if source.kind == "folder" and out.resolve().is_relative_to(Path(source.path)):
        raise ValueError(f"--out {out} lies inside the input folder {source.path}")
    resuming = exists and resume
    chunk = chunk_frames or DEFAULT_CHUNK
    root = seed
    if resuming:
        old = store_attrs(out)
        chunk = chunk_frames or int(old["frames"]["chunk_frames"])
        root = int(old["noise"]["root_seed"]) if seed is None else seed
    if root is None:
        root = secrets.randbits(128)
    fixed: float | None
    if exposure == "white":
        fixed = camera.exposure_for(None)
    elif exposure is None:
        fixed = None if camera.config.exposure == "auto" else float(camera.config.exposure)
    elif exposure == "auto":
        fixed = None
    else:
        fixed = float(exposure)
    plan = plan_attrs(source, camera, exposure, fixed, root, chunk)
    if resuming:
        check_resume(out, plan, seed is not None, chunk_frames is not None)
    elif exists:
        shutil.rmtree(out)

    created = not resuming
    t0 = time.perf_counter()
    try:
        if created:
            create_store(out, plan, source, camera.frame_shape, chunk)
        group = zarr.open_group(str(out), mode="r+")
        done = np.asarray(store_array(group, "chunk_done")[:])
        todo = np.flatnonzero(done == 0)
        token = secrets.token_hex(8)
        tasks = []
        for idx in todo:
            a, b = int(idx) * chunk, min((int(idx) + 1) * chunk, source.n)
            args = (token, str(out.resolve()), source.part(a, b), int(idx), a, b, fixed, root)
            tasks.append((f"chunk-{int(idx)}", args))
        bar = _Bar(sum(t[1][5] - t[1][4] for t in tasks), quiet)
        try:
            if scheduler is not None:
                results = _run_cluster(tasks, camera, token, scheduler, bar)
            else:
                n_workers = workers or os.cpu_count() or 1
                results = _run_local(tasks, camera, token, n_workers, processes, bar)
        finally:
            bar.close()
        if not np.all(
            np.asarray(store_array(group, "chunk_done")[:]) == 1
        ):  # pragma: no cover - defensive
            raise RuntimeError(f"{out}: some chunks were not written")
        if not group.attrs.get("complete", False):
            group.attrs["complete"] = True
    except BaseException:
        if created and not isinstance(sys.exc_info()[1], KeyboardInterrupt):
            shutil.rmtree(out, ignore_errors=True)
        raise
    seconds = time.perf_counter() - t0
    computed = sum(r["frames"] for r in results)
    h, w = camera.frame_shape
    return {
        "frames": source.n,
        "computed": computed,
        "chunks_computed": len(results),
        "chunks": len(done),
        "seconds": seconds,
        "frames_per_s": computed / seconds if seconds > 0 else 0.0,
        "store_bytes": store_bytes(out),
        "raw_bytes": source.n * h * w * 2,
        "key_fingerprint": camera.key.fingerprint,
    }


# ---------------------------------------------------------------------------- command line
def _parser() -> ArgumentParser:
    p = ArgumentParser(
        prog="python -m sim.dataset",
        description="Encrypt a whole dataset: photograph every image of a folder or array "
        "through one keycam camera and device key, on Dask, into a Zarr store.",
        epilog="Existing stores are never replaced without --force; an interrupted run is "
        "finished with --resume. " + INSTALL_HINT + ".",
    )
    p.add_argument("input", metavar="INPUT", help="folder of images (class sub-folders = "
                   "labels) or an .npy/.npz/Zarr array of images")  # fmt: skip
    p.add_argument("--key", metavar="FILE", required=True, help="device key (secret; never copied)")
    p.add_argument("--out", metavar="STORE", default=DEFAULT_OUT,
                   help=f"Zarr store to write (default {DEFAULT_OUT})")  # fmt: skip
    p.add_argument("--config", metavar="TOML", help="camera configuration (default: bundled)")
    p.add_argument("--seed", metavar="N", help="root seed of the noise (default: fresh entropy)")
    p.add_argument("--exposure", metavar="auto|white|SECONDS", default=None,
                   help="'auto' per scene, 'white' (one exposure for all: auto for a white "
                   "scene) or a time, e.g. 10ms (default: the config's value)")  # fmt: skip
    p.add_argument("--chunk", metavar="N", help=f"frames per chunk (default {DEFAULT_CHUNK})")
    p.add_argument("--workers", metavar="N", help="local workers (default: CPU count)")
    p.add_argument("--processes", action="store_true",
                   help="local workers are processes (default: threads)")  # fmt: skip
    p.add_argument("--scheduler", metavar="ADDRESS",
                   help="run on a dask.distributed cluster, e.g. tcp://10.0.0.5:8786")  # fmt: skip
    p.add_argument("--resume", action="store_true", help="finish an interrupted store")
    p.add_argument("--force", action="store_true", help="replace an existing store")
    p.add_argument("--quiet", action="store_true", help="print nothing but errors")
    p.add_argument("--labels", metavar="NPY", help="labels of an array input, (N,) integers")
    p.add_argument("--array-encoding", choices=("linear", "srgb"), default="linear",
                   help="integer array samples: linear (default, uint8 / 255) or sRGB")  # fmt: skip
    p.add_argument("--images-name", metavar="NAME", default="images",
                   help="images array in an .npz or Zarr group (default images)")  # fmt: skip
    p.add_argument("--max-pixels", metavar="N", help="largest accepted image, pixels "
                   "(default 50000000)")  # fmt: skip
    return p


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    seed = None if args.seed is None else int_at_least("--seed", args.seed, 0)
    chunk = None if args.chunk is None else int_at_least("--chunk", args.chunk, 1)
    workers = None if args.workers is None else int_at_least("--workers", args.workers, 1)
    max_pixels = (
        50_000_000 if args.max_pixels is None else int_at_least("--max-pixels", args.max_pixels, 1)
    )
    exposure = args.exposure
    if exposure is not None and exposure not in ("auto", "white"):
        exposure = parse_exposure(exposure, name="--exposure")
    if args.scheduler and (workers is not None or args.processes):
        raise CLIError("--workers/--processes set up local workers; a --scheduler has its own")
    if args.resume and args.force:
        raise CLIError("--resume and --force: give one or the other")
    out = Path(args.out)
    if out.exists() and not (args.resume or args.force):
        raise CLIError(
            f"{out} already exists; pass --resume to finish it, or --force to replace it"
        )
    key_path = Path(args.key)
    if not key_path.is_file():
        raise CLIError(
            f"--key: no key file {key_path} (python -m sim.capture creates one as "
            "keycam_out/device.key)"
        )
    _need_dataset_extra()

    from optics.faceplate import Key
    from sim.camera import Camera
    from sim.config import CameraConfig, load_config
    from sim.dataset_inputs import open_source

    source = open_source(
        args.input, labels=args.labels, encoding=args.array_encoding, max_pixels=max_pixels,
        images_name=args.images_name,
    )  # fmt: skip
    key = Key.load(key_path)
    if seed is not None and key.config.seed == seed:
        raise CLIError(
            "--seed: this key was drawn from that seed; the store records its noise seed, so "
            "choose another one (or omit --seed)"
        )
    config = load_config(args.config) if args.config else CameraConfig.default()
    if exposure is not None and exposure != "white":
        config = CameraConfig.model_validate({**config.model_dump(), "exposure": exposure})
    camera = Camera(config, key=key)
    try:
        r = encrypt_dataset(
            source, out, camera, chunk_frames=chunk, seed=seed,
            exposure="white" if exposure == "white" else None, workers=workers,
            processes=args.processes, scheduler=args.scheduler, resume=args.resume,
            force=args.force, quiet=args.quiet,
        )  # fmt: skip
    except KeyboardInterrupt:
        sys.stderr.write(
            f"error: interrupted; the complete chunks of {out} are kept: rerun with --resume\n"
        )
        raise SystemExit(130) from None
    if not args.quiet:
        h, w = camera.frame_shape
        print(
            f"{r['frames']} frames of {w}x{h} px in {out} ({r['computed']} computed now in "
            f"{r['chunks_computed']} of {r['chunks']} chunks, {r['seconds']:.1f} s, "
            f"{r['frames_per_s']:.0f} frames/s); store {r['store_bytes'] / 1e6:.1f} MB = "
            f"{100 * r['store_bytes'] / r['raw_bytes']:.0f}% of the raw frames; "
            f"key {r['key_fingerprint']}"
        )
    return 0


if __name__ == "__main__":
    sys.exit(run(main))
