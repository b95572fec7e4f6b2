"""Printable meshes: one watertight tube per fiber and the matrix around them.

Tubes follow the printed polylines of :mod:`fabrication.sampling`. Each ring is a regular
polygon perpendicular to the bisector of the adjacent chords, with its vertices *on* the
nominal channel radius, so each tube lies within that radius of its polyline (facets sit
inside the circle). The ends are flat caps in the face planes z = 0 and z = L. Units: mm.

The matrix is the housing block (bundle extent plus the process's housing margin, from z = 0
to z = L) minus all tubes (see :func:`bundle_meshes`).

Files are written by :mod:`fabrication.meshio`.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass

import numpy as np

from fabrication.sampling import Polylines

__all__ = [
    "TriMesh",
    "bundle_meshes",
    "housing_box",
    "is_watertight",
    "iter_tube_batches",
    "tube_mesh",
]


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
