"""``python -m keynet.verify``: does a key-net classify the camera's encrypted frames?

Trains the plain LeNet on the 4000 bundled training digits (or loads weights cached under
``$KEYCAM_CACHE`` / ``~/.cache/keycam`` for the same data and hyper-parameters), keys it with
the camera, photographs the 1000 test digits through the camera with all sensor noise and
prints:

(a) plain net on the clean digits;
(b) plain net on a conventional camera (same lens, lattice, coupling and sensor, coherent
    faceplate): its frames go through the same public per-site readout and are normalised to
    the digit range with that camera's per-fiber gains and offsets (a flat-field correction);
(c) key-net on the encrypted frames (public readout only);
(d) plain net on the encrypted frames, after the public readout and the conventional
    camera's normalisation (what one gets without the key);
(e) a key-net made for another key of the same design, on the same encrypted frames;

then parameters / non-zeros, memory and inference time of key-net vs plain net, beside the
Key-Nets paper's LeNet figure (3.0× non-zeros), and the noise-free check that the key-net's
logits equal the plain net's (float64). Default camera: ``keynet/data/verify_camera.toml``.
"""

from __future__ import annotations

import json
import sys
import time
from collections.abc import Sequence
from importlib import resources
from pathlib import Path
from typing import TYPE_CHECKING, Any

from keycam.cli import ArgumentParser, CLIError, run

if TYPE_CHECKING:  # numpy and the network are imported inside the functions (fast start-up)
    from sim.config import CameraConfig

__all__ = ["MAX_EPOCHS", "PAPER_LENET", "main", "verify", "verify_memory"]

#: Key-Nets (Byrne, DeCann, Bloom, BMVC 2020), LeNet on MNIST with a permutation key.
PAPER_LENET = {"params": 106_154, "nnz_keyed": 323_491}

#: Most training epochs ``--epochs`` accepts.
MAX_EPOCHS = 200


def default_camera_path() -> Path:
    """The bundled verification camera (28×28 fibers, one per digit pixel)."""
    return Path(str(resources.files("keynet.data") / "verify_camera.toml"))


def verify_memory(config: CameraConfig, n_digits: int) -> float:
    """Estimated peak memory of :func:`verify` with ``config``, bytes (beyond the network).

    Two cameras' operators (the camera with its conventional twin, and the other key's
    camera; :func:`sim.budget.camera_memory`), the frames of ``n_digits`` digits through two
    cameras, the per-pixel digit operators while the input operators are solved (dense,
    pixels x 784, several copies: measured about 26 kB per sensor pixel), the dense input
    operators (sites x 784) and the readouts.
    """
    from sim.budget import camera_memory

    n_f = config.faceplate.rows * config.faceplate.cols
    n_px = config.sensor.width_px * config.sensor.height_px
    cameras = 2.0 * camera_memory(config)["total"]
    frames = 2.0 * n_digits * n_px * 2
    solving = n_px * 784 * 8 * 4.5
    operators = 4.0 * n_f * 784 * 8
    readouts = 4.0 * n_digits * n_f * 8
    return cameras + frames + solving + operators + readouts


def median_time(fn, repeats: int) -> float:
    """Median wall time of ``fn()`` over ``repeats`` calls, in seconds."""
    import numpy as np

    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return float(np.median(times))


def verify(
    config_path: str | Path | None = None,
    *,
    seed: int = 0,
    epochs: int | None = None,
    n_digits: int = 1000,
    quiet: bool = False,
    timing_repeats: int = 5,
) -> dict[str, Any]:
    """Run the whole verification and return its figures (see the module docstring).

    Parameters
    ----------
    config_path : path, optional
        Camera TOML; default the bundled verification camera.
    seed : int
        Seeds training, hidden-layer keys and capture noise (>= 0).
    epochs : int, optional
        Training epochs; default :class:`~keynet.train.TrainConfig`'s.
    n_digits : int
        Number of test digits to photograph (1..1000), taken evenly over the 10 classes.
    quiet : bool
        No progress bars.
    timing_repeats : int
        Inference timings are the median of this many runs.
    """
    import numpy as np
    from threadpoolctl import threadpool_limits

    from keycam.limits import check_memory
    from sim.camera import Camera
    from sim.config import load_config

    from .dataset import load_split
    from .keying import key_network, plain_nbytes
    from .readout import PublicReadout, capture_readouts, input_operator
    from .train import TrainConfig, train_or_load

    if not 1 <= n_digits <= 1000:
        raise ValueError(f"digits must be in 1..1000, got {n_digits}")
    if seed < 0:
        raise ValueError(f"seed must be >= 0, got {seed}")
    if epochs is not None and not 1 <= epochs <= MAX_EPOCHS:
        raise ValueError(f"epochs must be in 1..{MAX_EPOCHS}, got {epochs}")
    path = Path(config_path) if config_path is not None else default_camera_path()
    config = load_config(path)
    n_sites = config.faceplate.rows * config.faceplate.cols
    if n_sites < 28 * 28:
        raise ValueError(
            f"camera {path}: {n_sites} fibers cannot carry a 28x28 digit; a key-net needs at "
            "least one fiber per digit pixel (faceplate.rows x cols >= 784)"
        )
    check_memory(
        f"keynet.verify with the camera {path}",
        verify_memory(config, n_digits),
        reduce="the camera's faceplate.rows/cols or sensor.width_px/height_px, or --digits",
    )
    tcfg = TrainConfig(seed=seed) if epochs is None else TrainConfig(epochs=epochs, seed=seed)

    split = load_split()
    take = np.sort(np.argsort(np.arange(1000) % 100, kind="stable")[:n_digits])  # stratified
    x, y = split.x_test[take], split.y_test[take]
    with threadpool_limits(limits=1, user_api="blas"):
        net, cached = train_or_load(split, tcfg, quiet=quiet)
        camera = Camera(config)
        conventional = camera.conventional()
        other = Camera(config.with_key_seed(config.faceplate.seed + 1 + seed))
        exposure = camera.exposure_for(None)
        readout = PublicReadout(camera, exposure_s=exposure)
        op = input_operator(camera, exposure_s=exposure, readout=readout)
        op_conv = input_operator(conventional, exposure_s=exposure, readout=readout)
        op_other = input_operator(other, exposure_s=exposure, readout=readout)
        rng = np.random.default_rng(seed)
        kn64 = key_network(net, op, rng=rng)
        keynet = kn64.astype(np.float32)
        other_keynet = key_network(net, op_other, rng=rng).astype(np.float32)
        del op_other

        # noise-free: key-net logits on mean readouts vs plain logits on the digits, float64
        plain_logits = net.predict_logits(x.astype(np.float64))
        keyed_logits = np.concatenate(
            [kn64.forward(op.apply(x[i : i + 500])) for i in range(0, len(x), 500)]
        )
        noise_free_err = float(
            np.abs(keyed_logits - plain_logits).max() / np.abs(plain_logits).max()
        )
        del kn64, op

        noise_rng = np.random.default_rng([seed, 1])
        r_enc = capture_readouts(
            camera, x, readout, exposure_s=exposure, rng=noise_rng, quiet=quiet, desc="encrypted"
        )
        r_conv = capture_readouts(
            conventional, x, readout, exposure_s=exposure, rng=noise_rng, quiet=quiet,
            desc="conventional",
        )  # fmt: skip
        x32 = x.astype(np.float32)
        r32 = r_enc.astype(np.float32)
        acc = {
            "accuracy_clean": float(np.mean(net.predict(x32) == y)),
            "accuracy_conventional": float(
                np.mean(net.predict(op_conv.pinv_apply(r_conv).astype(np.float32)) == y)
            ),
            "accuracy_keynet": float(np.mean(keynet.predict(r32) == y)),
            "accuracy_plain_on_encrypted": float(
                np.mean(net.predict(op_conv.pinv_apply(r_enc).astype(np.float32)) == y)
            ),
            "accuracy_other_key": float(np.mean(other_keynet.predict(r32) == y)),
        }
        t_plain = median_time(lambda: net.predict(x32), timing_repeats)
        t_keyed = median_time(lambda: keynet.predict(r32), timing_repeats)

    m, _ = net.first_stage_matrix()
    return {
        **acc,
        "n_test_digits": len(y),
        "noise_free_max_rel_err": noise_free_err,
        "params_plain": net.n_params,
        "nnz_keyed": keynet.n_nonzero,
        "nnz_ratio": keynet.n_nonzero / net.n_params,
        "nnz_first_layer_keyed": int(keynet.w1.nnz),
        "nnz_first_stage_plain_as_matrix": int(np.count_nonzero(m)),
        "memory_plain_bytes": plain_nbytes(net),
        "memory_keyed_bytes": keynet.nbytes,
        "memory_ratio": keynet.nbytes / plain_nbytes(net),
        "time_plain_s": t_plain,
        "time_keyed_s": t_keyed,
        "time_ratio": t_keyed / t_plain,
        "paper_lenet_params": PAPER_LENET["params"],
        "paper_lenet_nnz_keyed": PAPER_LENET["nnz_keyed"],
        "paper_lenet_nnz_ratio": PAPER_LENET["nnz_keyed"] / PAPER_LENET["params"],
        "camera_config": str(path),
        "camera_fibers": [config.faceplate.rows, config.faceplate.cols],
        "key_fingerprint": camera.key.fingerprint,
        "exposure_s": exposure,
        "train": {"epochs": tcfg.epochs, "seed": tcfg.seed, "weights_from_cache": cached},
    }


def format_table(r: dict[str, Any]) -> str:
    """Human-readable table of :func:`verify` figures."""
    n = r["n_test_digits"]
    lines = [
        f"key-net verification on {n} test digits, camera {r['camera_config']} "
        f"({r['camera_fibers'][0]}x{r['camera_fibers'][1]} fibers, key {r['key_fingerprint']})",
        "",
        f"{'':4}{'network on input':52}{'accuracy':>9}",
        f"(a) {'plain net, clean digits':52}{100 * r['accuracy_clean']:8.1f}%",
        f"(b) {'plain net, conventional camera (coherent faceplate)':52}"
        f"{100 * r['accuracy_conventional']:8.1f}%",
        f"(c) {'key-net, encrypted frames':52}{100 * r['accuracy_keynet']:8.1f}%",
        f"(d) {'plain net, encrypted frames (public readout)':52}"
        f"{100 * r['accuracy_plain_on_encrypted']:8.1f}%",
        f"(e) {'key-net of another key, encrypted frames':52}{100 * r['accuracy_other_key']:8.1f}%",
        "",
        f"noise-free frames: max |keyed − plain| / max |plain| logits = "
        f"{r['noise_free_max_rel_err']:.2e} (float64)",
        "",
        f"{'':28}{'plain':>12}{'keyed':>12}{'ratio':>8}   paper LeNet",
        f"{'parameters / non-zeros':28}{r['params_plain']:12d}{r['nnz_keyed']:12d}"
        f"{r['nnz_ratio']:7.2f}x   {r['paper_lenet_params']} -> {r['paper_lenet_nnz_keyed']} "
        f"({r['paper_lenet_nnz_ratio']:.1f}x)",
        f"{'memory (float32), kB':28}{r['memory_plain_bytes'] / 1e3:12.1f}"
        f"{r['memory_keyed_bytes'] / 1e3:12.1f}{r['memory_ratio']:7.2f}x",
        f"{f'inference, {n} digits, ms':28}{1e3 * r['time_plain_s']:12.1f}"
        f"{1e3 * r['time_keyed_s']:12.1f}{r['time_ratio']:7.2f}x",
    ]
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    """Command-line entry point (see ``--help``)."""
    parser = ArgumentParser(
        prog="python -m keynet.verify",
        description="Train (or load) the plain LeNet, key it with a camera and compare "
        "accuracy, size and speed on encrypted frames.",
    )
    parser.add_argument("--config", type=Path, help="camera TOML (default: 28x28-fiber camera)")
    parser.add_argument("--json", type=Path, help="also write the figures to this JSON file")
    parser.add_argument("--force", action="store_true", help="replace an existing --json file")
    parser.add_argument("--seed", type=int, default=0, help="seed of training, keys and noise")
    parser.add_argument("--epochs", type=int, help=f"training epochs, 1..{MAX_EPOCHS} (default 20)")
    parser.add_argument(
        "--digits", type=int, default=1000, help="test digits to photograph (1..1000)"
    )
    parser.add_argument("--quiet", action="store_true", help="no progress bars")
    args = parser.parse_args(argv)
    if args.seed < 0:
        raise CLIError(f"--seed must be >= 0, got {args.seed}")
    if args.epochs is not None and not 1 <= args.epochs <= MAX_EPOCHS:
        raise CLIError(f"--epochs must be in 1..{MAX_EPOCHS}, got {args.epochs}")
    if not 1 <= args.digits <= 1000:
        raise CLIError(f"--digits must be in 1..1000, got {args.digits}")
    if args.json is not None and not args.json.parent.resolve().is_dir():
        raise CLIError(f"--json: folder does not exist: {args.json.parent}")

    from keycam.loading import open_regular
    from keycam.outputs import OutputSet

    if args.config is not None:
        open_regular(args.config, what="--config").close()  # a clear message for folders, FIFOs
    with OutputSet(overwrite=args.force, inputs=[args.config] if args.config else []) as out:
        if args.json is not None:
            out.plan(args.json)
        result = verify(
            args.config, seed=args.seed, epochs=args.epochs, n_digits=args.digits, quiet=args.quiet
        )
        if args.json is not None:
            out.write_bytes(args.json, (json.dumps(result, indent=2) + "\n").encode())
        out.commit()
    print(format_table(result))
    return 0


if __name__ == "__main__":
    sys.exit(run(main))
