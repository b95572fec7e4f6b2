"""Key-net figures: training time, and how each way of keying the first layer does on the camera.

Prints one JSON object:

- ``train_epoch_s_median``: seconds per training epoch (``--epochs`` epochs timed);
- ``approaches``: for the realistic verification camera (crosstalk 2 % at both faces, dead
  fibers) at several dead-fiber fractions, every way of keying the first layer that keycam
  offers, with the standard trained network (cached like ``python -m keynet.verify``): accuracy
  on noise-free readouts and on frames with all sensor noise (1000 test digits), agreement
  with the plain network on the camera's plain images, the largest logit error against the
  plain network on those images and against the untruncated inverse (same dead-fiber
  handling), first-layer and whole-network non-zeros, memory and inference time relative to
  the plain network;
- the same for the idealised camera (no crosstalk, no dead fibers) with the kept method.

Timings are medians, with NumPy's BLAS single-threaded (as in training and verification).
Inference is timed on the network alone: the plain LeNet on 1000 digits (28×28, float32) and
the key-net on the 1000 matching per-site readouts (float32); the public binning of sensor
frames into readouts, needed by both a keyed and a conventional camera, is timed separately.

Usage: ``python bench/bench_keynet.py [--epochs 3] [--repeats 7] [--dead 0.002 0.005 0.01]``
"""

from __future__ import annotations

import argparse
import json
from typing import Any

import numpy as np
from threadpoolctl import threadpool_limits

from keynet.dataset import load_split
from keynet.keying import key_network, plain_nbytes
from keynet.readout import PublicReadout, capture_readouts, input_operator, secret_map
from keynet.train import TrainConfig, train, train_or_load
from keynet.verify import camera_path, median_time

#: name -> key_network keywords; None = the exact dense pseudo-inverse of the composed map
APPROACHES: dict[str, dict[str, Any] | None] = {
    "exact pseudo-inverse A_s+ (dense)": None,
    "order 0 (diagonal of C_out only)": {"crosstalk_order": 0},
    "order 1 within 1.5x (kept)": {"crosstalk_order": 1, "first_layer_budget": 1.5},
    "order 1 within 2.0x": {"crosstalk_order": 1, "first_layer_budget": 2.0},
    "order 1, all terms": {"crosstalk_order": 1, "first_layer_budget": None},
    "order 2, all terms": {"crosstalk_order": 2, "first_layer_budget": None},
    "exact C_out inverse (dense)": {"crosstalk_order": None, "first_layer_budget": None},
    "order 1 within 1.5x, dead fibers read 0": {
        "crosstalk_order": 1,
        "first_layer_budget": 1.5,
        "fill_dead": False,
    },
}
KEPT = "order 1 within 1.5x (kept)"
#: approaches also run at the other dead-fiber fractions
SHORT = ("exact pseudo-inverse A_s+ (dense)", KEPT, "order 1 within 1.5x, dead fibers read 0")


def evaluate(
    net, config, names, *, repeats: int, split, rng_seed: int = 1
) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """Figures of every approach in ``names`` on the camera ``config``."""
    from sim.camera import Camera

    camera = Camera(config)
    exposure = camera.exposure_for(None)
    readout = PublicReadout(camera, exposure_s=exposure)
    op = input_operator(camera, exposure_s=exposure, readout=readout)
    smap = secret_map(camera, exposure_s=exposure, readout=readout)
    x, y = split.x_test.astype(np.float64), split.y_test
    x32 = x.astype(np.float32)
    plain_images = smap.input_face(x)
    plain_logits = net.predict_logits(plain_images)
    r_mean = op.apply(x)
    r_noisy = capture_readouts(
        camera, x, readout, exposure_s=exposure, rng=np.random.default_rng(rng_seed), quiet=True
    ).astype(np.float32)
    t_plain = median_time(lambda: net.predict(x32), repeats)
    m, _ = net.first_stage_matrix()
    nnz_m = int(np.count_nonzero(m))

    def logits(kn) -> np.ndarray:
        return np.concatenate([kn.forward(r_mean[i : i + 500]) for i in range(0, len(x), 500)])

    scale = float(np.abs(plain_logits).max())
    references: dict[bool, np.ndarray] = {}  # untruncated inverse per dead-fiber handling
    rows = []
    for name in names:
        kw = APPROACHES[name]
        rng = np.random.default_rng(0)
        kn64 = key_network(net, op if kw is None else smap, rng=rng, **(kw or {}))
        fill = True if kw is None else kw.get("fill_dead", True)
        if fill not in references:
            exact = key_network(
                net, smap, rng=np.random.default_rng(0), crosstalk_order=None,
                first_layer_budget=None, fill_dead=fill,
            )  # fmt: skip
            references[fill] = logits(exact)
        lg = logits(kn64)
        kn = kn64.astype(np.float32)
        rows.append(
            {
                "approach": name,
                "accuracy_noise_free": float(np.mean(lg.argmax(1) == y)),
                "accuracy_noisy": float(np.mean(kn.predict(r_noisy) == y)),
                "agreement_noise_free": float(np.mean(lg.argmax(1) == plain_logits.argmax(1))),
                "max_rel_logit_err_vs_plain_images": float(np.abs(lg - plain_logits).max() / scale),
                # the dense pseudo-inverse handles dead fibers its own way: no like-for-like
                "max_rel_logit_err_vs_untruncated": None
                if kw is None
                else float(np.abs(lg - references[fill]).max() / scale),
                "first_layer_nnz_ratio": kn.w1.nnz / nnz_m,
                "whole_net_nnz_ratio": kn.n_nonzero / net.n_params,
                "memory_ratio": kn.nbytes / plain_nbytes(net),
                "time_ratio": median_time(lambda kn=kn: kn.predict(r_noisy), repeats) / t_plain,
            }
        )
    camera_row = {
        "dead_fraction": config.faceplate.dead_fraction,
        "dead_fibers": int(np.count_nonzero(camera.key.dead)),
        "crosstalk_in": config.faceplate.crosstalk_in,
        "crosstalk_out": config.faceplate.crosstalk_out,
        "accuracy_plain_clean": float(np.mean(net.predict(x32) == y)),
        "accuracy_plain_images": float(np.mean(plain_logits.argmax(1) == y)),
        "infer_1000_plain_s": t_plain,
    }
    return camera_row, rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=3, help="epochs to time (median)")
    parser.add_argument("--repeats", type=int, default=7, help="runs per inference timing")
    parser.add_argument(
        "--dead", type=float, nargs="+", default=[0.002, 0.005, 0.01],
        help="dead-fiber fractions of the realistic camera (the first gets every approach)",
    )  # fmt: skip
    args = parser.parse_args()

    from sim.camera import Camera
    from sim.config import load_config

    split = load_split()
    _, epoch_s = train(split, TrainConfig(epochs=args.epochs, seed=0), quiet=True)
    with threadpool_limits(limits=1, user_api="blas"):
        net, _ = train_or_load(split, TrainConfig(), quiet=True)
        realistic = load_config(camera_path("realistic"))
        cameras = []
        for i, dead in enumerate(args.dead):
            fp = realistic.faceplate.model_copy(update={"dead_fraction": dead})
            config = realistic.model_copy(update={"faceplate": fp})
            names = list(APPROACHES) if i == 0 else list(SHORT)
            cam, rows = evaluate(net, config, names, repeats=args.repeats, split=split)
            cameras.append({"camera": "realistic", **cam, "approaches": rows})
        ideal = load_config(camera_path("ideal"))
        cam, rows = evaluate(net, ideal, [KEPT], repeats=args.repeats, split=split)
        cameras.append({"camera": "ideal", **cam, "approaches": rows})

        camera = Camera(realistic)
        exposure = camera.exposure_for(None)
        readout = PublicReadout(camera, exposure_s=exposure)
        a, b = camera.operator(exposure)
        frames = np.round((a @ split.x_test.reshape(1000, -1).T).T + b).reshape(
            1000, *camera.frame_shape
        )
        t_readout = median_time(lambda: readout(frames), max(3, args.repeats // 2))
    print(
        json.dumps(
            {
                "train_epoch_s_median": float(np.median(epoch_s)),
                "train_epochs_timed": args.epochs,
                "train_images_per_epoch": len(split.y_train),
                "params_plain": net.n_params,
                "public_readout_1000_frames_s": t_readout,
                "frame_shape_px": list(camera.frame_shape),
                "repeats": args.repeats,
                "cameras": cameras,
            },
            indent=2,
        )
    )


if __name__ == "__main__":
    main()
