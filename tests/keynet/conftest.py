"""Fixtures shared by the key-net tests."""

from __future__ import annotations

import pytest
from threadpoolctl import threadpool_limits


@pytest.fixture
def one_blas_thread():
    """Run a test's small dense products on one BLAS thread, as training and verification do
    (an oversubscribed thread pool makes 784 × 784 factorisations many times slower)."""
    with threadpool_limits(limits=1, user_api="blas"):
        yield
