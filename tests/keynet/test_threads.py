"""single_thread_blas: one BLAS thread inside the block, the previous count after."""

from __future__ import annotations

import numpy as np

from keynet._threads import _openblas_handles, single_thread_blas


def test_single_thread_blas_sets_and_restores() -> None:
    handles = _openblas_handles()
    before = [get() for get, _ in handles]
    a = np.random.default_rng(0).random((50, 50))
    with single_thread_blas():
        assert all(get() == 1 for get, _ in handles)
        inside = a @ a
    assert [get() for get, _ in handles] == before
    np.testing.assert_allclose(inside, a @ a, rtol=1e-12)
