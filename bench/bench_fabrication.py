"""Benchmark: route, check and export the default camera's key, and the same blocks in place.

Three keys of the default camera's faceplate recipe (``sim/data/default_camera.toml``: 16 ×
16 fibers, 4 × 4 blocks, rows-then-columns shuffles, key seed 0): as configured (blocks
permuted), with the blocks kept in place, and drawn uniformly (``shuffle = "uniform"``, the
recipe of earlier versions). For each: route time (``route_permutation`` alone), time of
route + sample + check, meshing, cores STL, matrix STL and 3MF; peak memory (max RSS of a
fresh child process per run); bundle length against the straight-line bound (``max s_i / tan
θ``) and the bend-aware bound (S-curves at the minimum bend radius plus the straight ends),
with both ratios, and against the floor of routes built as keycam builds them (spread to two
lanes per line, one pass per axis, gather: ``two_lane_floor_mm``); the printed transmission
of every fiber (resin, 0.5 dB/cm): mean and minimum behind the default camera's lens (as the
camera simulates it) and with a uniformly filled acceptance cone (the export's worst case);
mesh figures (``_mesh_figures``: common levels, rings per fiber, polygon sides, triangles and
file size of cores STL, matrix STL and 3MF). Prints JSON (medians over ``--repeat`` runs).

    python bench/bench_fabrication.py [--rows 16] [--block 4] [--repeat 3] [--no-3mf]
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
from pathlib import Path

#: Cases: the default recipe (blocks permuted), the same blocks kept in place, and the
#: default lattice with uniformly drawn keys (the recipe before rows-then-columns keys).
CASES = {"perm": (True, None), "local": (False, None), "perm_uniform": (True, "uniform")}


def _child(rows: int, block: int, case: str, do_3mf: bool) -> dict:
    import numpy as np

    from fabrication.export import build, route_key
    from fabrication.process import ProcessConfig
    from optics.faceplate import FaceplateConfig, keygen
    from sim.config import CameraConfig

    permute, shuffle = CASES[case]
    recipe = CameraConfig.default().faceplate.model_dump()
    recipe.update(rows=rows, cols=rows, block_size=block, permute_blocks=permute)
    if shuffle is not None:
        recipe["shuffle"] = shuffle
    key = keygen(FaceplateConfig(**recipe))
    process = ProcessConfig.preset("resin")
    out: dict = {
        "case": case,
        "permute_blocks": permute,
        "shuffle": key.config.shuffle,
        "n_fibers": key.n_fibers,
        "decomposition": None,
    }
    t0 = time.perf_counter()
    route_key(key, process)
    t_route = time.perf_counter() - t0
    t0 = time.perf_counter()
    dev = build(key, process)
    t1 = time.perf_counter()
    trans = dev.transmission["total"]
    # as the default camera simulates it: the bend loss of its own lens's cone
    from fabrication.printed import PrintedTransmission
    from sim.printed import lens_launch

    camera_lens = lens_launch(CameraConfig.default().lens)
    seen = PrintedTransmission.from_device(dev, camera_lens).total
    out["decomposition"] = dev.route.decomposition
    out.update(_mesh_figures(dev, process, do_3mf))
    r = dev.report
    out.update(
        passed=r.passed,
        route_s=t_route,
        route_check_s=t1 - t0,
        total_cores_only_s=t1 - t0 + out["mesh_s"] + out["cores_stl_s"],
        total_s=t1 - t0 + out["export_s"],
        length_mm=r.length_mm,
        lower_bound_mm=r.lower_bound_mm,
        displacement_sites=r.displacement_sites,
        length_ratio=r.length_ratio,
        bend_bound_mm=r.bend_bound_mm,
        bend_bound_ratio=r.bend_bound_ratio,
        two_lane_floor_mm=r.two_lane_floor_mm,
        two_lane_floor_ratio=r.two_lane_floor_ratio,
        transmission_mean=float(np.mean(seen)),
        transmission_min=float(np.min(seen)),
        transmission_mean_uniform_fill=float(np.mean(trans)),
        transmission_min_uniform_fill=float(np.min(trans)),
        n_stages=r.n_stages,
        peak_rss_mb=resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
    )
    return out


def _mesh_figures(dev, process, do_3mf: bool) -> dict:
    """Mesh figures of a built device: rings, triangles, file sizes and time of each step.

    Meshes and files are made as ``python -m fabrication.export`` makes them (cores STL,
    matrix STL, 3MF with both bodies), into a temporary folder.
    """
    from fabrication.mesh import bundle_meshes
    from fabrication.meshio import write_3mf, write_stl

    pl = dev.polylines
    t1 = time.perf_counter()
    cores, matrix = bundle_meshes(
        pl, process.channel_diameter_mm / 2, process.polygon_sides(), process.housing_margin_mm
    )
    t2 = time.perf_counter()
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        write_stl(folder / "cores.stl", [cores], cores.n_faces)
        t3 = time.perf_counter()
        write_stl(folder / "matrix.stl", [matrix], matrix.n_faces)
        t4 = time.perf_counter()
        if do_3mf:
            write_3mf(
                folder / "device.3mf",
                [("cores", lambda: iter([cores])), ("matrix", lambda: iter([matrix]))],
            )
        t5 = time.perf_counter()
        sizes = {p.stem: round(p.stat().st_size / 1e6, 1) for p in folder.iterdir()}
    return {
        "levels": int(pl.z.size),
        "rings_per_fiber": round(float(pl.rings.sum()) / pl.n_fibers, 1),
        "polygon_sides": process.polygon_sides(),
        "triangles_cores": cores.n_faces,
        "triangles_matrix": matrix.n_faces,
        "cores_stl_mb": sizes["cores"],
        "matrix_stl_mb": sizes["matrix"],
        "threemf_mb": sizes.get("device"),
        "mesh_s": t2 - t1,
        "cores_stl_s": t3 - t2,
        "matrix_stl_s": t4 - t3,
        "threemf_s": (t5 - t4) if do_3mf else None,
        "export_s": t5 - t1,
    }


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--rows", type=int, default=16)
    p.add_argument("--block", type=int, default=4)
    p.add_argument("--repeat", type=int, default=3)
    p.add_argument("--no-3mf", action="store_true")
    p.add_argument("--child", help=argparse.SUPPRESS)
    a = p.parse_args()
    if a.child is not None:
        print(json.dumps(_child(a.rows, a.block, a.child, not a.no_3mf)))
        return
    env = dict(os.environ)
    root = str(Path(__file__).resolve().parents[1])
    env["PYTHONPATH"] = root + os.pathsep + env.get("PYTHONPATH", "")
    results = []
    for case in CASES:
        runs = []
        for _ in range(a.repeat):
            cmd = [sys.executable, __file__, "--rows", str(a.rows), "--block", str(a.block),
                   "--child", case] + (["--no-3mf"] if a.no_3mf else [])  # fmt: skip
            res = subprocess.run(cmd, capture_output=True, text=True, env=env, check=True)
            runs.append(json.loads(res.stdout.strip().splitlines()[-1]))
        med = dict(runs[0])
        for k, v in runs[0].items():
            if isinstance(v, float):
                med[k] = float(f"{statistics.median(r[k] for r in runs):.4g}")
        med["runs"] = a.repeat
        results.append(med)
    print(
        json.dumps(
            {
                "benchmark": "fabrication",
                "lattice": f"{a.rows}x{a.rows}",
                "block_size": a.block,
                "targets": {
                    "total_s": 60,
                    "peak_rss_mb": 4096,
                    "cores_stl_mb": 250,
                    "threemf_mb": 100,
                    "bend_bound_ratio": {"local": 3.0, "perm": 2.0},
                    "transmission_mean": 0.10,
                },
                "cpu_count": os.cpu_count(),
                "load_average": os.getloadavg(),
                "cases": results,
            },
            indent=2,
        )
    )


if __name__ == "__main__":
    main()
