"""Command-line plumbing shared by keycam's tools.

House rules for every CLI: bad input prints exactly one line ``error: ...`` on stderr and
exits with status 2, with no traceback and no partial output; progress bars appear only on a
terminal and never with ``--quiet``.

A command module keeps its top level light (``keycam.cli`` and the standard library only)
and imports numpy, scipy, pydantic and its own heavy modules *inside* ``main``: :func:`run`
installs the interrupt handling first, so a Ctrl-C that lands during those imports ends the
run cleanly too::

    from keycam.cli import ArgumentParser, CLIError, run

    def main(argv=None) -> int:
        args = _parser().parse_args(argv)
        import numpy as np          # heavy imports here, not at the top
        ...

    if __name__ == "__main__":
        sys.exit(run(main))
"""

from __future__ import annotations

import argparse
import math
import os
import sys
import warnings
from collections.abc import Callable, Iterable, Iterator, Sequence
from typing import Any, NoReturn, TypeVar

from keycam import signals

__all__ = ["ArgumentParser", "CLIError", "format_error", "int_at_least", "progress", "run"]

T = TypeVar("T")

#: Longest ``error:`` line, characters (longer messages are cut with an ellipsis).
MAX_MESSAGE = 600


class CLIError(Exception):
    """Bad input detected by a CLI; the message becomes the one ``error:`` line."""


class ArgumentParser(argparse.ArgumentParser):
    """``argparse.ArgumentParser`` whose usage errors are one line and exit 2."""

    def error(self, message: str) -> NoReturn:
        sys.stderr.write(f"error: {' '.join(message.split())} (see {self.prog} --help)\n")
        raise SystemExit(2)


def _is_validation_error(exc: BaseException) -> bool:
    # pydantic's ValidationError, recognised without importing pydantic (slow to import).
    return type(exc).__name__ == "ValidationError" and hasattr(exc, "errors")


def format_error(exc: BaseException) -> str:
    """One-line description of ``exc`` suitable for ``error: ...``.

    Validation errors are described by :func:`keycam.config.describe_validation_error`
    (field names and short values, never whole tables or secret values).
    """
    if _is_validation_error(exc):
        from keycam.config import describe_validation_error

        msg = describe_validation_error(exc)
    elif isinstance(exc, FileNotFoundError) and exc.filename:
        msg = f"no such file: {exc.filename}"
    elif isinstance(exc, FileExistsError) and exc.filename:
        msg = f"file exists: {exc.filename}"
    elif isinstance(exc, IsADirectoryError) and exc.filename:
        msg = f"is a folder, not a file: {exc.filename}"
    elif isinstance(exc, OSError) and exc.strerror and exc.filename:
        msg = f"{exc.strerror}: {exc.filename}"
    elif isinstance(exc, MemoryError):
        msg = (
            "out of memory; use smaller inputs or settings, or lower KEYCAM_MAX_MEMORY_MB "
            "so that the limits refuse such work before it starts"
        )
    elif isinstance(exc, RecursionError):
        msg = "input nested too deeply"
    else:
        msg = str(exc) or type(exc).__name__
    msg = " ".join(msg.split())
    if len(msg) > MAX_MESSAGE:
        msg = msg[: MAX_MESSAGE - 1] + "…"
    return msg


def _silence_stdout() -> None:
    """After a broken pipe: point stdout at /dev/null so the final flush cannot fail."""
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        os.close(devnull)
    except (OSError, ValueError, AttributeError):
        pass


def _say(line: str) -> None:
    try:
        sys.stderr.write(line + "\n")
        sys.stderr.flush()
    except (OSError, ValueError):
        pass


def _interrupted(signum: int | None) -> int:
    _say("error: interrupted; no partial output was left")
    return 128 + (signum or 2)


def _show_warnings(caught: list[warnings.WarningMessage]) -> None:
    from keycam.loading import KeycamWarning

    seen: set[str] = set()
    for w in caught:
        if issubclass(w.category, KeycamWarning):
            text = " ".join(str(w.message).split())
            if text not in seen:
                seen.add(text)
                _say(f"warning: {text}")
        else:
            warnings.showwarning(w.message, w.category, w.filename, w.lineno)


def run(
    main: Callable[[Sequence[str] | None], int | None], argv: Sequence[str] | None = None
) -> int:
    """Run ``main(argv)`` under the house rules and return the process exit status.

    - ``CLIError``, ``ValueError`` (pydantic's ``ValidationError`` is one), ``OSError``,
      ``MemoryError`` and ``RecursionError`` become one ``error:`` line and status 2;
    - Ctrl-C (SIGINT) and SIGTERM become one line and status 130 / 143, also when they land
      during ``main``'s imports, and also when a library swallowed the ``KeyboardInterrupt``;
    - a closed stdout (``... | head``) ends the run silently with status 141;
    - keycam warnings (:class:`keycam.loading.KeycamWarning`) are printed as ``warning:``
      lines after a successful run; a refused run prints only its error line.

    Any other exception is a bug and propagates with its traceback.
    """
    with signals.handlers():
        try:
            with warnings.catch_warnings(record=True) as caught:
                warnings.simplefilter("default")
                status = main(argv)
                if signals.requested() is not None:
                    raise KeyboardInterrupt
                sys.stdout.flush()
            _show_warnings(caught)
        except KeyboardInterrupt:
            return _interrupted(signals.requested())
        except BrokenPipeError:
            _silence_stdout()
            return 141
        except (CLIError, ValueError, OSError, MemoryError, RecursionError) as exc:
            if signals.requested() is not None:
                return _interrupted(signals.requested())
            _say(f"error: {format_error(exc)}")
            return 2
        return int(status or 0)


def int_at_least(name: str, text: str, lo: int = 1) -> int:
    """``text`` (a command-line value of option ``name``) as an integer ``>= lo``.

    Raises :class:`CLIError` naming the option: "--frames: expected an integer, got 'x'".
    """
    try:
        v = int(text)
    except ValueError:
        raise CLIError(f"{name}: expected an integer, got {text!r}") from None
    if v < lo:
        raise CLIError(f"{name}: must be >= {lo}, got {v}")
    return v


def float_at_least(name: str, text: str, lo: float, unit: str, *, strict: bool = False) -> float:
    """``text`` (a command-line value of option ``name``) as a finite number ``>= lo``
    (``> lo`` with ``strict``).

    Raises :class:`CLIError` naming the option: "--attenuation: expected a number (dB/cm),
    got 'x'".
    """
    try:
        v = float(text)
    except ValueError:
        raise CLIError(f"{name}: expected a number ({unit}), got {text!r}") from None
    if not math.isfinite(v) or v < lo or (strict and v == lo):
        raise CLIError(
            f"{name}: must be a finite number {'>' if strict else '>='} {lo:g} ({unit}), got {v:g}"
        )
    return v


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
