"""Printable meshes: one watertight tube per fiber and the matrix around them.

Tubes follow the printed polylines of :mod:`fabrication.sampling`. Each ring is a regular
polygon perpendicular to the bisector of the adjacent chords, with its vertices *on* the
nominal channel radius, so each tube lies within that radius of its polyline (facets sit
inside the circle). The ends are flat caps in the face planes z = 0 and z = L. Units: mm.

The matrix is the housing block (bundle extent plus the process's housing margin, from z = 0
to z = L) minus all tubes (see :func:`matrix_mesh`).

Files: binary STL (streamed in batches, so memory stays bounded) and 3MF (a zip holding one
XML model with one object per body), both written atomically through
:func:`optics.fileio.atomic_write`.
"""

from __future__ import annotations

import io
import os
import struct
import zipfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from fabrication.sampling import Polylines
from optics.fileio import atomic_write

__all__ = [
    "TriMesh",
    "bundle_meshes",
    "housing_box",
    "is_watertight",
    "iter_tube_batches",
    "matrix_mesh",
    "read_key_from_stl",
    "read_stl",
    "tube_mesh",
    "write_3mf",
    "write_stl",
]

_STL_DTYPE = np.dtype([("normal", "<f4", (3,)), ("v", "<f4", (3, 3)), ("attr", "<u2")])


@dataclass(frozen=True)
class TriMesh:
    """Indexed triangle mesh. ``vertices (V, 3)`` mm, ``faces (F, 3)`` int, outward CCW."""

    vertices: np.ndarray
    faces: np.ndarray

    @property
    def n_faces(self) -> int:
        """Number of triangles."""
        return int(self.faces.shape[0])


def _ring_frames(pts: np.ndarray, starts: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Unit vectors spanning each ring plane, for concatenated polylines.

    ``pts (M, 3)`` vertices of all polylines back to back, ``starts`` the index of each
    polyline's first vertex (plus the total at the end).
    """
    m = pts.shape[0]
    seg = np.diff(pts, axis=0)
    seg /= np.linalg.norm(seg, axis=1, keepdims=True)
    first = np.zeros(m, dtype=bool)
    first[starts[:-1]] = True
    last = np.zeros(m, dtype=bool)
    last[starts[1:] - 1] = True
    t = np.zeros((m, 3))
    # incoming and outgoing chord directions (not across polyline boundaries)
    t[1:] += np.where(first[1:, None], 0.0, seg)
    t[:-1] += np.where(last[:-1, None], 0.0, seg)
    t /= np.linalg.norm(t, axis=1, keepdims=True)
    ex = np.array([1.0, 0.0, 0.0])
    n1 = ex[None, :] - t[:, :1] * t
    n1 /= np.linalg.norm(n1, axis=1, keepdims=True)
    n2 = np.cross(t, n1)
    return n1, n2


def tube_mesh(vertex_lists: list[np.ndarray], radius_mm: float, sides: int) -> TriMesh:
    """Watertight tubes around polylines, all in one mesh (one connected body each).

    Parameters
    ----------
    vertex_lists : list of (m_i, 3) float
        Polyline vertices, z strictly increasing, first and last segment along z.
    radius_mm : float
        Distance of the polygon vertices from the polyline, mm.
    sides : int
        Polygon sides.
    """
    counts = np.array([len(v) for v in vertex_lists], dtype=np.int64)
    starts = np.concatenate([[0], np.cumsum(counts)])
    pts = np.concatenate(vertex_lists, axis=0).astype(np.float64)
    n1, n2 = _ring_frames(pts, starts)
    phi = 2.0 * np.pi * np.arange(sides) / sides
    ring = (
        pts[:, None, :]
        + radius_mm * np.cos(phi)[None, :, None] * n1[:, None, :]
        + radius_mm * np.sin(phi)[None, :, None] * n2[:, None, :]
    )
    vertices = ring.reshape(-1, 3)
    # side faces between consecutive rings of the same polyline
    ring_idx = np.arange(pts.shape[0])
    is_last = np.zeros(pts.shape[0], dtype=bool)
    is_last[starts[1:] - 1] = True
    a = ring_idx[~is_last]
    i = np.arange(sides)
    ip = (i + 1) % sides
    va_i = a[:, None] * sides + i[None, :]
    va_p = a[:, None] * sides + ip[None, :]
    vb_i = va_i + sides
    vb_p = va_p + sides
    side = np.concatenate(
        [
            np.stack([va_i, va_p, vb_p], axis=-1).reshape(-1, 3),
            np.stack([va_i, vb_p, vb_i], axis=-1).reshape(-1, 3),
        ]
    )
    # caps: fans over the first (normal -t) and last (normal +t) ring
    k = np.arange(1, sides - 1)
    f0 = starts[:-1] * sides
    fl = (starts[1:] - 1) * sides
    cap0 = np.stack(
        [np.repeat(f0, k.size), (f0[:, None] + k[None, :] + 1).ravel(), (f0[:, None] + k).ravel()],
        axis=-1,
    )
    cap1 = np.stack(
        [np.repeat(fl, k.size), (fl[:, None] + k[None, :]).ravel(), (fl[:, None] + k + 1).ravel()],
        axis=-1,
    )
    faces = np.concatenate([side, cap0, cap1]).astype(np.int64)
    return TriMesh(vertices, faces)


def iter_tube_batches(
    pl: Polylines, radius_mm: float, sides: int, batch: int = 256
) -> Iterator[tuple[np.ndarray, TriMesh]]:
    """Tube meshes of ``batch`` fibers at a time: yields ``(fiber indices, mesh)``."""
    n = pl.n_fibers
    for lo in range(0, n, batch):
        idx = np.arange(lo, min(n, lo + batch))
        yield idx, tube_mesh([pl.fiber_vertices(int(i)) for i in idx], radius_mm, sides)


def housing_box(pl: Polylines, radius_mm: float, margin_mm: float) -> tuple[np.ndarray, np.ndarray]:
    """Lower and upper corner ``(3,)`` of the matrix block, mm."""
    lo = pl.xy.min(axis=(0, 1)) - radius_mm - margin_mm
    hi = pl.xy.max(axis=(0, 1)) + radius_mm + margin_mm
    return np.array([lo[0], lo[1], 0.0]), np.array([hi[0], hi[1], float(pl.z[-1])])


def _box_mesh(lo: np.ndarray, hi: np.ndarray) -> TriMesh:
    x0, y0, z0 = lo
    x1, y1, z1 = hi
    v = np.array(
        [
            [x0, y0, z0], [x1, y0, z0], [x1, y1, z0], [x0, y1, z0],
            [x0, y0, z1], [x1, y0, z1], [x1, y1, z1], [x0, y1, z1],
        ]
    )  # fmt: skip
    f = np.array(
        [
            [0, 2, 1], [0, 3, 2], [4, 5, 6], [4, 6, 7], [0, 1, 5], [0, 5, 4],
            [1, 2, 6], [1, 6, 5], [2, 3, 7], [2, 7, 6], [3, 0, 4], [3, 4, 7],
        ]
    )  # fmt: skip
    return TriMesh(v, f)


def bundle_meshes(
    pl: Polylines,
    radius_mm: float,
    sides: int,
    margin_mm: float,
    *,
    matrix: bool = True,
    batch: int = 256,
    progress: Callable[[Iterator], Iterator] | None = None,
) -> tuple[TriMesh, TriMesh | None]:
    """Cores (all tubes, one body per fiber) and matrix (block minus tubes), sharing vertices.

    Vertices are float32 (the precision of STL), faces int32. The matrix is built directly:
    the tubes are disjoint, run from face to face and stay inside the block, so block minus
    tubes is the tube walls with reversed orientation, the four block sides, and the two
    block faces triangulated around the tube end rings by manifold3d's polygon triangulator,
    which keeps every input edge so the rings close exactly (the result a boolean would give,
    in a fraction of the time and memory).

    Raises ``RuntimeError`` if a face triangulation does not close against the rings.
    """
    from manifold3d import triangulate

    n = pl.n_fibers
    verts, side_f, cap_f = [], [], []
    first_ring = np.empty(n, dtype=np.int64)
    last_ring = np.empty(n, dtype=np.int64)
    off = 0
    batches = iter_tube_batches(pl, radius_mm, sides, batch)
    for idx, m in progress(batches) if progress else batches:
        rings = pl.rings[:, idx].sum(axis=0)
        starts = np.concatenate([[0], np.cumsum(rings)])
        n_side = int((starts[-1] - idx.size) * sides * 2)
        if not np.all(np.isfinite(m.vertices)):
            raise RuntimeError("tube mesh has non-finite vertices")
        verts.append(m.vertices.astype(np.float32))
        side_f.append((m.faces[:n_side] + off).astype(np.int32))
        cap_f.append((m.faces[n_side:] + off).astype(np.int32))
        first_ring[idx] = off + starts[:-1] * sides
        last_ring[idx] = off + (starts[1:] - 1) * sides
        off += m.vertices.shape[0]
    vertices = np.concatenate(verts)
    del verts
    if vertices.shape[0] >= 2**31:
        raise ValueError(f"too many mesh vertices ({vertices.shape[0]}) for 32-bit indices")
    sides_all = np.concatenate(side_f)
    cores = TriMesh(vertices, np.concatenate([sides_all, *cap_f]))
    del cap_f, side_f
    if not matrix:
        return cores, None
    lo, hi = housing_box(pl, radius_mm, margin_mm)
    box = _box_mesh(lo, hi)
    nv = vertices.shape[0]
    faces = [sides_all[:, ::-1], (box.faces[4:] + nv).astype(np.int32)]  # walls, block sides
    phi_rev = np.arange(sides)[::-1]
    for top in (False, True):
        ids = (last_ring if top else first_ring)[:, None] + phi_rev[None, :]  # CW holes
        outer = np.arange(4) + (4 if top else 0)
        ring_xy = vertices[ids.ravel(), :2].astype(np.float64).reshape(n, sides, 2)
        polys = [box.vertices[outer, :2], *ring_xy]
        tri = np.asarray(triangulate(polys), dtype=np.int64)
        if tri.shape[0] != 4 + ids.size + 2 * n - 2:
            raise RuntimeError("face triangulation of the matrix does not close")
        tri = np.concatenate([outer + nv, ids.ravel()])[tri].astype(np.int32)
        faces.append(tri if top else tri[:, ::-1])
    mat = TriMesh(
        np.concatenate([vertices, box.vertices.astype(np.float32)]), np.concatenate(faces)
    )
    return cores, mat


def matrix_mesh(pl: Polylines, radius_mm: float, sides: int, margin_mm: float) -> TriMesh:
    """Housing block minus all tubes, as one watertight indexed mesh (see :func:`bundle_meshes`)."""
    return bundle_meshes(pl, radius_mm, sides, margin_mm)[1]


# -- files ------------------------------------------------------------------------------------


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


def is_watertight(m: TriMesh) -> bool:
    """True if every directed edge appears once and its reverse once (closed, oriented)."""
    f = np.asarray(m.faces, dtype=np.int64)
    if f.size == 0:
        return False
    nv = int(m.vertices.shape[0])
    a = f.ravel()
    b = f[:, [1, 2, 0]].ravel()
    if np.any(a == b):
        return False
    fwd = a * nv + b
    rev = b * nv + a
    fs = np.sort(fwd)
    if np.any(fs[1:] == fs[:-1]):
        return False
    return bool(np.array_equal(fs, np.sort(rev)))


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


def _digits(a: np.ndarray, width: int | None = None) -> np.ndarray:
    """``(n, w)`` uint8 ASCII decimal of non-negative integers, NUL where no digit.

    Leading positions without a digit hold NUL bytes, which :func:`_xml_rows` drops.
    """
    a = np.asarray(a, dtype=np.int64)
    top = int(a.max()) if a.size else 0
    w = max(1, len(str(top))) if width is None else width
    out = np.zeros((a.size, w), dtype=np.uint8)
    rest = a.copy()
    for k in range(w - 1, -1, -1):
        out[:, k] = (rest % 10 + 48).astype(np.uint8)
        rest //= 10
    # blank leading zeros (keep the last digit)
    lead = np.ones(a.size, dtype=bool)
    for k in range(w - 1):
        lead &= out[:, k] == 48
        out[lead, k] = 0
    return out


def _xml_rows(parts: list[bytes | np.ndarray]) -> bytes:
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
                w = io.BufferedWriter(out, buffer_size=1 << 20)
                w.write(
                    f'<?xml version="1.0" encoding="UTF-8"?>\n<model unit="millimeter" '
                    f'xml:lang="en-US" xmlns="{ns}"><resources>'.encode()
                )
                for oid, (name, meshes) in enumerate(bodies, start=1):
                    w.write(f'<object id="{oid}" name="{name}" type="model"><mesh>'.encode())
                    w.write(b"<vertices>")
                    for m in meshes():
                        for lo in range(0, m.vertices.shape[0], 1 << 19):
                            v = m.vertices[lo : lo + (1 << 19)]
                            parts = [b'<vertex x="', v[:, 0], b'" y="', v[:, 1]]
                            parts += [b'" z="', v[:, 2], b'"/>']
                            w.write(_xml_rows(parts))
                    w.write(b"</vertices><triangles>")
                    off = 0
                    for m in meshes():
                        for lo in range(0, m.n_faces, 1 << 19):
                            f = m.faces[lo : lo + (1 << 19)].astype(np.int64) + off
                            parts = [b'<triangle v1="', f[:, 0], b'" v2="', f[:, 1]]
                            parts += [b'" v3="', f[:, 2], b'"/>']
                            w.write(_xml_rows(parts))
                        off += m.vertices.shape[0]
                    w.write(b"</triangles></mesh></object>")
                w.write(b"</resources><build>")
                for oid in range(1, len(bodies) + 1):
                    w.write(f'<item objectid="{oid}"/>'.encode())
                w.write(b"</build></model>")
                w.flush()
    return Path(path)
