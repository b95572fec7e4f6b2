"""Reproducible random variates for whole frames, drawn on two threads.

NumPy's generators release the GIL while they fill an array, so two generators can fill two
halves of a frame at the same time. For large requests (at least
:data:`PARALLEL_MIN_SAMPLES` values) the caller's ``rng`` seeds :data:`STREAMS` child
generators (one ``rng.integers`` draw) and each fills a fixed slice. The calling thread works
through the slices itself while a pool thread helps, and takes back a slice the helper has not
started. On a busy machine a helper thread only waits for a core (measured: slower), so helpers
are used only while the 1-minute load average leaves a core free; otherwise the caller fills
the slices one after the other. Which thread fills a slice never changes its numbers: the same
``rng`` state always gives the same variates. Smaller requests are drawn from ``rng`` directly.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor

import numpy as np
from numpy.typing import NDArray

__all__ = ["PARALLEL_MIN_SAMPLES", "STREAMS", "poisson_f32", "standard_normal_f32"]

#: Requests smaller than this are drawn from the caller's generator in the calling thread.
PARALLEL_MIN_SAMPLES = 1 << 18
#: Number of child streams for large requests (fixed, for reproducibility across machines).
STREAMS = 2

_pool: ThreadPoolExecutor | None = None
_pool_pid = -1
_pool_lock = threading.Lock()


def _executor() -> ThreadPoolExecutor:
    """Process-local thread pool (re-created after a fork)."""
    global _pool, _pool_pid
    with _pool_lock:
        if _pool is None or _pool_pid != os.getpid():
            workers = max(1, min(STREAMS, os.cpu_count() or 1))
            _pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="keycam-rng")
            _pool_pid = os.getpid()
        return _pool


def _core_free() -> bool:
    """Whether the 1-minute load average leaves at least one core idle."""
    try:
        load = os.getloadavg()[0]
    except OSError:  # pragma: no cover - platforms without a load average
        return True
    return load <= (os.cpu_count() or 1) - 1


def _children(rng: np.random.Generator) -> list[np.random.Generator]:
    seeds = rng.integers(0, 2**63, size=STREAMS, dtype=np.int64)
    return [np.random.Generator(np.random.PCG64(int(s))) for s in seeds]


def _bounds(n: int) -> NDArray[np.intp]:
    return np.linspace(0, n, STREAMS + 1).astype(np.intp)


def _run_shared(tasks: list[Callable[[], None]]) -> None:
    """Run every task once: the caller runs whatever a helper thread has not claimed."""
    claimed = [False] * len(tasks)
    lock = threading.Lock()

    def claim_and_run(i: int) -> None:
        with lock:
            if claimed[i]:
                return
            claimed[i] = True
        tasks[i]()

    helpers = []
    if _core_free():
        helpers = [_executor().submit(claim_and_run, i) for i in range(len(tasks) - 1, 0, -1)]
    for i in range(len(tasks)):
        claim_and_run(i)
    for h in helpers:
        h.result()


def standard_normal_f32(rng: np.random.Generator, n: int) -> NDArray[np.float32]:
    """``n`` independent standard normal variates as float32.

    Parameters
    ----------
    rng : numpy.random.Generator
        Source of randomness (advanced by one small draw for large ``n``).
    n : int
        Number of variates.

    Returns
    -------
    (n,) float32
    """
    if n < PARALLEL_MIN_SAMPLES:
        return rng.standard_normal(n, dtype=np.float32)
    out = np.empty(n, dtype=np.float32)
    gens, b = _children(rng), _bounds(n)

    def fill(i: int) -> Callable[[], None]:
        return lambda: gens[i].standard_normal(out=out[b[i] : b[i + 1]], dtype=np.float32)

    _run_shared([fill(i) for i in range(STREAMS)])
    return out


def poisson_f32(lam: NDArray[np.floating], rng: np.random.Generator) -> NDArray[np.float32]:
    """Exact Poisson variates (NumPy's sampler) with means ``lam``, returned as float32.

    Parameters
    ----------
    lam : (n,) float array
        Means, >= 0.
    rng : numpy.random.Generator
        Source of randomness.

    Returns
    -------
    (n,) float32
        Integer-valued counts (exact in float32 up to 2**24).
    """
    lam64 = np.asarray(lam, dtype=np.float64).ravel()
    n = lam64.size
    if n < PARALLEL_MIN_SAMPLES:
        return rng.poisson(lam64).astype(np.float32)
    out = np.empty(n, dtype=np.float32)
    gens, b = _children(rng), _bounds(n)

    def fill(i: int) -> Callable[[], None]:
        def task() -> None:
            out[b[i] : b[i + 1]] = gens[i].poisson(lam64[b[i] : b[i + 1]])

        return task

    _run_shared([fill(i) for i in range(STREAMS)])
    return out
