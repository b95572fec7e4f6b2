"""All-or-nothing writing of every output of one run: :class:`OutputSet`.

A command declares its inputs and plans its outputs *before* the work (so a name clash, an
output that is one of the inputs, or an existing file without ``--force`` is refused before
anything is computed), stages each output in a hidden temporary file while working, and
publishes them all with :meth:`OutputSet.commit`. An error, Ctrl-C or SIGTERM before the
commit removes every staged file and every folder the run created; the commit itself holds
interrupts back (:func:`keycam.signals.deferred`), locks the output folders against a
concurrent run, and rolls back (restoring replaced files) if one rename fails.
"""

from __future__ import annotations

import contextlib
import os
import stat
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

from keycam import signals
from keycam.fileio import _part_name, _renamed

__all__ = ["OutputError", "OutputSet"]


class OutputError(ValueError):
    """An output that must not be written (clash, input, folder, exists without --force)."""


@dataclass
class _Planned:
    target: Path  # as the user named it (for messages)
    real: Path  # absolute, symlinks of the folder resolved
    mode: int
    part: Path | None = None  # staged, complete temporary file


def _identity(path: Path) -> tuple[int, int] | None:
    try:
        st = os.stat(path)
    except (OSError, ValueError):
        return None
    return (st.st_dev, st.st_ino)


def _real(path: Path) -> Path:
    # The folder's symlinks are resolved; the final name is kept (a symlink named as an
    # output is replaced, never followed), unless it points at an input (checked apart).
    return Path(os.path.realpath(path.parent)) / path.name


class OutputSet:
    """Every output file of one run, written all or nothing.

    Parameters
    ----------
    overwrite : bool
        Replace existing files (a command's ``--force``). Without it an existing output is
        refused at :meth:`plan` time and, atomically, again at :meth:`commit` time.
    inputs : iterable of path-like
        Files the run reads. No output may be one of them (same resolved path, or the same
        file under another name: a hard link or a symlink), even with ``overwrite``.

    Use it as a context manager; leaving the block without :meth:`commit` (an error, an
    interrupt, or simply no commit) removes every staged file and created folder::

        with OutputSet(overwrite=args.force, inputs=[args.key]) as out:
            report = out.plan(args.report)          # refused here, before any work
            ...                                     # the work
            out.write_bytes(report, data)           # staged in a hidden temporary file
            with out.staging(mesh_path) as tmp:     # for writers that take a path
                write_stl(tmp, ...)
            out.commit()                            # all files appear, or none
    """

    def __init__(
        self, *, overwrite: bool = False, inputs: Iterable[str | os.PathLike[str]] = ()
    ) -> None:
        self.overwrite = bool(overwrite)
        self._inputs: list[tuple[Path, Path, tuple[int, int] | None]] = []
        self._planned: dict[str, _Planned] = {}
        self._created: list[Path] = []
        self._committed = False
        for p in inputs:
            self.add_input(p)

    # -- planning ----------------------------------------------------------------------------
    def add_input(self, path: str | os.PathLike[str]) -> None:
        """Declare a file the run reads (outputs may never be it)."""
        p = Path(path)
        self._inputs.append((p, Path(os.path.realpath(p)), _identity(p)))
        for planned in self._planned.values():
            self._check_not_input(planned.target, planned.real)

    def _check_not_input(self, target: Path, real: Path) -> None:
        ident = _identity(target)
        real_target = Path(os.path.realpath(target))
        for given, resolved, ident_in in self._inputs:
            if (
                real == resolved
                or real_target == resolved
                or (ident is not None and ident == ident_in)
            ):
                raise OutputError(
                    f"output {target} is the input {given}; choose another output name"
                )

    def plan(self, path: str | os.PathLike[str], *, mode: int = 0o644) -> Path:
        """Declare an output before the work; return it as a ``Path``.

        Raises
        ------
        OutputError
            Two outputs with one name (also differing only in case), an output that is an
            input, an output that is an existing folder, an existing file without
            ``overwrite``, or a folder on the way that is a file.
        """
        target = Path(path)
        if not target.name or target.name in (".", ".."):
            raise OutputError(f"output {target}: not a file name")
        real = _real(target)
        key = os.path.normcase(str(real)).casefold()
        if key in self._planned:
            raise OutputError(
                f"two outputs of this run would be named {target} "
                f"(also {self._planned[key].target}); use distinct names"
            )
        self._check_not_input(target, real)
        try:
            st = os.lstat(target)
        except FileNotFoundError:
            st = None
        except NotADirectoryError:
            raise OutputError(f"output {target}: a folder on its path is a file") from None
        if st is not None:
            if stat.S_ISDIR(st.st_mode):
                raise OutputError(f"output {target} exists and is a folder")
            if not self.overwrite:
                raise OutputError(
                    f"{target} already exists; pass --force to replace it, or choose another "
                    "output name"
                )
        parent = next((q for q in [real.parent, *real.parent.parents] if q.exists()), None)
        if parent is None or not parent.is_dir():
            raise OutputError(f"output {target}: a folder on its path is a file")
        if not os.access(parent, os.W_OK | os.X_OK):
            raise OutputError(f"output {target}: cannot write into {parent} (permission denied)")
        self._planned[key] = _Planned(target, real, mode)
        return target

    def planned(self) -> list[Path]:
        """The planned outputs, in planning order."""
        return [p.target for p in self._planned.values()]

    # -- staging -----------------------------------------------------------------------------
    def _entry(self, path: str | os.PathLike[str]) -> _Planned:
        key = os.path.normcase(str(_real(Path(path)))).casefold()
        entry = self._planned.get(key)
        if entry is None:
            raise ValueError(f"output {path} was not planned")  # a programming error
        if self._committed:
            raise ValueError("this output set was already committed")
        return entry

    def _make_parents(self, folder: Path) -> None:
        missing = []
        for q in [folder, *folder.parents]:
            if q.exists():
                break
            missing.append(q)
        for q in reversed(missing):
            q.mkdir()
            self._created.append(q)

    @contextlib.contextmanager
    def staging(self, path: str | os.PathLike[str]) -> Iterator[Path]:
        """A temporary path to write the output ``path`` to (for writers that take a path).

        The writer may replace the temporary file (atomic writers do); when the block ends,
        the file there is what :meth:`commit` publishes. Errors name ``path``.
        """
        entry = self._entry(path)
        self._make_parents(entry.real.parent)
        part = _part_name(entry.real)
        if entry.part is not None:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(entry.part)
            entry.part = None
        try:
            yield part
            os.chmod(part, entry.mode)
        except BaseException as exc:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(part)
            if isinstance(exc, OSError):
                _renamed(exc, entry.target)
            raise
        entry.part = part

    def open(self, path: str | os.PathLike[str]) -> contextlib.AbstractContextManager[BinaryIO]:
        """Write the output ``path`` through a file object (staged until :meth:`commit`)."""

        @contextlib.contextmanager
        def cm() -> Iterator[BinaryIO]:
            with self.staging(path) as part:
                fd = os.open(part, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
                with os.fdopen(fd, "wb") as fh:
                    yield fh
                    fh.flush()
                    os.fsync(fh.fileno())

        return cm()

    def write_bytes(self, path: str | os.PathLike[str], data: bytes) -> Path:
        """Stage ``data`` as the output ``path``; return the path."""
        with self.open(path) as fh:
            fh.write(data)
        return Path(path)

    # -- publishing --------------------------------------------------------------------------
    def _locks(self) -> contextlib.ExitStack:
        stack = contextlib.ExitStack()
        try:
            import fcntl
        except ImportError:  # pragma: no cover - not POSIX
            return stack
        folders = sorted({e.real.parent for e in self._planned.values()}, key=str)
        for folder in folders:
            fd = os.open(folder, os.O_RDONLY)
            stack.callback(os.close, fd)
            fcntl.flock(fd, fcntl.LOCK_EX)  # released when fd is closed
        return stack

    def commit(self) -> list[Path]:
        """Publish every staged output at once; return them.

        Raises
        ------
        KeyboardInterrupt
            An interrupt was received earlier in the run (nothing is published).
        OutputError
            Without ``overwrite``, an output appeared meanwhile (nothing is published).
        ValueError
            An output was planned but never staged (a programming error).
        """
        missing = [e.target for e in self._planned.values() if e.part is None]
        if missing:
            raise ValueError(f"outputs planned but not written: {', '.join(map(str, missing))}")
        if signals.requested() is not None:
            raise KeyboardInterrupt
        done: list[tuple[_Planned, Path | None]] = []  # (entry, backup of a replaced file)
        backup: Path | None = None
        with signals.deferred(), self._locks():
            try:
                for e in self._planned.values():
                    assert e.part is not None
                    backup = None
                    if self.overwrite:
                        if os.path.lexists(e.real):
                            backup = _part_name(e.real, "old")
                            os.link(e.real, backup, follow_symlinks=False)
                        os.replace(e.part, e.real)
                    else:
                        try:
                            os.link(e.part, e.real)  # fails if the file appeared meanwhile
                        except FileExistsError:
                            raise OutputError(
                                f"{e.target} already exists (it appeared while this run was "
                                "working: another run?); nothing was written; pass --force "
                                "to replace it"
                            ) from None
                        os.unlink(e.part)
                    done.append((e, backup))
                    backup = None
                    e.part = None
            except BaseException as exc:
                if backup is not None:  # the failing output's copy of the file it would replace
                    with contextlib.suppress(OSError):
                        os.unlink(backup)
                for e, old in reversed(done):
                    with contextlib.suppress(OSError):
                        if old is not None:
                            os.replace(old, e.real)
                        else:
                            os.unlink(e.real)
                if isinstance(exc, OSError):
                    failed = next((e for e in self._planned.values() if e.part is not None), None)
                    if failed is not None:
                        _renamed(exc, failed.target)
                raise
            for _, old in done:
                if old is not None:
                    with contextlib.suppress(OSError):
                        os.unlink(old)
            self._committed = True
        return [e.target for e, _ in done]

    def abort(self) -> None:
        """Remove every staged file and every folder this run created (if empty)."""
        for e in self._planned.values():
            if e.part is not None:
                with contextlib.suppress(FileNotFoundError):
                    os.unlink(e.part)
                e.part = None
        if not self._committed:
            for folder in reversed(self._created):
                with contextlib.suppress(OSError):
                    folder.rmdir()
        self._created.clear()

    def __enter__(self) -> OutputSet:
        return self

    def __exit__(self, *exc: object) -> None:
        if not self._committed:
            self.abort()
