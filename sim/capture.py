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
  seeds, frame statistics, scene source,
- ``STEM_preview.png`` -- scene | encrypted frame | unscrambled with the key | conventional
  camera.

Everything is validated before anything is written; all files are written atomically.
With ``--seed`` the run is reproducible byte for byte, *including a newly created key*:
treat that seed as a secret, or create the key without ``--seed``.
"""

from __future__ import annotations

import contextlib
import os
import re
import secrets
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from keycam.cli import ArgumentParser, CLIError, progress, run
from sim.units import parse_exposure as _parse_exposure

__all__ = ["main", "parse_exposure"]

DEFAULT_OUT = "keycam_out"
KEY_NAME = "device.key"
MAX_FRAMES = 10_000
DEFAULT_MAX_PIXELS = 50_000_000  # = sim.io.DEFAULT_MAX_PIXELS (kept here to stay import-light)


def parse_exposure(text: str) -> float | str:
    """``"auto"`` or an exposure such as ``0.01``, ``10ms``, ``250us`` -> seconds."""
    return _parse_exposure(text, name="--exposure")


def _positive_int(name: str, lo: int = 1):
    def conv(text: str) -> int:
        try:
            v = int(text)
        except ValueError:
            raise CLIError(f"{name}: expected an integer, got {text!r}") from None
        if v < lo:
            raise CLIError(f"{name}: must be >= {lo}, got {v}")
        return v

    return conv


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
        help="seed for noise (and for a newly created key): same seed, same files",
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
        help="replace existing output files and, without --key, an existing device key",
    )
    p.add_argument("--quiet", action="store_true", help="print nothing but errors")
    p.add_argument(
        "--max-pixels",
        metavar="N",
        default=None,
        help="largest accepted scene image, in pixels (default 50000000)",
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
    grid: object  # (rows, cols) float64 luminance on the camera's scene grid


def _stems(paths: Sequence[Path]) -> list[str]:
    seen: dict[str, int] = {}
    out = []
    for p in paths:
        stem = re.sub(r"[^A-Za-z0-9._-]+", "_", p.stem) or "scene"
        k = seen.get(stem, 0)
        seen[stem] = k + 1
        out.append(stem if k == 0 else f"{stem}-{k + 1}")
    return out


def _say(quiet: bool, text: str, *, err: bool = False) -> None:
    if not quiet:
        print(text, file=sys.stderr if err else sys.stdout, flush=True)


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    if args.print_schema:
        import json

        from sim.config import CameraConfig

        print(json.dumps(CameraConfig.model_json_schema(), indent=2))
        return 0

    # ---- validate everything before writing anything (cheap checks first) -----------------
    frames = _positive_int("--frames")(args.frames)
    if frames > MAX_FRAMES:
        raise CLIError(f"--frames: at most {MAX_FRAMES} frames per run, got {frames}")
    seed = None if args.seed is None else _positive_int("--seed", 0)(args.seed)
    max_pixels = (
        DEFAULT_MAX_PIXELS
        if args.max_pixels is None
        else _positive_int("--max-pixels")(args.max_pixels)
    )
    exposure = None if args.exposure is None else parse_exposure(args.exposure)

    out = Path(args.out)
    if out.exists() and not out.is_dir():
        raise CLIError(f"--out: {out} exists and is not a folder")
    probe = out if out.exists() else next((q for q in out.absolute().parents if q.exists()), None)
    if probe is None or not os.access(probe, os.W_OK | os.X_OK):
        raise CLIError(f"--out: cannot write into {out} (permission denied)")
    key_path = out / KEY_NAME
    new_key = args.key is None
    if new_key and key_path.exists() and not args.force:
        raise CLIError(
            f"{key_path} already exists; reuse it with --key {key_path} "
            "(or pass --force to replace it with a new key)"
        )

    from sim import io as sio

    paths = [Path(s) for s in args.scenes] if args.scenes else [sio.default_scene_path()]
    images = [sio.read_image(p, max_pixels=max_pixels) for p in paths]

    import numpy as np

    from optics.faceplate import Key
    from sim.camera import Camera
    from sim.config import CameraConfig, load_config

    config = load_config(args.config) if args.config else CameraConfig.default()
    if exposure is not None:
        config = CameraConfig.model_validate({**config.model_dump(), "exposure": exposure})
    if new_key:
        key_seed = (
            int(np.random.SeedSequence([seed, 0x6B6579]).generate_state(1, np.uint64)[0] >> 1)
            if seed is not None
            else secrets.randbits(63)
        )
        camera = Camera(config.with_key_seed(key_seed))
    else:
        camera = Camera(config, key=Key.load(args.key))

    scenes: list[_Scene] = []
    for p, stem, img in zip(paths, _stems(paths), images, strict=True):
        source = sio.DEFAULT_SCENE_CREDIT if not args.scenes else str(p)
        scenes.append(
            _Scene(stem, source, img.data.shape, img.notes, camera.prepare_scene(img.data))
        )
    del images
    inputs = {p.resolve() for p in paths}
    for sc in scenes:
        for name in _outputs(sc.stem, frames, args.npy):
            target = out / name
            if target.resolve() in inputs:
                raise CLIError(f"output {target} would overwrite an input scene")
            if target.is_dir():
                raise CLIError(f"output {target} exists and is a folder")
            if target.exists() and not args.force:
                raise CLIError(
                    f"{target} already exists; pass --force to replace it, or choose another --out"
                )

    # ---- write ------------------------------------------------------------------------------
    out.mkdir(parents=True, exist_ok=True)
    if new_key:
        camera.key.save(key_path, overwrite=args.force)
        _say(
            args.quiet,
            f"new device key {key_path} (fingerprint {camera.key.fingerprint}, mode 0600); "
            f"keep it secret and reuse it with --key {key_path}",
            err=True,
        )
        if seed is not None:
            _say(
                args.quiet,
                f"note: this key is derived from --seed {seed}; anyone who knows the seed can "
                "recreate it (fine for tests, not for a device)",
                err=True,
            )
    for sc in scenes:
        for note in sc.notes:
            _say(args.quiet, f"note: {note}", err=True)

    root = np.random.SeedSequence(seed)
    noise_entropy = root.entropy
    children = root.spawn(len(scenes))
    conventional = camera.conventional()
    bar = progress(
        range(len(scenes)), total=len(scenes), desc="scenes", quiet=args.quiet or len(scenes) < 2
    )
    for i in bar:
        sc = scenes[i]
        _capture_one(
            camera,
            conventional,
            sc,
            out,
            frames=frames,
            npy=args.npy,
            seq=children[i],
            seed_info={
                "seed": seed,
                "entropy": str(noise_entropy),
                "scene_index": i,
                "key_derived_from_seed": bool(new_key and seed is not None),
            },
            quiet=args.quiet,
            overwrite=args.force,
        )
    return 0


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
    *,
    frames: int,
    npy: bool,
    seq,
    seed_info: dict,
    quiet: bool,
    overwrite: bool,
) -> None:
    import numpy as np

    from sim import io as sio

    rng_frames, rng_conv = (np.random.default_rng(s) for s in seq.spawn(2))
    exposure_s = camera.exposure_for(sc.grid)
    stack = []
    chunk = 16
    chunks = range(0, frames, chunk)
    for k in progress(
        chunks, total=len(chunks), desc=sc.stem, quiet=quiet or frames <= chunk, unit="chunk"
    ):
        n = min(chunk, frames - k)
        stack.append(
            camera.capture(sc.grid, rng=rng_frames, frames=n, exposure_s=exposure_s).reshape(
                n, *camera.frame_shape
            )
        )
    stack = np.concatenate(stack, axis=0)
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
            "note": "frame noise rng = default_rng(SeedSequence(entropy)"
            ".spawn(n_scenes)[scene_index].spawn(2)[0])",
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
    jobs = [(names[k], sio.write_frame_png, (stack[k],), {}) for k in range(frames)]
    if npy:
        jobs.append((f"{sc.stem}_raw.npy", sio.write_npy, (stack,), {}))
    jobs.append((f"{sc.stem}.json", sio.write_json, (sidecar,), {}))
    jobs.append(
        (f"{sc.stem}_preview.png", sio.write_preview, (panels, titles), {"suptitle": suptitle})
    )
    # A file counts as ours as soon as we start writing it: an interrupt between the final
    # rename and the writer's return must not leave a complete file of a half-written scene.
    started: list[Path] = []
    try:
        for name, writer, wargs, kwargs in jobs:
            started.append(out / name)
            writer(out / name, *wargs, overwrite=overwrite, **kwargs)
    except BaseException as exc:
        if isinstance(exc, FileExistsError) and started:
            started.pop()  # someone else's file appeared meanwhile: not ours to remove
        for p in started:
            with contextlib.suppress(OSError):
                p.unlink()
        raise
    _say(
        quiet,
        f"{sc.stem}: {frames} frame(s) {stack.shape[2]}x{stack.shape[1]} px, exposure "
        f"{exposure_s * 1e3:.4g} ms, mean {stats['mean_dn']:.1f} DN, "
        f"{100 * stats['saturated_fraction']:.2f}% saturated -> {out / names[0]}",
    )


if __name__ == "__main__":
    sys.exit(run(main))
