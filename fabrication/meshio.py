"""Mesh files: binary STL, 3MF, and reading the key back from the cores' STL.

Binary STL (mm, float32) is streamed in chunks so memory stays bounded; 3MF is a zip holding
one XML model with one object per body (written with vectorised number formatting, no XML
library needed). Every file goes through :func:`keycam.fileio.atomic_write`: a temporary file
renamed into place only when complete.
"""

from __future__ import annotations

import os
import struct
import zipfile
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from fabrication.mesh import TriMesh
from keycam.fileio import atomic_write

__all__ = ["read_key_from_stl", "read_stl", "write_3mf", "write_stl"]

_STL_DTYPE = np.dtype([("normal", "<f4", (3,)), ("v", "<f4", (3, 3)), ("attr", "<u2")])


def _stl_records(m: TriMesh) -> np.ndarray:
    tri = np.asarray(m.vertices, dtype=np.float32)[m.faces]
    nrm = np.cross(tri[:, 1] - tri[:, 0], tri[:, 2] - tri[:, 0])
    ln = np.linalg.norm(nrm, axis=1, keepdims=True)
    nrm = np.divide(nrm, ln, out=np.zeros_like(nrm), where=ln > 0)
    rec = np.zeros(tri.shape[0], dtype=_STL_DTYPE)
    rec["normal"] = nrm
    rec["v"] = tri
    return rec


def write_stl(
    path: str | os.PathLike[str],
    meshes: Iterator[TriMesh] | list[TriMesh],
    n_faces: int,
    *,
    overwrite: bool = False,
    header: str = "keycam",
) -> Path:
    """Stream meshes into one binary STL (mm), atomically.

    Parameters
    ----------
    meshes : iterable of TriMesh
        Written in order; their face counts must add up to ``n_faces``.
    n_faces : int
        Total number of triangles (the STL header needs it first).
    """
    written = 0
    with atomic_write(path, overwrite=overwrite) as fh:
        fh.write(header.encode("ascii", "replace")[:80].ljust(80, b" "))
        fh.write(struct.pack("<I", n_faces))
        for m in meshes:
            for lo in range(0, m.n_faces, 1 << 20):  # bounded memory for huge meshes
                rec = _stl_records(TriMesh(m.vertices, m.faces[lo : lo + (1 << 20)]))
                fh.write(rec.tobytes())
                written += rec.size
        if written != n_faces:
            raise RuntimeError(f"STL face count mismatch: header {n_faces}, wrote {written}")
    return Path(path)


def read_stl(path: str | os.PathLike[str]) -> np.ndarray:
    """Triangles ``(F, 3, 3)`` float64 of a binary STL file, mm."""
    raw = Path(path).read_bytes()
    if len(raw) < 84:
        raise ValueError(f"{path}: not a binary STL (too short)")
    (n,) = struct.unpack("<I", raw[80:84])
    if len(raw) != 84 + n * _STL_DTYPE.itemsize:
        raise ValueError(f"{path}: not a binary STL (size does not match {n} triangles)")
    rec = np.frombuffer(raw, dtype=_STL_DTYPE, count=n, offset=84)
    return rec["v"].astype(np.float64)


def _vertex_ids(v: np.ndarray) -> np.ndarray:
    """Index of each distinct float32 vertex (exact equality), via a 64-bit hash."""
    bits = np.ascontiguousarray(v, dtype=np.float32).view(np.uint32).astype(np.uint64)
    h = (
        bits[:, 0] * np.uint64(0x9E3779B97F4A7C15)
        ^ bits[:, 1] * np.uint64(0xC2B2AE3D27D4EB4F)
        ^ bits[:, 2] * np.uint64(0x165667B19E3779F9)
    )
    uniq, first, inv = np.unique(h, return_index=True, return_inverse=True)
    if not np.array_equal(v, v[first][inv.ravel()]):  # hash collision: exact (slow) path
        _, inv = np.unique(v, axis=0, return_inverse=True)
    del uniq
    return inv.ravel()


def read_key_from_stl(
    path: str | os.PathLike[str], sites_mm: np.ndarray, pitch_mm: float
) -> np.ndarray:
    """Recover the routing from the cores' STL alone.

    The triangles are split into connected bodies (shared vertices); every body must have one
    end cap at the lowest z (input face) and one at the highest z (output face). The centroid
    of each cap is matched to the nearest lattice site, which must lie within a quarter pitch.

    Parameters
    ----------
    path : path-like
        Binary STL of the cores (one body per fiber).
    sites_mm : (n, 2) float
        Lattice site centres, mm (x right, y down, from the face centre).
    pitch_mm : float
        Lattice pitch, mm.

    Returns
    -------
    (n,) int64
        Output site of each input site's fiber.
    """
    from scipy.sparse import coo_matrix
    from scipy.sparse.csgraph import connected_components
    from scipy.spatial import cKDTree

    tri = read_stl(path)
    vid = _vertex_ids(tri.reshape(-1, 3).astype(np.float32)).reshape(-1, 3)
    nv = int(vid.max()) + 1
    g = coo_matrix(
        (np.ones(vid.shape[0] * 2), (np.r_[vid[:, 0], vid[:, 1]], np.r_[vid[:, 1], vid[:, 2]])),
        shape=(nv, nv),
    )
    n_bodies, label = connected_components(g, directed=False)
    body = label[vid[:, 0]]
    n = sites_mm.shape[0]
    if n_bodies != n:
        raise ValueError(f"{path}: found {n_bodies} bodies, expected {n} fibers")
    z = tri[:, :, 2]
    z0, z1 = z.min(), z.max()
    tol = 1e-3
    cap_in = np.all(np.abs(z - z0) < tol, axis=1)
    cap_out = np.all(np.abs(z - z1) < tol, axis=1)
    tree = cKDTree(sites_mm)
    ends = []
    for cap in (cap_in, cap_out):
        cen = tri[cap].mean(axis=1)[:, :2]
        b = body[cap]
        sums = np.zeros((n_bodies, 2))
        np.add.at(sums, b, cen)
        cnt = np.bincount(b, minlength=n_bodies)
        if np.any(cnt == 0):
            raise ValueError(f"{path}: a body has no end cap on a face")
        c = sums / cnt[:, None]
        d, site = tree.query(c)
        if np.any(d > pitch_mm / 4):
            raise ValueError(f"{path}: an end cap is not on a lattice site")
        ends.append(site)
    routing = np.full(n, -1, dtype=np.int64)
    routing[ends[0]] = ends[1]
    if np.any(routing < 0) or not np.array_equal(np.sort(routing), np.arange(n)):
        raise ValueError(f"{path}: end caps do not form a permutation of the sites")
    return routing


_QUAD = np.frombuffer("".join(f"{i:04d}" for i in range(10000)).encode(), dtype=np.uint8).reshape(
    10000, 4
)


def _digits(a: np.ndarray, width: int | None = None) -> np.ndarray:
    """``(n, w)`` uint8 ASCII decimal of non-negative integers, NUL where no digit.

    Digits come four at a time from a lookup table; leading positions without a digit hold
    NUL bytes, which :func:`_xml_rows` drops. ``width`` keeps leading zeros (fixed width).
    """
    a = np.asarray(a, dtype=np.int64)
    top = int(a.max()) if a.size else 0
    w = max(1, len(str(top))) if width is None else width
    n_quads = -(-w // 4)
    out = np.empty((a.size, 4 * n_quads), dtype=np.uint8)
    rest = a.copy()
    for q in range(n_quads - 1, -1, -1):
        out[:, 4 * q : 4 * q + 4] = _QUAD[rest % 10000]
        rest //= 10000
    out = out[:, 4 * n_quads - w :]
    if width is None:
        # blank leading zeros (keep the last digit)
        lead = np.cumprod(out[:, :-1] == 48, axis=1).astype(bool)
        out[:, :-1][lead] = 0
    return out


def _xml_rows(parts: Sequence[Any]) -> bytes:
    """Concatenate per-row byte strings column by column, vectorised.

    ``parts`` alternates literal ``bytes`` and ``(n,)`` arrays; integer arrays are written in
    decimal, float arrays in fixed point with 5 decimals (10 nm, far below STL's float32).
    """
    n = next(p.shape[0] for p in parts if isinstance(p, np.ndarray))
    cols: list[np.ndarray] = []
    for p in parts:
        if not isinstance(p, np.ndarray):
            cols.append(np.broadcast_to(np.frombuffer(p, dtype=np.uint8), (n, len(p))))
        elif np.issubdtype(p.dtype, np.integer):
            cols.append(_digits(p))
        else:
            q = np.rint(np.asarray(p, dtype=np.float64) * 1e5).astype(np.int64)
            cols.append(np.where(q < 0, ord("-"), 0).astype(np.uint8)[:, None])
            aq = np.abs(q)
            cols.append(_digits(aq // 100000))
            cols.append(np.full((n, 1), ord("."), dtype=np.uint8))
            cols.append(_digits(aq % 100000 + 100000, 6)[:, 1:])  # 5 decimals, zero padded
    buf = np.hstack(cols).ravel()
    return buf[buf != 0].tobytes()


def _model_chunks(
    ns: str, bodies: list[tuple[str, Callable[[], Iterator[TriMesh]]]]
) -> Iterator[bytes]:
    """The 3MF model XML, in chunks of about half a million rows."""
    yield (
        f'<?xml version="1.0" encoding="UTF-8"?>\n<model unit="millimeter" '
        f'xml:lang="en-US" xmlns="{ns}"><resources>'
    ).encode()
    step = 1 << 19
    for oid, (name, meshes) in enumerate(bodies, start=1):
        yield f'<object id="{oid}" name="{name}" type="model"><mesh><vertices>'.encode()
        for m in meshes():
            for lo in range(0, m.vertices.shape[0], step):
                v = m.vertices[lo : lo + step]
                parts = [b'<vertex x="', v[:, 0], b'" y="', v[:, 1], b'" z="', v[:, 2], b'"/>']
                yield _xml_rows(parts)
        yield b"</vertices><triangles>"
        off = 0
        for m in meshes():
            for lo in range(0, m.n_faces, step):
                f = m.faces[lo : lo + step].astype(np.int64) + off
                parts = [b'<triangle v1="', f[:, 0], b'" v2="', f[:, 1], b'" v3="', f[:, 2]]
                yield _xml_rows([*parts, b'"/>'])
            off += m.vertices.shape[0]
        yield b"</triangles></mesh></object>"
    items = "".join(f'<item objectid="{oid}"/>' for oid in range(1, len(bodies) + 1))
    yield f"</resources><build>{items}</build></model>".encode()


def _threaded(chunks: Iterator[bytes], depth: int = 4) -> Iterator[bytes]:
    """Run a chunk generator in a worker thread; re-raise its errors here."""
    import queue
    import threading

    q: queue.Queue = queue.Queue(maxsize=depth)
    done = object()
    stop = threading.Event()

    def work() -> None:
        try:
            for c in chunks:
                if stop.is_set():
                    return
                q.put(c)
            q.put(done)
        except BaseException as exc:  # handed to the consumer
            q.put(exc)

    t = threading.Thread(target=work, daemon=True)
    t.start()
    try:
        while True:
            item = q.get()
            if item is done:
                break
            if isinstance(item, BaseException):
                raise item
            yield item
    finally:
        stop.set()
        while t.is_alive():  # unblock a worker waiting on a full queue
            try:
                q.get_nowait()
            except queue.Empty:
                t.join(0.05)


def write_3mf(
    path: str | os.PathLike[str],
    bodies: list[tuple[str, Callable[[], Iterator[TriMesh]]]],
    *,
    overwrite: bool = False,
) -> Path:
    """Write a 3MF file (mm) with one object per named body, atomically.

    Parameters
    ----------
    bodies : list of (name, meshes)
        ``meshes()`` returns an iterator over the body's meshes (it is called twice: for the
        vertices and for the triangles, so large bodies never sit in memory whole). Each body
        becomes one 3MF object; disjoint tubes stay disjoint.
    """
    ns = "http://schemas.microsoft.com/3dmanufacturing/core/2015/02"
    with atomic_write(path, overwrite=overwrite) as fh:
        with zipfile.ZipFile(fh, "w", compression=zipfile.ZIP_DEFLATED, compresslevel=1) as z:
            z.writestr(
                "[Content_Types].xml",
                '<?xml version="1.0" encoding="UTF-8"?>\n'
                '<Types xmlns="http://schemas.openxmlformats.org/package/2006/content-types">'
                '<Default Extension="rels" '
                'ContentType="application/vnd.openxmlformats-package.relationships+xml"/>'
                '<Default Extension="model" '
                'ContentType="application/vnd.ms-package.3dmanufacturing-3dmodel+xml"/>'
                "</Types>",
            )
            z.writestr(
                "_rels/.rels",
                '<?xml version="1.0" encoding="UTF-8"?>\n'
                '<Relationships xmlns="http://schemas.openxmlformats.org/package/2006/'
                'relationships"><Relationship Target="/3D/3dmodel.model" Id="rel0" '
                'Type="http://schemas.microsoft.com/3dmanufacturing/2013/01/3dmodel"/>'
                "</Relationships>",
            )
            with z.open("3D/3dmodel.model", "w", force_zip64=True) as out:
                # format in a worker thread while this one compresses (zlib releases the GIL)
                for chunk in _threaded(_model_chunks(ns, bodies)):
                    out.write(chunk)
    return Path(path)
