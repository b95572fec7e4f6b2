"""Export a key as checked, printable fiber geometry.

Library use::

    from optics.faceplate import Key
    from fabrication.export import build
    device = build(Key.load("device.key"), ProcessConfig.preset("resin"))
    device.report.passed, device.report.length_mm

Command line::

    python -m fabrication.export KEY [-o DIR] [--process resin|fdm] [--attenuation DB_PER_CM]
                                     [--lens-f-number N] [--pupil-distance MM]
                                     [--report report.json] [--write-transmission KEY_OUT]
                                     [--force] [--quiet] [--no-matrix] [--no-3mf]

writes ``DIR/<key stem>_cores.stl`` (one watertight body per fiber),
``DIR/<key stem>_matrix.stl`` (housing minus cores) and ``DIR/<key stem>.3mf`` (both
bodies). If any manufacturability check fails it writes nothing and exits with status 2 and
one ``error:`` line naming the violated rule and the fiber. All files of a run appear
together or not at all (:class:`keycam.outputs.OutputSet`, which also removes folders the
run created if it fails), are never overwritten without ``--force``, and are never the input
key. The key itself is never printed; its fingerprint is.
"""

from __future__ import annotations

if __name__ == "__main__":  # pragma: no cover - `python -m fabrication.export`
    # Run the command under keycam's interrupt handling *before* the heavy imports below:
    # `main` is imported (as fabrication.export) inside `run`, so a Ctrl-C during start-up
    # ends with one line, like anywhere else.
    import sys
    from collections.abc import Sequence

    from keycam.cli import run

    def _entry(argv: Sequence[str] | None = None) -> int:
        from fabrication.export import main

        return main(argv)

    sys.exit(run(_entry))

import json
import math
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from fabrication.checks import CheckReport, run_checks
from fabrication.mesh import bundle_meshes, is_watertight
from fabrication.meshio import write_3mf, write_stl
from fabrication.process import PRESETS, ProcessConfig, face_geometry
from fabrication.routing import Route, route_permutation
from fabrication.sampling import Polylines, sample_route
from fabrication.transmission import Launch, fiber_transmission
from keycam.cli import ArgumentParser, CLIError, float_at_least, progress, run

__all__ = [
    "FULL_WATERTIGHT_CHECK_FACES",
    "Device",
    "build",
    "main",
    "mesh_memory",
    "mesh_triangles",
    "route_key",
    "routing_memory",
]

FULL_WATERTIGHT_CHECK_FACES = 5_000_000  # edge-sorting check up to this many triangles

# Memory estimates checked against keycam's budget before routing and before meshing
# (measured on 32 x 32 and 64 x 64 keys with the resin preset: about 90 bytes per fiber and
# sampled level while routing and checking, about 50 bytes per core triangle while meshing
# both bodies and writing them; the constants add a margin). Recalibrate them when routing or
# meshing changes: `python bench/bench_fabrication.py` prints the sizes.
_ROUTE_BYTES_PER_FIBER_LEVEL = 100
_LEVELS_PER_SQRT_FIBER = 30  # sampled levels grow like the lattice side (931 at 32 x 32)
_MESH_BYTES_PER_TRIANGLE = 64


def routing_memory(n_fibers: int) -> float:
    """Estimated peak bytes of routing, sampling and checking ``n_fibers`` fibers."""
    levels = _LEVELS_PER_SQRT_FIBER * math.sqrt(n_fibers)
    return n_fibers * levels * _ROUTE_BYTES_PER_FIBER_LEVEL


def mesh_triangles(device: Device) -> int:
    """Triangles of the cores body: two per polygon side between consecutive rings."""
    return 2 * device.process.polygon_sides() * int(device.polylines.rings.sum())


def mesh_memory(device: Device, *, matrix: bool) -> float:
    """Estimated peak bytes of meshing ``device`` (and its matrix body) and writing them."""
    per = _MESH_BYTES_PER_TRIANGLE if matrix else 0.75 * _MESH_BYTES_PER_TRIANGLE
    return mesh_triangles(device) * per


@dataclass(frozen=True)
class Device:
    """A routed, sampled and checked key.

    Attributes
    ----------
    route : Route
        Stages of the centerlines.
    polylines : Polylines
        Printed centerlines.
    report : CheckReport
        Every manufacturability check.
    transmission : dict of (n,) arrays
        Per-fiber transmission and its factors (:func:`fiber_transmission`), with the
        acceptance cone uniformly filled; :meth:`transmission_for` gives it behind a lens.
    process : ProcessConfig
        The process used.
    """

    route: Route
    polylines: Polylines
    report: CheckReport
    transmission: dict[str, np.ndarray]
    process: ProcessConfig

    def transmission_for(self, launch: Launch | None) -> dict[str, np.ndarray]:
        """Per-fiber transmission when ``launch`` fills the fibers (``None``: uniformly)."""
        if launch is None:
            return self.transmission
        t = self.transmission
        return fiber_transmission(
            t["length_mm"], t["min_bend_radius_mm"], self.process, launch=launch,
            sites_mm=self.route.face.sites_mm,
        )  # fmt: skip


def route_key(key, process: ProcessConfig) -> Route:
    """Route a key (no checks); see :func:`fabrication.routing.route_permutation`."""
    c = key.config
    face = face_geometry(c.lattice, c.rows, c.cols, c.pitch_um, process)
    return route_permutation(face, np.asarray(key.routing), c.block_size, process)


def _failing_stage(route: Route, z_mm: float | None) -> int | None:
    if z_mm is None or not route.stages:
        return None
    b = route.stage_bounds()
    k = int(np.searchsorted(b, z_mm, side="right")) - 1
    return min(max(k, 0), len(route.stages) - 1)


def build(
    key,
    process: ProcessConfig,
    *,
    max_repairs: int = 6,
    log: Callable[[str], None] | None = None,
) -> Device:
    """Route, sample and check a key; lengthen failing stages until every check passes.

    The construction is collision-free by design; the checks measure the printed polylines
    exactly, and any stage where a check still fails (approximations in the fan design) is
    lengthened by 15 % and re-checked, at most ``max_repairs`` times. The returned report
    may still fail; callers must look at ``report.passed``.
    """
    say = log or (lambda _m: None)
    c = key.config
    route = route_key(key, process)
    for attempt in range(max_repairs + 1):
        say(f"sampling {route.n_fibers} fibers over {route.length_mm:.1f} mm")
        pl = sample_route(route, process)
        say("checking")
        report = run_checks(route, pl, process, c.block_size)
        if report.passed or attempt == max_repairs:
            break
        lengths = np.array([s.length_mm for s in route.stages])
        touched = False
        for f in report.failures():
            k = _failing_stage(route, f.z_mm)
            if k is not None and f.name in ("clearance", "bend_radius", "tilt", "min_feature"):
                lengths[k] *= 1.15
                touched = True
        if not touched:
            break
        say(f"repair {attempt + 1}: lengthening stages where checks failed")
        route = route.with_lengths(lengths)
    kappa = pl.curvature.max(axis=0)
    rmin = np.where(kappa > 0, 1.0 / np.maximum(kappa, 1e-300), math.inf)
    trans = fiber_transmission(pl.arc_lengths(), rmin, process)
    return Device(route, pl, report, trans, process)


# -- command line -----------------------------------------------------------------------------


def _parser() -> ArgumentParser:
    p = ArgumentParser(
        prog="python -m fabrication.export",
        description="Route a keycam key into printable fibers, check them and write STL/3MF.",
    )
    p.add_argument("key", help="key file (from optics.faceplate / sim.capture)")
    p.add_argument("-o", "--out", default=".", help="output folder, created if needed (default: .)")
    p.add_argument("--process", choices=sorted(PRESETS), default="resin", help="print process")
    p.add_argument(
        "--attenuation",
        metavar="DB_PER_CM",
        help="propagation loss of the core material, dB/cm (default: the process preset's)",
    )
    p.add_argument(
        "--lens-f-number",
        metavar="N",
        help="working f-number of the camera lens that fills the fibers: the bend loss of its "
        "cone instead of a uniformly filled acceptance cone (the worst case)",
    )
    p.add_argument(
        "--pupil-distance",
        metavar="MM",
        help="with --lens-f-number: distance from the input face to the lens's exit pupil, "
        "mm (the chief ray tilts towards the face's edge); default: telecentric",
    )
    p.add_argument("--report", help="write the check report as JSON to this file")
    p.add_argument(
        "--write-transmission",
        metavar="KEY_OUT",
        help="write a copy of the key with per-fiber transmission from the printed geometry",
    )
    p.add_argument("--force", action="store_true", help="overwrite existing output files")
    p.add_argument("--quiet", action="store_true", help="no progress bar or summary")
    p.add_argument(
        "--no-matrix", action="store_true", help="skip the matrix body (slow for huge bundles)"
    )
    p.add_argument("--no-3mf", action="store_true", help="skip the 3MF file")
    return p


def _launch(f_number: str | None, pupil_mm: str | None) -> Launch | None:
    """The lens launch the options describe (``None``: acceptance uniformly filled)."""
    n = (
        None
        if f_number is None
        else float_at_least("--lens-f-number", f_number, 0, "f-number", strict=True)
    )
    d = (
        None
        if pupil_mm is None
        else float_at_least("--pupil-distance", pupil_mm, 0, "mm", strict=True)
    )
    if n is None:
        if d is not None:
            raise CLIError("--pupil-distance needs --lens-f-number")
        return None
    return Launch.from_f_number(n, d)


def _launch_words(f_number: str | None, pupil_mm: str | None) -> str:
    """What light the reported transmission is for, in the options' own terms."""
    if f_number is None:
        return "acceptance cone filled; --lens-f-number for a camera lens"
    where = "telecentric" if pupil_mm is None else f"exit pupil {float(pupil_mm):g} mm"
    return f"f/{float(f_number):g} lens, {where}"


def _size(path: Path) -> str:
    """File size for people: ``"2.2 GB"``, ``"14.0 MB"``, ``"3 kB"``."""
    n = path.stat().st_size
    if n >= 1e9:
        return f"{n / 1e9:.1f} GB"
    return f"{n / 1e6:.1f} MB" if n >= 1e6 else f"{n / 1e3:.0f} kB"


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of ``python -m fabrication.export``; returns the exit status."""
    from keycam.limits import check_memory
    from keycam.outputs import OutputSet
    from optics.faceplate import Key

    args = _parser().parse_args(argv)
    t0 = time.perf_counter()
    out = Path(args.out)
    if out.exists() and not out.is_dir():
        raise CLIError(f"--out: {out} exists and is not a folder")
    key_path = Path(args.key)
    stem = key_path.stem
    targets = {"cores": out / f"{stem}_cores.stl"}
    if not args.no_matrix:
        targets["matrix"] = out / f"{stem}_matrix.stl"
    if not args.no_3mf:
        targets["3mf"] = out / f"{stem}.3mf"
    overrides = {}
    if args.attenuation is not None:
        overrides["attenuation_db_per_cm"] = float_at_least(
            "--attenuation", args.attenuation, 0, "dB/cm"
        )
    launch = _launch(args.lens_f_number, args.pupil_distance)
    with OutputSet(overwrite=args.force, inputs=[key_path]) as outputs:
        for p in targets.values():
            outputs.plan(p)
        if args.write_transmission:
            outputs.plan(args.write_transmission, mode=0o600)  # a key: a secret
        if args.report:
            outputs.plan(args.report)

        key = Key.load(key_path)
        process = ProcessConfig.preset(args.process, **overrides)
        quiet = args.quiet
        check_memory(
            f"routing the {key.n_fibers} fibers of {key_path}",
            routing_memory(key.n_fibers),
            reduce="the key's lattice (rows x cols)",
        )

        def say(msg: str) -> None:
            if not quiet and sys.stderr.isatty():
                sys.stderr.write(f"{msg}\n")

        say(f"key {key.fingerprint}: {key.config.rows}x{key.config.cols} fibers, "
            f"block {key.config.block_size}")  # fmt: skip
        device = build(key, process, log=say)
        report = device.report
        if not report.passed:
            bad = report.failures()[0]
            raise CLIError(f"check failed, nothing written: {bad.message(key.config.cols)}")
        t_check = time.perf_counter() - t0
        check_memory(
            f"meshing {mesh_triangles(device)} triangles per body",
            mesh_memory(device, matrix=not args.no_matrix),
            reduce="the key's lattice, or skip the matrix body with --no-matrix",
        )

        radius = process.channel_diameter_mm / 2.0
        sides = process.polygon_sides()
        say("meshing")
        cores, matrix = bundle_meshes(
            device.polylines,
            radius,
            sides,
            process.housing_margin_mm,
            matrix=not args.no_matrix,
            progress=lambda it: progress(
                it, total=-(-key.n_fibers // 256), desc="meshing", quiet=quiet, unit="batch"
            ),
        )
        # Tubes are closed by construction and the matrix faces are verified to close against
        # the rings; the full edge check is run when it is cheap (it sorts every edge).
        for name, m in (("cores", cores), ("matrix", matrix)):
            if m is not None and m.n_faces <= FULL_WATERTIGHT_CHECK_FACES and not is_watertight(m):
                raise CLIError(f"{name} mesh is not watertight, nothing written")
        n_faces = cores.n_faces

        with outputs.staging(targets["cores"]) as tmp:
            write_stl(
                tmp, [cores], n_faces, overwrite=True, header=f"keycam cores {key.fingerprint}"
            )
        if matrix is not None:
            with outputs.staging(targets["matrix"]) as tmp:
                write_stl(tmp, [matrix], matrix.n_faces, overwrite=True,
                          header=f"keycam matrix {key.fingerprint}")  # fmt: skip
        if "3mf" in targets:
            bodies = [("cores", lambda: iter([cores]))]
            if matrix is not None:
                bodies.append(("matrix", lambda: iter([matrix])))
            with outputs.staging(targets["3mf"]) as tmp:
                write_3mf(tmp, bodies, overwrite=True)
        printed = device.transmission_for(launch)
        if args.write_transmission:
            new_key = key.with_transmission(printed["total"])
            with outputs.staging(args.write_transmission) as tmp:
                new_key.save(tmp, overwrite=True)
        if args.report:
            d = json.loads(report.to_json())
            d["key_fingerprint"] = key.fingerprint
            d["seconds"] = round(time.perf_counter() - t0, 3)
            d["seconds_route_check"] = round(t_check, 3)
            d["outputs"] = {k: str(v) for k, v in targets.items()}
            d["triangles_cores"] = n_faces
            d["triangles_matrix"] = matrix.n_faces if matrix is not None else None
            d["transmission"] = {
                k: {"min": float(v.min()), "mean": float(v.mean()), "max": float(v.max())}
                for k, v in printed.items()
                if k in ("total", "attenuation", "bend", "fresnel")
            }
            d["launch"] = None if launch is None else launch.summary()
            outputs.write_bytes(args.report, json.dumps(d, indent=2).encode())
        written = outputs.commit()
    if not quiet:
        print(
            f"key {key.fingerprint}: {report.n_fibers} fibers, length {report.length_mm:.1f} mm "
            f"({report.bend_bound_ratio:.1f}x the {report.bend_bound_mm:.1f} mm bend-aware bound, "
            f"{report.length_ratio:.1f}x the {report.lower_bound_mm:.1f} mm straight-line "
            f"bound), mean transmission {float(np.mean(printed['total'])):.3g} "
            f"({_launch_words(args.lens_f_number, args.pupil_distance)}), "
            f"all checks passed; wrote {', '.join(f'{p} ({_size(p)})' for p in written)}"
        )
    return 0
