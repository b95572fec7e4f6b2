"""Builders of hostile inputs for the hardening tests (``tests/hardening``).

Importable from any test as ``from keycam_hostile import ...`` (``tests/`` is on pytest's
``pythonpath``). Everything is written where the caller says (a ``tmp_path``).
"""

from __future__ import annotations

import resource
import signal
import struct
import subprocess
import zlib
from collections.abc import Mapping
from pathlib import Path

import numpy as np
from keycam_testing import run_module, small_camera_toml
from PIL import Image

from optics.faceplate import FaceplateConfig, keygen

#: A small, fast camera (8 x 8 fibers, 32 x 32 pixels) with a recognisable key seed.
SECRET_SEED = 987654321
#: The hostile-input camera assumes its key's transmission: its tests are about inputs and
#: memory, and routing large lattices for a printed transmission is tested elsewhere.
SMALL_TOML = small_camera_toml(faceplate=f"seed = {SECRET_SEED}") + (
    '\n[transmission]\nsource = "assumed"\n'
)

#: Address-space limit the acceptance criteria name: 1.5 GB.
AS_LIMIT = 1_500_000_000


def zero_stream(n_bytes: int, chunk: int = 1 << 22) -> bytes:
    """A valid zlib stream of ``n_bytes`` zero bytes, built in milliseconds.

    After a full flush the compressor starts afresh, so every further chunk of zeros
    compresses to the same bytes: the stream is one chunk's output repeated (a decompression
    bomb of ~1000:1), with the right Adler-32 checksum at the end.
    """
    c = zlib.compressobj(9)
    k, rest = divmod(n_bytes, chunk)
    parts = []
    if k:
        z = bytes(chunk)
        parts.append(c.compress(z) + c.flush(zlib.Z_FULL_FLUSH))
        if k > 1:
            parts.append((c.compress(z) + c.flush(zlib.Z_FULL_FLUSH)) * (k - 1))
    body = b"".join(parts) + c.compress(bytes(rest)) + c.flush()
    return body[:-4] + struct.pack(">I", ((n_bytes % 65521) << 16) | 1)


def _chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


def png16(width: int, height: int, stream: bytes, *, colour_type: int = 6) -> bytes:
    """A 16-bit RGB(A) PNG with the given IHDR size and raw IDAT stream."""
    ihdr = struct.pack(">IIBBBBB", width, height, 16, colour_type, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + _chunk(b"IHDR", ihdr)
        + b"".join(
            _chunk(b"IDAT", stream[i : i + (1 << 20)]) for i in range(0, len(stream), 1 << 20)
        )
        + _chunk(b"IEND", b"")
    )


def png16_zeros(width: int, height: int, *, colour_type: int = 6) -> bytes:
    """A black 16-bit PNG of the given size (compresses ~1000:1)."""
    bpp = 8 if colour_type == 6 else 6
    return png16(width, height, zero_stream(height * (1 + width * bpp)), colour_type=colour_type)


def deep_toml(levels: int = 500) -> str:
    """A ~1 kB TOML document nested ``levels`` deep (inline arrays)."""
    return "a = " + "[" * levels + "1" + "]" * levels + "\n"


def deep_toml_tables(levels: int = 500) -> str:
    """A TOML document nested ``levels`` deep through inline tables."""
    return "a = " + "{b = " * levels + "1" + "}" * levels + "\n"


def key_with_header(path: Path, header: bytes, payload: bytes = b"") -> Path:
    """A file with a key file's magic and the given (raw) JSON header."""
    path.write_bytes(b"\x89KEYCAM\n" + struct.pack("<Q", len(header)) + header + payload)
    return path


def small_key(path: Path, *, seed: int = 3) -> Path:
    keygen(FaceplateConfig(rows=8, cols=8, block_size=4, seed=seed)).save(path)
    return path


def scene(path: Path, shape=(40, 50)) -> Path:
    y, x = np.mgrid[0 : shape[0], 0 : shape[1]]
    img = (127 + 120 * np.sin(x / 7.0) * np.cos(y / 5.0)).astype(np.uint8)
    Image.fromarray(img).save(path)
    return path


def snapshot(folder: Path) -> dict[str, tuple[int, int, bytes]]:
    """Every file under ``folder``: size, mtime and first bytes (hidden files included)."""
    out = {}
    for p in sorted(folder.rglob("*")):
        if p.is_file():
            st = p.stat()
            out[str(p.relative_to(folder))] = (st.st_size, st.st_mtime_ns, p.read_bytes()[:64])
        else:
            out[str(p.relative_to(folder))] = (0, 0, b"dir")
    return out


def run_limited(
    module: str,
    *args: object,
    cwd: Path,
    address_space: int | None = None,
    file_size: int | None = None,
    env: Mapping[str, str] | None = None,
    timeout: float = 300,
) -> subprocess.CompletedProcess:
    """``python -m module args`` under an address-space and/or file-size limit.

    A file-size limit simulates a full disk: writes past it fail with ``EFBIG`` (SIGXFSZ is
    ignored in the child).
    """

    def limit() -> None:
        if address_space is not None:
            resource.setrlimit(resource.RLIMIT_AS, (address_space, address_space))
        if file_size is not None:
            signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
            resource.setrlimit(resource.RLIMIT_FSIZE, (file_size, file_size))

    return run_module(module, *args, cwd=cwd, env=env, timeout=timeout, preexec_fn=limit)
