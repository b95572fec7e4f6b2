"""Seeded training of :class:`keynet.network.LeNet` with Adam and small random shifts."""

from __future__ import annotations

import hashlib
import json
import os
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
from threadpoolctl import threadpool_limits

from keycam.cli import progress

from .dataset import Split, data_fingerprint
from .layers import SoftmaxCrossEntropy
from .network import LeNet, load_lenet

__all__ = ["TrainConfig", "accuracy", "cache_dir", "train", "train_or_load"]


@dataclass(frozen=True)
class TrainConfig:
    """Hyper-parameters of a training run (all of them enter the weight-cache key).

    Attributes
    ----------
    epochs : int
        Passes over the training set.
    batch : int
        Mini-batch size (images).
    lr : float
        Adam step size (1/loss units); decays by ``lr_decay`` per epoch.
    lr_decay : float
        Multiplicative step-size decay per epoch.
    shift_px : int
        Largest random translation (pixels, each axis) applied to training digits.
    seed : int
        Seed of initial weights, batch order and shifts.
    """

    epochs: int = 20
    batch: int = 64
    lr: float = 3e-3
    lr_decay: float = 0.88
    shift_px: int = 2
    seed: int = 0

    def __post_init__(self) -> None:
        for name in ("epochs", "batch"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be >= 1, got {getattr(self, name)}")
        if not self.lr > 0:
            raise ValueError(f"lr must be > 0, got {self.lr}")
        if not 0 < self.lr_decay <= 1:
            raise ValueError(f"lr_decay must be in (0, 1], got {self.lr_decay}")
        if not 0 <= self.shift_px <= 4:
            raise ValueError(f"shift_px must be in 0..4 pixels, got {self.shift_px}")


def accuracy(net: LeNet, x: np.ndarray, y: np.ndarray) -> float:
    """Fraction of digits ``x (N, 28, 28)`` that ``net`` labels as ``y``."""
    return float(np.mean(net.predict(x) == y))


def _shift(x: np.ndarray, max_px: int, *, rng: np.random.Generator) -> np.ndarray:
    """Translate each image of ``x (N, 28, 28)`` by integer offsets in ``[-max_px, max_px]``."""
    if max_px == 0:
        return x
    n, h, w = x.shape
    p = max_px
    padded = np.pad(x, ((0, 0), (p, p), (p, p)))
    dy = np.asarray(rng.integers(-p, p + 1, size=n))
    dx = np.asarray(rng.integers(-p, p + 1, size=n))
    rows = (np.arange(h)[None, :] + p - dy[:, None])[:, :, None]
    cols = (np.arange(w)[None, :] + p - dx[:, None])[:, None, :]
    return padded[np.arange(n)[:, None, None], rows, cols]


def train(
    split: Split, config: TrainConfig = TrainConfig(), *, quiet: bool = False
) -> tuple[LeNet, list[float]]:
    """Train a fresh :class:`LeNet` on ``split.x_train`` (float32); deterministic given the config.

    Returns
    -------
    net : LeNet
        The trained network.
    epoch_seconds : list of float
        Wall-clock time of each epoch, seconds.
    """
    rng = np.random.default_rng(config.seed)
    net = LeNet(rng=rng)
    loss_fn = SoftmaxCrossEntropy()
    b1, b2, eps = 0.9, 0.999, 1e-8
    m = {n: np.zeros_like(layer.params[k]) for n, layer, k in net.named_params()}
    v = {n: np.zeros_like(layer.params[k]) for n, layer, k in net.named_params()}
    t = 0
    x_all = split.x_train.astype(np.float32, copy=False)
    y_all = split.y_train
    n = len(y_all)
    starts = range(0, n, config.batch)
    epoch_seconds: list[float] = []
    with threadpool_limits(limits=1, user_api="blas"):
        for epoch in range(config.epochs):
            t0 = time.perf_counter()
            lr = config.lr * config.lr_decay**epoch
            order = rng.permutation(n)
            for s in progress(starts, total=len(starts), desc=f"epoch {epoch + 1}", quiet=quiet):
                idx = order[s : s + config.batch]
                xb = _shift(x_all[idx], config.shift_px, rng=rng)
                loss_fn.forward(net.forward(xb), y_all[idx])
                net.backward(loss_fn.backward())
                t += 1
                for name, layer, k in net.named_params():
                    g = layer.grads[k]
                    m[name] = b1 * m[name] + (1 - b1) * g
                    v[name] = b2 * v[name] + (1 - b2) * g * g
                    step = (m[name] / (1 - b1**t)) / (np.sqrt(v[name] / (1 - b2**t)) + eps)
                    layer.params[k] = layer.params[k] - lr * step
            epoch_seconds.append(time.perf_counter() - t0)
    return net, epoch_seconds


def cache_dir() -> Path:
    """Folder for cached trained weights: ``$KEYCAM_CACHE`` or ``~/.cache/keycam``."""
    env = os.environ.get("KEYCAM_CACHE")
    return Path(env) if env else Path.home() / ".cache" / "keycam"


def cache_key(config: TrainConfig) -> str:
    """Hex digest of the data fingerprint, the code's format tag and the hyper-parameters."""
    blob = json.dumps(
        {"data": data_fingerprint(), "net": "lenet-1", **asdict(config)}, sort_keys=True
    )
    return hashlib.sha256(blob.encode()).hexdigest()[:20]


def train_or_load(
    split: Split,
    config: TrainConfig = TrainConfig(),
    *,
    quiet: bool = False,
    use_cache: bool = True,
) -> tuple[LeNet, bool]:
    """Return trained weights from the cache if present, else train and cache them.

    Returns ``(net, loaded_from_cache)``. The cache file name is ``lenet-<cache_key>.npz``;
    an unreadable cache file (truncated, damaged, not a weight file) is ignored and replaced
    by the freshly trained weights (written atomically, so a run cut short never leaves a
    half-written cache file).
    """
    path = cache_dir() / f"lenet-{cache_key(config)}.npz"
    if use_cache and path.is_file():
        try:
            return load_lenet(path), True
        except (ValueError, OSError):
            pass  # damaged: train again and replace it below
    net, _ = train(split, config, quiet=quiet)
    if use_cache:
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            net.save(path)
        except OSError:
            pass  # a read-only cache only costs time
    return net, False
