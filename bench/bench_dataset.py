"""Benchmark of whole-dataset encryption (``sim.dataset``) on Dask; prints JSON.

Default camera (64 x 64 fibers, 256 x 256 px, auto exposure per scene), 64 x 64 linear
scenes from an ``.npy`` file, chunks of 64 frames, every frame written to a Zarr store.
Figures (medians of ``--repeats`` runs; wall time from the first task to the last chunk
written, store creation included, process start-up excluded):

- ``loop_fps``: one process, a plain loop ``Camera.capture(scene, rng=default_rng(seed_i))``
  over the same scenes, nothing written -- the baseline.
- ``batch_fps``: the same frames (bit for bit) through ``Camera.capture_batch``, one call per
  chunk, nothing written: what a worker computes.
- ``local_threads_fps``, ``local_processes_fps``: ``encrypt_dataset`` on the local Dask
  scheduler with ``--workers`` threads / processes; ``*_ratio_to_loop`` divides by
  ``loop_fps``. Target: >= 500 frames/s on 2 cores.
- ``cluster_fps``: the same through a ``dask.distributed.LocalCluster`` of ``--workers``
  single-threaded worker processes (on 127.0.0.1).
- ``*_cpu_ms_per_frame``: CPU time (user + system, all processes that did the work) per
  frame: a steadier figure than wall time on a shared machine.
- ``cluster_worker_peak_rss_mib``: peak resident memory of each cluster worker after
  encrypting ``--sizes`` frames (a fresh cluster per size): it follows the chunk size, not
  the dataset size.

- ``loop_bound_fps_all_cores``: ``cpu_count * 1000 / loop_cpu_ms_per_frame``, what any
  scheduler could reach if every core did nothing but ``Camera.capture``; the frames/s
  targets are checked against it (on a shared, loaded machine wall-time figures fall far
  below it, so the load average is reported too).

Usage: ``python bench/bench_dataset.py [--frames N] [--workers N] [--repeats N]
[--sizes A B]``.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np


def _cpu_self_children() -> float:
    s = resource.getrusage(resource.RUSAGE_SELF)
    c = resource.getrusage(resource.RUSAGE_CHILDREN)
    return s.ru_utime + s.ru_stime + c.ru_utime + c.ru_stime


def _worker_cpu() -> float:
    import psutil

    t = psutil.Process().cpu_times()
    return t.user + t.system


def _worker_peak_rss_mib() -> float:
    """Peak resident memory of this process (``VmHWM``: unlike ``ru_maxrss`` it does not carry
    over the parent's peak into a spawned process), MiB."""
    with open("/proc/self/status") as fh:
        for line in fh:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    raise RuntimeError("no VmHWM in /proc/self/status")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--frames", type=int, default=1024, help="frames per timed run")
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--chunk", type=int, default=64)
    ap.add_argument("--sizes", type=int, nargs=2, default=(256, 2048))
    args = ap.parse_args()

    from distributed import Client, LocalCluster

    from optics.faceplate import keygen
    from sim.camera import Camera, CameraConfig
    from sim.dataset import encrypt_dataset
    from sim.dataset_inputs import open_source
    from sim.dataset_worker import frame_seeds

    res: dict[str, Any] = {
        "cpu_count": os.cpu_count(),
        "load_avg_1min_start": os.getloadavg()[0],
        "frames": args.frames,
        "chunk_frames": args.chunk,
        "workers": args.workers,
        "scene_px": [64, 64],
    }
    camera = Camera(
        CameraConfig.default(), keygen(CameraConfig.default().with_key_seed(7).faceplate)
    )
    res["frame_px"] = list(camera.frame_shape)
    n_max = max(args.frames, *args.sizes)
    rng = np.random.default_rng(0)
    tmp = Path(tempfile.mkdtemp(prefix="keycam-bench-"))
    scenes = rng.random((n_max, 64, 64)) ** 2
    np.save(tmp / "scenes.npy", scenes)
    np.save(tmp / "small.npy", scenes[: args.frames])
    for n in args.sizes:
        np.save(tmp / f"size{n}.npy", scenes[:n])

    # ---- baseline: a one-process loop over Camera.capture
    n_loop = min(args.frames, 400)
    seeds = frame_seeds(1, 0, n_loop)
    walls, cpus = [], []
    for _ in range(args.repeats):
        c0, t0 = _cpu_self_children(), time.perf_counter()
        for i in range(n_loop):
            camera.capture(scenes[i], rng=np.random.default_rng(int(seeds[i])))
        walls.append(time.perf_counter() - t0)
        cpus.append(_cpu_self_children() - c0)
    res["loop_fps"] = n_loop / statistics.median(walls)
    res["loop_cpu_ms_per_frame"] = 1e3 * statistics.median(cpus) / n_loop
    res["loop_bound_fps_all_cores"] = (os.cpu_count() or 1) * 1e3 / res["loop_cpu_ms_per_frame"]

    # ---- the same frames through Camera.capture_batch, a chunk at a time (what workers do)
    walls, cpus = [], []
    for _ in range(args.repeats):
        c0, t0 = _cpu_self_children(), time.perf_counter()
        for a in range(0, n_loop, args.chunk):
            b = min(a + args.chunk, n_loop)
            camera.capture_batch(
                scenes[a:b], rngs=[np.random.default_rng(int(s)) for s in seeds[a:b]]
            )
        walls.append(time.perf_counter() - t0)
        cpus.append(_cpu_self_children() - c0)
    res["batch_fps"] = n_loop / statistics.median(walls)
    res["batch_cpu_ms_per_frame"] = 1e3 * statistics.median(cpus) / n_loop

    source = open_source(tmp / "small.npy")

    def timed(label: str, **kw) -> None:
        walls, cpus = [], []
        for k in range(args.repeats):
            out = tmp / f"{label}-{k}.zarr"
            c0 = _cpu_self_children()
            r = encrypt_dataset(source, out, camera, chunk_frames=args.chunk, seed=k, **kw)
            walls.append(r["seconds"])
            cpus.append(_cpu_self_children() - c0)
            res[f"{label}_store_mib"] = r["store_bytes"] / 2**20
        res[f"{label}_fps"] = args.frames / statistics.median(walls)
        res[f"{label}_runs_fps"] = [round(args.frames / w, 1) for w in walls]
        res[f"{label}_ratio_to_loop"] = res[f"{label}_fps"] / res["loop_fps"]
        res[f"{label}_cpu_ms_per_frame"] = 1e3 * statistics.median(cpus) / args.frames

    timed("local_threads", workers=args.workers)
    timed("local_processes", workers=args.workers, processes=True)

    # ---- LocalCluster: wall time, and CPU time measured on the workers themselves
    with (
        LocalCluster(
            n_workers=args.workers, threads_per_worker=1, processes=True, host="127.0.0.1",
            dashboard_address=None,
        ) as cluster,
        Client(cluster) as client,
    ):  # fmt: skip
        walls, cpus = [], []
        for k in range(args.repeats):
            c0 = sum(client.run(_worker_cpu).values())
            r = encrypt_dataset(
                source, tmp / f"cluster-{k}.zarr", camera, chunk_frames=args.chunk, seed=k,
                scheduler=client,
            )  # fmt: skip
            walls.append(r["seconds"])
            cpus.append(sum(client.run(_worker_cpu).values()) - c0)
        res["cluster_fps"] = args.frames / statistics.median(walls)
        res["cluster_runs_fps"] = [round(args.frames / w, 1) for w in walls]
        res["cluster_ratio_to_loop"] = res["cluster_fps"] / res["loop_fps"]
        res["cluster_worker_cpu_ms_per_frame"] = 1e3 * statistics.median(cpus) / args.frames

    # ---- memory per worker for two dataset sizes (fresh workers each time)
    peaks = {}
    for n in args.sizes:
        with (
            LocalCluster(
                n_workers=args.workers, threads_per_worker=1, processes=True, host="127.0.0.1",
                dashboard_address=None,
            ) as cluster,
            Client(cluster) as client,
        ):  # fmt: skip
            base = max(client.run(_worker_peak_rss_mib).values())
            encrypt_dataset(
                open_source(tmp / f"size{n}.npy"), tmp / f"mem{n}.zarr", camera,
                chunk_frames=args.chunk, seed=0, scheduler=client,
            )  # fmt: skip
            peaks[str(n)] = {
                "idle_mib": round(base, 1),
                "peak_mib": round(max(client.run(_worker_peak_rss_mib).values()), 1),
            }
    res["cluster_worker_peak_rss_mib"] = peaks
    res["chunk_raw_mib"] = args.chunk * camera.frame_shape[0] * camera.frame_shape[1] * 2 / 2**20
    res["load_avg_1min_end"] = os.getloadavg()[0]
    res["target_fps"] = 500
    import shutil

    shutil.rmtree(tmp, ignore_errors=True)
    out = {k: round(v, 3) if isinstance(v, float) else v for k, v in res.items()}
    json.dump(out, sys.stdout, indent=2)
    print()


if __name__ == "__main__":
    main()
