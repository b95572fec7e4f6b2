"""Keying with the simulated verification cameras: public readout, A_s, noise-free equality.

``setup`` is the idealised camera (no crosstalk, no dead fibers), ``realistic`` the camera as
built (2 % crosstalk at both faces, dead fibers).
"""

from __future__ import annotations

import numpy as np
import pytest

from keynet.dataset import load_split
from keynet.keying import key_network
from keynet.network import LeNet
from keynet.readout import PublicReadout, capture_readouts, input_operator, secret_map
from keynet.verify import camera_path, default_camera_path

pytestmark = pytest.mark.usefixtures("one_blas_thread")


def _camera(name: str):
    from sim.camera import Camera
    from sim.config import load_config

    camera = Camera(load_config(camera_path(name)))
    exposure = camera.exposure_for(None)
    readout = PublicReadout(camera, exposure_s=exposure)
    op = input_operator(camera, exposure_s=exposure, readout=readout)
    return camera, exposure, readout, op


@pytest.fixture(scope="module")
def setup():
    return _camera("ideal")


@pytest.fixture(scope="module")
def realistic():
    return _camera("realistic")


def _net(seed: int) -> LeNet:
    rng = np.random.default_rng(seed)
    net = LeNet(rng=rng)
    for _, layer, key in net.named_params():
        if key == "b":
            layer.params[key] = rng.normal(0.0, 0.1, layer.params[key].shape)
    return net


def test_realistic_camera_has_the_default_camera_s_imperfections() -> None:
    """The camera as built keeps the default camera's crosstalk, dead-fiber rate, fiber
    transmission and stray light, relay and sensor; only the lattice, scene grid, key blocks,
    lens focal length and sensor ROI are matched to the 28×28 digits. Its keys are drawn
    uniformly and its lens has the stop at the lens (stronger vignetting than the default's
    nearly telecentric lens): keying absorbs any permutation, and the camera simulates an
    assumed transmission, so neither is about printing here. The ideal one differs only in
    crosstalk, dead fibers and relay blur."""
    from sim.config import CameraConfig, load_config

    default = CameraConfig.default()
    real = load_config(camera_path("realistic"))
    ideal = load_config(camera_path("ideal"))
    matched = {"rows", "cols", "block_size", "seed", "shuffle"}
    fp_default, fp_real = default.faceplate.model_dump(), real.faceplate.model_dump()
    for field, value in fp_default.items():
        if field == "numerical_aperture":  # the printed fiber's 0.619, stated as 0.62
            assert fp_real[field] == pytest.approx(value, abs=0.005)
        elif field not in matched:
            assert fp_real[field] == value, field
    assert (real.faceplate.rows, real.faceplate.cols) == (28, 28) == tuple(real.scene.shape_px)
    # a longer lens for the 28 mm face (the default's 20 mm lens is for its 16 mm face)
    focal = {"focal_length_mm", "exit_pupil_distance_mm"}
    assert real.lens.model_dump(exclude=focal) == default.lens.model_dump(exclude=focal)
    assert real.coupling == default.coupling
    # keying, not printing: both assume the recipe's transmission
    assert real.transmission.source == ideal.transmission.source == "assumed"
    roi = {"width_px", "height_px"}
    assert real.sensor.model_dump(exclude=roi) == default.sensor.model_dump(exclude=roi)
    fp_ideal = ideal.faceplate.model_dump()
    changed = {f for f in fp_real if fp_real[f] != fp_ideal[f]}
    assert changed == {"crosstalk_in", "crosstalk_out", "dead_fraction"}
    assert real.coupling.model_dump(exclude={"blur_um"}) == ideal.coupling.model_dump(
        exclude={"blur_um"}
    )
    assert ideal.faceplate.crosstalk_in == ideal.faceplate.crosstalk_out == 0.0
    assert ideal.faceplate.dead_fraction == 0.0


def test_default_camera_is_the_realistic_one() -> None:
    assert default_camera_path() == camera_path("realistic")
    assert camera_path("ideal").name == "verify_camera.toml"
    with pytest.raises(ValueError, match="camera must be one of"):
        camera_path("bogus")


def test_public_readout_matches_camera(setup) -> None:
    camera, exposure, readout, _ = setup
    digit = load_split().x_test[0].astype(np.float64)
    mean = camera.expected_dn(digit, exposure_s=exposure)
    ours = readout(mean[None])[0]
    theirs = camera.readout(mean, exposure_s=exposure)
    # the camera's readout carries a 1e-6 relative ridge; ours is the plain pseudo-inverse
    np.testing.assert_allclose(ours, theirs, rtol=1e-4, atol=1e-4 * np.abs(ours).max())


def test_secret_map_is_monomial_for_matched_lattice(setup) -> None:
    """28×28 fibers, one per digit pixel, no crosstalk: A_s is a scaled permutation."""
    camera, _, _, op = setup
    a = op.matrix.tocsr()
    assert a.shape == (784, 784)
    np.testing.assert_array_equal(np.diff(a.indptr), np.ones(784))
    cols = a.indices
    assert sorted(cols) == list(range(784))
    assert np.all(a.data > 0)
    # the permutation is the faceplate routing (digit pixel i -> output site routing[i])
    np.testing.assert_array_equal(cols[np.asarray(camera.key.routing)], np.arange(784))


def _mean_readouts(camera, exposure, readout, digits):
    a, b = camera.operator(exposure)
    frames = (a @ digits.reshape(len(digits), -1).T).T + b  # mean DN, before rounding
    return readout(frames.reshape(len(digits), *camera.frame_shape))


@pytest.mark.parametrize("how", ["exact", "sparse"])
def test_noise_free_keynet_equals_plain_on_camera(setup, how) -> None:
    """float64: key-net on the camera's mean frames (via the public readout) == plain net."""
    camera, exposure, readout, op = setup
    net = _net(11)
    smap = secret_map(camera, exposure_s=exposure, readout=readout)
    kn = key_network(net, op if how == "exact" else smap, rng=np.random.default_rng(11))
    digits = load_split().x_test[::50].astype(np.float64)
    r = _mean_readouts(camera, exposure, readout, digits)
    plain = net.forward(digits)
    keyed = kn.forward(r)
    np.testing.assert_allclose(keyed, plain, rtol=1e-5, atol=1e-5 * np.abs(plain).max())
    # no crosstalk, no dead fibers: the keyed first layer keeps the plain non-zeros exactly
    assert kn.w1.nnz == np.count_nonzero(net.first_stage_matrix()[0])


def test_secret_map_factors_the_realistic_camera(realistic) -> None:
    """The factored map equals the camera's composed pipeline (crosstalk and dead fibers)."""
    camera, exposure, readout, op = realistic
    assert camera.config.faceplate.crosstalk_in == camera.config.faceplate.crosstalk_out == 0.02
    assert np.count_nonzero(camera.key.dead) == 2  # 0.2 % of 784 fibers
    smap = secret_map(camera, exposure_s=exposure, readout=readout)
    np.testing.assert_allclose(smap.site_gain, exposure, rtol=1e-9)  # photons per exposure
    ours = smap.operator()
    scale = abs(op.matrix).max()
    assert abs(ours.matrix - op.matrix).max() <= 1e-12 * scale
    np.testing.assert_allclose(ours.offset, op.offset, rtol=1e-9, atol=1e-9 * op.offset.max())


def test_noise_free_keynet_on_the_realistic_camera(realistic) -> None:
    """Mean frames of the camera as built: the sparse key-net reproduces the untruncated one
    within the 1.5x budget's truncation (relative 1e-2) and the plain net's classes, with at
    most 1.5x the plain first stage's non-zeros."""
    camera, exposure, readout, _ = realistic
    net = _net(12)
    smap = secret_map(camera, exposure_s=exposure, readout=readout)
    digits = load_split().x_test[::50].astype(np.float64)
    r = _mean_readouts(camera, exposure, readout, digits)
    kn = key_network(net, smap, rng=np.random.default_rng(1))
    full = key_network(
        net, smap, rng=np.random.default_rng(1), crosstalk_order=None, first_layer_budget=None
    )
    keyed, exact = kn.forward(r), full.forward(r)
    plain = net.forward(smap.input_face(digits))
    scale = np.abs(plain).max()
    assert np.abs(keyed - exact).max() <= 1e-2 * scale
    assert np.abs(keyed - plain).max() <= 5e-2 * scale  # plus the two dead pixels' fill
    nnz_m = np.count_nonzero(net.first_stage_matrix()[0])
    assert nnz_m < kn.w1.nnz <= 1.5 * nnz_m
    assert full.w1.nnz > 5 * nnz_m  # what the exact inverse of the crosstalk would cost


def test_secret_map_takes_a_measured_key(realistic) -> None:
    """Any key of the lattice keys the network; one for another lattice is refused."""
    from optics.faceplate import keygen
    from sim.camera import CameraConfig

    camera, exposure, readout, _ = realistic
    key = camera.key
    measured = key.with_transmission(np.asarray(key.transmission) * 1.01)
    smap = secret_map(camera, exposure_s=exposure, readout=readout, key=measured)
    assert smap.key is measured
    np.testing.assert_allclose(
        smap.operator().matrix.sum(), 1.01 * secret_map(camera, exposure_s=exposure,
        readout=readout).operator().matrix.sum(), rtol=1e-9,
    )  # fmt: skip
    other = keygen(CameraConfig.default().faceplate)
    with pytest.raises(ValueError, match="another lattice"):
        secret_map(camera, exposure_s=exposure, readout=readout, key=other)


def test_noisy_readouts_scatter_around_the_operator(setup) -> None:
    camera, exposure, readout, op = setup
    digit = load_split().x_test[7:8]
    reps = np.repeat(digit, 40, axis=0)
    r = capture_readouts(
        camera, reps, readout, exposure_s=exposure, rng=np.random.default_rng(3), quiet=True
    )
    expected = op.apply(digit)[0]
    mean, sem = r.mean(axis=0), r.std(axis=0, ddof=1) / np.sqrt(len(r))
    z = (mean - expected) / sem
    # 784 sites, seeded: |z| beyond 5 would be a bias, not noise; rounding adds < 0.3 DN
    assert np.abs(z).max() < 5.0
    assert np.all(r.std(axis=0) > 0)


@pytest.mark.parametrize("which", ["setup", "realistic"])
def test_saved_keynet_holds_none_of_the_camera_key(which, request, tmp_path) -> None:
    camera, exposure, readout, _ = request.getfixturevalue(which)
    net = LeNet(rng=np.random.default_rng(12))
    smap = secret_map(camera, exposure_s=exposure, readout=readout)
    kn = key_network(net, smap, rng=np.random.default_rng(13)).astype(np.float32)
    path = kn.save(tmp_path / "keynet.npz")
    key = camera.key
    secrets = {
        "routing": np.asarray(key.routing),
        "inverse routing": np.argsort(np.asarray(key.routing)),
        "transmission": np.asarray(key.transmission, dtype=np.float64),
        "bias": np.asarray(key.bias, dtype=np.float64),
    }
    with np.load(path) as f:
        assert sorted(f.files) == sorted(
            ["format", "w1_data", "w1_indices", "w1_indptr", "w1_shape"]
            + [f"b{k}" for k in range(1, 6)]
            + [f"w{k}" for k in range(2, 6)]
        )
        for name in f.files:
            flat = np.asarray(f[name]).ravel()
            if flat.dtype.kind not in "iuf" or flat.size < 784:
                continue
            # every 784-long window in the first 5·784 entries, at every offset
            windows = np.lib.stride_tricks.sliding_window_view(flat[: 5 * 784], 784)
            windows = windows.astype(np.float64)
            for what, secret in secrets.items():
                close = np.isclose(windows, secret[None, :], rtol=1e-4, atol=0).all(axis=1)
                assert not close.any(), f"{name} holds the {what}"


@pytest.mark.parametrize("shape", [(28, 28), (56, 56), (20, 33), (40, 17)])
def test_digit_embedding_matches_scene_preparation(shape) -> None:
    from keynet.readout import digit_embedding
    from sim.scene import prepare_scene

    digit = np.random.default_rng(1).random((28, 28))
    ours = (digit_embedding(shape) @ digit.ravel()).reshape(shape)
    np.testing.assert_allclose(ours, prepare_scene(digit, shape), rtol=1e-12, atol=1e-12)
