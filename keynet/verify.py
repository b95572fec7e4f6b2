"""``python -m keynet.verify``: does a key-net classify the camera's encrypted frames?

Trains the plain LeNet on the 4000 bundled training digits (or loads weights cached under
``$KEYCAM_CACHE`` / ``~/.cache/keycam`` for the same data and hyper-parameters), keys it with
the camera's key (the design key, or any key file such as a measured one), photographs the
1000 test digits through the camera with all sensor noise and prints:

(a) plain net on the clean digits;
(b) plain net on the camera's plain images: the digits as the input fibers receive them
    (the public input-face crosstalk included), noise-free — the reference of (c) and (e);
(c) key-net on the noise-free encrypted readouts of the same digits;
(d) plain net on a conventional camera (same lens, lattice, crosstalk, coupling and sensor,
    coherent faceplate): its frames go through the same public per-site readout and are
    normalised to the digit range with that camera's operator (a flat-field correction);
(e) key-net on the encrypted frames (public readout only);
(f) plain net on the encrypted frames, after the public readout and the conventional
    camera's normalisation (what one gets without the key);
(g) a key-net made for another key of the same design, on the same encrypted frames;

then non-zeros of the keyed first layer and of the whole key-net, memory and inference time
of key-net vs plain net, beside the Key-Nets paper's LeNet figure (3.0× non-zeros), and the
noise-free check of the key-net's logits against the plain net's on (b) (float64). Cameras:
``realistic`` (default; ``keynet/data/verify_camera_realistic.toml``: crosstalk, dead fibers,
as built) and ``ideal`` (``keynet/data/verify_camera.toml``: neither).
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

if TYPE_CHECKING:  # numpy and the network load inside the functions: Ctrl-C-safe start-up
    import numpy as np

    from optics.faceplate import Key

    from .keying import KeyNet
    from .network import LeNet
    from .operators import SecretMap

__all__ = [
    "CAMERAS",
    "CHANCE",
    "KEYING",
    "MAX_EPOCHS",
    "PAPER_LENET",
    "camera_path",
    "main",
    "verify",
    "verify_memory",
]

#: Key-Nets (Byrne, DeCann, Bloom, BMVC 2020), LeNet on MNIST with a permutation key.
PAPER_LENET = {"params": 106_154, "nnz_keyed": 323_491}

#: Accuracy of guessing among the 10 digit classes.
CHANCE = 0.1

#: The bundled verification cameras (28×28 fibers, one per digit pixel), by name.
CAMERAS = {"realistic": "verify_camera_realistic.toml", "ideal": "verify_camera.toml"}

#: How :func:`verify` keys the first layer (see :func:`keynet.keying.key_network`): output
#: crosstalk undone to first order, corrections kept within 1.5x the plain first stage's
#: non-zeros, dead fibers filled from their neighbours.
KEYING: dict[str, Any] = {"crosstalk_order": 1, "first_layer_budget": 1.5, "fill_dead": True}


def _key(net: LeNet, op: SecretMap, rng: np.random.Generator) -> KeyNet:
    from .keying import key_network

    return key_network(
        net,
        op,
        rng=rng,
        crosstalk_order=KEYING["crosstalk_order"],
        first_layer_budget=KEYING["first_layer_budget"],
        fill_dead=KEYING["fill_dead"],
    )


def camera_path(name: str = "realistic") -> Path:
    """TOML of a bundled verification camera: ``"realistic"`` (as built) or ``"ideal"``."""
    if name not in CAMERAS:
        raise ValueError(f"camera must be one of {sorted(CAMERAS)}, got {name!r}")
    return Path(str(resources.files("keynet.data") / CAMERAS[name]))


def default_camera_path() -> Path:
    """The default verification camera: the realistic one (crosstalk, dead fibers)."""
    return camera_path("realistic")


def verify_memory(config: Any, n_digits: int) -> float:
    """Estimated peak memory of :func:`verify` with ``config``, bytes (beyond the network).

    Two cameras' operators (the camera with its conventional twin, and the other key's
    camera; :func:`sim.memory.camera_memory`), the frames of ``n_digits`` digits through two
    cameras, the per-pixel digit operators while the input operators are solved (dense,
    pixels x 784, several copies: measured about 26 kB per sensor pixel), the dense input
    operators (sites x 784) and the readouts.
    """
    from sim.memory import camera_memory

    n_f = config.faceplate.rows * config.faceplate.cols
    n_px = config.sensor.width_px * config.sensor.height_px
    cameras = 2.0 * camera_memory(config)["total"]
    frames = 2.0 * n_digits * n_px * 2
    solving = n_px * 784 * 8 * 4.5
    operators = 4.0 * n_f * 784 * 8
    readouts = 4.0 * n_digits * n_f * 8
    return cameras + frames + solving + operators + readouts


#: Most training epochs ``--epochs`` accepts.
MAX_EPOCHS = 200


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
    camera: str = "realistic",
    key: Key | None = None,
    device_key: Key | None = None,
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
        Camera TOML; replaces ``camera``.
    camera : {"realistic", "ideal"}
        Bundled verification camera used when ``config_path`` is not given.
    key : Key, optional
        The key the network is keyed with (e.g. a measured key); default the device's key.
    device_key : Key, optional
        The key of the simulated device that photographs the digits; default the camera's
        design key (drawn from the configuration's seed).
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
    from optics.faceplate import keygen
    from sim.camera import Camera
    from sim.config import load_config
    from sim.stages import check_key

    from .dataset import load_split
    from .keying import plain_nbytes
    from .readout import PublicReadout, capture_readouts, input_operator, secret_map
    from .train import TrainConfig, train_or_load

    if not 1 <= n_digits <= 1000:
        raise ValueError(f"digits must be in 1..1000, got {n_digits}")
    if seed < 0:
        raise ValueError(f"seed must be >= 0, got {seed}")
    path = Path(config_path) if config_path is not None else camera_path(camera)
    name = camera if config_path is None else "custom"
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
    for k in (key, device_key):
        if k is not None:
            check_key(config, k)  # before any training: a wrong lattice fails at once
    tcfg = TrainConfig(seed=seed) if epochs is None else TrainConfig(epochs=epochs, seed=seed)

    split = load_split()
    take = np.sort(np.argsort(np.arange(1000) % 100, kind="stable")[:n_digits])  # stratified
    x, y = split.x_test[take], split.y_test[take]
    with threadpool_limits(limits=1, user_api="blas"):
        net, cached = train_or_load(split, tcfg, quiet=quiet)
        device = Camera(config, device_key)
        conventional = device.conventional()
        other_seed = device.config.faceplate.seed + 1 + seed
        other_key = keygen(device.config.with_key_seed(other_seed).faceplate)
        exposure = device.exposure_for(None)
        readout = PublicReadout(device, exposure_s=exposure)
        op = input_operator(device, exposure_s=exposure, readout=readout)  # the device itself
        op_conv = input_operator(conventional, exposure_s=exposure, readout=readout)
        truth = secret_map(device, exposure_s=exposure, readout=readout)
        keying = (
            truth
            if key is None
            else secret_map(device, exposure_s=exposure, readout=readout, key=key)
        )
        rng = np.random.default_rng(seed)
        kn64 = _key(net, keying, rng)
        keynet = kn64.astype(np.float32)
        other = secret_map(device, exposure_s=exposure, readout=readout, key=other_key)
        other_keynet = _key(net, other, rng).astype(np.float32)
        del other, other_key

        # noise-free: key-net on the device's mean readouts vs plain net on its plain images
        plain_images = truth.input_face(x)
        plain_logits = net.predict_logits(plain_images)
        keyed_logits = np.concatenate(
            [kn64.forward(op.apply(x[i : i + 500])) for i in range(0, len(x), 500)]
        )
        noise_free_err = float(
            np.abs(keyed_logits - plain_logits).max() / np.abs(plain_logits).max()
        )
        del kn64, op, keying, truth

        noise_rng = np.random.default_rng([seed, 1])
        r_enc = capture_readouts(
            device, x, readout, exposure_s=exposure, rng=noise_rng, quiet=quiet, desc="encrypted"
        )
        r_conv = capture_readouts(
            conventional, x, readout, exposure_s=exposure, rng=noise_rng, quiet=quiet,
            desc="conventional",
        )  # fmt: skip
        x32 = x.astype(np.float32)
        r32 = r_enc.astype(np.float32)
        acc = {
            "accuracy_clean": float(np.mean(net.predict(x32) == y)),
            "accuracy_plain_images": float(np.mean(plain_logits.argmax(axis=1) == y)),
            "accuracy_keynet_noise_free": float(np.mean(keyed_logits.argmax(axis=1) == y)),
            "agreement_noise_free": float(
                np.mean(keyed_logits.argmax(axis=1) == plain_logits.argmax(axis=1))
            ),
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
    nnz_m = int(np.count_nonzero(m))
    fp = device.config.faceplate
    return {
        "camera": name,
        **acc,
        "chance_accuracy": CHANCE,
        "n_test_digits": len(y),
        "noise_free_max_rel_err": noise_free_err,
        "params_plain": net.n_params,
        "nnz_keyed": keynet.n_nonzero,
        "nnz_ratio": keynet.n_nonzero / net.n_params,
        "nnz_first_layer_keyed": int(keynet.w1.nnz),
        "nnz_first_stage_plain_as_matrix": nnz_m,
        "first_layer_nnz_ratio": keynet.w1.nnz / nnz_m,
        "memory_plain_bytes": plain_nbytes(net),
        "memory_keyed_bytes": keynet.nbytes,
        "memory_ratio": keynet.nbytes / plain_nbytes(net),
        "time_plain_s": t_plain,
        "time_keyed_s": t_keyed,
        "time_ratio": t_keyed / t_plain,
        "paper_lenet_params": PAPER_LENET["params"],
        "paper_lenet_nnz_keyed": PAPER_LENET["nnz_keyed"],
        "paper_lenet_nnz_ratio": PAPER_LENET["nnz_keyed"] / PAPER_LENET["params"],
        "keying": dict(KEYING),
        "camera_config": str(path),
        "camera_fibers": [fp.rows, fp.cols],
        "crosstalk_in": fp.crosstalk_in,
        "crosstalk_out": fp.crosstalk_out,
        "dead_fibers": int(np.count_nonzero(device.key.dead)),
        "key_fingerprint": (device.key if key is None else key).fingerprint,
        "device_key_fingerprint": device.key.fingerprint,
        "exposure_s": exposure,
        "train": {"epochs": tcfg.epochs, "seed": tcfg.seed, "weights_from_cache": cached},
    }


def format_table(r: dict[str, Any]) -> str:
    """Human-readable table of :func:`verify` figures."""
    n = r["n_test_digits"]
    key = f"key {r['key_fingerprint']}"
    if r["key_fingerprint"] != r["device_key_fingerprint"]:
        key += f" on device {r['device_key_fingerprint']}"
    kind = {"realistic": "as built", "ideal": "idealised"}.get(r["camera"], "custom")
    k = r["keying"]
    order = "exact" if k["crosstalk_order"] is None else f"order {k['crosstalk_order']}"
    budget = k["first_layer_budget"]

    def row(label: str, name: str, note: str = "") -> str:
        return f"{label:56}{100 * r[name]:8.1f}%{note}"

    lines = [
        f"key-net verification on {n} test digits, {r['camera']} camera ({kind}), {key}",
        f"camera: {Path(r['camera_config']).name}",
        f"        {r['camera_fibers'][0]}x{r['camera_fibers'][1]} fibers, crosstalk "
        f"{100 * r['crosstalk_in']:g} % at the input face and {100 * r['crosstalk_out']:g} % "
        f"at the output face, {r['dead_fibers']} dead fibers",
        "",
        f"{'    network on input':56}{'accuracy':>9}",
        row("(a) plain net, clean digits", "accuracy_clean"),
        row("(b) plain net, the camera's plain images (noise-free)", "accuracy_plain_images"),
        row("(c) key-net, noise-free encrypted readouts", "accuracy_keynet_noise_free"),
        row("(d) plain net, conventional camera (coherent faceplate)", "accuracy_conventional"),
        row("(e) key-net, encrypted frames", "accuracy_keynet"),
        row("(f) plain net, encrypted frames (public readout)", "accuracy_plain_on_encrypted"),
        row("(g) key-net of another key, encrypted frames", "accuracy_other_key"),
        f"{'    chance (10 classes)':56}{100 * r['chance_accuracy']:8.1f}%",
        "",
        f"noise-free: (c) and (b) agree on {100 * r['agreement_noise_free']:.1f} % of the "
        f"digits; max |keyed − plain| / max |plain| logits = {r['noise_free_max_rel_err']:.2e}",
        f"first layer: output crosstalk undone to {order}"
        + ("" if budget is None else f" within {budget:g}x the plain non-zeros")
        + (", dead fibers filled from their neighbours" if k["fill_dead"] else ""),
        "",
        f"{'':28}{'plain':>12}{'keyed':>12}{'ratio':>8}   paper LeNet",
        f"{'first layer non-zeros':28}{r['nnz_first_stage_plain_as_matrix']:12d}"
        f"{r['nnz_first_layer_keyed']:12d}{r['first_layer_nnz_ratio']:7.2f}x",
        f"{'parameters / non-zeros':28}{r['params_plain']:12d}{r['nnz_keyed']:12d}"
        f"{r['nnz_ratio']:7.2f}x   {r['paper_lenet_params']} -> {r['paper_lenet_nnz_keyed']} "
        f"({r['paper_lenet_nnz_ratio']:.1f}x)",
        f"{'memory (float32), kB':28}{r['memory_plain_bytes'] / 1e3:12.1f}"
        f"{r['memory_keyed_bytes'] / 1e3:12.1f}{r['memory_ratio']:7.2f}x",
        f"{f'inference, {n} digits, ms':28}{1e3 * r['time_plain_s']:12.1f}"
        f"{1e3 * r['time_keyed_s']:12.1f}{r['time_ratio']:7.2f}x",
    ]
    return "\n".join(lines)


def _load_key(option: str, path: Path | None) -> Key | None:
    if path is None:
        return None
    if not path.is_file():
        raise CLIError(f"{option}: no such file: {path}")
    from optics.faceplate import Key

    try:
        return Key.load(path)
    except ValueError as exc:
        raise CLIError(f"{option}: {exc}") from None


def main(argv: Sequence[str] | None = None) -> int:
    """Command-line entry point (see ``--help``)."""
    from sim.config import load_config
    from sim.stages import check_key

    parser = ArgumentParser(
        prog="python -m keynet.verify",
        description="Train (or load) the plain LeNet, key it with a camera and compare "
        "accuracy, size and speed on encrypted frames.",
    )
    where = parser.add_mutually_exclusive_group()
    where.add_argument(
        "--camera",
        choices=[*CAMERAS, "both"],
        default="realistic",
        help="bundled verification camera: realistic (as built: crosstalk, dead fibers; "
        "default), ideal (neither) or both",
    )
    where.add_argument("--config", type=Path, help="camera TOML instead of a bundled camera")
    parser.add_argument(
        "--key", type=Path, help="key file to key the network with (e.g. a measured key); "
        "default the device's key; with --store required (the key of the store's frames)",
    )  # fmt: skip
    parser.add_argument(
        "--device-key", type=Path, help="key file of the simulated device that photographs "
        "the digits (default: the camera's design key)",
    )  # fmt: skip
    parser.add_argument("--json", type=Path, help="also write the figures to this JSON file")
    parser.add_argument("--force", action="store_true", help="replace an existing --json file")
    parser.add_argument("--seed", type=int, default=0, help="seed of training, keys and noise")
    parser.add_argument("--epochs", type=int, help=f"training epochs, 1..{MAX_EPOCHS} (default 20)")
    parser.add_argument(
        "--digits", type=int, default=None, help="test digits to photograph (1..1000)"
    )
    parser.add_argument("--quiet", action="store_true", help="no progress bars")
    parser.add_argument(
        "--store",
        type=Path,
        help="instead: evaluate the key-net on the frames of a dataset store "
        "(python -m sim.dataset), with --key",
    )
    parser.add_argument(
        "--train-on-store",
        action="store_true",
        help="with --store of the bundled digits: train on its encrypted training frames",
    )
    args = parser.parse_args(argv)
    if args.store is not None or args.train_on_store:
        return _main_store(args)
    args.digits = 1000 if args.digits is None else args.digits
    if args.seed < 0:
        raise CLIError(f"--seed must be >= 0, got {args.seed}")
    if args.epochs is not None and not 1 <= args.epochs <= MAX_EPOCHS:
        raise CLIError(f"--epochs must be in 1..{MAX_EPOCHS}, got {args.epochs}")
    if not 1 <= args.digits <= 1000:
        raise CLIError(f"--digits must be in 1..1000, got {args.digits}")
    if args.config is not None:
        from keycam.loading import open_regular

        open_regular(args.config, what="--config").close()  # clear words for folders, FIFOs
    if args.json is not None:
        if not args.json.parent.resolve().is_dir():
            raise CLIError(f"--json: folder does not exist: {args.json.parent}")
        if args.json.exists() and not args.force:
            raise CLIError(f"--json: {args.json} exists; pass --force to replace it")
    key = _load_key("--key", args.key)
    device_key = _load_key("--device-key", args.device_key)
    if args.config is not None:
        runs: list[tuple[str, Path | None]] = [("custom", args.config)]
    else:
        names = list(CAMERAS) if args.camera == "both" else [args.camera]
        runs = [(name, None) for name in names]
    for name, path in runs:  # every input is checked before the (long) training starts
        config = load_config(path if path is not None else camera_path(name))
        for option, k in (("--key", key), ("--device-key", device_key)):
            if k is not None:
                try:
                    check_key(config, k)
                except ValueError as exc:
                    raise CLIError(f"{option}: {exc}") from None
    results = {}
    for name, path in runs:
        results[name] = verify(
            path,
            camera=name if path is None else "realistic",  # a --config replaces the camera
            key=key,
            device_key=device_key,
            seed=args.seed,
            epochs=args.epochs,
            n_digits=args.digits,
            quiet=args.quiet,
        )
    print("\n\n".join(format_table(r) for r in results.values()))
    if args.json is not None:
        payload = {"cameras": results}
        from keycam.fileio import write_bytes_atomic

        write_bytes_atomic(
            args.json, (json.dumps(payload, indent=2) + "\n").encode(), overwrite=args.force
        )
    return 0


def _main_store(args) -> int:
    """``--store``: the key-net's accuracy on the frames of an encrypted dataset store."""
    if args.store is None or args.key is None:
        raise CLIError("--store and --key go together (the store's frames, its device key)")
    if args.config is not None or args.digits is not None:
        raise CLIError("--config/--digits: with --store the camera and digits are the store's")
    if args.seed < 0:
        raise CLIError(f"--seed must be >= 0, got {args.seed}")
    if args.epochs is not None and not 1 <= args.epochs <= MAX_EPOCHS:
        raise CLIError(f"--epochs must be in 1..{MAX_EPOCHS}, got {args.epochs}")
    if not args.key.is_file():
        raise CLIError(f"--key: no such file: {args.key}")
    if args.json is not None:
        if not args.json.parent.resolve().is_dir():
            raise CLIError(f"--json: folder does not exist: {args.json.parent}")
        if args.json.exists() and not args.force:
            raise CLIError(f"--json: {args.json} exists; pass --force to replace it")
    if args.device_key is not None:
        raise CLIError("--device-key: with --store the frames are the store's")
    from .store import verify_store

    r = verify_store(
        args.store,
        args.key,
        seed=args.seed,
        epochs=args.epochs,
        train_on_store=args.train_on_store,
        quiet=args.quiet,
    )
    subset = "test digits" if r["eval_subset"] == "test" else "frames"
    print(
        f"key-net on {r['n_eval_frames']} {subset} of the store {r['store']} "
        f"({r['n_store_frames']} frames, key {r['key_fingerprint']}, exposure "
        f"{r['exposure_s'] * 1e3:.4g} ms), LeNet trained on the {r['trained_on']}\n"
        f"(c) {'key-net, encrypted frames from the store':52}"
        f"{100 * r['accuracy_keynet_store']:8.1f}%"
    )
    if args.json is not None:
        from keycam.fileio import write_bytes_atomic

        write_bytes_atomic(
            args.json, (json.dumps(r, indent=2) + "\n").encode(), overwrite=args.force
        )
    return 0


if __name__ == "__main__":
    sys.exit(run(main))
