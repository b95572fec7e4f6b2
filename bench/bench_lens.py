"""Benchmark: form_image of a 1024×1024 scene onto a 1024×1024 plane, with PSF and distortion.

Prints one JSON object: the median wall time of warm calls (operator and kernel spectrum
cached, as when rendering many frames through one camera), the cold first call (building the
resampling operator and PSF kernel), and the time to build the explicit sparse operator of a
512×512 scene onto 256×256 samples. Usage: ``python bench/bench_lens.py [--repeats N]``.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import time

import numpy as np

from optics.lens import LensConfig, form_image, image_operator, imaging, psf_kernel


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=15)
    args = parser.parse_args()

    lens = LensConfig(
        focal_length_mm=20.0,
        f_number=4.0,
        wavelength_nm=550.0,
        defocus_waves=0.5,
        k1=-0.08,
        k2=0.01,
        p1=0.0005,
        p2=-0.0003,
    )
    dx_um = 2.0  # λN = 2.2 µm: the PSF spans several samples and is applied
    n = 1024
    fov = 2 * np.degrees(np.arctan(n / 2 * dx_um * 1e-3 / lens.image_distance_mm))
    rng = np.random.default_rng(0)
    scene = rng.random((n, n))
    kw = dict(scene_fov_deg=fov, dx_um=dx_um, shape=(n, n))

    t0 = time.perf_counter()
    form_image(scene, lens, **kw)
    cold = time.perf_counter() - t0
    warm = []
    for _ in range(args.repeats):
        t0 = time.perf_counter()
        form_image(scene, lens, **kw)
        warm.append(time.perf_counter() - t0)

    builds = []
    # 256 samples span the 512-pixel scene (dx = 27.5 µm = 12.5 λN: blur negligible)
    dx_small = 2 * 20.0 * np.tan(np.radians(10.0)) / 256 * 1e3
    small = dict(scene_shape=(512, 512), scene_fov_deg=20.0, dx_um=dx_small, shape=(256, 256))
    for _ in range(5):
        imaging._area_operator.cache_clear()
        t0 = time.perf_counter()
        op = image_operator(LensConfig(focal_length_mm=20.0, f_number=4.0, k1=-0.05), **small)
        builds.append(time.perf_counter() - t0)

    print(
        json.dumps(
            {
                "benchmark": "lens.form_image 1024x1024 scene -> 1024x1024 plane, PSF + distortion",
                "psf_kernel_size": psf_kernel(lens, dx_um=dx_um).shape[0],
                "median_warm_s": statistics.median(warm),
                "min_warm_s": min(warm),
                "cold_first_call_s": cold,
                "target_s": 0.080,
                "ratio_to_target": statistics.median(warm) / 0.080,
                "operator_512_to_256_build_median_s": statistics.median(builds),
                "operator_512_to_256_nnz": int(op.nnz),
                "repeats": args.repeats,
                "cpu_count": os.cpu_count(),
                "load_avg_1min": os.getloadavg()[0],
            },
            indent=2,
        )
    )


if __name__ == "__main__":
    main()
