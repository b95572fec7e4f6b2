"""Faceplate geometry, key generation and linear operators, against closed forms.

Sources: models.md (Faceplate).
"""

from __future__ import annotations

import copy
import math
import pickle

import numpy as np
import pytest
import scipy.sparse as sp
from pydantic import ValidationError
from scipy.spatial import cKDTree

from optics.faceplate import (
    FaceplateConfig,
    Key,
    coupling_operator,
    keygen,
    lattice,
    sampling_operator,
    scramble,
    transfer_factors,
    transfer_operator,
    unscramble,
)

# ------------------------------------------------------------------------------------ config


def test_defaults_describe_the_printable_camera():
    c = FaceplateConfig()
    assert (c.lattice, c.rows, c.cols) == ("square", 64, 64)
    assert (c.pitch_um, c.core_diameter_um, c.block_size, c.permute_blocks) == (
        1000.0,
        600.0,
        8,
        True,
    )
    assert c.n_fibers == 4096
    with pytest.raises(ValidationError):
        c.rows = 3  # frozen


@pytest.mark.parametrize(
    "bad",
    [
        {"core_diameter_um": 1000.0},
        {"core_diameter_um": 1200.0},
        {"pitch_um": 0.0},
        {"rows": 0},
        {"block_size": 0},
        {"lattice": "triangular"},
        {"crosstalk_in": 0.5},
        {"dead_fraction": -0.1},
        {"transmission_mean": 1.5},
        {"seed": -1},
        {"pitch": 1000.0},  # unknown field (units must be in the name)
    ],
)
def test_bad_config_names_the_field(bad):
    with pytest.raises(ValidationError) as exc:
        FaceplateConfig(**bad)
    field = next(iter(bad))
    assert field in str(exc.value) or "core_diameter_um" in str(exc.value)


# ----------------------------------------------------------------------------------- lattice


def test_square_site_centres_and_orientation():
    xy = lattice.site_centers_um("square", 3, 4, 10.0)
    assert xy.shape == (12, 2)
    np.testing.assert_allclose(xy[0], [-15.0, -10.0])  # row 0, col 0: left, top (y down)
    np.testing.assert_allclose(xy[1], [-5.0, -10.0])  # next index = next column
    np.testing.assert_allclose(xy[4], [-15.0, 0.0])  # next row is lower (larger y)
    np.testing.assert_allclose(xy.mean(axis=0), [0.0, 0.0], atol=1e-12)


def test_hexagonal_site_centres_have_six_neighbours_at_pitch():
    s = 7.0
    xy = lattice.site_centers_um("hexagonal", 9, 9, s)
    np.testing.assert_allclose(xy[9] - xy[0], [s / 2, s * math.sqrt(3) / 2])  # odd row shifted
    tree = cKDTree(xy)
    centre = 4 * 9 + 4
    d, _ = tree.query(xy[centre], k=8)
    np.testing.assert_allclose(d[1:7], s, rtol=1e-12)
    assert d[7] > 1.7 * s
    pairs = lattice.neighbour_pairs("hexagonal", 9, 9)
    dist = np.linalg.norm(xy[pairs[:, 0]] - xy[pairs[:, 1]], axis=1)
    np.testing.assert_allclose(dist, s, rtol=1e-12)
    assert len(pairs) == len(tree.query_pairs(1.01 * s))


@pytest.mark.parametrize("kind, const", [("hexagonal", 0.907), ("square", math.pi / 4)])
def test_fill_factor_closed_form(kind, const):
    """Point-count the core area on the actual site centres (independent of the formula)."""
    pitch, core = 10.0, 6.5
    xy = lattice.site_centers_um(kind, 60, 60, pitch)
    rng = np.random.default_rng(3)
    pts = rng.uniform(-150.0, 150.0, size=(200_000, 2))  # well inside the 60×60 face
    d, _ = cKDTree(xy).query(pts)
    measured = np.mean(d < core / 2)
    expected = const * (core / pitch) ** 2
    assert measured == pytest.approx(expected, rel=0.01)
    assert lattice.fill_factor(kind, pitch, core) == pytest.approx(expected, rel=0.001)
    assert FaceplateConfig(lattice=kind, pitch_um=pitch, core_diameter_um=core).fill_factor == (
        pytest.approx(expected, rel=0.001)
    )


# -------------------------------------------------------------------------------------- keygen


def _cfg(**kw) -> FaceplateConfig:
    base = dict(rows=64, cols=64, block_size=8, permute_blocks=False, seed=5)
    base.update(kw)
    return FaceplateConfig(**base)


@pytest.mark.parametrize("b", [1, 2, 4, 8, 16, 64, 1000])
@pytest.mark.parametrize("kind", ["square", "hexagonal"])
def test_routing_is_bijection_inside_blocks(b, kind):
    key = keygen(_cfg(block_size=b, lattice=kind))
    n = 64 * 64
    assert key.routing.dtype == np.int64
    assert np.array_equal(np.sort(key.routing), np.arange(n))
    bid = lattice.block_ids(64, 64, b)
    assert np.array_equal(bid[key.routing], bid)
    if b == 1:
        assert np.array_equal(key.routing, np.arange(n))
    else:
        assert np.mean(key.routing != np.arange(n)) > 0.4
    if b >= 64:  # global permutation: fibers travel across the whole face
        rr = key.routing // 64
        assert np.abs(rr - np.arange(n) // 64).max() > 48


@pytest.mark.parametrize("b", [2, 4, 8, 16, 5])
def test_permute_blocks_moves_whole_blocks(b):
    key = keygen(_cfg(block_size=b, permute_blocks=True, rows=40, cols=48))
    n = 40 * 48
    assert np.array_equal(np.sort(key.routing), np.arange(n))
    bid = lattice.block_ids(40, 48, b)
    org = lattice.block_origins(40, 48, b)
    dest = np.full(len(org), -1)
    for blk in range(len(org)):
        targets = np.unique(bid[key.routing[bid == blk]])
        assert targets.size == 1  # the block travels together
        dest[blk] = targets[0]
        assert np.array_equal(org[blk, 2:], org[targets[0], 2:])  # same block shape
    assert np.array_equal(np.sort(dest), np.arange(len(org)))
    assert np.mean(dest != np.arange(len(org))) > 0.5


def test_block_size_one_is_coherent_even_with_block_permutation():
    key = keygen(_cfg(block_size=1, permute_blocks=True))
    assert np.array_equal(key.routing, np.arange(64 * 64))


def _longest_decreasing(seq) -> int:
    """Length of the longest strictly decreasing subsequence (quadratic dynamic programme)."""
    best = []
    for i, v in enumerate(seq):
        best.append(1 + max([best[j] for j in range(i) if seq[j] > v], default=0))
    return max(best, default=0)


@pytest.mark.parametrize("m", range(1, 9))
def test_two_lane_line_shuffles_are_the_catalan_permutations(m):
    """Permutations with no decreasing subsequence of length 3 are counted by Catalan(m)."""
    perms = lattice._two_lane_perms(m)
    assert perms.shape == (math.comb(2 * m, m) // (m + 1), m)
    assert len({tuple(p) for p in perms}) == perms.shape[0]
    assert all(_longest_decreasing(list(p)) <= 2 for p in perms)


@pytest.mark.parametrize("b,permute", [(4, True), (4, False), (8, True), (2, True)])
def test_rows_then_columns_keys_move_along_a_row_then_a_column(b, permute):
    """Every fiber moves along its row, then along its column; each line shuffle is one
    two-lane pass (no three fibers of a line reverse their order)."""
    rows = cols = 16
    cfg = _cfg(rows=rows, cols=cols, block_size=b, permute_blocks=permute)
    key = keygen(cfg.model_copy(update={"shuffle": "rows_then_columns"}))
    routing = np.asarray(key.routing)
    assert np.array_equal(np.sort(routing), np.arange(rows * cols))
    sr = np.arange(rows * cols) // cols
    dc = routing % cols
    bid = lattice.block_ids(rows, cols, b)
    if not permute:
        assert np.array_equal(bid[routing], bid)
    for r in range(rows):  # a row's fibers reach distinct columns: the row shuffle exists
        assert np.unique(dc[sr == r]).size == cols
    if not permute:  # inside a block, a block row's fibers keep a two-lane order
        for k in range(bid.max() + 1):
            for r in np.unique(sr[bid == k]):
                f = np.flatnonzero((bid == k) & (sr == r))
                assert _longest_decreasing(list(dc[f])) <= 2
    assert np.mean(routing != np.arange(rows * cols)) > 0.5


def test_rows_then_columns_needs_short_lines_and_whole_blocks():
    with pytest.raises(ValidationError, match="at most 8"):
        FaceplateConfig(rows=32, cols=32, block_size=16, shuffle="rows_then_columns")
    with pytest.raises(ValidationError, match="divide"):
        FaceplateConfig(rows=16, cols=16, block_size=3, shuffle="rows_then_columns")
    with pytest.raises(ValidationError, match="blocks per line"):
        FaceplateConfig(rows=64, cols=64, block_size=4, shuffle="rows_then_columns")
    with pytest.raises(ValidationError, match="shuffle"):
        FaceplateConfig(shuffle="sorted")
    FaceplateConfig(rows=64, cols=64, block_size=8, shuffle="rows_then_columns")  # 8 x 8 blocks


def test_uniform_keys_keep_the_fingerprint_of_earlier_key_files():
    """The ``shuffle`` field was added later: uniform keys hash as before it existed."""
    key = keygen(FaceplateConfig(rows=16, cols=16, block_size=4))
    assert key.fingerprint == "1e68fe94ca1fb93f"  # written by the version without the field
    other = keygen(FaceplateConfig(rows=16, cols=16, block_size=4, shuffle="rows_then_columns"))
    assert other.fingerprint != key.fingerprint


def test_keygen_is_deterministic_in_the_seed():
    cfg = _cfg(transmission_rms=0.1, bias_photons_per_s=5.0, dead_fraction=0.02, gain_key_rms=0.1)
    a, b = keygen(cfg), keygen(cfg)
    for name in ("routing", "transmission", "bias", "dead"):
        np.testing.assert_array_equal(getattr(a, name), getattr(b, name))
    c = keygen(cfg.model_copy(update={"seed": 6}))
    assert not np.array_equal(a.routing, c.routing)
    assert not np.array_equal(a.transmission, c.transmission)
    assert a.fingerprint != c.fingerprint
    # Changing the bias level leaves the routing (its own random stream) alone.
    d = keygen(cfg.model_copy(update={"bias_photons_per_s": 9.0}))
    np.testing.assert_array_equal(a.routing, d.routing)


def test_key_statistics_follow_the_recipe():
    cfg = _cfg(
        transmission_mean=0.8,
        transmission_rms=0.05,
        bias_photons_per_s=40.0,
        dead_fraction=0.03,
    )
    key = keygen(cfg)
    alive = ~key.dead
    assert key.dead.sum() == round(0.03 * 4096)
    assert np.mean(key.transmission[alive]) == pytest.approx(0.8, rel=0.01)
    assert np.std(key.transmission[alive]) / 0.8 == pytest.approx(0.05, rel=0.1)
    assert np.mean(key.bias[alive]) == pytest.approx(40.0, rel=0.05)
    assert key.bias.min() >= 0 and key.bias.max() <= 80.0
    assert np.all(key.bias[key.dead] == 0)


def test_acceptance_angle_closed_form():
    assert FaceplateConfig(numerical_aperture=0.5).acceptance_half_angle_deg == pytest.approx(30.0)
    assert FaceplateConfig(numerical_aperture=1.12).acceptance_half_angle_deg == 90.0


def test_key_survives_pickle_and_deepcopy():
    key = keygen(_cfg(rows=8, cols=8, block_size=4, crosstalk_in=0.1, dead_fraction=0.1))
    for other in (pickle.loads(pickle.dumps(key)), copy.deepcopy(key)):
        assert other == key and other is not key
        np.testing.assert_array_equal(other.routing, key.routing)
        assert other.fingerprint == key.fingerprint


def test_key_is_immutable_and_with_transmission_copies():
    key = keygen(_cfg())
    with pytest.raises(ValueError):
        key.routing[0] = 1
    with pytest.raises(AttributeError):
        key.routing = np.arange(4096)
    t = np.full(4096, 0.5)
    k2 = key.with_transmission(t)
    np.testing.assert_array_equal(k2.transmission, t)
    np.testing.assert_array_equal(k2.routing, key.routing)
    assert isinstance(k2, Key) and k2.config == key.config
    with pytest.raises(ValueError, match="transmission"):
        key.with_transmission(np.full(4095, 0.5))
    with pytest.raises(ValueError, match="transmission"):
        key.with_transmission(np.full(4096, -0.1))


@pytest.mark.parametrize("kind", ["square", "hexagonal"])
def test_crosstalk_matrices_nonnegative_row_normalised(kind):
    key = keygen(_cfg(lattice=kind, rows=20, cols=24, crosstalk_in=0.12, crosstalk_out=0.07))
    for m, k in ((key.crosstalk_in, 0.12), (key.crosstalk_out, 0.07)):
        assert sp.issparse(m) and m.format == "csr"
        assert m.data.min() >= 0
        np.testing.assert_allclose(np.asarray(m.sum(axis=1)).ravel(), 1.0, atol=1e-12)
        np.testing.assert_allclose(m.diagonal(), 1 - k)
        # Coupling only between nearest neighbours (distance = pitch).
        xy = key.config.site_centers_um()
        coo = sp.coo_matrix(m)
        off = coo.row != coo.col
        dist = np.linalg.norm(xy[coo.row[off]] - xy[coo.col[off]], axis=1)
        np.testing.assert_allclose(dist, key.config.pitch_um)
        interior = 10 * 24 + 10
        assert m[interior].nnz == (7 if kind == "hexagonal" else 5)


# ----------------------------------------------------------------------------------- operators


def test_disk_pixel_overlap_closed_forms():
    cfg = FaceplateConfig(rows=1, cols=1, pitch_um=20.0, core_diameter_um=10.0)
    # Core centred on the corner of four 10 µm pixels: a quarter each.
    c = coupling_operator(cfg, pixel_pitch_um=10.0, sensor_shape=(2, 2)).toarray()
    np.testing.assert_allclose(c[:, 0], 0.25, atol=1e-12)
    # Centred in one 12 µm pixel: all light there.
    c = coupling_operator(cfg, pixel_pitch_um=12.0, sensor_shape=(3, 3)).toarray()
    np.testing.assert_allclose(c[:, 0], [0, 0, 0, 0, 1, 0, 0, 0, 0], atol=1e-12)
    # Shifted 5 µm right on 10 µm pixels: half-disk split: 1/2 right column, 1/4 per corner.
    c = coupling_operator(
        cfg, pixel_pitch_um=10.0, sensor_shape=(2, 3), offset_um=(5.0, 0.0)
    ).toarray()[:, 0]
    np.testing.assert_allclose(c.reshape(2, 3), [[0, 0.25, 0.25], [0, 0.25, 0.25]], atol=1e-12)
    # Circular segment: pixel edge at distance h from the centre cuts off
    # (R² acos(h/R) − h sqrt(R² − h²)) / (π R²).
    r, h = 5.0, 2.0
    seg = (r * r * math.acos(h / r) - h * math.sqrt(r * r - h * h)) / (math.pi * r * r)
    c = coupling_operator(
        cfg, pixel_pitch_um=30.0, sensor_shape=(1, 2), offset_um=(-h, 0.0)
    ).toarray()[:, 0]
    np.testing.assert_allclose(c, [1 - seg, seg], atol=1e-12)


@pytest.mark.parametrize("kind", ["square", "hexagonal"])
def test_flat_field_transmits_fill_factor_times_mean_transmission(kind):
    cfg = FaceplateConfig(
        lattice=kind,
        rows=24,
        cols=20,
        pitch_um=100.0,
        core_diameter_um=70.0,
        transmission_mean=0.7,
        transmission_rms=0.1,
        crosstalk_in=0.1,
        crosstalk_out=0.1,
        block_size=4,
        seed=2,
    )
    dx = 13.7  # incommensurate with the pitch
    shape = (200, 200)  # 2.74 mm square, larger than the face
    s = sampling_operator(cfg, dx_um=dx, shape=shape)
    assert s.shape == (cfg.n_fibers, 200 * 200) and s.format == "csr"
    core_area = math.pi * 35.0**2
    np.testing.assert_allclose(s @ np.ones(s.shape[1]), core_area / dx**2, rtol=1e-9)
    key = keygen(cfg)
    t, b = transfer_operator(key)
    flux = 3.0  # per sample
    out = t @ (s @ np.full(s.shape[1], flux)) + b
    cell = 100.0**2 * (math.sqrt(3) / 2 if kind == "hexagonal" else 1.0)
    face_flux = flux / dx**2 * cfg.n_fibers * cell  # flat field over the faceplate's area
    const = 0.907 if kind == "hexagonal" else math.pi / 4
    expected = const * (70 / 100) ** 2 * np.mean(key.transmission)
    assert out.sum() / face_flux == pytest.approx(expected, rel=0.01)


def test_transfer_operator_routes_scales_and_biases():
    cfg = _cfg(rows=8, cols=8, block_size=4, bias_photons_per_s=2.0, dead_fraction=0.1, seed=9)
    key = keygen(cfg)
    t, b = transfer_operator(key)
    dense = t.toarray()
    for i in range(64):
        expected = np.zeros(64)
        if not key.dead[i]:
            expected[key.routing[i]] = key.transmission[i]
        np.testing.assert_array_equal(dense[:, i], expected)
        assert b[key.routing[i]] == (0.0 if key.dead[i] else key.bias[i])


def test_transfer_factors_multiply_to_the_transfer_operator():
    key = keygen(_cfg(rows=12, cols=12, block_size=4, crosstalk_in=0.1, crosstalk_out=0.08))
    t, b = transfer_operator(key)
    c_out, pd, c_in, b2 = transfer_factors(key)
    np.testing.assert_allclose((c_out @ pd @ c_in).toarray(), t.toarray(), atol=1e-15)
    np.testing.assert_array_equal(b, b2)
    # Crosstalk really mixes neighbours: an input spot reaches 5 × 5 output sites at most.
    assert 5 < t[:, 50].nnz <= 25


def test_coupling_columns_conserve_light_and_centroids_follow_magnification():
    cfg = FaceplateConfig(rows=16, cols=16, block_size=4)
    m, p = 0.1, 5.0  # relay: 1 mm pitch -> 100 µm on the sensor; 60 µm cores
    c = coupling_operator(
        cfg, pixel_pitch_um=p, sensor_shape=(400, 400), magnification=m, offset_um=(12.0, -7.0)
    )
    assert c.shape == (400 * 400, 256) and c.format == "csr"
    np.testing.assert_allclose(np.asarray(c.sum(axis=0)).ravel(), 1.0, rtol=1e-9)
    yy, xx = np.divmod(np.arange(400 * 400), 400)
    px = (xx + 0.5 - 200) * p
    py = (yy + 0.5 - 200) * p
    cx = c.T @ px
    cy = c.T @ py
    xy = cfg.site_centers_um()
    # Pixel-centre centroids of a 60 µm disk on 5 µm pixels are exact to ~1e-3 of a pixel.
    np.testing.assert_allclose(cx, m * xy[:, 0] + 12.0, atol=0.01 * p)
    np.testing.assert_allclose(cy, m * xy[:, 1] - 7.0, atol=0.01 * p)


def test_rotation_by_90_degrees_permutes_square_sites():
    cfg = FaceplateConfig(rows=6, cols=6, pitch_um=10.0, core_diameter_um=7.0, block_size=2)
    c0 = coupling_operator(cfg, pixel_pitch_um=3.0, sensor_shape=(30, 30)).toarray()
    c90 = coupling_operator(
        cfg, pixel_pitch_um=3.0, sensor_shape=(30, 30), rotation_deg=90
    ).toarray()
    xy = cfg.site_centers_um()
    rot = np.column_stack([-xy[:, 1], xy[:, 0]])  # (x, y) -> (−y, x)
    idx = cKDTree(xy).query(rot)[1]
    np.testing.assert_allclose(c90, c0[:, idx], atol=1e-12)
    c5 = coupling_operator(cfg, pixel_pitch_um=3.0, sensor_shape=(30, 30), rotation_deg=5)
    assert abs(c5 - sp.csr_matrix(c0)).max() > 0.05  # a small rotation is visible


def test_moire_beat_between_fiber_and_pixel_pitch():
    """Fiber pitch 10 µm on 9 µm pixels: flat-field response beats with period 90 µm = 10 px."""
    cfg = FaceplateConfig(rows=8, cols=60, pitch_um=10.0, core_diameter_um=8.0, block_size=1)
    w = 60
    c = coupling_operator(cfg, pixel_pitch_um=9.0, sensor_shape=(4, w))
    profile = (c @ np.ones(cfg.n_fibers)).reshape(4, w)[1]
    spec = np.abs(np.fft.rfft(profile - profile.mean()))
    assert int(np.argmax(spec)) == w // 10
    assert profile.max() / profile.min() > 1.1
    c_match = coupling_operator(cfg, pixel_pitch_um=10.0, sensor_shape=(4, w))
    flat = (c_match @ np.ones(cfg.n_fibers)).reshape(4, w)[1, 1:-1]
    np.testing.assert_allclose(flat, flat.mean(), rtol=1e-9)  # matched pitch: no beat


def test_relay_blur_adds_its_variance():
    cfg = FaceplateConfig(rows=1, cols=1, pitch_um=100.0, core_diameter_um=40.0)
    p, blur = 2.0, 6.0
    kw = dict(pixel_pitch_um=p, sensor_shape=(80, 80))
    xs = (np.arange(80 * 80) % 80 + 0.5 - 40) * p
    sharp = coupling_operator(cfg, **kw)
    blurred = coupling_operator(cfg, **kw, blur_um=blur)
    r = 20.0
    var_sharp = (sharp.T @ xs**2).item()
    var_blur = (blurred.T @ xs**2).item()
    assert var_sharp == pytest.approx(r * r / 4 + p * p / 12, rel=0.02)  # disk + pixel box
    assert var_blur == pytest.approx(r * r / 4 + blur * blur, rel=0.02)
    assert float(blurred.sum()) == pytest.approx(1.0, abs=1e-6)


def test_operator_inputs_are_validated():
    cfg = FaceplateConfig(rows=4, cols=4, block_size=2)
    with pytest.raises(ValueError, match="dx_um"):
        sampling_operator(cfg, dx_um=0.0, shape=(4, 4))
    with pytest.raises(ValueError, match="shape"):
        sampling_operator(cfg, dx_um=1.0, shape=(0, 4))
    with pytest.raises(ValueError, match="pixel_pitch_um"):
        coupling_operator(cfg, pixel_pitch_um=-1.0, sensor_shape=(4, 4))
    with pytest.raises(ValueError, match="magnification"):
        coupling_operator(cfg, pixel_pitch_um=1.0, sensor_shape=(4, 4), magnification=0.0)
    with pytest.raises(ValueError, match="blur_um"):
        coupling_operator(cfg, pixel_pitch_um=1.0, sensor_shape=(4, 4), blur_um=-1.0)


# ---------------------------------------------------------------------------------- unscramble


def _smooth_image(rows: int, cols: int) -> np.ndarray:
    yy, xx = np.mgrid[0:rows, 0:cols]
    return 100.0 + 40.0 * np.sin(xx / 5.0) * np.cos(yy / 7.0) + 0.5 * xx


@pytest.mark.parametrize("kind", ["square", "hexagonal"])
def test_unscramble_inverts_scramble_exactly(kind):
    cfg = _cfg(lattice=kind, rows=32, cols=40, block_size=4, permute_blocks=True)
    key = keygen(cfg.model_copy(update={"transmission_rms": 0.2, "bias_photons_per_s": 7.0}))
    x = _smooth_image(32, 40)
    y = scramble(x, key)
    assert y.shape == (32, 40)
    assert not np.allclose(y, x, rtol=0.05)
    np.testing.assert_allclose(unscramble(y, key), x, rtol=1e-12)
    np.testing.assert_allclose(unscramble(y.ravel(), key), x, rtol=1e-12)
    # Noise-free with crosstalk on both faces: still exact (the operators are invertible).
    key_xt = keygen(cfg.model_copy(update={"crosstalk_in": 0.15, "crosstalk_out": 0.1}))
    np.testing.assert_allclose(unscramble(scramble(x, key_xt), key_xt), x, rtol=1e-9)


def test_unscramble_fills_dead_fibers_from_neighbours():
    key = keygen(_cfg(rows=32, cols=32, block_size=4, dead_fraction=0.03))
    x = _smooth_image(32, 32)
    got = unscramble(scramble(x, key), key)
    alive = ~key.dead.reshape(32, 32)
    np.testing.assert_allclose(got[alive], x[alive], rtol=1e-12)
    err = np.abs(got - x)[~alive] / x[~alive]
    assert err.max() < 0.1
    raw = unscramble(scramble(x, key), key, fill_dead=False)
    assert np.all(np.isnan(raw[~alive]))


def test_unscramble_from_a_sensor_frame():
    cfg = _cfg(rows=16, cols=16, block_size=4, permute_blocks=True, transmission_rms=0.1)
    key = keygen(cfg)
    c = coupling_operator(
        cfg, pixel_pitch_um=250.0, sensor_shape=(70, 70), offset_um=(40.0, -30.0), rotation_deg=2.0
    )
    x = _smooth_image(16, 16)
    frame = (c @ scramble(x, key).ravel()).reshape(70, 70)
    got = unscramble(frame, key, coupling=c, ridge=1e-10)
    np.testing.assert_allclose(got, x, rtol=1e-6)
    with pytest.raises(ValueError, match="pixels"):
        unscramble(frame[:-1], key, coupling=c)
    with pytest.raises(ValueError, match="shape"):
        unscramble(np.ones((15, 16)), key)
