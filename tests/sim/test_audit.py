"""Privacy audit: every attack recovers a trivial key fully and finds nothing where there is
nothing to find; the command line refuses bad input without writing anything."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from keycam_testing import assert_refused, run_module
from scipy.ndimage import gaussian_filter

from sim.audit.chosen import _codes, decode, gray_digits
from sim.audit.known import correlation_assignment, prior_assignment
from sim.audit.topology import neighbour_fraction, topology_attack

ROWS = COLS = 16
N = ROWS * COLS

SMALL_TOML = """
exposure = 0.01
samples_per_pitch = 4.0
[scene]
shape_px = [64, 64]
radiance_w_m2_sr = 10.0
[lens]
focal_length_mm = 80.0
f_number = 2.8
wavelength_nm = 525.0
[faceplate]
rows = 16
cols = 16
block_size = 4
transmission_mean = 0.05
bias_photons_per_s = 3e8
crosstalk_in = 0.02
crosstalk_out = 0.02
seed = 3
[coupling]
magnification = 0.021682
blur_um = 2.0
relay_f_number = 1.4
relay_transmission = 0.9
[sensor]
preset = "imx174"
width_px = 64
height_px = 64
"""


def smooth_fields(n: int, *, rng: np.random.Generator, sigma: float = 2.0) -> np.ndarray:
    """``(n, ROWS * COLS)`` random smooth images (Gaussian-filtered white noise)."""
    big = gaussian_filter(rng.standard_normal((n, 2 * ROWS, 2 * COLS)), (0, sigma, sigma))
    return big[:, ROWS // 2 : ROWS // 2 + ROWS, COLS // 2 : COLS // 2 + COLS].reshape(n, -1)


def test_gray_digits_neighbours_differ_by_one_level() -> None:
    for base, d in ((2, 6), (3, 4), (8, 2)):
        g = gray_digits(np.arange(base**d), base, d)
        assert len({tuple(r) for r in g}) == base**d  # a code: one-to-one
        step = np.abs(np.diff(g, axis=0))
        assert np.all(step.sum(axis=1) == 1)


@pytest.mark.parametrize("base", [2, 8])
def test_chosen_plaintext_reads_a_permutation_and_not_a_dense_mix(base: int) -> None:
    rng = np.random.default_rng(0)
    codes = _codes(ROWS, COLS, base) / (base - 1)  # (n, d): what each fiber is shown
    light = np.vstack([np.ones(N), np.zeros(N), codes.T])  # white, black, digits
    perm = rng.permutation(N)
    gain = rng.uniform(0.5, 1.5, N)
    routed = light[:, perm] * gain + 0.1  # site s sees fiber perm[s]
    assert np.mean(decode(routed, ROWS, COLS, base) == perm) == 1.0
    mix = rng.random((N, N))  # every site sees every fiber: nothing to read
    mixed = light @ mix.T + 0.01 * rng.standard_normal((len(light), N))
    assert np.mean(decode(mixed, ROWS, COLS, base) == perm) < 0.05


def test_known_plaintext_finds_a_permutation_and_not_a_dense_mix() -> None:
    rng = np.random.default_rng(1)
    x = smooth_fields(8, rng=rng, sigma=1.0)
    perm = rng.permutation(N)
    r = x[:, perm] * rng.uniform(0.8, 1.2, N) + 0.01 * rng.standard_normal((8, N))
    assert np.mean(correlation_assignment(r, x) == perm) == 1.0
    ident = correlation_assignment(x, x, lattice=(ROWS, COLS), block_size=4)
    assert np.mean(ident == np.arange(N)) == 1.0
    mixed = x @ rng.random((N, N)).T
    assert np.mean(correlation_assignment(mixed, x) == perm) < 0.05


def test_known_plaintext_with_gain_priors_finds_a_block_key_and_not_a_dense_mix() -> None:
    from optics.faceplate.lattice import local_block_permutation, move_blocks

    rng = np.random.default_rng(4)
    x = smooth_fields(5, rng=rng, sigma=1.0) + 2.0
    routing = move_blocks(local_block_permutation(ROWS, COLS, 4, rng=rng), ROWS, COLS, 4, rng=rng)
    perm = np.empty(N, dtype=np.int64)
    perm[routing] = np.arange(N)  # fiber feeding each site
    gain, offset = rng.normal(1.0, 0.05, N), rng.normal(0.3, 0.03, N)
    r = x[:, perm] * gain + offset + 0.003 * rng.standard_normal((5, N))
    kw = {"lattice": (ROWS, COLS), "block_size": 4}
    assert np.mean(prior_assignment(r, x, **kw) == perm) == 1.0
    assert np.mean(prior_assignment(x, x) == np.arange(N)) == 1.0  # trivial key, no blocks
    mixed = x @ rng.random((N, N)).T
    assert np.mean(prior_assignment(mixed, x, **kw) == perm) < 0.05


def _best_symmetry_fraction(place: np.ndarray, truth: np.ndarray, live: np.ndarray) -> float:
    idx = np.arange(N).reshape(ROWS, COLS)
    syms = [m.ravel() for m in (idx, idx[::-1], idx[:, ::-1], idx[::-1, ::-1])]
    syms += [m.reshape(ROWS, COLS).T.ravel() for m in syms]
    return max(float(np.mean((s[place] == truth)[live])) for s in syms)


def test_ciphertext_only_uses_the_key_blocks_and_survives_dead_fibers() -> None:
    from optics.faceplate.lattice import local_block_permutation, move_blocks

    rng = np.random.default_rng(5)
    stream = smooth_fields(400, rng=rng, sigma=2.0)
    routing = move_blocks(local_block_permutation(ROWS, COLS, 4, rng=rng), ROWS, COLS, 4, rng=rng)
    truth = np.empty(N, dtype=np.int64)
    truth[routing] = np.arange(N)
    r = stream[:, truth] * rng.normal(1.0, 0.05, N) + 0.01 * rng.standard_normal((400, N))
    dead = np.zeros(N, dtype=bool)
    dead[[routing[17], routing[100], routing[255]]] = True  # sites of three dead fibers
    r[:, dead] = 0.01 * rng.standard_normal((400, 3))
    place, _ = topology_attack(r, ROWS, COLS, rng=rng, restarts=1, block_size=4)
    assert _best_symmetry_fraction(place, truth, ~dead) >= 0.99
    # Without the block recipe the same stream is still laid out (windows of the lattice).
    place_free, _ = topology_attack(r, ROWS, COLS, rng=rng, restarts=1)
    assert _best_symmetry_fraction(place_free, truth, ~dead) > 0.9
    # Independent noise: nothing to lay out, even with the block recipe.
    noise = rng.standard_normal((400, N))
    place_noise, _ = topology_attack(noise, ROWS, COLS, rng=rng, restarts=1, block_size=4)
    assert _best_symmetry_fraction(place_noise, truth, ~dead) < 0.05


def test_ciphertext_only_reassembles_an_identity_key_and_finds_no_topology_in_noise() -> None:
    rng = np.random.default_rng(2)
    stream = smooth_fields(600, rng=rng)
    ident = np.arange(N)
    place, nb = topology_attack(stream, ROWS, COLS, rng=rng, restarts=1)
    assert neighbour_fraction(nb, ident, ROWS, COLS) > 0.95
    # placed exactly up to one of the square's 8 symmetries
    idx = np.arange(N).reshape(ROWS, COLS)
    syms = [m.ravel() for m in (idx, idx[::-1], idx[:, ::-1], idx[::-1, ::-1])]
    syms += [m.reshape(ROWS, COLS).T.ravel() for m in syms]
    assert max(np.mean(s[place] == ident) for s in syms) > 0.9
    # Frames of independent noise carry no topology: neighbours are found at chance.
    noise = rng.standard_normal((600, N))
    _, nb_noise = topology_attack(noise, ROWS, COLS, rng=rng, restarts=1)
    assert neighbour_fraction(nb_noise, ident, ROWS, COLS) < 0.02


@pytest.fixture(scope="module")
def keynet_case(tmp_path_factory):
    """A key-net made for the 28 x 28 verification camera, and the camera."""
    from keynet.keying import key_network
    from keynet.network import LeNet
    from keynet.readout import PublicReadout, input_operator
    from sim.camera import Camera
    from sim.config import load_config

    cam = Camera(load_config(Path("keynet/data/verify_camera.toml").resolve()))
    t = cam.exposure_for(None)
    op = input_operator(cam, exposure_s=t, readout=PublicReadout(cam, exposure_s=t))
    net = LeNet(rng=np.random.default_rng(0))
    kn = key_network(net, op, rng=np.random.default_rng(1)).astype(np.float32)
    path = tmp_path_factory.mktemp("kn") / "net.npz"
    kn.save(path)
    return cam, path


def test_keynet_structure_recovers_the_routing_and_not_from_a_dense_layer(keynet_case) -> None:
    import scipy.sparse as sp

    from sim.audit.common import natural_stream, observe, routing_fraction
    from sim.audit.keynet_structure import load_first_layer, structure_attack

    cam, path = keynet_case
    w1 = load_first_layer(path)
    rng = np.random.default_rng(3)
    r = observe(cam, natural_stream(1, cam.scene_shape, rng=rng), rng=rng)
    guess, _ = structure_attack(w1, r)
    assert routing_fraction(cam, guess) > 0.99
    # A dense mixing key in front of the layer leaves no convolution structure to read.
    mix = rng.random((784, 784))
    dense = sp.csc_matrix(w1.toarray() @ mix)
    guess_dense, _ = structure_attack(dense, r @ np.linalg.inv(mix).T)
    assert routing_fraction(cam, guess_dense) < 0.05


def test_audit_cli_small_camera(tmp_path: Path) -> None:
    cfg = tmp_path / "small.toml"
    cfg.write_text(SMALL_TOML)
    res = run_module(
        "sim.audit",
        "--config",
        cfg,
        "--frames",
        "60,120",
        "--pairs",
        "4,6",
        "--bases",
        "2,8",
        "--json",
        "a.json",
        "--plot",
        "plots",
        cwd=tmp_path,
    )
    assert res.returncode == 0, res.stderr
    out = json.loads((tmp_path / "a.json").read_text())
    assert [r["frames"] for r in out["chosen_plaintext"]] == [10, 6]
    assert all(r["routing_fraction"] == 1.0 for r in out["chosen_plaintext"])
    assert out["known_plaintext"][-1]["routing_fraction"] > 0.95
    assert [r["frames"] for r in out["ciphertext_only"]] == [60, 120]
    assert sorted(p.name for p in (tmp_path / "plots").iterdir()) == [
        "chosen_plaintext.png",
        "ciphertext_only.png",
        "known_plaintext.png",
    ]
    # Nothing but figures: no key array, no seed of the key.
    text = (tmp_path / "a.json").read_text() + res.stdout + res.stderr
    assert 'routing":' not in text and 'transmission"' not in text
    # An existing output is not replaced without --force.
    again = run_module("sim.audit", "--config", cfg, "--json", "a.json", cwd=tmp_path)
    assert_refused(again, "file exists")


@pytest.mark.parametrize(
    ("args", "words"),
    [
        (["--frames", "0"], "--frames"),
        (["--attacks", "bogus"], "--attacks"),
        (["--attacks", "keynet"], "--keynet"),
        (["--config", "missing.toml"], "no such file"),
        (["--keynet", "garbage.npz"], "not a keycam key-net"),
    ],
)
def test_audit_cli_refuses_bad_input(tmp_path: Path, args: list[str], words: str) -> None:
    (tmp_path / "garbage.npz").write_bytes(b"not a zip")
    cfg = tmp_path / "small.toml"
    cfg.write_text(SMALL_TOML)
    before = sorted(p.name for p in tmp_path.iterdir())
    base = [] if "--config" in args else ["--config", cfg]
    res = run_module("sim.audit", *base, *args, "--json", "out.json", "--plot", "p", cwd=tmp_path)
    assert_refused(res, words)
    assert sorted(p.name for p in tmp_path.iterdir()) == before
