"""The LeNet-5-style digit classifier and its weight files.

Architecture (input ``(N, 1, 28, 28)``, grey levels scaled to [0, 1]):

====  ======================================  ================
 #    layer                                   output
====  ======================================  ================
 0    conv 5×5, 1→6, padding 2                (N, 6, 28, 28)
 1    average pool 2×2                        (N, 6, 14, 14)
 2    ReLU
 3    conv 5×5, 6→16                          (N, 16, 10, 10)
 4    average pool 2×2                        (N, 16, 5, 5)
 5    ReLU
 6    flatten                                 (N, 400)
 7    linear 400→120, ReLU                    (N, 120)
 9    linear 120→84, ReLU                     (N, 84)
 11   linear 84→10                            (N, 10) logits
====  ======================================  ================

Pooling comes before the ReLU so that the first convolution and pooling form one linear map
(a stride-2 6×6 convolution), which is what a key-net's first layer absorbs.
"""

from __future__ import annotations

import io
import os
import zipfile
import zlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np

from keycam.fileio import write_bytes_atomic

from .layers import AvgPool2, Conv2D, Flatten, Layer, Linear, ReLU

__all__ = ["INPUT_SHAPE", "LeNet", "load_lenet"]

INPUT_SHAPE = (28, 28)
_FORMAT = "keycam-lenet-1"


class LeNet:
    """LeNet-5-style network with average pooling (see module docstring).

    Parameters
    ----------
    rng : numpy.random.Generator
        Source of the initial weights (He normal, zero biases).
    """

    def __init__(self, *, rng: np.random.Generator) -> None:
        self.layers: list[Layer] = [
            Conv2D(1, 6, 5, padding=2, rng=rng, input_grad=False),
            AvgPool2(),
            ReLU(),
            Conv2D(6, 16, 5, rng=rng),
            AvgPool2(),
            ReLU(),
            Flatten(),
            Linear(400, 120, rng=rng),
            ReLU(),
            Linear(120, 84, rng=rng),
            ReLU(),
            Linear(84, 10, rng=rng),
        ]

    # -- parameters -------------------------------------------------------------------
    def named_params(self) -> Iterator[tuple[str, Layer, str]]:
        """Yield ``(name, layer, key)`` for every parameter array, e.g. ``("0.W", conv, "W")``."""
        for i, layer in enumerate(self.layers):
            for key in layer.params:
                yield f"{i}.{key}", layer, key

    def state(self) -> dict[str, np.ndarray]:
        """Copy of all parameter arrays by name (``"0.W"``, ``"0.b"``, ...)."""
        return {name: layer.params[key].copy() for name, layer, key in self.named_params()}

    def load_state(self, state: dict[str, np.ndarray]) -> None:
        """Set parameters from :meth:`state` output; shapes must match exactly."""
        for name, layer, key in self.named_params():
            if name not in state:
                raise ValueError(f"weights: missing array {name!r}")
            arr = np.asarray(state[name], dtype=np.float64)
            if arr.shape != layer.params[key].shape:
                raise ValueError(
                    f"weights: array {name!r} has shape {arr.shape}, "
                    f"expected {layer.params[key].shape}"
                )
            layer.params[key] = arr.copy()

    @property
    def n_params(self) -> int:
        """Number of trainable parameters (weights and biases)."""
        return int(sum(layer.params[key].size for _, layer, key in self.named_params()))

    # -- passes -----------------------------------------------------------------------
    def forward(self, x: np.ndarray) -> np.ndarray:
        """Logits ``(N, 10)`` for digits ``x (N, 28, 28)`` or ``(N, 1, 28, 28)`` in [0, 1]."""
        x = np.asarray(x)
        if x.ndim == 3:
            x = x[:, None]
        if x.shape[1:] != (1, *INPUT_SHAPE):
            raise ValueError(f"digits: expected shape (N, 28, 28), got {x.shape}")
        if not np.issubdtype(x.dtype, np.floating):
            x = x.astype(np.float32)
        for layer in self.layers:
            x = layer.forward(x)
        return x

    def backward(self, grad_logits: np.ndarray) -> None:
        """Back-propagate ``d loss / d logits``; fills every layer's ``grads``."""
        g: np.ndarray | None = grad_logits
        for layer in reversed(self.layers):
            if g is None:
                break
            g = layer.backward(g)

    def predict_logits(self, x: np.ndarray, *, batch: int = 500) -> np.ndarray:
        """Logits for many digits, in batches to bound memory; float dtype of ``x`` kept."""
        x = np.asarray(x)
        return np.concatenate([self.forward(x[i : i + batch]) for i in range(0, len(x), batch)])

    def predict(self, x: np.ndarray, *, batch: int = 500) -> np.ndarray:
        """Predicted digit ``(N,) int`` for digits ``x (N, 28, 28)`` in [0, 1]."""
        return self.predict_logits(x, batch=batch).argmax(axis=1)

    # -- linear pieces used by keying --------------------------------------------------
    def first_stage_matrix(self) -> tuple[np.ndarray, np.ndarray]:
        """Layers 0–1 (conv 5×5 + average pool) as one affine map on flattened digits.

        Returns
        -------
        M : (1176, 784) float64
            ``pool(conv(x)) = M @ x.ravel() + c`` with outputs ordered (channel, row, column)
            of the ``(6, 14, 14)`` pooled map and inputs in row-major pixel order.
        c : (1176,) float64
            The bias term (each channel's bias, repeated over its 14×14 positions).
        """
        conv, pool = self.layers[0], self.layers[1]
        eye = np.eye(784).reshape(784, 1, 28, 28)
        bias = conv.params["b"]
        conv.params["b"] = np.zeros_like(bias)
        try:
            m = pool.forward(conv.forward(eye)).reshape(784, -1).T.copy()
        finally:
            conv.params["b"] = bias
        c = np.repeat(bias, 14 * 14)
        return m, c

    # -- files --------------------------------------------------------------------------
    def save(self, path: str | os.PathLike[str], *, overwrite: bool = True) -> Path:
        """Write the weights to an ``.npz`` file atomically; return the path."""
        buf = io.BytesIO()
        arrays: dict[str, Any] = {f"p{n}": a for n, a in self.state().items()}
        np.savez(buf, format=np.array(_FORMAT), **arrays)
        return write_bytes_atomic(path, buf.getvalue(), overwrite=overwrite)


def load_lenet(path: str | os.PathLike[str]) -> LeNet:
    """Load a network written by :meth:`LeNet.save`.

    Raises
    ------
    ValueError
        The file is not a keycam LeNet weight file, or is truncated or damaged (a broken
        zip archive, a missing or mis-shaped array).
    """
    try:
        with np.load(path, allow_pickle=False) as f:
            if "format" not in f.files or str(f["format"]) != _FORMAT:
                raise ValueError(f"weights: {path} is not a keycam LeNet weight file")
            state = {k[1:]: f[k] for k in f.files if k.startswith("p")}
        net = LeNet(rng=np.random.default_rng(0))
        net.load_state(state)
    except (zipfile.BadZipFile, EOFError, KeyError, zlib.error) as exc:
        raise ValueError(f"weights: {path} is damaged ({type(exc).__name__})") from None
    return net
