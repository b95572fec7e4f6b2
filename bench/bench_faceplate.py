"""Benchmark: faceplate operators for a 512 × 512 fiber lattice on a 1024 × 1024 sensor.

A glass faceplate (6 µm pitch, 5 µm cores, 8 × 8 block key with block permutation, 5 %
crosstalk on both faces, 0.1 % dead fibers) butt-coupled onto 3 µm pixels with a small
rotation and offset; the lens image is sampled on the sensor's 1024 × 1024 grid.

Prints JSON: median build time of the three operators (target ≤ 2 s) and median time to
apply them to one image, ``C (T (S x) + b)`` (target ≤ 20 ms), with the explicit transfer
matrix and with its factors ``C_out, PD, C_in``. Run as
``python bench/bench_faceplate.py [--repeats N]``.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import time

import numpy as np

from optics.faceplate import (
    FaceplateConfig,
    coupling_operator,
    keygen,
    sampling_operator,
    transfer_factors,
    transfer_operator,
)

BUILD_TARGET_S = 2.0
APPLY_TARGET_S = 0.020


def _timed(fn):
    t0 = time.perf_counter()
    out = fn()
    return out, time.perf_counter() - t0


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeats", type=int, default=5, help="build repetitions (default 5)")
    ap.add_argument("--apply-repeats", type=int, default=30, help="apply repetitions")
    args = ap.parse_args()

    cfg = FaceplateConfig(
        rows=512,
        cols=512,
        pitch_um=6.0,
        core_diameter_um=5.0,
        block_size=8,
        permute_blocks=True,
        crosstalk_in=0.05,
        crosstalk_out=0.05,
        dead_fraction=0.001,
        bias_photons_per_s=10.0,
        seed=1,
    )
    sensor = (1024, 1024)
    pixel_um = 3.0

    key, t_keygen = _timed(lambda: keygen(cfg))
    times = {"sampling": [], "transfer": [], "coupling": []}
    for _ in range(args.repeats):
        s, dt = _timed(lambda: sampling_operator(cfg, dx_um=pixel_um, shape=sensor))
        times["sampling"].append(dt)
        (t, b), dt = _timed(lambda: transfer_operator(key))
        times["transfer"].append(dt)
        c, dt = _timed(
            lambda: coupling_operator(
                cfg,
                pixel_pitch_um=pixel_um,
                sensor_shape=sensor,
                offset_um=(0.7, -1.1),
                rotation_deg=0.3,
            )
        )
        times["coupling"].append(dt)
    totals = [sum(v) for v in zip(*times.values(), strict=True)]

    rng = np.random.default_rng(0)
    image = rng.random(sensor[0] * sensor[1]) * 1e3
    frame = c @ (t @ (s @ image) + b)  # warm-up
    apply_times = []
    for _ in range(args.apply_repeats):
        _, dt = _timed(lambda: c @ (t @ (s @ image) + b))
        apply_times.append(dt)

    # Same light path through the factored transfer (C_out, PD, C_in), built once.
    c_out, pd, c_in, b2 = transfer_factors(key)
    frame2 = c @ (c_out @ (pd @ (c_in @ (s @ image))) + b2)
    factored_times = []
    for _ in range(args.apply_repeats):
        _, dt = _timed(lambda: c @ (c_out @ (pd @ (c_in @ (s @ image))) + b2))
        factored_times.append(dt)
    rel_diff = float(np.abs(frame2 - frame).max() / np.abs(frame).max())

    build_median = statistics.median(totals)
    apply_median = statistics.median(apply_times)
    report = {
        "benchmark": "faceplate_operators",
        "lattice": f"{cfg.lattice} {cfg.rows}x{cfg.cols}",
        "sensor": list(sensor),
        "nnz": {"sampling": int(s.nnz), "transfer": int(t.nnz), "coupling": int(c.nnz)},
        "keygen_s": round(t_keygen, 4),
        "build_s_median": {k: round(statistics.median(v), 4) for k, v in times.items()},
        "build_total_s_median": round(build_median, 4),
        "build_target_s": BUILD_TARGET_S,
        "build_ratio_to_target": round(build_median / BUILD_TARGET_S, 3),
        "apply_s_median": round(apply_median, 5),
        "apply_s_min": round(min(apply_times), 5),
        "apply_target_s": APPLY_TARGET_S,
        "apply_ratio_to_target": round(apply_median / APPLY_TARGET_S, 3),
        "apply_factored_s_median": round(statistics.median(factored_times), 5),
        "apply_factored_ratio_to_target": round(
            statistics.median(factored_times) / APPLY_TARGET_S, 3
        ),
        "factored_vs_explicit_max_rel_diff": rel_diff,
        "repeats": {"build": args.repeats, "apply": args.apply_repeats},
        "cpus": os.cpu_count(),
        "python": platform.python_version(),
        "numpy": np.__version__,
    }
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
