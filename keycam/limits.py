"""Size limits shared by keycam's readers and commands, and the memory budget.

Every size a user can ask for has a limit that is checked *before* memory is allocated, so
an input that cannot run is refused with one clear message instead of a ``MemoryError`` or
a hang:

- files that keycam parses are bounded in bytes and in nesting depth
  (:data:`MAX_CONFIG_BYTES`, :data:`MAX_NESTING`, :data:`MAX_KEY_HEADER_BYTES`);
- everything whose memory grows with a requested size (decoding a scene image, building a
  camera's operators, a stack of frames, an EMVA series, loading a key) is estimated first
  and compared with one **memory budget**: :data:`DEFAULT_MEMORY_BUDGET_MB` mebibytes, or
  the value of the environment variable :data:`MEMORY_BUDGET_ENV` (``KEYCAM_MAX_MEMORY_MB``).

The budget counts the data a run allocates, not the interpreter and its libraries (about
0.5 GB of address space for the heaviest command), so with the default budget a keycam
command stays below 1.5 GB of address space for every input it accepts.
"""

from __future__ import annotations

import os

__all__ = [
    "DEFAULT_MEMORY_BUDGET_MB",
    "MAX_CONFIG_BYTES",
    "MAX_KEY_HEADER_BYTES",
    "MAX_NESTING",
    "MEMORY_BUDGET_ENV",
    "MemoryLimitError",
    "check_memory",
    "format_bytes",
    "memory_budget_bytes",
]

#: Largest configuration file (TOML) keycam reads, in bytes.
MAX_CONFIG_BYTES = 1_000_000

#: Deepest nesting of tables, arrays and objects in a TOML configuration or a JSON header.
MAX_NESTING = 32

#: Largest JSON header of a key file, in bytes.
MAX_KEY_HEADER_BYTES = 1 << 20

#: Memory budget of one run, in MiB, unless ``KEYCAM_MAX_MEMORY_MB`` says otherwise.
DEFAULT_MEMORY_BUDGET_MB = 768

#: Environment variable that sets the memory budget in MiB (an integer >= 16).
MEMORY_BUDGET_ENV = "KEYCAM_MAX_MEMORY_MB"

_MIB = 1 << 20


class MemoryLimitError(ValueError):
    """A request whose estimated memory exceeds the budget; the message says what to reduce."""


def memory_budget_bytes() -> int:
    """The memory budget in bytes (``KEYCAM_MAX_MEMORY_MB`` or the default).

    Raises
    ------
    ValueError
        ``KEYCAM_MAX_MEMORY_MB`` is set but is not an integer number of MiB >= 16.
    """
    text = os.environ.get(MEMORY_BUDGET_ENV, "").strip()
    if not text:
        return DEFAULT_MEMORY_BUDGET_MB * _MIB
    try:
        mb = int(text)
    except ValueError:
        mb = 0
    if not 16 <= mb <= 1 << 30:
        raise ValueError(
            f"{MEMORY_BUDGET_ENV} must be an integer number of MiB >= 16, got {text[:40]!r}"
        )
    return mb * _MIB


def format_bytes(n: float) -> str:
    """``n`` bytes as a short human-readable size (``"1.5 GB"``, ``"320 MB"``)."""
    n = float(n)
    for unit, size in (("TB", 1e12), ("GB", 1e9), ("MB", 1e6), ("kB", 1e3)):
        if n >= size:
            return f"{n / size:.3g} {unit}"
    return f"{int(n)} bytes"


def check_memory(what: str, need_bytes: float, *, reduce: str) -> None:
    """Refuse, before allocating, work whose estimated memory exceeds the budget.

    Parameters
    ----------
    what : str
        What needs the memory (``"camera operators"``, ``"scene photo.jpg"``), for the message.
    need_bytes : float
        Estimated peak memory of that work, bytes (an upper estimate).
    reduce : str
        What the user can make smaller (``"faceplate.rows/cols or sensor.width_px/height_px"``).

    Raises
    ------
    MemoryLimitError
        ``need_bytes`` exceeds :func:`memory_budget_bytes`.
    """
    budget = memory_budget_bytes()
    if need_bytes > budget:
        raise MemoryLimitError(
            f"{what} would need about {format_bytes(need_bytes)} of memory, more than the "
            f"limit of {format_bytes(budget)}: reduce {reduce} (or raise the limit with "
            f"{MEMORY_BUDGET_ENV}=<MiB>)"
        )
