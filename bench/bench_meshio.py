"""Benchmark: mesh file writers on the same meshes (binary STL and 3MF).

Builds a key's cores and matrix once (default: a 64 × 64 key with 8 × 8 blocks, blocks
permuted, as in the default camera), stores them, then runs every writer in a fresh child
process on the same meshes: keycam's own writers (:mod:`fabrication.meshio`, streamed in
chunks) against numpy-stl (``stl.mesh.Mesh.save``) and trimesh
(``trimesh.exchange.threemf.export_3MF``). Prints JSON with, per writer and body: seconds,
file size, peak memory while writing (max RSS, reset after loading the meshes) and the part
of it above the loaded meshes (medians over ``--repeat`` runs).

    python bench/bench_meshio.py [--rows 64] [--block 8] [--no-permute] [--repeat 3]
                                 [--writers stl_own,stl_numpy_stl,3mf_own,3mf_trimesh]

trimesh's 3MF export needs lxml (``pip install lxml``); a writer that fails reports its
error instead of figures.
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

import numpy as np

WRITERS = ("stl_own", "stl_numpy_stl", "3mf_own", "3mf_trimesh")


def _status_mb(field: str) -> float:
    """A memory figure of this process from /proc (``VmRSS``, ``VmHWM``), MB."""
    with open("/proc/self/status") as fh:
        for line in fh:
            if line.startswith(field + ":"):
                return int(line.split()[1]) / 1024
    return float("nan")  # pragma: no cover - not Linux


def _reset_peak() -> bool:
    """Reset the peak resident size (VmHWM) so it measures the writer only (Linux ≥ 4.0)."""
    try:
        with open("/proc/self/clear_refs", "w") as fh:
            fh.write("5")
    except OSError:  # pragma: no cover - not Linux or not allowed
        return False
    return True


def _load(folder: Path, body: str):
    import numpy as np

    from fabrication.mesh import TriMesh

    return TriMesh(np.load(folder / f"{body}_v.npy"), np.load(folder / f"{body}_f.npy"))


def _write_stl_numpy_stl(path: Path, m) -> None:
    from stl import Mode
    from stl.mesh import Mesh

    from keycam.fileio import atomic_write

    data = np.zeros(m.n_faces, dtype=Mesh.dtype)
    data["vectors"] = m.vertices[m.faces]
    mesh = Mesh(data, calculate_normals=False)
    with atomic_write(path) as fh:
        mesh.save(path.name, fh=fh, mode=Mode.BINARY, update_normals=True)


def _write_3mf_trimesh(path: Path, bodies) -> None:
    import trimesh
    from trimesh.exchange.threemf import export_3MF

    from keycam.fileio import write_bytes_atomic

    scene = trimesh.Scene()
    for name, m in bodies:
        scene.add_geometry(trimesh.Trimesh(m.vertices, m.faces, process=False), geom_name=name)
    write_bytes_atomic(path, export_3MF(scene, compresslevel=1))


def _child(folder: Path, writer: str) -> dict:
    from fabrication.meshio import write_3mf, write_stl

    bodies = ("cores", "matrix")
    meshes = {b: _load(folder, b) for b in bodies}
    base = _status_mb("VmRSS")
    reset = _reset_peak()
    out: dict = {"writer": writer, "rss_loaded_mb": round(base, 1)}
    with tempfile.TemporaryDirectory(dir=folder) as tmp:
        t0 = time.perf_counter()
        try:
            if writer.startswith("stl"):
                for b in bodies:
                    t = time.perf_counter()
                    p = Path(tmp) / f"{b}.stl"
                    if writer == "stl_own":
                        write_stl(p, [meshes[b]], meshes[b].n_faces)
                    else:
                        _write_stl_numpy_stl(p, meshes[b])
                    out[f"{b}_s"] = time.perf_counter() - t
                    out[f"{b}_mb"] = round(p.stat().st_size / 1e6, 1)
            else:
                p = Path(tmp) / "device.3mf"
                if writer == "3mf_own":
                    write_3mf(p, [(b, lambda b=b: iter([meshes[b]])) for b in bodies])
                else:
                    _write_3mf_trimesh(p, [(b, meshes[b]) for b in bodies])
                out["3mf_mb"] = round(p.stat().st_size / 1e6, 1)
        except Exception as exc:  # reported, not raised: a writer may not cope
            out["error"] = f"{type(exc).__name__}: {exc}"[:300]
        out["total_s"] = time.perf_counter() - t0
    # peak while writing (after the reset), else over the whole child
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    if reset:
        peak = _status_mb("VmHWM")
    out["peak_rss_mb"] = round(peak, 1)
    out["writer_extra_mb"] = round(peak - base, 1)
    return out


def _prepare(folder: Path, rows: int, block: int, permute: bool) -> dict:
    from fabrication.export import build
    from fabrication.mesh import bundle_meshes
    from fabrication.process import ProcessConfig
    from optics.faceplate import FaceplateConfig, keygen

    key = keygen(
        FaceplateConfig(rows=rows, cols=rows, block_size=block, permute_blocks=permute, seed=1)
    )
    process = ProcessConfig.preset("resin")
    dev = build(key, process)
    cores, matrix = bundle_meshes(
        dev.polylines,
        process.channel_diameter_mm / 2,
        process.polygon_sides(),
        process.housing_margin_mm,
    )
    for name, m in (("cores", cores), ("matrix", matrix)):
        np.save(folder / f"{name}_v.npy", m.vertices)
        np.save(folder / f"{name}_f.npy", m.faces)
    return {"triangles_cores": cores.n_faces, "triangles_matrix": matrix.n_faces}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--rows", type=int, default=64)
    p.add_argument("--block", type=int, default=8)
    p.add_argument("--no-permute", action="store_true", help="keep blocks in place")
    p.add_argument("--repeat", type=int, default=3)
    p.add_argument("--writers", default=",".join(WRITERS))
    p.add_argument("--child", nargs=2, help=argparse.SUPPRESS)
    a = p.parse_args()
    if a.child is not None:
        print(json.dumps(_child(Path(a.child[0]), a.child[1])))
        return
    env = dict(os.environ)
    root = str(Path(__file__).resolve().parents[1])
    env["PYTHONPATH"] = root + os.pathsep + env.get("PYTHONPATH", "")
    results = []
    with tempfile.TemporaryDirectory() as tmp:
        info = _prepare(Path(tmp), a.rows, a.block, not a.no_permute)
        for writer in a.writers.split(","):
            if writer not in WRITERS:
                raise SystemExit(f"unknown writer {writer!r}; choose from {WRITERS}")
            runs = []
            for _ in range(a.repeat):
                cmd = [sys.executable, __file__, "--child", tmp, writer]
                res = subprocess.run(cmd, capture_output=True, text=True, env=env, check=True)
                runs.append(json.loads(res.stdout.strip().splitlines()[-1]))
                if "error" in runs[-1]:
                    break
            med = dict(runs[-1])
            for k, v in runs[-1].items():
                if isinstance(v, float):
                    med[k] = round(statistics.median(r[k] for r in runs), 3)
            med["runs"] = len(runs)
            results.append(med)
    print(
        json.dumps(
            {
                "benchmark": "meshio",
                "lattice": f"{a.rows}x{a.rows}",
                "block_size": a.block,
                "permute_blocks": not a.no_permute,
                **info,
                "cpu_count": os.cpu_count(),
                "load_average": os.getloadavg(),
                "writers": results,
            },
            indent=2,
        )
    )


if __name__ == "__main__":
    main()
