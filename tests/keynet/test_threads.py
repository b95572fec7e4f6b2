"""The key-net's small products run on one BLAS thread inside training and verification."""

from __future__ import annotations

import numpy as np
from threadpoolctl import threadpool_info, threadpool_limits


def _blas_threads() -> list[int]:
    return [p["num_threads"] for p in threadpool_info() if p["user_api"] == "blas"]


def test_one_blas_thread_inside_the_block_and_the_old_count_after() -> None:
    a = np.random.default_rng(0).random((50, 50))
    before = _blas_threads()
    assert before, "NumPy's BLAS is not visible to threadpoolctl"
    with threadpool_limits(limits=1, user_api="blas"):
        assert set(_blas_threads()) == {1}
        inside = a @ a
    assert _blas_threads() == before
    np.testing.assert_allclose(inside, a @ a, rtol=1e-12)
