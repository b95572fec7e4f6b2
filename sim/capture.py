"""``python -m sim.capture``: photograph scenes with a keycam privacy camera.

Usage::

    python -m sim.capture [SCENE ...] [--config camera.toml] [--key device.key] [--seed N]
                          [--frames N] [--exposure auto|SECONDS] [--out DIR] [--npy]
                          [--force] [--quiet] [--max-pixels N]

Without SCENE the bundled default scene is captured (matplotlib's public-domain portrait
``grace_hopper.jpg``). Without ``--key`` a new secret device key is created as
``OUT/device.key`` (mode 0600) and reused later with ``--key``. For every scene ``STEM`` the
output folder receives

- ``STEM_raw.png`` -- the raw encrypted frame, 16-bit greyscale PNG in DN
  (``STEM_raw_000.png``, ... when ``--frames`` > 1),
- ``STEM_raw.npy`` -- all frames as one ``(F, H, W)`` uint16 array (with ``--npy``),
- ``STEM.json`` -- sidecar: camera configuration (without the key seed), key fingerprint,
  faceplate transmission used (printed or assumed, process, bundle length, mean), exposure,
  noise seeds, frame statistics, scene source; safe to share,
- ``STEM_preview.png`` -- scene | encrypted frame | unscrambled with the key | conventional
  camera: it shows the plain scene, so it is as private as the scene itself.

Everything is validated before the work starts, and the run's files (every scene's, and a
new key) appear all together or not at all (:class:`keycam.outputs.OutputSet`): an error,
Ctrl-C or a full disk leaves the output folder as it was. No output may be one of the
inputs (scenes, ``--config``, ``--key``).

A new key is always drawn from the operating system's randomness, never from ``--seed``:
``--seed`` seeds only the noise, is recorded in the sidecars, and reproduces a run byte for
byte together with the same ``--key``.
"""

from __future__ import annotations

import os
import re
import secrets
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from keycam.cli import ArgumentParser, CLIError, int_at_least, progress, run
from sim.units import parse_exposure as _parse_exposure

if TYPE_CHECKING:  # numpy is imported where it is used, so that --help starts fast
    import numpy as np

__all__ = ["main", "parse_exposure"]

DEFAULT_OUT = "keycam_out"
KEY_NAME = "device.key"
MAX_FRAMES = 10_000
DEFAULT_MAX_PIXELS = 50_000_000  # = sim.io.DEFAULT_MAX_PIXELS (kept here to stay import-light)


def parse_exposure(text: str) -> float | str:
    """``"auto"`` or an exposure such as ``0.01``, ``10ms``, ``250us`` -> seconds."""
    return _parse_exposure(text, name="--exposure")


def _parser() -> ArgumentParser:
    p = ArgumentParser(
        prog="python -m sim.capture",
        description="Capture scenes through a keycam privacy camera (lens -> keyed fiber "
        "faceplate -> CMOS sensor) and write raw encrypted frames, sidecars and previews.",
        epilog="Per scene STEM, OUT receives STEM_raw.png (16-bit raw frame; STEM_raw_000.png "
        "... for several frames), STEM.json (sidecar), STEM_preview.png and, with --npy, "
        "STEM_raw.npy. Existing files are never replaced without --force.",
    )
    p.add_argument(
        "scenes",
        nargs="*",
        metavar="SCENE",
        help="PNG/JPEG/TIFF scene images "
        "(default: the bundled grace_hopper.jpg from matplotlib's sample data)",
    )
    p.add_argument(
        "--config",
        metavar="TOML",
        help="camera configuration (default: the bundled sim/data/default_camera.toml)",
    )
    p.add_argument(
        "--key", metavar="FILE", help=f"device key to use (default: create OUT/{KEY_NAME})"
    )
    p.add_argument(
        "--seed",
        metavar="N",
        help="seed of the noise (recorded in the sidecars): same seed and --key, same files; "
        "a new key never comes from it",
    )
    p.add_argument("--frames", metavar="N", default="1", help="frames per scene (default 1)")
    p.add_argument(
        "--exposure",
        metavar="auto|SECONDS",
        default=None,
        help="'auto' (bright end at ~80%% of saturation) or a time, e.g. 0.01, "
        "10ms (default: the config's value)",
    )
    p.add_argument(
        "--out", metavar="DIR", default=DEFAULT_OUT, help=f"output folder (default {DEFAULT_OUT}/)"
    )
    p.add_argument("--npy", action="store_true", help="also write the frames as .npy")
    p.add_argument(
        "--force",
        action="store_true",
        help="replace existing output files and, without --key, an existing device key "
        "(never an input)",
    )
    p.add_argument("--quiet", action="store_true", help="print nothing but errors")
    p.add_argument(
        "--max-pixels",
        metavar="N",
        default=None,
        help="largest accepted scene image, in pixels (default 50000000; the memory limit "
        "KEYCAM_MAX_MEMORY_MB may refuse smaller colour images)",
    )
    p.add_argument(
        "--print-schema",
        action="store_true",
        help="print the JSON schema of the camera configuration and exit",
    )
    return p


@dataclass
class _Scene:
    stem: str
    source: str
    input_shape: tuple[int, ...]
    notes: tuple[str, ...]
    grid: np.ndarray  # (rows, cols) float64 luminance on the camera's scene grid


def _stems(paths: Sequence[Path]) -> list[str]:
    """One distinct output stem per scene: its file stem, or ``stem-2``, ``stem-3``, ...

    Distinct also when names differ only in case, and never equal to another scene's own
    stem (``ok.png ok.jpg ok-2.png`` -> ``ok``, ``ok-3``, ``ok-2``).
    """
    natural = [re.sub(r"[^A-Za-z0-9._-]+", "_", p.stem).strip(".") or "scene" for p in paths]
    reserved = {n.casefold() for n in natural}
    used: set[str] = set()
    out = []
    for stem in natural:
        name, k = stem, 1
        while name.casefold() in used or (k > 1 and name.casefold() in reserved):
            k += 1
            name = f"{stem}-{k}"
        used.add(name.casefold())
        out.append(name)
    return out


def _say(quiet: bool, text: str, *, err: bool = False) -> None:
    if not quiet:
        print(text, file=sys.stderr if err else sys.stdout, flush=True)


def _check_out(out: Path) -> None:
    if out.exists() and not out.is_dir():
        raise CLIError(f"--out: {out} exists and is not a folder")
    probe = out if out.exists() else next((q for q in out.absolute().parents if q.exists()), None)
    if probe is None or not probe.is_dir():
        raise CLIError(f"--out: cannot create {out} (a folder on its path is a file)")
    if not os.access(probe, os.W_OK | os.X_OK):
        raise CLIError(f"--out: cannot write into {out} (permission denied)")


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    if args.print_schema:
        import json

        from sim.config import CameraConfig

        print(json.dumps(CameraConfig.model_json_schema(), indent=2))
        return 0

    # ---- validate everything before the work (cheap checks first) ------------------------
    frames = int_at_least("--frames", args.frames)
    if frames > MAX_FRAMES:
        raise CLIError(f"--frames: at most {MAX_FRAMES} frames per run, got {frames}")
    seed = None if args.seed is None else _seed(args.seed)
    max_pixels = (
        DEFAULT_MAX_PIXELS
        if args.max_pixels is None
        else int_at_least("--max-pixels", args.max_pixels)
    )
    exposure = None if args.exposure is None else parse_exposure(args.exposure)
    out = Path(args.out)
    _check_out(out)

    from keycam.outputs import OutputSet
    from sim import io as sio

    paths = [Path(s) for s in args.scenes] if args.scenes else [sio.default_scene_path()]
    stems = _stems(paths)
    given = [Path(p) for p in (args.config, args.key) if p]
    key_path = out / KEY_NAME
    new_key = args.key is None
    with OutputSet(overwrite=args.force, inputs=[*paths, *given]) as outputs:
        if new_key:
            if os.path.lexists(key_path) and not args.force:
                raise CLIError(
                    f"{key_path} already exists; reuse it with --key {key_path} "
                    "(or pass --force to replace it with a new key)"
                )
            outputs.plan(key_path, mode=0o600)
        for stem in stems:
            for name in _outputs(stem, frames, args.npy):
                outputs.plan(out / name)

        from optics.faceplate import Key
        from sim.camera import Camera
        from sim.config import CameraConfig, load_config
        from sim.memory import check_camera_memory, frames_memory

        config = load_config(args.config) if args.config else CameraConfig.default()
        if exposure is not None:
            config = CameraConfig.model_validate({**config.model_dump(), "exposure": exposure})
        key = None if new_key else Key.load(args.key)
        check_camera_memory(config, extra_bytes=frames_memory(config, frames))
        scenes = [
            _load_scene(p, stem, config, source=str(p) if args.scenes else None,
                        max_pixels=max_pixels)
            for p, stem in zip(paths, stems, strict=True)
        ]  # fmt: skip
        if new_key:
            # A new key comes from the OS's randomness, never from --seed (which the
            # sidecars record): no output of this run can recreate it.
            camera = Camera(config.with_key_seed(secrets.randbits(63)))
        else:
            camera = Camera(config, key=key)

        # ---- work: every file is staged, nothing is visible before the commit -----------
        import numpy as np

        root = np.random.SeedSequence(seed)
        children = root.spawn(len(scenes))
        conventional = camera.conventional()
        summaries = []
        bar = progress(
            range(len(scenes)),
            total=len(scenes),
            desc="scenes",
            quiet=args.quiet or len(scenes) < 2,
        )
        for i in bar:
            summaries.append(
                _capture_one(
                    camera,
                    conventional,
                    scenes[i],
                    out,
                    outputs,
                    frames=frames,
                    npy=args.npy,
                    seq=children[i],
                    seed_info={"seed": seed, "entropy": str(root.entropy), "scene_index": i},
                    quiet=args.quiet,
                )
            )
        if new_key:
            with outputs.staging(key_path) as tmp:
                camera.key.save(tmp, overwrite=True)
        outputs.commit()

    # ---- report (only once everything is in place) ---------------------------------------
    if new_key:
        _say(
            args.quiet,
            f"new device key {key_path} (fingerprint {camera.key.fingerprint}, mode 0600); "
            f"keep it secret and reuse it with --key {key_path}",
            err=True,
        )
    for sc in scenes:
        for note in sc.notes:
            _say(args.quiet, f"note: {note}", err=True)
    for line in summaries:
        _say(args.quiet, line)
    return 0


def _seed(text: str) -> int:
    try:
        v = int(text)
    except ValueError:
        v = -1
    if not 0 <= v < 2**128:
        raise CLIError("--seed: expected an integer >= 0")
    return v


def _load_scene(path: Path, stem: str, config, *, source: str | None, max_pixels: int) -> _Scene:
    """Decode one scene and put it on the camera's scene grid (only the grid is kept)."""
    from sim import io as sio
    from sim.colour import n_channels, prepare_colour_scene
    from sim.scene import prepare_scene

    img = sio.read_image(path, max_pixels=max_pixels)
    shape = config.scene.shape_px
    if n_channels(config.colour) == 1:
        grid = prepare_scene(img.data, shape)
    else:
        grid = prepare_colour_scene(img.data, shape)
    return _Scene(stem, source or sio.DEFAULT_SCENE_CREDIT, img.data.shape, img.notes, grid)


def _outputs(stem: str, frames: int, npy: bool) -> list[str]:
    names = (
        [f"{stem}_raw.png"] if frames == 1 else [f"{stem}_raw_{k:03d}.png" for k in range(frames)]
    )
    if npy:
        names.append(f"{stem}_raw.npy")
    names += [f"{stem}.json", f"{stem}_preview.png"]
    return names


def _version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("keycam")
    except PackageNotFoundError:  # running from a source tree without installing
        return "(not installed)"


def _display(values):
    """Linear signal -> display values: 0 .. 99.5th percentile, sRGB-encoded."""
    import numpy as np

    from sim.io import linear_to_srgb

    v = np.nan_to_num(np.asarray(values, dtype=np.float64))
    hi = float(np.percentile(v, 99.5))
    return linear_to_srgb(v / hi) if hi > 0 else np.zeros_like(v)


def _capture_one(
    camera,
    conventional,
    sc: _Scene,
    out: Path,
    outputs,
    *,
    frames: int,
    npy: bool,
    seq,
    seed_info: dict,
    quiet: bool,
) -> str:
    """Capture one scene and stage its files in ``outputs``; return its summary line."""
    import numpy as np

    from sim import io as sio

    rng_frames, rng_conv = (np.random.default_rng(s) for s in seq.spawn(2))
    exposure_s = camera.exposure_for(sc.grid)
    chunks_out: list[np.ndarray] = []
    chunk = 16
    chunks = range(0, frames, chunk)
    for k in progress(
        chunks, total=len(chunks), desc=sc.stem, quiet=quiet or frames <= chunk, unit="chunk"
    ):
        n = min(chunk, frames - k)
        chunks_out.append(
            camera.capture(sc.grid, rng=rng_frames, frames=n, exposure_s=exposure_s).reshape(
                n, *camera.frame_shape
            )
        )
    stack = np.concatenate(chunks_out, axis=0)
    del chunks_out
    conv = conventional.capture(sc.grid, rng=rng_conv, exposure_s=exposure_s)
    plain = camera.unscramble(stack[0], exposure_s=exposure_s)

    stats = camera.frame_statistics(stack)
    sidecar = {
        "software": f"keycam {_version()} sim.capture",
        "scene": {
            "source": sc.source,
            "input_shape": list(sc.input_shape),
            "notes": list(sc.notes),
            "grid_shape": list(camera.scene_shape),
        },
        "camera": camera.public_config(),
        "key_fingerprint": camera.key.fingerprint,
        "transmission": camera.transmission_info,
        "exposure": {
            "exposure_s": exposure_s,
            "mode": "auto" if camera.config.exposure == "auto" else "fixed",
        },
        "frames": {
            "count": frames,
            "shape": list(stack.shape[1:]),
            "dtype": "uint16",
            "units": "DN",
            "orientation": "row 0 = top of the sensor",
        },
        "seeds": {
            **seed_info,
            "note": "noise only (a new key never comes from a seed): frame noise rng = "
            "default_rng(SeedSequence(entropy).spawn(n_scenes)[scene_index].spawn(2)[0])",
        },
        "statistics": stats,
    }
    black = camera.sensor.config.black_level_dn
    panels = [
        sio.linear_to_srgb(sc.grid),
        _display(stack[0].astype(np.float64) - black),
        _display(plain),
        _display(conv.astype(np.float64) - black),
    ]
    titles = ["scene", "encrypted frame", "unscrambled with the key", "conventional camera"]
    suptitle = (
        f"{sc.stem} | exposure {exposure_s * 1e3:.3g} ms | key {camera.key.fingerprint} | "
        "display: sRGB gamma, 0 to 99.5th percentile"
    )
    names = _outputs(sc.stem, frames, npy)
    for k in range(frames):
        outputs.write_bytes(out / names[k], sio.frame_png_bytes(stack[k]))
    if npy:
        outputs.write_bytes(out / f"{sc.stem}_raw.npy", sio.npy_bytes(stack))
    outputs.write_bytes(out / f"{sc.stem}.json", sio.json_bytes(sidecar))
    outputs.write_bytes(
        out / f"{sc.stem}_preview.png", sio.preview_png_bytes(panels, titles, suptitle=suptitle)
    )
    return (
        f"{sc.stem}: {frames} frame(s) {stack.shape[2]}x{stack.shape[1]} px, exposure "
        f"{exposure_s * 1e3:.4g} ms, mean {stats['mean_dn']:.1f} DN, "
        f"{100 * stats['saturated_fraction']:.2f}% saturated -> {out / names[0]}"
    )


if __name__ == "__main__":
    sys.exit(run(main))
