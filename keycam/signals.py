"""Interrupts (Ctrl-C, SIGTERM) for keycam's commands.

:func:`keycam.cli.run` installs :func:`handlers` before a command imports anything heavy.
The first SIGINT or SIGTERM is recorded and raised as :class:`KeyboardInterrupt`; later
ones are only recorded, so the clean-up that the first one starts (removing temporary
files) is not itself interrupted. Because the signal is recorded, an interrupt that some
library swallows (for example inside a ``__del__``) still fails the run:
:func:`requested` stays true, :class:`keycam.outputs.OutputSet` refuses to commit, and the
command exits with 128 + the signal number.

:func:`deferred` holds signals back for a few system calls that must not be split (the
renames that publish a run's outputs, and their roll-back).
"""

from __future__ import annotations

import contextlib
import signal
import threading
from collections.abc import Iterator
from types import FrameType
from typing import Any

__all__ = ["deferred", "handlers", "requested", "reset"]

_SIGNALS = (signal.SIGINT, signal.SIGTERM)
_received: list[int] = []  # signal numbers
_active = False  # inside handlers()


def requested() -> int | None:
    """The first interrupting signal received under :func:`handlers`, or None."""
    return _received[0] if _received else None


def reset() -> None:
    """Forget received signals (a new run starts)."""
    _received.clear()


def _handler(signum: int, frame: FrameType | None) -> None:
    first = not _received
    _received.append(int(signum))
    if first:
        raise KeyboardInterrupt


@contextlib.contextmanager
def handlers() -> Iterator[None]:
    """Record SIGINT/SIGTERM and raise ``KeyboardInterrupt`` on the first (main thread only).

    Outside the main thread (where Python cannot install handlers) this does nothing.
    """
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    global _active
    reset()
    saved: dict[signal.Signals, Any] = {}
    try:
        for sig in _SIGNALS:
            saved[sig] = signal.signal(sig, _handler)
        _active = True
        yield
    finally:
        _active = False
        for sig, h in saved.items():
            signal.signal(sig, h if h is not None else signal.SIG_DFL)


@contextlib.contextmanager
def deferred() -> Iterator[None]:
    """Hold SIGINT/SIGTERM back inside the block; one that arrives is raised after it.

    The Python-level handlers are swapped for ones that only record the signal, so not even
    a signal that was already on its way when the block began can interrupt it. After the
    block, a recorded signal raises ``KeyboardInterrupt`` (and, under :func:`handlers`,
    counts as :func:`requested`).
    """
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    got: list[int] = []

    def record(signum: int, frame: FrameType | None) -> None:
        got.append(int(signum))

    saved: dict[signal.Signals, Any] = {}
    try:
        for sig in _SIGNALS:
            saved[sig] = signal.signal(sig, record)
        yield
    finally:
        for sig, h in saved.items():
            signal.signal(sig, h if h is not None else signal.SIG_DFL)
        if got:
            first = not _received
            if _active:
                _received.extend(got)
            if first or not _active:
                raise KeyboardInterrupt
