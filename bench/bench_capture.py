"""Benchmark of the camera pipeline; prints JSON.

Figures (median of several runs; capture only, files excluded, operators built beforehand):

- ``rgb512_default_ms``: a 512 x 512 RGB scene through the default camera (64 x 64 fibers,
  256 x 256 px, auto exposure), all noise on. Target <= 50 ms; the Key-Nets reference
  fiber-bundle simulation takes about 1 s for a 512 x 512 RGB image.
- ``mono_1mp_ms``: the default faceplate relayed onto a 1024 x 1024 px (1 megapixel) sensor
  (m = 0.0868, ~15 px per fiber), fixed exposure, all noise on. Target <= 60 ms.
  ``mono_1mp_optics_ms`` and ``mono_1mp_sensor_expose_ms`` split it into the optical stages
  (scene -> photons per pixel) and ``Sensor.expose`` (EMVA 1288 noise and ADC).
- ``*_peak_mib``: tracemalloc peak of one capture (NumPy buffers included).
- ``cli_default_wall_s``: wall time of ``python -m sim.capture`` in an empty folder, as a user
  types it (start-up, key creation, capture, all files). Target <= 3 s. ``cli_default_cpu_s``
  is its CPU time, a steadier figure on a shared machine.

Usage: ``python bench/bench_capture.py [--repeats N] [--cli-repeats N]``.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
import tracemalloc

import numpy as np


def _median_ms(fn, repeats: int) -> tuple[float, list[float]]:
    fn()  # warm-up (caches, page faults)
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        times.append((time.perf_counter() - t0) * 1e3)
    return statistics.median(times), times


def _peak_mib(fn) -> float:
    tracemalloc.start()
    fn()
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    return peak / 2**20


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeats", type=int, default=15)
    ap.add_argument("--cli-repeats", type=int, default=3)
    args = ap.parse_args()

    # The 1-megapixel camera below is estimated at about 1 GB, more than keycam's default
    # memory budget for one command; a benchmark run may use more.
    os.environ.setdefault("KEYCAM_MAX_MEMORY_MB", "4096")
    from sim.camera import Camera, CameraConfig

    results: dict[str, object] = {"cpu_count": os.cpu_count(), "load_avg_1min": os.getloadavg()[0]}
    rng = np.random.default_rng(0)
    scene = rng.random((512, 512, 3)) ** 2  # linear RGB in [0, 1]

    t0 = time.perf_counter()
    cam = Camera.default()
    results["default_build_ms"] = (time.perf_counter() - t0) * 1e3
    med, times = _median_ms(lambda: cam.capture(scene, rng=rng), args.repeats)
    results["rgb512_default_ms"] = med
    results["rgb512_default_runs_ms"] = [round(t, 2) for t in times]
    results["rgb512_default_peak_mib"] = _peak_mib(lambda: cam.capture(scene, rng=rng))
    results["rgb512_target_ms"] = 50.0
    results["rgb512_speedup_vs_keynets_1s"] = 1000.0 / med

    base = CameraConfig.default().model_dump()
    base["sensor"] = {**base["sensor"], "width_px": 1024, "height_px": 1024}
    base["coupling"] = {**base["coupling"], "magnification": 0.0868}
    base["exposure"] = 0.005
    cfg = CameraConfig.model_validate(base)
    t0 = time.perf_counter()
    big = Camera(cfg)
    results["mono_1mp_build_ms"] = (time.perf_counter() - t0) * 1e3
    mono = rng.random((256, 256))
    med, times = _median_ms(lambda: big.capture(mono, rng=rng), args.repeats)
    results["mono_1mp_ms"] = med
    results["mono_1mp_runs_ms"] = [round(t, 2) for t in times]
    results["mono_1mp_peak_mib"] = _peak_mib(lambda: big.capture(mono, rng=rng))
    results["mono_1mp_target_ms"] = 60.0
    # Where the time goes: the optics (scene -> photons per pixel) vs the sensor's noise.
    med, _ = _median_ms(lambda: big.photon_rate(mono), args.repeats)
    results["mono_1mp_optics_ms"] = med
    photons = big.photon_rate(mono) * 0.005
    med, _ = _median_ms(lambda: big.sensor.expose(photons, exposure_s=0.005, rng=rng), args.repeats)
    results["mono_1mp_sensor_expose_ms"] = med

    walls, cpus = [], []
    for _ in range(args.cli_repeats):
        with tempfile.TemporaryDirectory() as tmp:
            before = resource.getrusage(resource.RUSAGE_CHILDREN)
            t0 = time.perf_counter()
            res = subprocess.run(
                [sys.executable, "-m", "sim.capture"], cwd=tmp, capture_output=True, text=True
            )
            walls.append(time.perf_counter() - t0)
            after = resource.getrusage(resource.RUSAGE_CHILDREN)
            cpus.append(after.ru_utime + after.ru_stime - before.ru_utime - before.ru_stime)
            if res.returncode != 0:
                raise SystemExit(f"capture failed: {res.stderr}")
    results["cli_default_wall_s"] = statistics.median(walls)
    results["cli_default_runs_s"] = [round(w, 3) for w in walls]
    # CPU time (user + system) of the same runs: less sensitive to other load on the machine.
    results["cli_default_cpu_s"] = statistics.median(cpus)
    results["cli_target_s"] = 3.0
    results["process_max_rss_mib"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(
        json.dumps(
            {k: round(v, 3) if isinstance(v, float) else v for k, v in results.items()}, indent=2
        )
    )


if __name__ == "__main__":
    main()
