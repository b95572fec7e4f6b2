"""Keying a LeNet with an affine camera operator (synthetic operators; no camera needed)."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse as sp

from keynet.keying import InputOperator, MonomialKey, key_network, load_keynet, plain_nbytes
from keynet.network import LeNet

pytestmark = pytest.mark.usefixtures("one_blas_thread")


def _net(seed: int = 0) -> LeNet:
    rng = np.random.default_rng(seed)
    net = LeNet(rng=rng)
    for _, layer, key in net.named_params():
        if key == "b":  # non-zero biases so that bias keying is exercised
            layer.params[key] = rng.normal(0.0, 0.1, layer.params[key].shape)
    return net


def _monomial_operator(seed: int, n_dead: int = 0) -> tuple[InputOperator, np.ndarray]:
    """A permutation × transmission operator with offsets, like a crosstalk-free faceplate."""
    rng = np.random.default_rng(seed)
    perm = rng.permutation(784)
    t = rng.uniform(30.0, 120.0, 784)
    t[rng.choice(784, n_dead, replace=False)] = 0.0
    a = sp.csr_matrix((t, (perm, np.arange(784))), shape=(784, 784))
    a.eliminate_zeros()
    return InputOperator(a, rng.uniform(5.0, 15.0, 784)), perm


def test_monomial_key_algebra() -> None:
    rng = np.random.default_rng(1)
    k = MonomialKey.random(7, rng=rng)
    a = np.zeros((7, 7))
    a[np.arange(7), k.source] = k.scale  # (A x)[j] = scale[j] x[source[j]]
    w = rng.normal(size=(7, 5))
    np.testing.assert_allclose(k.apply_rows(w), a @ w, rtol=1e-14)
    v = rng.normal(size=(3, 7))
    np.testing.assert_allclose(k.inverse_cols(v), v @ np.linalg.inv(a), rtol=1e-12)
    assert np.all(k.scale > 0)
    # ReLU commutes with a positive monomial matrix (models.md: Key-nets)
    x = rng.normal(size=7)
    np.testing.assert_allclose(np.maximum(a @ x, 0), a @ np.maximum(x, 0), rtol=1e-14)
    # channel key expanded to units equals kron(A_c, I)
    ku = k.expand(3)
    big = np.zeros((21, 21))
    big[np.arange(21), ku.source] = ku.scale
    np.testing.assert_allclose(big, np.kron(a, np.eye(3)), rtol=1e-14)


def test_keynet_logits_equal_plain_noise_free() -> None:
    """float64: key-net on noise-free readouts == plain net on the digits, within 1e-5 rel."""
    net = _net()
    op, _ = _monomial_operator(2)
    kn = key_network(net, op, rng=np.random.default_rng(3))
    digits = np.random.default_rng(4).random((25, 28, 28))
    plain = net.forward(digits)
    keyed = kn.forward(op.apply(digits))
    assert kn.dtype == np.float64
    np.testing.assert_allclose(keyed, plain, rtol=1e-5, atol=1e-5 * np.abs(plain).max())
    # the keyed weights are not the plain ones: the hidden keys are really applied
    assert not np.allclose(kn.fc[0][0], net.layers[7].params["W"])


def test_other_key_gives_other_logits() -> None:
    net = _net()
    op_a, _ = _monomial_operator(2)
    op_b, _ = _monomial_operator(5)
    digits = np.random.default_rng(4).random((25, 28, 28))
    kn_b = key_network(net, op_b, rng=np.random.default_rng(3))
    wrong = kn_b.forward(op_a.apply(digits))
    assert np.abs(wrong - net.forward(digits)).max() > 0.1 * np.abs(net.forward(digits)).max()


def test_sparsity_memory_and_dead_pixels() -> None:
    net = _net()
    op, _ = _monomial_operator(2, n_dead=3)
    kn = key_network(net, op, rng=np.random.default_rng(3))
    m, _ = net.first_stage_matrix()
    # a monomial A_s keeps exactly the non-zeros of the stride-2 6×6 first stage (minus the
    # columns of dead pixels, which the pseudo-inverse maps to zero)
    dead = np.flatnonzero(np.asarray(abs(op.matrix).sum(axis=0)).ravel() == 0)
    assert len(dead) == 3
    assert kn.w1.nnz == np.count_nonzero(np.delete(m, dead, axis=1))
    k32 = kn.astype(np.float32)
    ratio = k32.nbytes / plain_nbytes(net)
    assert 1.0 < ratio <= 3.0
    assert kn.n_nonzero > net.n_params


def test_keynet_file_holds_no_key(tmp_path) -> None:
    net = _net()
    op, perm = _monomial_operator(2)
    kn = key_network(net, op, rng=np.random.default_rng(3)).astype(np.float32)
    path = kn.save(tmp_path / "k.npz")
    with np.load(path) as f:
        names = set(f.files)
        arrays = {k: f[k] for k in f.files}
    assert names == {
        "format", "w1_data", "w1_indices", "w1_indptr", "w1_shape",
        "b1", "w2", "b2", "w3", "b3", "w4", "b4", "w5", "b5",
    }  # fmt: skip
    transmission = np.asarray(abs(op.matrix).sum(axis=0)).ravel()
    inverse = np.argsort(perm)
    for arr in arrays.values():
        flat = arr.ravel()
        for start in range(0, max(flat.size - 783, 0), 784):
            chunk = flat[start : start + 784]
            # neither the routing nor its inverse, nor transmission or offset, stored as such
            assert not np.array_equal(chunk, perm) and not np.array_equal(chunk, inverse)
            assert not np.allclose(chunk, transmission, rtol=1e-3)
            assert not np.allclose(chunk, op.offset, rtol=1e-3)
    kn2 = load_keynet(path)
    r = op.apply(np.random.default_rng(5).random((4, 28, 28)))
    np.testing.assert_array_equal(kn.forward(r), kn2.forward(r))
    with pytest.raises(ValueError, match="not a keycam key-net"):
        np.savez(tmp_path / "x.npz", a=np.zeros(2))
        load_keynet(tmp_path / "x.npz")


def test_bad_inputs() -> None:
    with pytest.raises(ValueError, match="784 columns"):
        InputOperator(sp.eye(10, format="csr"), np.zeros(10))
    with pytest.raises(ValueError, match="offset"):
        InputOperator(sp.eye(784, format="csr"), np.zeros(3))
    op, _ = _monomial_operator(2)
    kn = key_network(_net(), op, rng=np.random.default_rng(0))
    with pytest.raises(ValueError, match="readouts must have shape"):
        kn.forward(np.zeros((2, 5)))
    with pytest.raises(ValueError, match="prune_rel"):
        key_network(_net(), op, rng=np.random.default_rng(0), prune_rel=0.5)
