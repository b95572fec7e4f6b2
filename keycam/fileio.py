"""Atomic, permission-aware file writing shared by every keycam writer.

Every file keycam writes goes through :func:`atomic_write`: the bytes land in a temporary
file in the destination folder and are renamed into place only once complete, so an error
or Ctrl-C never leaves a half-written file behind. Secrets (key files) are created with mode
0600 and are never overwritten unless the caller says so.
"""

from __future__ import annotations

import contextlib
import os
import secrets
from collections.abc import Iterator
from pathlib import Path
from typing import BinaryIO

__all__ = ["atomic_write", "write_bytes_atomic"]


@contextlib.contextmanager
def atomic_write(
    path: str | os.PathLike[str],
    *,
    mode: int = 0o644,
    overwrite: bool = True,
) -> Iterator[BinaryIO]:
    """Open a temporary file next to ``path`` and rename it onto ``path`` on success.

    Parameters
    ----------
    path : path-like
        Final destination. Its folder must exist.
    mode : int
        Permission bits of the final file (``0o600`` for secrets).
    overwrite : bool
        If False and ``path`` exists, raise :class:`FileExistsError` before writing anything
        (and again, atomically, at the rename).

    Yields
    ------
    BinaryIO
        A binary file object to write to. If the ``with`` body raises (including
        ``KeyboardInterrupt``), the temporary file is removed and ``path`` is untouched.
    """
    path = Path(path)
    if not overwrite and path.exists():
        raise FileExistsError(f"{path} already exists (refusing to overwrite)")
    folder = path.parent if str(path.parent) else Path(".")
    # The temporary name is fixed before the file exists, so an interrupt that lands anywhere
    # (even inside the open call) can still remove it.
    part = folder / f".{path.name}.{secrets.token_hex(6)}.part"
    ours = True
    try:
        try:
            fd = os.open(part, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        except FileExistsError:
            ours = False  # not ours: never remove it
            raise
        os.fchmod(fd, mode)
        with os.fdopen(fd, "wb") as fh:
            yield fh
            fh.flush()
            os.fsync(fh.fileno())
        if overwrite:
            os.replace(part, path)
        else:
            # os.link fails if the destination appeared meanwhile: no silent overwrite.
            os.link(part, path)
            os.unlink(part)
    except BaseException:
        if ours:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(part)
        raise


def write_bytes_atomic(
    path: str | os.PathLike[str], data: bytes, *, mode: int = 0o644, overwrite: bool = True
) -> Path:
    """Write ``data`` to ``path`` atomically (see :func:`atomic_write`); return the path."""
    with atomic_write(path, mode=mode, overwrite=overwrite) as fh:
        fh.write(data)
    return Path(path)
