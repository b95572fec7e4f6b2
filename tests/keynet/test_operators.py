"""The factored secret map and its sparse inverse, on a small synthetic 28×28-fiber camera.

The camera here is the faceplate alone: each digit pixel enters one fiber (a diagonal entrance
of a few photons/s per unit digit value, as on the matched verification camera), the key is
drawn by ``keygen`` with crosstalk, and the readout gain is a per-site constant. Closed forms:
the input-face image is the digit blurred by the crosstalk stencil; the order-K reconstruction
error is bounded by ``(f / (1 − f))^(K+1) · t_max / t_min`` (Neumann series); a dead fiber is
filled with the mean of its live neighbours.
"""

from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse as sp

from keynet.keying import key_network
from keynet.network import LeNet
from keynet.operators import InputOperator, SecretMap, fill_operator
from optics.faceplate import FaceplateConfig, Key, keygen
from optics.faceplate.lattice import adjacency, crosstalk_matrix
from optics.faceplate.unscramble import fill_from_neighbours

F = 0.02  # the default camera's crosstalk fraction at each face

pytestmark = pytest.mark.usefixtures("one_blas_thread")


def _key(*, crosstalk: float = F, dead: float = 0.0, lattice: str = "square", seed: int = 3) -> Key:
    cfg = FaceplateConfig(
        lattice=lattice,
        rows=28,
        cols=28,
        block_size=7,
        permute_blocks=True,
        transmission_rms=0.05,
        crosstalk_in=crosstalk,
        crosstalk_out=crosstalk,
        dead_fraction=dead,
        seed=seed,
    )
    return keygen(cfg)


def _map(key: Key) -> SecretMap:
    rng = np.random.default_rng(7)
    entrance = sp.diags(rng.uniform(5e11, 6.5e11, 784), format="csr")  # photons/s per digit
    return SecretMap(entrance, key, np.full(784, 2.5e-5))  # readout: the exposure, s


def _net(seed: int = 0) -> LeNet:
    rng = np.random.default_rng(seed)
    net = LeNet(rng=rng)
    for _, layer, k in net.named_params():
        if k == "b":
            layer.params[k] = rng.normal(0.0, 0.1, layer.params[k].shape)
    return net


DIGITS = np.random.default_rng(4).random((30, 28, 28))


def test_operator_is_the_faceplate_model() -> None:
    """``A_s = g C_out P D C_in E`` built independently from the key's fields."""
    key = _key(dead=0.01)
    smap = _map(key)
    op = smap.operator()
    n = 784
    t = np.where(key.dead, 0.0, key.transmission)
    pd = sp.csr_matrix((t, (key.routing, np.arange(n))), shape=(n, n))
    a = 2.5e-5 * key.crosstalk_out @ pd @ key.crosstalk_in @ smap.entrance
    np.testing.assert_allclose(op.matrix.toarray(), a.toarray(), rtol=1e-12, atol=0)
    routed = np.zeros(n)
    routed[key.routing] = np.where(key.dead, 0.0, key.bias)
    np.testing.assert_allclose(op.offset, 2.5e-5 * (key.crosstalk_out @ routed), rtol=1e-12)


def test_input_face_is_the_crosstalk_stencil() -> None:
    """Interior pixel of a square lattice, flux ``e d`` per fiber: the input face holds
    ``e u = (1 − f) e d + f/4 · (sum of the 4 neighbours' e d)``."""
    smap = _map(_key())
    e = smap.entrance.diagonal().reshape(28, 28)
    u = smap.input_face(DIGITS)
    w = e * DIGITS
    inner = (1 - F) * w[:, 1:-1, 1:-1] + F / 4 * (
        w[:, :-2, 1:-1] + w[:, 2:, 1:-1] + w[:, 1:-1, :-2] + w[:, 1:-1, 2:]
    )
    np.testing.assert_allclose((e * u)[:, 1:-1, 1:-1], inner, rtol=1e-12)
    # without input crosstalk the plain image is the digit itself
    no_xt = _map(_key(crosstalk=0.0))
    np.testing.assert_allclose(no_xt.input_face(DIGITS), DIGITS, rtol=1e-12)


@pytest.mark.parametrize("lattice", ["square", "hexagonal"])
@pytest.mark.parametrize("order", [0, 1, 2])
def test_truncated_inverse_obeys_the_neumann_bound(lattice, order) -> None:
    """``‖ŵ_K − w‖∞ ≤ (f/(1−f))^(K+1) · t_max/t_min · ‖w‖∞`` on live fibers, and it is tight."""
    key = _key(lattice=lattice)
    smap = _map(key)
    bound = smap.truncation_bound(order)
    t = np.asarray(key.transmission)
    assert bound == pytest.approx((F / (1 - F)) ** (order + 1) * t.max() / t.min(), rel=1e-12)
    op = smap.operator()
    r = op.apply(DIGITS) - op.offset
    x = sum(smap.inverse_terms(order))
    w_hat = smap.entrance @ (x @ r.T)  # flux entering each fiber, reconstructed
    w = key.crosstalk_in @ (smap.entrance @ DIGITS.reshape(len(DIGITS), -1).T)
    err = np.abs(w_hat - w).max(axis=0) / np.abs(w).max(axis=0)
    assert err.max() <= bound
    assert err.max() >= 1e-3 * bound  # the truncation is real: the error is not far below


def test_exact_inverse_reproduces_the_input_face() -> None:
    smap = _map(_key())
    op = smap.operator()
    (x,) = smap.inverse_terms(None)
    u = (x @ (op.apply(DIGITS) - op.offset).T).T.reshape(DIGITS.shape)
    np.testing.assert_allclose(u, smap.input_face(DIGITS), rtol=0, atol=1e-10)


def test_truncated_keynet_reproduces_the_exact_keyed_logits() -> None:
    """float64 logits of order 0/1/2 key-nets vs the untruncated one (f = 2 %).

    Tolerances (relative to the largest logit): the first-layer input is off by at most
    q^(K+1) t_max/t_min (q = f/(1−f) ≈ 0.0204, t_max/t_min ≈ 1.4 here) and the network is
    Lipschitz of modest gain, so order 0 must be within 5e-2, order 1 within 1e-3 and order 2
    within 2e-5; with the 1.5x budget within the order-0 error and below 1e-2.
    """
    net, smap = _net(), _map(_key())
    op = smap.operator()
    r = op.apply(DIGITS)
    exact = key_network(
        net, smap, rng=np.random.default_rng(1), crosstalk_order=None, first_layer_budget=None
    ).forward(r)
    plain = net.forward(smap.input_face(DIGITS))
    scale = np.abs(plain).max()
    np.testing.assert_allclose(exact, plain, rtol=0, atol=1e-9 * scale)
    nnz_m = np.count_nonzero(net.first_stage_matrix()[0])
    errors = {}
    for order, budget, tol in [(0, None, 5e-2), (1, None, 1e-3), (2, None, 2e-5), (1, 1.5, 1e-2)]:
        kw = {"crosstalk_order": order, "first_layer_budget": budget}
        kn = key_network(net, smap, rng=np.random.default_rng(1), **kw)
        errors[order, budget] = np.abs(kn.forward(r) - exact).max() / scale
        assert errors[order, budget] <= tol, (order, budget, errors[order, budget])
        if budget is not None:
            assert kn.w1.nnz <= budget * nnz_m
    assert errors[2, None] < errors[1, None] < errors[1, 1.5] < errors[0, None]
    assert kn.w1.nnz > nnz_m  # the budget was used for corrections


@pytest.mark.parametrize("dead", [0.002, 0.005, 0.01])
def test_dead_fibers_are_filled_from_their_neighbours(dead) -> None:
    """Up to 1 % dead fibers: the key-net sees the input face with each dead fiber's flux
    replaced by the mean of its live neighbours' (exact inverse) and stays sparse."""
    key = _key(dead=dead)
    n_dead = round(dead * 784)
    assert int(np.count_nonzero(key.dead)) == n_dead
    smap = _map(key)
    e = smap.entrance.diagonal()
    op = smap.operator()
    (x,) = smap.inverse_terms(None)
    w_hat = e * (x @ (op.apply(DIGITS) - op.offset).T).T  # flux per input fiber
    w = e * smap.input_face(DIGITS).reshape(len(DIGITS), -1)
    expected = np.stack([fill_from_neighbours(v, key.dead, key) for v in w])
    np.testing.assert_allclose(w_hat, expected, rtol=0, atol=1e-9 * np.abs(w).max())
    i = np.flatnonzero(key.dead)[0]
    live = [j for j in adjacency("square", 28, 28)[i].indices if not key.dead[j]]
    np.testing.assert_allclose(w_hat[:, i], w[:, live].mean(axis=1), rtol=1e-9)
    # the key-net: sparse, and equal to the plain net on the filled image within truncation
    net = _net()
    kn = key_network(net, smap, rng=np.random.default_rng(2))
    plain = net.forward((expected / e).reshape(DIGITS.shape))
    err = np.abs(kn.forward(op.apply(DIGITS)) - plain).max() / np.abs(plain).max()
    assert err < 1e-2
    assert kn.w1.nnz <= 1.5 * np.count_nonzero(net.first_stage_matrix()[0])


def test_exact_pseudo_inverse_survives_dead_fibers() -> None:
    """A rank-deficient ``A_s`` (dead fibers under input crosstalk) gets the minimum-norm
    inverse: the exact key-net equals the plain net on ``A_s⁺ A_s d``, not a blown-up one."""
    smap = _map(_key(dead=0.01))
    op = smap.operator()
    net = _net()
    kn = key_network(net, op, rng=np.random.default_rng(2))
    proj = op.pinv_apply(op.apply(DIGITS))
    plain = net.forward(proj)
    np.testing.assert_allclose(kn.forward(op.apply(DIGITS)), plain, atol=1e-6 * np.abs(plain).max())
    # the exact inverse undoes the input crosstalk too: only the dead pixels and their
    # surroundings are lost, elsewhere the digit comes back
    key = smap.key
    near = key.dead | (adjacency("square", 28, 28) @ key.dead.astype(float) > 0)
    far = ~near.reshape(28, 28)
    assert np.abs(proj - DIGITS)[:, far].max() < 1e-3


@pytest.mark.parametrize("lattice", ["square", "hexagonal"])
def test_fill_operator_matches_fill_from_neighbours(lattice) -> None:
    key = _key(lattice=lattice)
    rng = np.random.default_rng(5)
    missing = np.zeros(784, dtype=bool)
    missing[rng.choice(784, 20, replace=False)] = True
    missing[[0, 1, 28, 29, 30, 57]] = True  # a corner cluster: filled outward
    fill = fill_operator(missing, adjacency(lattice, 28, 28))
    for v in rng.random((5, 784)):
        np.testing.assert_allclose(fill @ v, fill_from_neighbours(v, missing, key), rtol=1e-12)


def test_bad_inputs() -> None:
    key = _key()
    with pytest.raises(ValueError, match="entrance"):
        SecretMap(sp.identity(10, format="csr"), key, np.ones(784))
    with pytest.raises(ValueError, match="site_gain"):
        SecretMap(sp.identity(784, format="csr"), key, np.zeros(784))
    with pytest.raises(TypeError, match="Key"):
        SecretMap(sp.identity(784, format="csr"), "key", np.ones(784))  # type: ignore[arg-type]
    smap = _map(key)
    with pytest.raises(ValueError, match="order"):
        smap.inverse_terms(-1)
    # a site that keeps less light than it receives: the series would diverge
    c = crosstalk_matrix("square", 28, 28, 0.6)
    strong = _map(Key(key.config, key.routing, key.transmission, key.bias, key.dead, c, c))
    with pytest.raises(ValueError, match="too strong"):
        strong.inverse_terms(1)
    assert len(strong.inverse_terms(None)) == 1
    with pytest.raises(ValueError, match="first_layer_budget"):
        key_network(_net(), smap, rng=np.random.default_rng(0), first_layer_budget=0.0)
    with pytest.raises(TypeError, match="SecretMap or an InputOperator"):
        key_network(_net(), object(), rng=np.random.default_rng(0))  # type: ignore[arg-type]
    assert "routing" not in repr(smap) and key.fingerprint in repr(smap)
    assert isinstance(smap.operator(), InputOperator)
