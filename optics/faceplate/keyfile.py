"""The ``.key`` container: one file holding a key's arrays and JSON metadata.

Layout (all integers little-endian)::

    magic        8 bytes   b"\\x89KEYCAM\\n"
    header_len   8 bytes   uint64, length of the JSON header in bytes
    header       JSON (UTF-8): {"format": "keycam-key", "version": 1, "meta": {...},
                               "arrays": [{"name", "dtype", "shape", "offset", "nbytes"}, ...],
                               "checksum": "sha256:<64 hex>"}
    payload      the arrays' raw bytes, back to back (offsets relative to the payload start)

The checksum is the SHA-256 of the canonical JSON of the header *without* its ``checksum``
entry, followed by the payload. Reading checks the magic, the format name and version, that
the file is exactly as long as the header says, the checksum, and only then decodes arrays
(never with pickle). Any failure raises :class:`KeyFileError` naming the path and the problem.
Reading is bounded (:func:`read_key_file`): a FIFO, a device or a deeply nested header is
refused before anything large is read or parsed.

The checksum detects damage, not forgery: whoever can write the file can recompute it.

Key files are secrets: they are written atomically through :mod:`keycam.fileio` with mode
0600 and are never overwritten unless asked to.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import struct
from pathlib import Path
from typing import Any

import numpy as np

from keycam.fileio import atomic_write
from keycam.limits import MAX_KEY_HEADER_BYTES, check_memory
from keycam.loading import InputError, loads_json, open_regular, warn_if_shared

__all__ = [
    "FORMAT_NAME",
    "FORMAT_VERSION",
    "MAGIC",
    "KeyFileError",
    "read_key_file",
    "write_key_file",
]

MAGIC = b"\x89KEYCAM\n"
FORMAT_NAME = "keycam-key"
FORMAT_VERSION = 1
_MAX_HEADER = MAX_KEY_HEADER_BYTES
_ALLOWED_DTYPES = {"<i8", "<i4", "<f8", "<f4", "|b1", "|u1"}


class KeyFileError(ValueError):
    """A key file is missing parts, damaged, tampered with, or not a keycam key file."""


def canonical_json(obj: Any) -> bytes:
    """Deterministic JSON bytes (sorted keys, no spaces) used for checksums and fingerprints."""
    return json.dumps(obj, sort_keys=True, separators=(",", ":"), ensure_ascii=True).encode()


def _as_le(a: np.ndarray) -> np.ndarray:
    a = np.ascontiguousarray(a)
    if a.dtype == np.bool_:
        return a
    return a.astype(a.dtype.newbyteorder("<"), copy=False)


def write_key_file(
    path: str | os.PathLike[str],
    meta: dict[str, Any],
    arrays: dict[str, np.ndarray],
    *,
    overwrite: bool = False,
) -> Path:
    """Write ``meta`` and ``arrays`` to ``path`` as one key file (mode 0600, atomic).

    Parameters
    ----------
    path : path-like
        Destination (conventionally ending in ``.key``).
    meta : dict
        JSON-serialisable metadata.
    arrays : dict of str -> ndarray
        Arrays to store, in insertion order. Allowed dtypes: int32/64, float32/64, bool, uint8.
    overwrite : bool
        Replace an existing file. Default False: an existing file raises ``FileExistsError``.
    """
    specs = []
    chunks = []
    offset = 0
    for name, arr in arrays.items():
        a = _as_le(np.asarray(arr))
        if a.dtype.str not in _ALLOWED_DTYPES:
            raise ValueError(f"array {name!r}: unsupported dtype {a.dtype} for a key file")
        data = a.tobytes(order="C")
        specs.append(
            {
                "name": name,
                "dtype": a.dtype.str,
                "shape": list(a.shape),
                "offset": offset,
                "nbytes": len(data),
            }
        )
        chunks.append(data)
        offset += len(data)
    payload = b"".join(chunks)
    header = {"format": FORMAT_NAME, "version": FORMAT_VERSION, "meta": meta, "arrays": specs}
    digest = hashlib.sha256(canonical_json(header) + payload).hexdigest()
    header["checksum"] = "sha256:" + digest
    hbytes = canonical_json(header)
    with atomic_write(path, mode=0o600, overwrite=overwrite) as fh:
        fh.write(MAGIC)
        fh.write(struct.pack("<Q", len(hbytes)))
        fh.write(hbytes)
        fh.write(payload)
    return Path(path)


def read_key_file(path: str | os.PathLike[str]) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
    """Read and verify a key file written by :func:`write_key_file`.

    The file is read in bounded steps: it must be a regular file (a FIFO or ``/dev/zero``
    is refused at once); the magic and the header length are checked before the header is
    read; the header's nesting depth before it is parsed; the payload's declared size against
    the file's size and the memory budget (:func:`keycam.limits.check_memory`) before the
    payload is read. A key file that other users can read loads with a
    :class:`keycam.loading.SharedSecretWarning`.

    Returns
    -------
    meta : dict
        The stored metadata.
    arrays : dict of str -> ndarray
        Fresh (writable) copies of the stored arrays.

    Raises
    ------
    KeyFileError
        Truncated, damaged, tampered or foreign file (the message names the path).
    FileNotFoundError
        No file at ``path``.
    keycam.loading.InputError
        ``path`` is not a regular file (a folder, FIFO, device).
    keycam.limits.MemoryLimitError
        The key is larger than the memory budget allows.

    Notes
    -----
    The SHA-256 checksum detects damage, not forgery: anyone who can edit the file can
    recompute it. A key file is protected by being kept secret (mode 0600).
    """
    path = Path(path)

    def fail(problem: str) -> KeyFileError:
        return KeyFileError(f"{path}: {problem}")

    start = len(MAGIC) + 8
    with open_regular(path, what="key file") as fh:
        st = os.fstat(fh.fileno())
        size = st.st_size
        head = fh.read(start)
        if len(head) < start:
            if head and MAGIC.startswith(head[: len(MAGIC)]):
                raise fail("truncated key file (shorter than its header)")
            raise fail("not a keycam key file (missing magic bytes)")
        if head[: len(MAGIC)] != MAGIC:
            raise fail("not a keycam key file (missing magic bytes)")
        (hlen,) = struct.unpack("<Q", head[len(MAGIC) :])
        if hlen > _MAX_HEADER:
            raise fail(f"damaged key file (implausible header length {hlen} bytes)")
        if start + hlen > size:
            raise fail("truncated key file (header cut short)")
        hbytes = fh.read(hlen)
        if len(hbytes) < hlen:
            raise fail("truncated key file (header cut short)")
        try:
            header = loads_json(hbytes, what="header")
        except InputError as exc:
            raise fail(f"damaged key file ({exc})") from None
        if not isinstance(header, dict) or header.get("format") != FORMAT_NAME:
            raise fail("not a keycam key file (wrong format name)")
        version = header.get("version")
        if version != FORMAT_VERSION:
            shown = version if isinstance(version, int) and not isinstance(version, bool) else "?"
            raise fail(f"unsupported key file version {shown} (this keycam reads {FORMAT_VERSION})")
        checksum = header.pop("checksum", None)
        specs = header.get("arrays")
        if not isinstance(checksum, str) or not checksum.startswith("sha256:"):
            raise fail("damaged key file (missing checksum)")
        if not isinstance(specs, list) or not isinstance(header.get("meta"), dict):
            raise fail("damaged key file (header lacks 'meta' or 'arrays')")
        try:
            expected = sum(int(s["nbytes"]) for s in specs)
        except (TypeError, KeyError, ValueError, OverflowError):
            raise fail("damaged key file (bad array table)") from None
        have = size - start - hlen
        if have < expected:
            raise fail(f"truncated key file (payload has {have} of {expected} bytes)")
        if have > expected:
            raise fail(f"damaged key file ({have - expected} unexpected trailing bytes)")
        # payload, array copies and the key's own validation: about four payloads at once
        check_memory(f"key file {path}", 4 * expected, reduce="the key (fewer fibers)")
        payload = fh.read(expected + 1)
    if len(payload) != expected:
        raise fail("truncated key file (the file changed while it was read)")
    digest = hashlib.sha256(canonical_json(header) + payload).hexdigest()
    if "sha256:" + digest != checksum:
        raise fail("checksum mismatch: the key file was damaged or tampered with")
    arrays: dict[str, np.ndarray] = {}
    for s in specs:
        try:
            name, dtype, shape = str(s["name"]), str(s["dtype"]), tuple(int(v) for v in s["shape"])
            off, nb = int(s["offset"]), int(s["nbytes"])
        except (TypeError, KeyError, ValueError, OverflowError):
            raise fail("damaged key file (bad array table)") from None
        name = name[:40]
        if dtype not in _ALLOWED_DTYPES:
            raise fail(f"array {name!r} has unsupported dtype")
        dt = np.dtype(dtype)
        if len(shape) > 8 or min(shape, default=0) < 0 or nb < 0 or off < 0:
            raise fail(f"array {name!r} has a bad shape, size or offset")
        count = math.prod(shape)
        if off + nb > len(payload) or count * dt.itemsize != nb:
            raise fail(f"array {name!r} does not fit its declared shape")
        arrays[name] = (
            np.frombuffer(payload, dtype=dt, count=count, offset=off).reshape(shape).copy()
        )
    warn_if_shared(path, st.st_mode)
    return header["meta"], arrays
