"""Finite-difference gradient checks (float64) for every layer, the loss and the whole net."""

from __future__ import annotations

import numpy as np
import pytest

from keynet.layers import AvgPool2, Conv2D, Flatten, Linear, ReLU, SoftmaxCrossEntropy, softmax
from keynet.network import LeNet

EPS = 1e-6
RTOL = 1e-6  # central differences in float64: truncation O(eps²), rounding O(1e-16/eps)


def numeric_grad(f, x: np.ndarray, idx) -> np.ndarray:
    """Central-difference derivative of scalar f() w.r.t. x at the flat indices idx."""
    out = []
    flat = x.reshape(-1)
    for i in idx:
        old = flat[i]
        flat[i] = old + EPS
        fp = f()
        flat[i] = old - EPS
        fm = f()
        flat[i] = old
        out.append((fp - fm) / (2 * EPS))
    return np.array(out)


def check_layer(layer, x: np.ndarray, rng: np.random.Generator, n_probe: int = 25) -> None:
    """Compare analytic input and parameter gradients of sum(r * layer(x)) with differences."""
    r = rng.normal(size=layer.forward(x).shape)

    def f() -> float:
        return float(np.sum(r * layer.forward(x)))

    layer.forward(x)
    dx = layer.backward(r)
    idx = rng.choice(x.size, size=min(n_probe, x.size), replace=False)
    np.testing.assert_allclose(dx.reshape(-1)[idx], numeric_grad(f, x, idx), rtol=RTOL, atol=1e-8)
    for key, p in layer.params.items():
        layer.forward(x)
        layer.backward(r)
        g = layer.grads[key].copy()
        pidx = rng.choice(p.size, size=min(n_probe, p.size), replace=False)
        np.testing.assert_allclose(
            g.reshape(-1)[pidx], numeric_grad(f, p, pidx), rtol=RTOL, atol=1e-8
        )


@pytest.mark.parametrize("padding", [0, 2])
def test_conv_gradients(padding: int) -> None:
    rng = np.random.default_rng(1)
    layer = Conv2D(3, 4, 5, padding=padding, rng=rng)
    layer.params["b"] = rng.normal(size=4)
    check_layer(layer, rng.normal(size=(2, 3, 9, 8)), rng)


def test_conv_matches_direct_sum() -> None:
    """im2col result equals the textbook cross-correlation sum, written out with loops."""
    rng = np.random.default_rng(2)
    layer = Conv2D(2, 3, 3, padding=1, rng=rng)
    layer.params["b"] = rng.normal(size=3)
    x = rng.normal(size=(1, 2, 5, 6))
    y = layer.forward(x)
    xp = np.pad(x, ((0, 0), (0, 0), (1, 1), (1, 1)))
    w, b = layer.params["W"], layer.params["b"]
    ref = np.zeros((1, 3, 5, 6))
    for o in range(3):
        for i in range(5):
            for j in range(6):
                ref[0, o, i, j] = np.sum(w[o] * xp[0, :, i : i + 3, j : j + 3]) + b[o]
    np.testing.assert_allclose(y, ref, rtol=1e-12, atol=1e-12)


def test_pool_relu_flatten_linear_gradients() -> None:
    rng = np.random.default_rng(3)
    check_layer(AvgPool2(), rng.normal(size=(2, 3, 6, 4)), rng)
    # keep ReLU inputs away from the kink so differences are exact
    x = rng.normal(size=(3, 7))
    x[np.abs(x) < 1e-3] = 0.5
    check_layer(ReLU(), x, rng)
    check_layer(Flatten(), rng.normal(size=(2, 3, 2, 2)), rng)
    lin = Linear(7, 5, rng=rng)
    lin.params["b"] = rng.normal(size=5)
    check_layer(lin, rng.normal(size=(4, 7)), rng)


def test_avgpool_values() -> None:
    x = np.arange(16.0).reshape(1, 1, 4, 4)
    np.testing.assert_array_equal(AvgPool2().forward(x)[0, 0], [[2.5, 4.5], [10.5, 12.5]])
    with pytest.raises(ValueError, match="even"):
        AvgPool2().forward(np.zeros((1, 1, 3, 4)))


def test_softmax_cross_entropy() -> None:
    rng = np.random.default_rng(4)
    logits = rng.normal(size=(5, 10))
    labels = rng.integers(0, 10, 5)
    loss = SoftmaxCrossEntropy()
    value = loss.forward(logits, labels)
    # closed form: mean of logsumexp - logit of the true class
    ref = np.mean(np.log(np.exp(logits).sum(axis=1)) - logits[np.arange(5), labels])
    assert value == pytest.approx(ref, rel=1e-12)
    g = loss.backward()
    num = numeric_grad(lambda: loss.forward(logits, labels), logits, range(logits.size))
    np.testing.assert_allclose(g.reshape(-1), num, rtol=RTOL, atol=1e-9)
    np.testing.assert_allclose(softmax(logits).sum(axis=1), 1.0, rtol=1e-12)


def test_whole_network_gradient() -> None:
    rng = np.random.default_rng(5)
    net = LeNet(rng=rng)
    for _, layer, key in net.named_params():
        if key == "b":
            layer.params[key] = rng.normal(scale=0.1, size=layer.params[key].shape)
    x = rng.random((2, 28, 28))
    labels = np.array([3, 7])
    loss = SoftmaxCrossEntropy()

    def f() -> float:
        return loss.forward(net.forward(x), labels)

    f()
    net.backward(loss.backward())
    for _, layer, key in net.named_params():
        p = layer.params[key]
        g = layer.grads[key].copy()
        idx = rng.choice(p.size, size=min(6, p.size), replace=False)
        np.testing.assert_allclose(
            g.reshape(-1)[idx], numeric_grad(f, p, idx), rtol=1e-5, atol=1e-9
        )


def test_first_stage_matrix_is_conv_then_pool() -> None:
    rng = np.random.default_rng(6)
    net = LeNet(rng=rng)
    net.layers[0].params["b"] = rng.normal(size=6)
    x = rng.random((3, 28, 28))
    m, c = net.first_stage_matrix()
    direct = net.layers[1].forward(net.layers[0].forward(x[:, None])).reshape(3, -1)
    np.testing.assert_allclose(x.reshape(3, -1) @ m.T + c, direct, rtol=1e-12, atol=1e-12)
    # a 5×5 kernel followed by 2×2 pooling touches at most 6×6 input pixels per output
    assert np.count_nonzero(m, axis=1).max() <= 36
