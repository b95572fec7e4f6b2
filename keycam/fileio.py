"""Atomic, all-or-nothing file writing shared by every keycam writer.

Two tools:

:func:`atomic_write` / :func:`write_bytes_atomic`
    One file: the bytes land in a hidden temporary file in the destination folder and are
    renamed into place only once complete, so an error or Ctrl-C never leaves a half-written
    file. Secrets (key files) are created with mode 0600 and are never overwritten unless the
    caller says so.

:class:`keycam.outputs.OutputSet`
    Every output of one run, all or nothing. A command declares its inputs and plans its
    outputs *before* the work (so a name clash, an output that is one of the inputs, or an
    existing file without ``--force`` is refused before anything is computed), stages each
    output in a hidden temporary file while working, and publishes them all with
    :meth:`OutputSet.commit`. An error, Ctrl-C or SIGTERM before the commit removes every
    staged file and every folder the run created; the commit itself holds interrupts back,
    locks the output folders against a concurrent run, and rolls back (restoring replaced
    files) if one rename fails. Only a hard kill (SIGKILL, power loss) can leave hidden
    ``.*.part`` files behind.

Error messages always name the real output, never the hidden temporary file.
"""

from __future__ import annotations

import contextlib
import errno
import os
import secrets
from collections.abc import Iterator
from pathlib import Path
from typing import BinaryIO

__all__ = ["atomic_write", "write_bytes_atomic"]


def _part_name(path: Path, suffix: str = "part") -> Path:
    folder = path.parent if str(path.parent) else Path(".")
    return folder / f".{path.name}.{secrets.token_hex(6)}.{suffix}"


def _renamed(exc: OSError, target: Path) -> None:
    """Name ``target`` in ``exc`` instead of its hidden temporary file (or of nothing).

    A failed write (disk full, file too large) carries no file name; a failed open or rename
    names the temporary file. Either way the message should name the real output.
    """
    if exc.filename is None:
        exc.filename = str(target)
        return

    def ours(name: object) -> bool:
        if name is None or isinstance(name, int):
            return False
        base = Path(os.fsdecode(name)).name  # type: ignore[arg-type]
        return base.startswith(".") and f".{target.name}." in base

    if ours(exc.filename):
        exc.filename = str(target)
    if ours(exc.filename2):
        exc.filename2 = str(target)


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
        An ``OSError`` (disk full, ...) names ``path``, not the temporary file.
    """
    path = Path(path)
    if not overwrite and path.exists():
        raise FileExistsError(errno.EEXIST, "file exists (refusing to overwrite)", str(path))
    # The temporary name is fixed before the file exists, so an interrupt that lands anywhere
    # (even inside the open call) can still remove it.
    part = _part_name(path)
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
    except BaseException as exc:
        if ours:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(part)
        if isinstance(exc, OSError):
            _renamed(exc, path)
        raise


def write_bytes_atomic(
    path: str | os.PathLike[str], data: bytes, *, mode: int = 0o644, overwrite: bool = True
) -> Path:
    """Write ``data`` to ``path`` atomically (see :func:`atomic_write`); return the path."""
    with atomic_write(path, mode=mode, overwrite=overwrite) as fh:
        fh.write(data)
    return Path(path)
