"""Command-line plumbing shared by keycam's tools.

House rules for every CLI: bad input prints exactly one line ``error: ...`` on stderr and
exits with status 2, with no traceback and no partial output; progress bars appear only on a
terminal and never with ``--quiet``.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Iterable, Iterator, Sequence
from typing import Any, NoReturn, TypeVar

__all__ = ["ArgumentParser", "CLIError", "format_error", "progress", "run"]

T = TypeVar("T")


class CLIError(Exception):
    """Bad input detected by a CLI; the message becomes the one ``error:`` line."""


class ArgumentParser(argparse.ArgumentParser):
    """``argparse.ArgumentParser`` whose usage errors are one line and exit 2."""

    def error(self, message: str) -> NoReturn:
        sys.stderr.write(f"error: {message} (see {self.prog} --help)\n")
        raise SystemExit(2)


def format_error(exc: BaseException) -> str:
    """One-line description of ``exc`` suitable for ``error: ...``."""
    from pydantic import ValidationError

    if isinstance(exc, ValidationError):
        parts = []
        for err in exc.errors():
            loc = ".".join(str(p) for p in err.get("loc", ())) or exc.title
            parts.append(f"{loc}: {err.get('msg', '')} (got {err.get('input')!r})")
        msg = f"invalid {exc.title} - " + "; ".join(parts)
    elif isinstance(exc, FileNotFoundError) and exc.filename:
        msg = f"no such file: {exc.filename}"
    elif isinstance(exc, FileExistsError) and exc.filename:
        msg = f"file exists: {exc.filename}"
    elif isinstance(exc, OSError) and exc.strerror and exc.filename:
        msg = f"{exc.strerror}: {exc.filename}"
    else:
        msg = str(exc) or type(exc).__name__
    return " ".join(msg.split())


def run(
    main: Callable[[Sequence[str] | None], int | None], argv: Sequence[str] | None = None
) -> int:
    """Run ``main(argv)`` under the house rules and return the process exit status.

    ``CLIError``, ``ValueError``, ``OSError`` and pydantic ``ValidationError`` become one
    ``error:`` line and status 2; Ctrl-C becomes status 130 with one line. Any other
    exception is a bug and propagates with its traceback.
    """
    from pydantic import ValidationError

    try:
        status = main(argv)
    except KeyboardInterrupt:
        sys.stderr.write("error: interrupted; no partial output was left\n")
        return 130
    except (CLIError, ValueError, OSError, ValidationError) as exc:
        sys.stderr.write(f"error: {format_error(exc)}\n")
        return 2
    return int(status or 0)


def progress(
    iterable: Iterable[T],
    *,
    total: int | None = None,
    desc: str = "",
    quiet: bool = False,
    unit: str = "it",
    **kwargs: Any,
) -> Iterator[T]:
    """Wrap ``iterable`` in a tqdm bar on a terminal; plain iteration otherwise.

    The bar writes to stderr and is disabled when stderr is not a TTY or ``quiet`` is true,
    so pipes, logs and tests see no bar.
    """
    if quiet or not sys.stderr.isatty():
        yield from iterable
        return
    from tqdm import tqdm

    yield from tqdm(iterable, total=total, desc=desc, unit=unit, leave=False, **kwargs)
