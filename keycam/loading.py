"""Bounded readers for the files keycam parses: configurations, JSON headers, secrets.

Every reader here

- opens the path without blocking and accepts only a **regular file**: a folder, a FIFO, a
  device (``/dev/zero``) or a socket is refused with a message saying what it is, instead of
  hanging or reading without end;
- reads at most a stated number of bytes (checked against the file's size first);
- limits the **nesting depth** of TOML and JSON *before* parsing (the standard parsers
  recurse, and a 1 kB file can nest 500 levels deep);
- raises :class:`InputError` (a ``ValueError``) whose message names the file and the problem,
  so a command prints it as its one ``error:`` line (a missing or unreadable file raises the
  usual ``FileNotFoundError`` / ``PermissionError``, whose ``filename`` is the path).

:func:`load_toml` is what every ``--config`` goes through; :func:`loads_json` checks a JSON
text's depth before ``json.loads``; :func:`open_regular` and :func:`read_bounded` are the
building blocks for other formats (key files use them). :func:`warn_if_shared` warns when a
secret file is readable by other users.
"""

from __future__ import annotations

import json
import os
import re
import stat
import tomllib
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any, BinaryIO

from keycam.limits import MAX_CONFIG_BYTES, MAX_NESTING

__all__ = [
    "InputError",
    "KeycamWarning",
    "SharedSecretWarning",
    "check_nesting",
    "load_toml",
    "loads_json",
    "open_regular",
    "read_bounded",
    "warn_if_shared",
]


class InputError(ValueError):
    """An input file that cannot be used; the message names the file and the reason."""


class KeycamWarning(UserWarning):
    """Something the user should know; commands print it as one ``warning:`` line."""


class SharedSecretWarning(KeycamWarning):
    """A secret file (a key) that users other than its owner can read."""


def _kind(mode: int) -> str:
    if stat.S_ISDIR(mode):
        return "a folder"
    if stat.S_ISFIFO(mode):
        return "a FIFO (named pipe)"
    if stat.S_ISCHR(mode) or stat.S_ISBLK(mode):
        return "a device"
    if stat.S_ISSOCK(mode):
        return "a socket"
    return "not a regular file"


def open_regular(path: str | os.PathLike[str], *, what: str) -> BinaryIO:
    """Open ``path`` for binary reading if it is a regular file; never blocks.

    Parameters
    ----------
    path : path-like
        The file.
    what : str
        What the file is for (``"config"``, ``"key"``), used in messages.

    Raises
    ------
    FileNotFoundError, PermissionError, OSError
        As ``open`` raises them (the path is the exception's ``filename``).
    InputError
        Not a regular file (a folder, FIFO, device, socket), with the path in the message.
    """
    p = Path(path)
    flags = os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_CLOEXEC", 0)
    try:
        fd = os.open(p, flags)
    except ValueError as exc:  # e.g. an embedded NUL character
        raise InputError(f"{what} {p!r}: cannot open ({exc})") from None
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            raise InputError(f"{what} {p}: is {_kind(st.st_mode)}, not a file")
        if hasattr(os, "set_blocking"):
            os.set_blocking(fd, True)
        return os.fdopen(fd, "rb")
    except BaseException:
        os.close(fd)
        raise


def read_bounded(path: str | os.PathLike[str], *, what: str, max_bytes: int) -> bytes:
    """All bytes of the regular file ``path``, refusing files larger than ``max_bytes``.

    The size is checked before reading, and at most ``max_bytes + 1`` bytes are read even if
    the file grows meanwhile.
    """
    with open_regular(path, what=what) as fh:
        size = os.fstat(fh.fileno()).st_size
        data = fh.read(max_bytes + 1) if size <= max_bytes else b""
    if size > max_bytes or len(data) > max_bytes:
        raise InputError(
            f"{what} {Path(path)}: file is too large ({max(size, len(data))} bytes; "
            f"the limit is {max_bytes} bytes)"
        )
    return data


# Tokens that change the nesting depth or start/end strings and comments.
_TOML_TOKENS = re.compile(r"\"\"\"|'''|[\"'#\[\]{}\n\\]")
_JSON_TOKENS = re.compile(r"[\"\[\]{}\\]")


def _toml_depth(text: str, limit: int) -> int:
    """Deepest bracket nesting of a TOML text outside strings and comments (stops past limit)."""
    depth = deepest = 0
    state = ""  # "", '"', "'", '"""', "'''", "#"
    escape_at = -1
    for m in _TOML_TOKENS.finditer(text):
        tok, pos = m.group(), m.start()
        if state == "#":
            if tok == "\n":
                state = ""
            continue
        if state in ('"', '"""'):
            if tok == "\\":
                if pos != escape_at:
                    escape_at = pos + 1  # the next character is escaped
                continue
            if pos == escape_at:
                continue
            if tok == state or (state == '"' and tok == '"""'):
                state = ""
            elif state == '"' and tok == "\n":
                state = ""  # unterminated: let the parser report it
            continue
        if state in ("'", "'''"):
            if tok == state or (state == "'" and tok == "'''") or (state == "'" and tok == "\n"):
                state = ""
            continue
        if tok in ('"', "'", '"""', "'''", "#"):
            state = tok
        elif tok in "[{":
            depth += 1
            if depth > deepest:
                deepest = depth
                if deepest > limit:
                    return deepest
        elif tok in "]}":
            depth = max(0, depth - 1)
    return deepest


def _json_depth(text: str, limit: int) -> int:
    depth = deepest = 0
    in_string = False
    escape_at = -1
    for m in _JSON_TOKENS.finditer(text):
        tok, pos = m.group(), m.start()
        if in_string:
            if tok == "\\":
                if pos != escape_at:
                    escape_at = pos + 1
            elif tok == '"' and pos != escape_at:
                in_string = False
            continue
        if tok == '"':
            in_string = True
        elif tok in "[{":
            depth += 1
            if depth > deepest:
                deepest = depth
                if deepest > limit:
                    return deepest
        elif tok in "]}":
            depth = max(0, depth - 1)
    return deepest


def _data_depth(obj: Any, limit: int) -> int:
    """Nesting depth of parsed dicts/lists, without recursion (stops past ``limit``)."""
    deepest = 0
    stack: list[tuple[Any, int]] = [(obj, 0)]
    while stack:
        o, d = stack.pop()
        if isinstance(o, dict | list):
            d += 1
            deepest = max(deepest, d)
            if deepest > limit:
                return deepest
            children: Iterator[Any] = iter(o.values() if isinstance(o, dict) else o)
            stack.extend((c, d) for c in children)
    return deepest


def check_nesting(text: str, *, what: str, syntax: str, limit: int = MAX_NESTING) -> None:
    """Refuse a TOML or JSON text nested deeper than ``limit`` (before parsing it).

    Parameters
    ----------
    syntax : {"toml", "json"}
        How strings and comments are delimited.
    """
    scan = _toml_depth if syntax == "toml" else _json_depth
    if scan(text, limit) > limit:
        raise InputError(f"{what}: nested more than {limit} levels deep")


def load_toml(
    path: str | os.PathLike[str], *, what: str = "config", max_bytes: int = MAX_CONFIG_BYTES
) -> dict[str, Any]:
    """Read a TOML file within the size and nesting limits.

    Raises
    ------
    FileNotFoundError, PermissionError
        No file, or no permission to read it.
    InputError
        Not a regular file; larger than ``max_bytes``; not UTF-8;
        nested too deeply (brackets, or dotted keys after parsing); not valid TOML. The
        message names the file and never quotes its values.
    """
    p = Path(path)
    label = f"{what} {p}"
    data = read_bounded(p, what=what, max_bytes=max_bytes)
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        raise InputError(f"{label}: not a text (UTF-8 TOML) file") from None
    check_nesting(text, what=label, syntax="toml")
    try:
        doc = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        # tomllib's messages give a position, never the offending text.
        raise InputError(f"{label}: not valid TOML ({exc})") from None
    except RecursionError:
        raise InputError(f"{label}: nested more than {MAX_NESTING} levels deep") from None
    if _data_depth(doc, MAX_NESTING) > MAX_NESTING:
        raise InputError(f"{label}: nested more than {MAX_NESTING} levels deep")
    return doc


def loads_json(text: str | bytes, *, what: str, limit: int = MAX_NESTING) -> Any:
    """``json.loads`` after checking the nesting depth; :class:`InputError` on bad JSON."""
    if isinstance(text, bytes):
        try:
            text = text.decode("utf-8")
        except UnicodeDecodeError:
            raise InputError(f"{what}: not UTF-8 text") from None
    check_nesting(text, what=what, syntax="json", limit=limit)
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise InputError(f"{what}: not valid JSON ({exc.msg} at character {exc.pos})") from None
    except RecursionError:
        raise InputError(f"{what}: nested more than {limit} levels deep") from None


def warn_if_shared(path: str | os.PathLike[str], mode: int, *, what: str = "key file") -> None:
    """Warn (:class:`SharedSecretWarning`) if a secret file is readable by group or others."""
    if mode & 0o077:
        warnings.warn(
            f"{what} {Path(path)} is readable by other users (mode {stat.S_IMODE(mode):04o}); "
            f"restrict it with: chmod 600 {Path(path)}",
            SharedSecretWarning,
            stacklevel=3,
        )
