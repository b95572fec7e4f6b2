"""Run NumPy's BLAS single-threaded for the many small matrix products of this package.

The LeNet's matrices are small (at most a few hundred columns); OpenBLAS's thread pool gains
nothing on them and, on a shared machine, spinning threads that compete with other processes
slow training down by an order of magnitude. :func:`single_thread_blas` sets the thread count
of every OpenBLAS loaded in the process to one for the duration of a ``with`` block, through
OpenBLAS's own ``*_set_num_threads`` entry points, and does nothing where those are not found.
"""

from __future__ import annotations

import contextlib
import ctypes
from collections.abc import Iterator
from functools import cache

__all__ = ["single_thread_blas"]

_PREFIXES = ("scipy_openblas", "openblas")
_SUFFIXES = ("64_", "")


@cache
def _openblas_handles() -> tuple[tuple[ctypes._CFuncPtr, ctypes._CFuncPtr], ...]:
    """(get, set) thread-count functions of each OpenBLAS mapped into this process."""
    import numpy  # noqa: F401  (NumPy's BLAS must be loaded before looking for it)

    try:
        with open("/proc/self/maps") as fh:
            paths = {line.split()[-1] for line in fh if "openblas" in line.lower()}
    except OSError:
        return ()
    found = []
    for path in sorted(paths):
        if not path.startswith("/"):
            continue
        try:
            lib = ctypes.CDLL(path)
        except OSError:
            continue
        for prefix in _PREFIXES:
            for suffix in _SUFFIXES:
                get = getattr(lib, f"{prefix}_get_num_threads{suffix}", None)
                put = getattr(lib, f"{prefix}_set_num_threads{suffix}", None)
                if get is not None and put is not None:
                    get.restype = ctypes.c_int
                    put.argtypes = [ctypes.c_int]
                    found.append((get, put))
                    break
            else:
                continue
            break
    return tuple(found)


@contextlib.contextmanager
def single_thread_blas() -> Iterator[None]:
    """Context manager: OpenBLAS uses one thread inside the block, its old count after."""
    handles = _openblas_handles()
    old = [get() for get, _ in handles]
    for _, put in handles:
        put(1)
    try:
        yield
    finally:
        for (_, put), n in zip(handles, old, strict=True):
            put(n)
