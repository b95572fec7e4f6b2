"""Network layers with explicit forward and backward passes, in NumPy.

Every layer works on a batch: images are ``(N, C, H, W)``, vectors ``(N, F)``. ``forward``
caches what ``backward`` needs; ``backward(grad_out)`` stores parameter gradients in
``layer.grads`` (same keys as ``layer.params``) and returns the gradient with respect to the
layer input. The dtype follows the input (float32 for training speed, float64 for gradient
checks).
"""

from __future__ import annotations

import numpy as np
from numpy.lib.stride_tricks import as_strided

__all__ = [
    "AvgPool2",
    "Conv2D",
    "Flatten",
    "Layer",
    "Linear",
    "ReLU",
    "SoftmaxCrossEntropy",
    "softmax",
]


class Layer:
    """Base class: a layer without parameters that passes values through unchanged."""

    def __init__(self) -> None:
        self.params: dict[str, np.ndarray] = {}
        self.grads: dict[str, np.ndarray] = {}

    def forward(self, x: np.ndarray) -> np.ndarray:  # pragma: no cover - overridden
        return x

    def backward(self, grad_out: np.ndarray) -> np.ndarray | None:  # pragma: no cover - overridden
        return grad_out


def _windows(x: np.ndarray, k: int) -> np.ndarray:
    """Read-only view ``(N, C, H-k+1, W-k+1, k, k)`` of all k×k windows of ``x (N, C, H, W)``."""
    n, c, h, w = x.shape
    s = x.strides
    return as_strided(
        x,
        shape=(n, c, h - k + 1, w - k + 1, k, k),
        strides=(s[0], s[1], s[2], s[3], s[2], s[3]),
        writeable=False,
    )


class Conv2D(Layer):
    """2-D convolution (cross-correlation), stride 1, zero padding, via im2col and matmul.

    Parameters
    ----------
    in_channels, out_channels : int
        Channel counts.
    kernel : int
        Square kernel size in pixels.
    padding : int
        Zero padding added on every side, in pixels.
    rng : numpy.random.Generator
        Source of the He-normal initial weights.
    input_grad : bool
        If False, :meth:`backward` computes only the parameter gradients and returns None
        (for a first layer, whose input needs no gradient).

    Notes
    -----
    ``params["W"]`` is ``(out_channels, in_channels, kernel, kernel)``, ``params["b"]`` is
    ``(out_channels,)``. Output size is ``H + 2·padding − kernel + 1``.
    """

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        kernel: int,
        *,
        padding: int = 0,
        rng: np.random.Generator,
        input_grad: bool = True,
    ) -> None:
        super().__init__()
        self.input_grad = bool(input_grad)
        fan_in = in_channels * kernel * kernel
        self.kernel = int(kernel)
        self.padding = int(padding)
        self.params["W"] = rng.normal(
            0.0, np.sqrt(2.0 / fan_in), (out_channels, in_channels, kernel, kernel)
        )
        self.params["b"] = np.zeros(out_channels)
        self._cache: tuple | None = None

    def forward(self, x: np.ndarray) -> np.ndarray:
        w, b = self.params["W"], self.params["b"]
        k, p = self.kernel, self.padding
        if p:
            x = np.pad(x, ((0, 0), (0, 0), (p, p), (p, p)))
        n, c, h, wd = x.shape
        ho, wo = h - k + 1, wd - k + 1
        # (N, Ho, Wo, C, k, k) -> rows of im2col
        cols = _windows(x, k).transpose(0, 2, 3, 1, 4, 5).reshape(n * ho * wo, c * k * k)
        wmat = w.reshape(w.shape[0], -1).astype(x.dtype, copy=False)
        out = cols @ wmat.T + b.astype(x.dtype, copy=False)
        self._cache = (x.shape, cols)
        return out.reshape(n, ho, wo, -1).transpose(0, 3, 1, 2)

    def backward(self, grad_out: np.ndarray) -> np.ndarray | None:
        if self._cache is None:
            raise RuntimeError("Conv2D.backward called before forward")
        xshape, cols = self._cache
        w = self.params["W"]
        n, c, h, wd = xshape
        k, p = self.kernel, self.padding
        co = w.shape[0]
        ho, wo = h - k + 1, wd - k + 1
        g = grad_out.transpose(0, 2, 3, 1).reshape(n * ho * wo, co)
        self.grads["W"] = (g.T @ cols).reshape(w.shape).astype(w.dtype, copy=False)
        self.grads["b"] = g.sum(axis=0).astype(w.dtype, copy=False)
        if not self.input_grad:
            return None
        dcols = (g @ w.reshape(co, -1).astype(g.dtype, copy=False)).reshape(n, ho, wo, c, k, k)
        dcols = np.ascontiguousarray(dcols.transpose(0, 3, 4, 5, 1, 2))  # (n, c, k, k, ho, wo)
        dx = np.zeros(xshape, dtype=g.dtype)
        for i in range(k):
            for j in range(k):
                dx[:, :, i : i + ho, j : j + wo] += dcols[:, :, i, j]
        if p:
            dx = dx[:, :, p:-p, p:-p]
        return dx


class AvgPool2(Layer):
    """2×2 average pooling with stride 2 on ``(N, C, H, W)``, H and W even."""

    def forward(self, x: np.ndarray) -> np.ndarray:
        h, w = x.shape[2:]
        if h % 2 or w % 2:
            raise ValueError(f"AvgPool2 needs even H and W, got H={h}, W={w} pixels")
        s = x[:, :, 0::2, 0::2] + x[:, :, 0::2, 1::2] + x[:, :, 1::2, 0::2] + x[:, :, 1::2, 1::2]
        return s * x.dtype.type(0.25)

    def backward(self, grad_out: np.ndarray) -> np.ndarray:
        g = grad_out * 0.25
        return np.repeat(np.repeat(g, 2, axis=2), 2, axis=3)


class ReLU(Layer):
    """Rectified linear unit ``max(x, 0)``; commutes with positive monomial matrices."""

    def __init__(self) -> None:
        super().__init__()
        self._mask: np.ndarray | None = None

    def forward(self, x: np.ndarray) -> np.ndarray:
        self._mask = x > 0
        return np.where(self._mask, x, 0).astype(x.dtype, copy=False)

    def backward(self, grad_out: np.ndarray) -> np.ndarray:
        if self._mask is None:
            raise RuntimeError("ReLU.backward called before forward")
        return np.where(self._mask, grad_out, 0).astype(grad_out.dtype, copy=False)


class Flatten(Layer):
    """``(N, C, H, W)`` → ``(N, C·H·W)`` in C order (channel-major)."""

    def __init__(self) -> None:
        super().__init__()
        self._shape: tuple[int, ...] | None = None

    def forward(self, x: np.ndarray) -> np.ndarray:
        self._shape = x.shape
        return x.reshape(x.shape[0], -1)

    def backward(self, grad_out: np.ndarray) -> np.ndarray:
        if self._shape is None:
            raise RuntimeError("Flatten.backward called before forward")
        return grad_out.reshape(self._shape)


class Linear(Layer):
    """Fully connected layer ``y = x Wᵀ + b``; ``W`` is ``(out, in)``, ``b`` is ``(out,)``."""

    def __init__(self, n_in: int, n_out: int, *, rng: np.random.Generator) -> None:
        super().__init__()
        self.params["W"] = rng.normal(0.0, np.sqrt(2.0 / n_in), (n_out, n_in))
        self.params["b"] = np.zeros(n_out)
        self._x: np.ndarray | None = None

    def forward(self, x: np.ndarray) -> np.ndarray:
        self._x = x
        w = self.params["W"].astype(x.dtype, copy=False)
        return x @ w.T + self.params["b"].astype(x.dtype, copy=False)

    def backward(self, grad_out: np.ndarray) -> np.ndarray:
        if self._x is None:
            raise RuntimeError("Linear.backward called before forward")
        w = self.params["W"]
        self.grads["W"] = (grad_out.T @ self._x).astype(w.dtype, copy=False)
        self.grads["b"] = grad_out.sum(axis=0).astype(w.dtype, copy=False)
        return grad_out @ w.astype(grad_out.dtype, copy=False)


def softmax(logits: np.ndarray) -> np.ndarray:
    """Row-wise softmax of ``logits (N, K)``, computed stably."""
    z = logits - logits.max(axis=1, keepdims=True)
    e = np.exp(z)
    return e / e.sum(axis=1, keepdims=True)


class SoftmaxCrossEntropy:
    """Mean cross-entropy of softmax(logits) against integer labels.

    ``forward(logits (N, K), labels (N,))`` returns the scalar loss (mean over the batch);
    ``backward()`` returns ``d loss / d logits`` ``(N, K)``.
    """

    def __init__(self) -> None:
        self._cache: tuple[np.ndarray, np.ndarray] | None = None

    def forward(self, logits: np.ndarray, labels: np.ndarray) -> float:
        p = softmax(logits)
        n = logits.shape[0]
        self._cache = (p, labels)
        return float(-np.mean(np.log(np.maximum(p[np.arange(n), labels], 1e-300))))

    def backward(self) -> np.ndarray:
        if self._cache is None:
            raise RuntimeError("SoftmaxCrossEntropy.backward called before forward")
        p, labels = self._cache
        g = p.copy()
        g[np.arange(len(labels)), labels] -= 1.0
        return g / len(labels)
