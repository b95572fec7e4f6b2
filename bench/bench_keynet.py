"""Key-net figures: training time per epoch, inference time for 1000 frames, plain vs keyed.

Prints one JSON object. Timings are medians of several runs, with NumPy's BLAS single-threaded
(as in training and verification). Inference is timed on the network alone: the plain LeNet on
1000 digits (28×28, float32) and the key-net on the 1000 matching per-site readouts of the
28×28-fiber verification camera (float32); the public binning of sensor frames into readouts,
needed by both a keyed and a conventional camera, is timed separately.

Usage: ``python bench/bench_keynet.py [--epochs 3] [--repeats 7]``
"""

from __future__ import annotations

import argparse
import json

import numpy as np
from threadpoolctl import threadpool_limits

from keynet.dataset import load_split
from keynet.keying import key_network, plain_nbytes
from keynet.readout import PublicReadout, input_operator
from keynet.train import TrainConfig, train
from keynet.verify import default_camera_path, median_time


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=3, help="epochs to time (median)")
    parser.add_argument("--repeats", type=int, default=7, help="runs per inference timing")
    args = parser.parse_args()

    from sim.camera import Camera
    from sim.config import load_config

    split = load_split()
    net, epoch_s = train(split, TrainConfig(epochs=args.epochs, seed=0), quiet=True)
    with threadpool_limits(limits=1, user_api="blas"):
        camera = Camera(load_config(default_camera_path()))
        exposure = camera.exposure_for(None)
        readout = PublicReadout(camera, exposure_s=exposure)
        op = input_operator(camera, exposure_s=exposure, readout=readout)
        keynet = key_network(net, op, rng=np.random.default_rng(0)).astype(np.float32)
        x = split.x_test.astype(np.float32)
        r = op.apply(split.x_test).astype(np.float32)
        a, b = camera.operator(exposure)
        frames = np.round((a @ split.x_test.reshape(1000, -1).T).T + b).reshape(
            1000, *camera.frame_shape
        )
        t_plain = median_time(lambda: net.predict(x), args.repeats)
        t_keyed = median_time(lambda: keynet.predict(r), args.repeats)
        t_readout = median_time(lambda: readout(frames), max(3, args.repeats // 2))
    print(
        json.dumps(
            {
                "train_epoch_s_median": float(np.median(epoch_s)),
                "train_epochs_timed": args.epochs,
                "train_images_per_epoch": len(split.y_train),
                "infer_1000_plain_s": t_plain,
                "infer_1000_keyed_s": t_keyed,
                "infer_time_ratio_keyed_over_plain": t_keyed / t_plain,
                "public_readout_1000_frames_s": t_readout,
                "frame_shape_px": list(camera.frame_shape),
                "params_plain": net.n_params,
                "nnz_keyed": keynet.n_nonzero,
                "memory_ratio_keyed_over_plain": keynet.nbytes / plain_nbytes(net),
                "repeats": args.repeats,
            },
            indent=2,
        )
    )


if __name__ == "__main__":
    main()
