"""Measure a built device's key: show it Gray-code patterns, record frames, solve.

Usage::

    python -m sim.calibrate patterns [--config TOML] -o DIR [--no-complements] [--force]
    python -m sim.calibrate simulate DIR --key FILE [--config TOML] -o FRAMES [--seed N]
                                     [--exposure auto|SECONDS] [--force] [--quiet]
    python -m sim.calibrate solve FRAMES [--config TOML] -o KEY [--report JSON]
                                  [--manifest JSON] [--exposure SECONDS] [--force] [--quiet]

``patterns`` writes the pattern set (:mod:`sim.calibration`) as 8-bit grey PNGs on the camera's
scene grid, ready to show full-screen, and ``manifest.json`` naming each frame's role.
Record one frame per pattern at one fixed exposure and save it as ``FRAMES/NAME.png``
(16-bit), ``NAME.tif`` or ``NAME.npy`` (a ``(k, H, W)`` stack is averaged), next to a copy of
the manifest. ``simulate`` does exactly that with the simulated camera and a key, all noise
on. ``solve`` measures the key (:func:`sim.calibration.solve_key`) and writes it (mode 0600)
and, with ``--report``, a shareable report: counts and margins, never the key.

Nothing is written unless every input is valid; outputs are written atomically and never
replace existing files without ``--force``.
"""

from __future__ import annotations

import contextlib
import io
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from keycam.cli import ArgumentParser, CLIError, progress, run
from keycam.fileio import write_bytes_atomic

__all__ = ["main"]


def _png8(image: Any) -> bytes:
    from PIL import Image

    buf = io.BytesIO()
    Image.fromarray(image).save(buf, format="PNG")
    return buf.getvalue()


def _write_all(jobs: list[tuple[Path, Any]], *, quiet: bool, desc: str) -> None:
    """Run writers ``(path, fn(path))`` in order; on any failure remove what was written."""
    started: list[Path] = []
    try:
        for path, fn in progress(jobs, total=len(jobs), desc=desc, quiet=quiet, unit="file"):
            started.append(path)
            fn(path)
    except BaseException as exc:
        if isinstance(exc, FileExistsError) and started:
            started.pop()
        for q in started:
            with contextlib.suppress(OSError):
                q.unlink()
        raise


# ------------------------------------------------------------------ command line
def _parser() -> ArgumentParser:
    p = ArgumentParser(
        prog="python -m sim.calibrate",
        description="Measure a built device's key: write Gray-code patterns to show the "
        "camera, simulate their frames, and solve recorded frames for the key.",
    )
    sub = p.add_subparsers(dest="command", required=True, metavar="{patterns,simulate,solve}")
    cfg_help = "camera configuration (default: the bundled sim/data/default_camera.toml)"

    pt = sub.add_parser(
        "patterns",
        prog="python -m sim.calibrate patterns",
        help="write the pattern set (PNG) and its manifest",
        description="Write the calibration patterns as 8-bit grey PNGs on the camera's scene "
        "grid (show them full-screen) and manifest.json naming each frame's role.",
    )
    pt.add_argument("--config", metavar="TOML", help=cfg_help)
    pt.add_argument("-o", "--out", metavar="DIR", required=True, help="output folder")
    pt.add_argument(
        "--no-complements",
        action="store_true",
        help="omit the complement of each Gray frame (fewest frames: bits_x + bits_y + 2)",
    )
    pt.add_argument("--force", action="store_true", help="replace existing pattern files")
    pt.add_argument("--quiet", action="store_true", help="print nothing but errors")

    sm = sub.add_parser(
        "simulate",
        prog="python -m sim.calibrate simulate",
        help="capture the patterns through the simulated camera",
        description="Capture every pattern of DIR through the simulated camera with a key "
        "(all noise on) and write the frames as 16-bit PNGs with the manifest.",
    )
    sm.add_argument("patterns", metavar="DIR", help="folder written by 'patterns'")
    sm.add_argument("--config", metavar="TOML", help=cfg_help)
    sm.add_argument("--key", metavar="FILE", required=True, help="key of the simulated device")
    sm.add_argument("-o", "--out", metavar="FRAMES", required=True, help="output folder")
    sm.add_argument("--seed", metavar="N", help="seed of the frame noise (default: fresh)")
    sm.add_argument(
        "--exposure",
        metavar="auto|SECONDS",
        help="exposure of every frame: 'auto' (set by the white pattern) or a time such as "
        "0.02, 20ms (default: the configuration's, auto by the white pattern)",
    )
    sm.add_argument("--force", action="store_true", help="replace existing frame files")
    sm.add_argument("--quiet", action="store_true", help="print nothing but errors")

    sv = sub.add_parser(
        "solve",
        prog="python -m sim.calibrate solve",
        help="measure the key from recorded frames",
        description="Measure the key (routing, transmission, bias, dead fibers) from frames "
        "of the patterns and write it as a key file (mode 0600).",
    )
    sv.add_argument("frames", metavar="FRAMES", help="folder of recorded frames")
    sv.add_argument("--config", metavar="TOML", help=cfg_help)
    sv.add_argument("-o", "--out", metavar="KEY", required=True, help="measured key file")
    sv.add_argument(
        "--report", metavar="JSON", help="write a shareable report (counts, margins; no key)"
    )
    sv.add_argument(
        "--manifest", metavar="JSON", help="pattern manifest (default: FRAMES/manifest.json)"
    )
    sv.add_argument(
        "--exposure",
        metavar="SECONDS",
        help="exposure of the frames, e.g. 0.02 or 20ms (default: the manifest's)",
    )
    sv.add_argument("--force", action="store_true", help="replace existing output files")
    sv.add_argument("--quiet", action="store_true", help="print nothing but errors")
    return p


def _say(quiet: bool, text: str) -> None:
    if not quiet:
        print(text, flush=True)


def _camera(config_path: str | None, key_path: str | None = None) -> Any:
    from optics.faceplate import Key
    from sim.camera import Camera
    from sim.config import CameraConfig, load_config

    config = load_config(config_path) if config_path else CameraConfig.default()
    if config.colour != "mono":
        raise CLIError(
            f"--config: colour = {config.colour!r}; calibration needs a monochrome camera"
        )
    return Camera(config, Key.load(key_path) if key_path else None)


def _out_folder(path: str, option: str) -> Path:
    out = Path(path)
    if out.exists() and not out.is_dir():
        raise CLIError(f"{option}: {out} exists and is not a folder")
    return out


def _check_new(paths: Sequence[Path], force: bool) -> None:
    for q in paths:
        if q.is_dir():
            raise CLIError(f"output {q} exists and is a folder")
        if q.exists() and not force:
            raise CLIError(f"{q} already exists; pass --force to replace it")


def _cmd_patterns(args: Any) -> int:
    from sim.calibration import MANIFEST_NAME, make_patterns, manifest_of, pattern_summary
    from sim.io import write_json

    out = _out_folder(args.out, "-o")
    camera = _camera(args.config)
    ps = make_patterns(camera, complements=not args.no_complements)
    targets = [out / f"{f.name}.png" for f in ps.frames] + [out / MANIFEST_NAME]
    _check_new(targets, args.force)
    out.mkdir(parents=True, exist_ok=True)
    pngs = [_png8(ps.display_image(j)) for j in range(ps.n_frames)]
    jobs: list[tuple[Path, Any]] = [
        (q, lambda q, b=b: write_bytes_atomic(q, b, overwrite=args.force))
        for q, b in zip(targets, pngs, strict=False)
    ]
    jobs.append((targets[-1], lambda q: write_json(q, manifest_of(ps), overwrite=args.force)))
    _write_all(jobs, quiet=args.quiet, desc="patterns")
    _say(args.quiet, f"{pattern_summary(ps)} -> {out}/ (show each full-screen; {MANIFEST_NAME})")
    return 0


def _load_set(camera: Any, manifest_path: Path) -> tuple[Any, Any]:
    from sim.calibration import check_manifest, make_patterns, read_manifest

    man = read_manifest(manifest_path)
    ps = make_patterns(camera, complements=man.code.complements)
    check_manifest(man, ps, source=f"manifest {manifest_path}")
    return man, ps


def _cmd_simulate(args: Any) -> int:
    import numpy as np

    from sim.calibration import MANIFEST_NAME, CaptureInfo, manifest_of, simulate_frames
    from sim.io import read_image, write_frame_png, write_json
    from sim.units import parse_exposure

    src = Path(args.patterns)
    if not src.is_dir():
        raise CLIError(f"DIR: {src} is not a folder of patterns")
    out = _out_folder(args.out, "-o")
    if out.resolve() == src.resolve():
        raise CLIError("-o: write the frames to another folder than the patterns")
    seed = None
    if args.seed is not None:
        try:
            seed = int(args.seed)
        except ValueError:
            raise CLIError(f"--seed: expected an integer >= 0, got {args.seed!r}") from None
        if seed < 0:
            raise CLIError(f"--seed: must be >= 0, got {seed}")
    exposure = None if args.exposure is None else parse_exposure(args.exposure, name="--exposure")
    camera = _camera(args.config, args.key)
    _, ps = _load_set(camera, src / MANIFEST_NAME)
    for j, fr in enumerate(ps.frames):
        if not (src / f"{fr.name}.png").is_file():
            raise CLIError(f"pattern {src / fr.name}.png is missing (listed in the manifest)")
        img = read_image(src / f"{fr.name}.png").data
        if img.shape != ps.images[j].shape or not np.allclose(img, ps.images[j], atol=1e-6):
            raise CLIError(
                f"pattern {src / fr.name}.png differs from this camera's pattern "
                "(edited, or made for another camera?)"
            )
    targets = [out / f"{f.name}.png" for f in ps.frames] + [out / MANIFEST_NAME]
    _check_new(targets, args.force)

    if exposure is None:  # the configuration's: a fixed time, or auto by the white pattern
        exposure = camera.config.exposure
    t = None if exposure == "auto" else float(exposure)
    frames, t = simulate_frames(camera, ps, rng=np.random.default_rng(seed), exposure_s=t)
    info = CaptureInfo(exposure_s=t, source="simulated", key_fingerprint=camera.key.fingerprint)
    out.mkdir(parents=True, exist_ok=True)
    jobs: list[tuple[Path, Any]] = [
        (q, lambda path, fr=fr: write_frame_png(path, fr, overwrite=args.force))
        for q, fr in zip(targets, frames, strict=False)
    ]
    jobs.append((targets[-1], lambda q: write_json(q, manifest_of(ps, info), overwrite=args.force)))
    _write_all(jobs, quiet=args.quiet, desc="frames")
    sat = float(np.mean(frames >= camera.sensor.max_dn))
    _say(
        args.quiet,
        f"{len(frames)} frames {frames.shape[2]}x{frames.shape[1]} px at {t * 1e3:.4g} ms "
        f"through key {camera.key.fingerprint} ({100 * sat:.3f} % saturated) -> {out}/",
    )
    return 0


def _cmd_solve(args: Any) -> int:
    from sim.calibration.frames import find_frames
    from sim.calibration.manifest import MANIFEST_NAME, read_manifest
    from sim.units import parse_exposure

    src = Path(args.frames)
    if not src.is_dir():
        raise CLIError(f"FRAMES: {src} is not a folder of frames")
    key_out = Path(args.out)
    report_out = Path(args.report) if args.report else None
    outs = [key_out] + ([report_out] if report_out else [])
    if report_out and report_out.absolute() == key_out.absolute():
        raise CLIError("--report: must differ from the key file -o")
    for q in outs:
        if not q.absolute().parent.is_dir():
            raise CLIError(f"output {q}: folder {q.absolute().parent} does not exist")
    _check_new(outs, args.force)
    exposure = None
    if args.exposure is not None:
        exposure = parse_exposure(args.exposure, name="--exposure")
        if exposure == "auto":
            raise CLIError("--exposure: give the exposure the frames were taken with, in s")
    # cheap checks first: the manifest and the frame files it names
    manifest_path = Path(args.manifest) if args.manifest else src / MANIFEST_NAME
    man = read_manifest(manifest_path)
    if exposure is None:
        if man.capture is None:
            raise CLIError(
                "exposure of the frames unknown: pass --exposure SECONDS (or record "
                "capture.exposure_s in the manifest)"
            )
        exposure = man.capture.exposure_s
    paths = find_frames(src, [f.name for f in man.frames])

    import numpy as np

    from sim.calibration import check_manifest, make_patterns, read_frame, solve_key
    from sim.io import write_json

    camera = _camera(args.config)
    ps = make_patterns(camera, complements=man.code.complements)
    check_manifest(man, ps, source=f"manifest {manifest_path}")
    frames = np.stack([read_frame(q, ps.sensor_shape) for q in paths])
    cal = solve_key(camera, ps, frames, exposure_s=float(exposure))
    report = {"software": f"keycam {_version()} sim.calibrate solve", **cal.report}
    report["camera_digest"] = ps.digest
    cal.key.save(key_out, overwrite=args.force)
    if report_out:
        try:
            write_json(report_out, report, overwrite=args.force)
        except BaseException:
            with contextlib.suppress(OSError):
                key_out.unlink()
            raise
    fb, rg = cal.report["fibers"], cal.registration
    if fb["unreadable_sites"]:
        print(
            f"note: {fb['unreadable_sites']} output sites could not be read (clipped in the "
            "white frame or off the sensor); their fibers are marked dead. Record again with "
            "a shorter exposure if the frames saturate.",
            file=sys.stderr,
        )
    _say(
        args.quiet,
        f"measured key {key_out} (fingerprint {cal.key.fingerprint}, mode 0600) from "
        f"{ps.n_frames} frames: {fb['decoded']} of {fb['total']} fibers decoded, "
        f"{fb['dead']} dead, {fb['ambiguous']} ambiguous, {fb['duplicates_resolved']} "
        f"duplicates resolved; face shift ({rg.shift_px[0]:+.2f}, {rg.shift_px[1]:+.2f}) px, "
        f"rotation {rg.rotation_change_deg:+.3f} deg, scale {rg.scale_change_percent:+.2f} %",
    )
    return 0


def _version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("keycam")
    except PackageNotFoundError:  # running from a source tree without installing
        return "(not installed)"


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    cmd = {"patterns": _cmd_patterns, "simulate": _cmd_simulate, "solve": _cmd_solve}
    return cmd[args.command](args)


if __name__ == "__main__":
    sys.exit(run(main))
