"""Reproducible random variates for whole frames: two threads, and a fast exact Poisson
sampler for the near-empty pixels of dark frames.

NumPy's generators release the GIL while they fill an array, so two generators can fill two
halves of a frame at the same time. For large requests (at least
:data:`PARALLEL_MIN_SAMPLES` values) the caller's ``rng`` seeds :data:`STREAMS` child
generators (one ``rng.integers`` draw) and each fills a fixed slice. The calling thread works
through the slices itself while a pool thread helps, and takes back a slice the helper has not
started. On a busy machine a helper thread only waits for a core (measured: slower), so helpers
are used only while the 1-minute load average leaves a core free; otherwise the caller fills
the slices one after the other. Which thread fills a slice never changes its numbers: the same
``rng`` state always gives the same variates. Smaller requests are drawn from ``rng`` directly.

Poisson means below :data:`TINY_MEAN` (dark current alone, unlit pixels) are drawn by an
exact one-uniform inversion (:func:`poisson_f32`), because NumPy's sampler costs about as much
per value at mean 0.03 as at mean 30.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor

import numpy as np
from numpy.typing import NDArray

__all__ = ["PARALLEL_MIN_SAMPLES", "STREAMS", "TINY_MEAN", "poisson_f32", "standard_normal_f32"]

#: Requests smaller than this are drawn from the caller's generator in the calling thread.
PARALLEL_MIN_SAMPLES = 1 << 18
#: Number of child streams for large requests (fixed, for reproducibility across machines).
STREAMS = 2
#: Poisson means below this use the one-uniform inversion of :func:`_poisson_tiny`.
TINY_MEAN = 0.25

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
    """Exact Poisson variates with means ``lam``, returned as float32.

    Means below :data:`TINY_MEAN` (dark pixels, dark current alone) use
    :func:`_poisson_tiny`, an inversion that needs one uniform per pixel and is several times
    faster than NumPy's sampler there (NumPy spends ~20 ns per value even at mean 0); the
    others use NumPy's sampler, on two streams for large requests.

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
    lam32 = np.asarray(lam, dtype=np.float32).ravel()
    tiny = lam32 < TINY_MEAN
    n_tiny = int(np.count_nonzero(tiny))
    if n_tiny == lam32.size:
        return _poisson_tiny(lam32, rng)
    if n_tiny == 0:
        return _poisson_numpy(lam32.astype(np.float64), rng)
    out = np.empty(lam32.size, dtype=np.float32)
    out[tiny] = _poisson_tiny(lam32[tiny], rng)
    big = ~tiny
    out[big] = _poisson_numpy(lam32[big].astype(np.float64), rng)
    return out


def _poisson_numpy(lam64: NDArray[np.float64], rng: np.random.Generator) -> NDArray[np.float32]:
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


def _poisson_tiny(lam32: NDArray[np.float32], rng: np.random.Generator) -> NDArray[np.float32]:
    """Poisson variates for means in ``[0, TINY_MEAN)`` by inverting the survival function.

    With one uniform ``u`` per pixel, ``k = #{j >= 1 : u < P(X >= j)}``. Since
    ``P(X >= 1) = 1 - exp(-lam) < lam``, only pixels with ``u < lam`` (a fraction ~``lam``)
    can be non-zero; for those the survival function is evaluated in float64, starting from
    ``P(X >= 1) = -expm1(-lam)`` and stepping ``P(X >= j+1) = P(X >= j) - P(X = j)``, which is
    exact to double precision for these small means.
    """
    u = rng.random(lam32.size)
    out = np.zeros(lam32.size, dtype=np.float32)
    cand = np.flatnonzero(u < lam32)
    if cand.size == 0:
        return out
    lh, uh = lam32[cand].astype(np.float64), u[cand]
    em1 = np.expm1(-lh)
    sf = -em1  # P(X >= 1)
    p = lh * (1.0 + em1)  # P(X = 1)
    pos = np.arange(cand.size)
    res = np.zeros(cand.size, dtype=np.float32)
    k = 0
    while k < 64:
        more = uh < sf  # X >= k + 1
        if not more.any():
            break
        pos, lh, uh, p, sf = pos[more], lh[more], uh[more], p[more], sf[more]
        k += 1
        res[pos] = k
        sf = sf - p  # P(X >= k + 1)
        p = p * lh / (k + 1)  # P(X = k + 1)
    out[cand] = res
    return out
