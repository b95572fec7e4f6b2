"""Routing random keys collision-free, deterministically, within the process limits."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy.spatial import cKDTree

from fabrication.checks import run_checks
from fabrication.process import ProcessConfig, face_geometry
from fabrication.profiles import profile
from fabrication.routing import route_permutation
from fabrication.sampling import sample_route
from optics.faceplate import FaceplateConfig, keygen

CASES = [
    (8, 2, False),
    (8, 2, True),
    (8, 4, False),
    (8, 4, True),
    (8, 8, False),
    (16, 8, True),
    (16, 4, True),
]


def _independent_min_distance(route, step_mm: float = 0.1) -> float:
    """Smallest 3D distance between different fibers from dense samples of the smooth curves.

    Independent of the checks module: plain sampling and a KD-tree on (x, y, z).
    """
    z = np.arange(0.0, route.length_mm, step_mm)
    pos, _, _ = route.evaluate(z)
    n = pos.shape[1]
    pts = np.concatenate([pos, np.broadcast_to(z[:, None, None], (z.size, n, 1))], axis=2)
    fib = np.broadcast_to(np.arange(n)[None, :], (z.size, n)).ravel()
    pts = pts.reshape(-1, 3)
    tree = cKDTree(pts)
    d, j = tree.query(pts, k=12, distance_upper_bound=1.5)
    other = (j < pts.shape[0]) & (fib[np.minimum(j, pts.shape[0] - 1)] != fib[:, None])
    return float(np.min(np.where(other, d, np.inf)))


@pytest.mark.parametrize("rows,block,permute", CASES)
def test_random_keys_route_collision_free(
    rows: int, block: int, permute: bool, make_key, make_device
) -> None:
    dev = make_device(rows, block, permute)
    report = dev.report
    assert report.passed, [c.message(rows) for c in report.failures()]
    assert {c.name for c in report.checks} >= {
        "clearance", "bend_radius", "tilt", "endpoints", "min_feature", "length"
    }  # fmt: skip
    clearance = next(c for c in report.checks if c.name == "clearance")
    assert clearance.worst >= 1.0 - 1e-4  # core 0.6 + wall 0.4 mm
    # independent measurement on the smooth centerlines (sampling error < 0.01 mm)
    assert _independent_min_distance(dev.route) >= 1.0 - 0.01
    # the centerlines start and end where the key says
    pl = dev.polylines
    face = dev.route.face
    assert np.allclose(pl.xy[0], face.sites_mm, atol=1e-9)
    assert np.allclose(pl.xy[-1], face.sites_mm[make_key(rows, block, permute).routing])


def test_bend_and_tilt_limits_hold_on_the_smooth_curves(make_device) -> None:
    dev = make_device(8, 4, True)
    z = np.linspace(0.0, dev.route.length_mm, 20001)
    pos, _, _ = dev.route.evaluate(z)
    # finite differences, independent of the analytic derivatives
    dz = z[1] - z[0]
    v = np.gradient(pos, dz, axis=0)
    tilt = np.degrees(np.arctan(np.linalg.norm(v, axis=2))).max()
    assert tilt <= 30.0 + 0.05
    acc = np.gradient(v, dz, axis=0)[2:-2]
    vv = v[2:-2]
    cross = np.sqrt(
        acc[..., 1] ** 2
        + acc[..., 0] ** 2
        + (vv[..., 0] * acc[..., 1] - vv[..., 1] * acc[..., 0]) ** 2
    )
    kappa = cross / (1 + np.sum(vv**2, axis=2)) ** 1.5
    assert 1.0 / kappa.max() >= 10.0 * 0.98


def test_profile_is_curvature_continuous() -> None:
    for a in (0.1, 0.3, 0.5):
        u = np.linspace(0, 1, 200001)
        s, s1, s2 = profile(u, a)
        assert s[0] == 0 and s[-1] == pytest.approx(1.0)
        assert s1[0] == 0 and s1[-1] == pytest.approx(0.0, abs=1e-12)
        assert s2[0] == 0 and s2[-1] == pytest.approx(0.0, abs=1e-12)
        # no jumps in S'' anywhere (C2): neighbouring samples differ by O(du) while a
        # curvature jump would be of the order of max |S''| >= 6
        assert np.max(np.abs(np.diff(s2))) < 0.01 * np.max(np.abs(s2))
        # S' is the derivative of S, S'' of S'
        assert np.allclose(np.gradient(s, u)[1:-1], s1[1:-1], atol=1e-4)
        # (central differences are off by ~S''' du at the corners of the curvature ramp)
        assert np.allclose(np.gradient(s1, u)[2:-2], s2[2:-2], atol=1e-3 * np.abs(s2).max())


def test_routing_is_deterministic(resin: ProcessConfig, make_key) -> None:
    key = make_key(16, 4, True)
    face = face_geometry("square", 16, 16, 1000.0, resin)
    a = route_permutation(face, key.routing, 4, resin)
    b = route_permutation(face, key.routing, 4, resin)
    assert len(a.stages) == len(b.stages)
    for sa, sb in zip(a.stages, b.stages, strict=True):
        assert sa.length_mm == sb.length_mm and sa.kind == sb.kind
        assert np.array_equal(sa.start, sb.start) and np.array_equal(sa.end, sb.end)


def test_block_local_keys_are_routed_block_by_block_and_bounded(make_key, make_device) -> None:
    dev = make_device(16, 4, False)
    assert dev.route.decomposition == "block"
    r = dev.report
    routing = make_key(16, 4, False).routing
    r0, c0 = np.divmod(np.arange(256), 16)
    r1, c1 = np.divmod(routing, 16)
    assert r.displacement_sites == 1 + max(np.abs(r1 - r0).max(), np.abs(c1 - c0).max()) <= 4
    # the fiber that moves furthest sets the straight-line bound (1 mm pitch, 30 deg)
    s_max = float(np.hypot(r1 - r0, c1 - c0).max())
    assert r.lower_bound_mm == pytest.approx(s_max / math.tan(math.radians(30)))
    assert r.length_mm >= r.bend_bound_mm >= r.lower_bound_mm
    assert r.length_ratio == pytest.approx(r.length_mm / r.lower_bound_mm)
    assert r.bend_bound_ratio == pytest.approx(r.length_mm / r.bend_bound_mm)


def test_identity_key_is_straight(resin: ProcessConfig) -> None:
    face = face_geometry("square", 4, 4, 1000.0, resin)
    route = route_permutation(face, np.arange(16), 4, resin)
    assert route.stages == () and route.length_mm == pytest.approx(2 * resin.end_length_mm)


def test_hexagonal_lattice_routes(make_device) -> None:
    dev = make_device(8, 4, True, lattice="hexagonal")
    assert dev.report.passed, [c.message(8) for c in dev.report.failures()]


def test_a_too_short_route_fails_with_rule_and_fiber(resin: ProcessConfig, make_device) -> None:
    dev = make_device(8, 4, False)
    lengths = np.array([s.length_mm for s in dev.route.stages]) * 0.5
    short = dev.route.with_lengths(lengths)
    rep = run_checks(short, sample_route(short, resin), resin, 4)
    failed = {c.name: c for c in rep.failures()}
    assert "tilt" in failed and "bend_radius" in failed
    msg = failed["tilt"].message(8)
    assert "VIOLATED" in msg and "fiber" in msg and "30" in msg


PITCH = {"separate": 2.1, "merged": 2.2547, "axis": 1.2047}  # 2L, L + s, s (resin, mm)


@pytest.mark.parametrize("lanes", ["separate", "merged", "axis"])
@pytest.mark.parametrize("rows,block,permute", [(8, 4, True), (8, 8, False)])
def test_every_lane_style_is_collision_free(
    rows: int, block: int, permute: bool, lanes: str, make_key, resin: ProcessConfig
) -> None:
    key = make_key(rows, block, permute)
    face = face_geometry("square", rows, rows, 1000.0, resin)
    route = route_permutation(face, key.routing, block, resin, lanes=lanes)
    # s = (core + wall) / cos 30° + margin; L = core + wall + margin
    assert PITCH["axis"] == pytest.approx(1.0 / math.cos(math.radians(30.0)) + 0.05, abs=1e-4)
    assert route.route_pitch_mm == pytest.approx(PITCH[lanes], abs=1e-4)
    assert _independent_min_distance(route) >= 1.0 - 0.01
    pl = sample_route(route, resin)
    rep = run_checks(route, pl, resin, block)
    assert rep.passed, [c.message(rows) for c in rep.failures()]
    with pytest.raises(ValueError, match="lanes"):
        route_permutation(face, key.routing, block, resin, lanes="diagonal")


def test_an_open_face_needs_no_fan(make_key, resin: ProcessConfig) -> None:
    """A lattice printed at the routing pitch starts braiding at once: no fan stages."""
    pitch = resin.open_face_pitch_mm
    assert pitch == pytest.approx(2 * (resin.min_pitch_mm + resin.route_margin_mm))
    key = keygen(FaceplateConfig(rows=8, cols=8, block_size=4, seed=1, pitch_um=pitch * 1000))
    face = face_geometry("square", 8, 8, pitch * 1000, resin)
    open_route = route_permutation(face, key.routing, 4, resin, lanes="separate")
    # stages that start or end on the face move fibers by at most one lane
    assert open_route.stages[0].max_move_mm <= resin.min_pitch_mm + resin.route_margin_mm + 1e-9
    assert open_route.stages[-1].max_move_mm <= resin.min_pitch_mm + resin.route_margin_mm + 1e-9
    packed = route_permutation(
        face_geometry("square", 8, 8, 1000.0, resin), key.routing, 4, resin, lanes="separate"
    )
    assert packed.stages[0].max_move_mm > 5.0  # the packed face fans out first
    assert open_route.length_mm < packed.length_mm
    assert _independent_min_distance(open_route) >= 1.0 - 0.01


@pytest.mark.parametrize("seed", [1, 2])
def test_blocks_share_one_pass_pattern_fewer_passes_than_per_block_choice(
    seed: int, make_key
) -> None:
    """All blocks move in the same stages, so a phase needs the passes of its worst block.

    Choosing each block's fewest-pass decomposition on its own leaves some block with two
    passes in every phase (six passes in all for these keys); choosing one pattern that every
    block can meet needs at most five.
    """
    from fabrication.braid import phase_plans
    from fabrication.decompose import decompose_grid_few_passes, phase_passes
    from optics.faceplate import lattice as lat

    routing = np.asarray(make_key(16, 4, False, seed).routing)
    used = [p.n_passes for p in phase_plans(routing, 16, 16, 4)["block"]]
    bid = lat.block_ids(16, 16, 4)
    sr, sc = np.divmod(np.arange(256), 16)
    dr, dc = np.divmod(routing, 16)
    rng = np.random.default_rng(0)
    k = np.empty(256, dtype=np.int64)
    for blk, (r0, c0, h, w) in enumerate(lat.block_origins(16, 16, 4)):
        f = np.flatnonzero(bid == blk)
        k[f] = r0 + decompose_grid_few_passes(
            sr[f] - r0, sc[f] - c0, dr[f] - r0, dc[f] - c0, h, w, tries=8, rng=rng
        )
    lines = (bid * 16 + sc, bid * 16 + k, bid * 16 + dc)  # lines stay inside their blocks
    separate = [
        phase_passes(lines[0], sr, k),
        phase_passes(lines[1], sc, dc),
        phase_passes(lines[2], k, dr),
    ]
    assert sum(separate) == 6
    assert sum(used) <= 5 and all(1 <= p <= 2 for p in used)


@pytest.mark.parametrize("rows,cols,seed", [(5, 6, 0), (6, 6, 1)])
def test_any_permutation_routes_checked_and_above_the_bound(
    rows: int, cols: int, seed: int, resin: ProcessConfig
) -> None:
    """A plain random permutation (no block structure) is routed collision-free."""
    from fabrication.routing import bend_bound_mm

    routing = np.random.default_rng(seed).permutation(rows * cols)
    face = face_geometry("square", rows, cols, 1000.0, resin)
    route = route_permutation(face, routing, 2, resin)
    rep = run_checks(route, sample_route(route, resin), resin, 2)
    assert rep.passed, [c.message(cols) for c in rep.failures()]
    assert route.length_mm > bend_bound_mm(face, routing, resin)
    assert _independent_min_distance(route) >= 1.0 - 0.01


def _chain(phases, rows: int, cols: int) -> tuple[np.ndarray, np.ndarray]:
    """Row and column of every fiber after applying ``phases``; each must move along its axis."""
    r, c = np.divmod(np.arange(rows * cols), cols)
    for ph in phases:
        along = r if ph.axis == "y" else c
        assert np.array_equal(ph.positions[0], along)
        if ph.axis == "y":
            r = ph.positions[-1].copy()
        else:
            c = ph.positions[-1].copy()
        assert np.unique(r * cols + c).size == rows * cols  # still one fiber per site
    return r, c


@pytest.mark.parametrize("seed", [1, 2])
def test_grouped_phases_interleave_blocks_and_local_shuffles(seed: int, make_key) -> None:
    """Shuffles inside the blocks, carried along with their blocks, reach the same routing in
    three groups of one axis each (x x y y x x, or transposed)."""
    from fabrication.braid import phase_plans

    routing = np.asarray(make_key(16, 4, True, seed).routing)
    plans = phase_plans(routing, 16, 16, 4)
    for name, axes in (("grouped_x", "xxyyxx"), ("grouped_y", "yyxxyy")):
        phases = plans[name]
        assert "".join(p.axis for p in phases) == axes
        r, c = _chain(phases, 16, 16)
        assert np.array_equal(r * 16 + c, routing)


def test_axis_layouts_reshape_only_where_the_axis_changes(make_key, resin) -> None:
    """A block-permuted key routed on axis layouts: two reshapes (three groups); shorter than
    the square grid, and collision-free."""
    key = make_key(16, 4, True, 1)
    face = face_geometry("square", 16, 16, 1000.0, resin)
    axis = route_permutation(face, key.routing, 4, resin, lanes="axis")
    square = route_permutation(face, key.routing, 4, resin, lanes="merged")
    kinds = [s.kind for s in axis.stages]
    assert kinds.count("reshape") == 2
    assert kinds[0] == "fan_out" and kinds[-1] == "fan_in"
    assert all(s.pairwise == (s.kind in ("fan_out", "fan_in", "reshape")) for s in axis.stages)
    assert axis.length_mm < square.length_mm
    assert _independent_min_distance(axis) >= 1.0 - 0.01


@pytest.mark.parametrize("permute", [False, True])
def test_a_rows_then_columns_key_routes_in_two_groups(permute: bool, resin) -> None:
    """Every fiber moves once along its row and once along its column: one reshape, and a
    bundle far shorter than for a uniform key of the same lattice."""
    from fabrication.export import build
    from fabrication.routing import bend_bound_mm

    def key(shuffle: str):
        return keygen(
            FaceplateConfig(rows=16, cols=16, block_size=4, permute_blocks=permute, seed=3,
                            shuffle=shuffle)
        )  # fmt: skip

    dev = build(key("rows_then_columns"), resin)
    assert dev.report.passed, [c.message(16) for c in dev.report.failures()]
    route = dev.route
    assert [s.kind for s in route.stages].count("reshape") == 1
    assert route.length_mm >= bend_bound_mm(route.face, route.routing, resin)
    face = face_geometry("square", 16, 16, 1000.0, resin)
    uniform = route_permutation(face, key("uniform").routing, 4, resin)
    assert route.length_mm < 0.8 * uniform.length_mm


@pytest.mark.parametrize("fixed_a", [False, True])
def test_lane_sides_minimise_the_largest_reshape_move_exactly(fixed_a: bool) -> None:
    """The 2-SAT choice of lane sides reaches the smallest largest move over all side choices
    (brute force over 2^(lines) choices on random instances)."""
    import itertools

    from fabrication.braid import _min_max_sides

    rng = np.random.default_rng(5)
    for _ in range(30):
        n, na, nb = 12, 3, 4
        a_line, b_line = rng.integers(0, na, n), rng.integers(0, nb, n)
        a_line[:na], b_line[:nb] = np.arange(na), np.arange(nb)  # every line is used
        d = rng.uniform(0.0, 10.0, (n, 2, 2))
        fa, fb = _min_max_sides(d, a_line, b_line, fixed_a)
        got = float(np.max(d[np.arange(n), fa[a_line], fb[b_line]]))
        best = math.inf
        for sa in (
            itertools.product((0,), repeat=na) if fixed_a else itertools.product((0, 1), repeat=na)
        ):
            for sb in itertools.product((0, 1), repeat=nb):
                sa_, sb_ = np.array(sa), np.array(sb)
                best = min(best, float(np.max(d[np.arange(n), sa_[a_line], sb_[b_line]])))
        assert got == pytest.approx(best, abs=1e-12)
        if fixed_a:
            assert not np.any(fa)


def test_turned_lanes_shorten_the_reshape_and_keep_every_rule(resin) -> None:
    """Turning each line's lanes keeps the routing and the checks, and the reshape's largest
    move is never larger than with the construction's own sides (here strictly smaller: the
    corner fibers of a default-recipe key get their inward lanes)."""
    from fabrication.braid import axis_layouts, orient_reshapes, phase_plans
    from fabrication.routing import axis_pitches

    fp = FaceplateConfig(rows=16, cols=16, block_size=4, shuffle="rows_then_columns", seed=1000)
    key = keygen(fp)
    face = face_geometry("square", 16, 16, 1000.0, resin)
    along, across, lane = axis_pitches(face, resin)
    phases = phase_plans(key.routing, 16, 16, 4, along_mm=along)["grouped_x"]
    turned = orient_reshapes(phases, 16, 16, along, across, lane)
    r, c = _chain(turned, 16, 16)
    assert np.array_equal(r * 16 + c, key.routing)

    def reshape_move(ph) -> float:
        seq = axis_layouts(ph, 16, 16, along, across, lane, direct=True)
        i = [k for k, _ in seq].index("reshape")
        return float(np.max(np.linalg.norm(seq[i][1] - seq[i - 1][1], axis=1)))

    assert reshape_move(turned) < reshape_move(phases) - 0.5
    route = route_permutation(face, key.routing, 4, resin)
    assert _independent_min_distance(route) >= 1.0 - 0.01
    rep = run_checks(route, sample_route(route, resin), resin, 4)
    assert rep.passed, [c.message(16) for c in rep.failures()]
