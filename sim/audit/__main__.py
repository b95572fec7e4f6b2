"""``python -m sim.audit``: how much of a camera's key does each kind of attacker recover?

Usage::

    python -m sim.audit [--config TOML] [--key FILE] [--keynet FILE]
                        [--attacks chosen,known,ciphertext,keynet] [--bases 2,8,64]
                        [--pairs 3,4,5,6,8] [--frames 25,50,100,250,500,1000,2000]
                        [--json FILE] [--plot DIR] [--seed N] [--force] [--quiet]

Simulates each attacker against the camera and key (default: the configuration's own key)
and prints, per attack and amount of data, the fraction of the routing recovered and the
correlation of the attacker's reassembled picture with the truth. The output never holds
the key: fractions, correlations and the key's fingerprint only.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from keycam.cli import ArgumentParser, CLIError, run
from keycam.fileio import write_bytes_atomic

__all__ = ["main"]


def _ints(text: str, name: str, lo: int, hi: int) -> tuple[int, ...]:
    try:
        vals = tuple(int(v) for v in text.split(",") if v.strip())
    except ValueError:
        raise CLIError(f"{name}: expected comma-separated integers, got {text!r}") from None
    if not vals or any(not lo <= v <= hi for v in vals):
        raise CLIError(f"{name}: every value must be in {lo}..{hi}, got {text!r}")
    return tuple(sorted(set(vals)))


def _parser() -> ArgumentParser:
    p = ArgumentParser(
        prog="python -m sim.audit",
        description="Privacy audit: simulate chosen-plaintext, known-plaintext, "
        "ciphertext-only and key-net attacks on a camera and report what they recover "
        "(fractions and correlations, never the key).",
    )
    p.add_argument("--config", metavar="TOML", help="camera (default: the bundled camera)")
    p.add_argument("--key", metavar="FILE", help="device key (default: the config's own key)")
    p.add_argument("--keynet", metavar="FILE", help="key-net file made for this camera")
    p.add_argument(
        "--attacks",
        default=None,
        help="comma-separated: chosen, known, ciphertext, keynet "
        "(default: the first three, plus keynet with --keynet)",
    )
    p.add_argument("--bases", default="2,8,64", help="Gray-code bases (chosen plaintext)")
    p.add_argument("--pairs", default="3,4,5,6,8", help="numbers of known pairs")
    p.add_argument("--frames", default="25,50,100,250,500,1000,2000", help="stream lengths")
    p.add_argument("--json", metavar="FILE", help="write the figures as JSON")
    p.add_argument("--plot", metavar="DIR", help="write one PNG per attack into DIR")
    p.add_argument("--seed", type=int, default=0, help="seed of scenes and noise (default 0)")
    p.add_argument("--force", action="store_true", help="replace existing output files")
    p.add_argument("--quiet", action="store_true", help="print nothing but errors")
    return p


def _table(result: dict[str, Any]) -> str:
    lines = []
    for name, rows in result.items():
        if name in ("camera", "seconds"):
            continue
        lines.append(name.replace("_", " "))
        for r in rows:
            data = ", ".join(f"{k} {r[k]}" for k in ("base", "frames", "pairs", "files") if k in r)
            figs = ", ".join(
                f"{k.replace('_', ' ')} {r[k]:.4f}"
                for k in ("routing_fraction", "neighbour_fraction", "image_correlation")
                if k in r
            )
            lines.append(f"  {data}: {figs}")
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    """Command-line entry point (see ``--help``)."""
    args = _parser().parse_args(argv)
    from sim.audit.run import ATTACKS

    if args.attacks is None:
        attacks = ("chosen", "known", "ciphertext") + (("keynet",) if args.keynet else ())
    else:
        attacks = tuple(a.strip() for a in args.attacks.split(",") if a.strip())
        bad = [a for a in attacks if a not in ATTACKS]
        if bad or not attacks:
            raise CLIError(f"--attacks: unknown {bad or attacks}; choose from {list(ATTACKS)}")
    if "keynet" in attacks and not args.keynet:
        raise CLIError("--attacks keynet needs --keynet FILE")
    bases = _ints(args.bases, "--bases", 2, 4096)
    pairs = _ints(args.pairs, "--pairs", 2, 10_000)
    frames = _ints(args.frames, "--frames", 2, 100_000)
    if args.seed < 0:
        raise CLIError(f"--seed must be >= 0, got {args.seed}")
    for opt in ("config", "key", "keynet"):
        path = getattr(args, opt)
        if path is not None and not Path(path).is_file():
            raise CLIError(f"--{opt}: no such file: {path}")
    json_path = Path(args.json) if args.json else None
    if json_path is not None:
        if json_path.exists() and not args.force:
            raise CLIError(f"--json: file exists: {json_path} (use --force to replace it)")
        if not json_path.resolve().parent.is_dir():
            raise CLIError(f"--json: folder does not exist: {json_path.parent}")
    plot_dir = Path(args.plot) if args.plot else None
    plot_names = {
        "chosen": "chosen_plaintext",
        "known": "known_plaintext",
        "ciphertext": "ciphertext_only",
        "keynet": "keynet_structure",
    }
    if plot_dir is not None:
        if plot_dir.exists() and not plot_dir.is_dir():
            raise CLIError(f"--plot: not a folder: {plot_dir}")
        for a in attacks:
            target = plot_dir / f"{plot_names[a]}.png"
            if target.exists() and not args.force:
                raise CLIError(f"--plot: file exists: {target} (use --force to replace it)")

    import numpy as np

    from optics.faceplate import Key
    from sim.audit.run import plot_png, run_audit
    from sim.camera import Camera
    from sim.config import CameraConfig, load_config

    config = load_config(Path(args.config)) if args.config else CameraConfig.default()
    key = Key.load(args.key) if args.key else None
    camera = Camera(config, key)
    w1 = None
    if args.keynet:
        from sim.audit.keynet_structure import load_first_layer

        w1 = load_first_layer(args.keynet)
        fp = camera.config.faceplate
        if w1.shape[1] != fp.n_fibers:
            raise CLIError(
                f"--keynet: first layer has {w1.shape[1]} inputs but the camera has "
                f"{fp.n_fibers} output sites"
            )
    progress_on = not args.quiet and sys.stderr.isatty()
    bar = None
    if progress_on:
        from tqdm import tqdm

        bar = tqdm(desc="audit", unit="step", leave=False)

    def tick(label: str) -> None:
        if bar is not None:
            bar.set_postfix_str(label)
            bar.update(1)

    try:
        result = run_audit(
            camera,
            attacks=attacks,
            bases=bases,
            pairs=pairs,
            frames=frames,
            keynet_w1=w1,
            rng=np.random.default_rng(args.seed),
            tick=tick,
        )
    finally:
        if bar is not None:
            bar.close()
    fp = camera.config.faceplate
    result = {
        "camera": {
            "lattice": [fp.rows, fp.cols],
            "block_size": fp.block_size,
            "permute_blocks": fp.permute_blocks,
            "gain_key_rms": fp.gain_key_rms,
            "crosstalk": [fp.crosstalk_in, fp.crosstalk_out],
            "key_fingerprint": camera.key.fingerprint,
            "seed": args.seed,
        },
        **result,
    }
    if plot_dir is not None:
        plot_dir.mkdir(parents=True, exist_ok=True)
        for a in attacks:
            name = plot_names[a]
            write_bytes_atomic(
                plot_dir / f"{name}.png", plot_png(name, result[name]), overwrite=args.force
            )
    if json_path is not None:
        text = json.dumps(result, indent=2) + "\n"
        write_bytes_atomic(json_path, text.encode(), overwrite=args.force)
    if not args.quiet:
        print(_table(result))
    return 0


if __name__ == "__main__":
    sys.exit(run(main))
