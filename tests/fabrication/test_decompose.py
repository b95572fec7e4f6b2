"""Three-phase grid decomposition and two-lane passes (pure permutation algorithms)."""

from __future__ import annotations

import numpy as np
import pytest

from fabrication.decompose import decompose_grid, is_two_lane, line_passes, two_lane_split


@pytest.mark.parametrize("rows,cols", [(1, 5), (5, 1), (2, 2), (3, 7), (8, 8), (16, 5)])
def test_every_grid_permutation_splits_into_column_row_column(rows: int, cols: int) -> None:
    rng = np.random.default_rng(rows * 100 + cols)
    n = rows * cols
    for _ in range(10):
        perm = rng.permutation(n)
        sr, sc = np.divmod(np.arange(n), cols)
        dr, dc = np.divmod(perm, cols)
        k = decompose_grid(sr, sc, dr, dc, rows, cols)
        # phase 1 is a permutation inside every column
        for c in range(cols):
            assert sorted(k[sc == c]) == list(range(rows))
        # phase 2 is a permutation inside every row
        for r in range(rows):
            assert sorted(dc[k == r]) == list(range(cols))
        # phase 3 is a permutation inside every target column
        for c in range(cols):
            assert sorted(k[dc == c]) == list(range(rows))


def test_decomposition_is_deterministic() -> None:
    rng = np.random.default_rng(5)
    perm = rng.permutation(64)
    sr, sc = np.divmod(np.arange(64), 8)
    dr, dc = np.divmod(perm, 8)
    a = decompose_grid(sr, sc, dr, dc, 8, 8)
    b = decompose_grid(sr, sc, dr, dc, 8, 8)
    assert np.array_equal(a, b)


def _check_passes(perm: np.ndarray, lp) -> None:
    assert np.array_equal(lp.positions[0], np.arange(perm.size))
    assert np.array_equal(lp.positions[-1], perm)
    for j in range(lp.n_passes):
        before, after = lp.positions[j], lp.positions[j + 1]
        assert np.array_equal(np.sort(after), np.arange(perm.size))
        for lane in (0, 1):
            m = lp.lanes[j] == lane
            order = np.argsort(before[m])
            # same-lane fibers keep their order: they never pass each other
            assert np.all(np.diff(after[m][order]) > 0)


@pytest.mark.parametrize("n", [1, 2, 3, 5, 8, 13, 64])
def test_line_passes_realise_every_permutation_in_log2_passes(n: int) -> None:
    rng = np.random.default_rng(n)
    for _ in range(30):
        perm = rng.permutation(n)
        lp = line_passes(perm, allow_single=False)
        _check_passes(perm, lp)
        assert lp.n_passes <= max(1, int(np.ceil(np.log2(n)))) if n > 1 else lp.n_passes == 0


def test_reversal_needs_log2_passes_and_two_lane_permutations_one() -> None:
    rev = np.arange(8)[::-1]
    assert not is_two_lane(rev)
    lp = line_passes(rev)
    _check_passes(rev, lp)
    assert lp.n_passes == 3
    riffle = np.array([0, 2, 4, 6, 1, 3, 5, 7])  # union of two increasing sequences
    assert two_lane_split(riffle) is not None
    lp = line_passes(riffle)
    _check_passes(riffle, lp)
    assert lp.n_passes == 1


def test_line_passes_rejects_non_permutations() -> None:
    with pytest.raises(ValueError, match="permutation"):
        line_passes(np.array([0, 0, 1]))


def test_grid_decompositions_are_valid_and_count_their_passes() -> None:
    from fabrication.decompose import grid_decompositions, lds_at_most_two

    rng = np.random.default_rng(3)
    rows = cols = 4
    perm = rng.permutation(16)
    sr, sc = np.divmod(np.arange(16), cols)
    dr, dc = np.divmod(perm, cols)
    cands = grid_decompositions(sr, sc, dr, dc, rows, cols, tries=4, rng=rng)
    assert len(cands) > 24  # every row assignment of a 4-row grid, for several colourings
    assert len({c[2].tobytes() for c in cands}) == len(cands)  # no duplicates

    def passes(line, cur, tgt) -> int:  # independent count: 0, 1 or log2(4) = 2
        if np.array_equal(cur, tgt):
            return 0
        ok = True
        for v in np.unique(line):
            m = line == v
            order = np.argsort(cur[m])
            ok &= lds_at_most_two(np.argsort(np.argsort(tgt[m][order])))
        return 1 if ok else 2

    for (p1, p2, p3), sq, k in cands:
        for c in range(cols):
            assert sorted(k[sc == c]) == list(range(rows))
            assert sorted(k[dc == c]) == list(range(rows))
        for r in range(rows):
            assert sorted(dc[k == r]) == list(range(cols))
        assert (p1, p2, p3) == (passes(sc, sr, k), passes(k, sc, dc), passes(dc, k, dr))
        assert sq == float(np.sum((sr - k) ** 2 + (dr - k) ** 2))
