"""keycam fabrication: a key's routing as checked, printable fiber geometry.

- :mod:`fabrication.process` — printing processes (``ProcessConfig`` presets "resin", "fdm").
- :mod:`fabrication.decompose` — column/row/column decomposition and two-lane passes.
- :mod:`fabrication.routing` — collision-free centerlines (``route_permutation``, ``Route``).
- :mod:`fabrication.sampling` — the printed polylines (``sample_route``).
- :mod:`fabrication.checks` — manufacturability checks (``run_checks``, ``CheckReport``).
- :mod:`fabrication.mesh` / :mod:`fabrication.meshio` — tubes, matrix, STL/3MF, read-back.
- :mod:`fabrication.transmission` — per-fiber transmission from the geometry.
- :mod:`fabrication.export` — ``build`` and ``python -m fabrication.export``.

Depends on :mod:`optics` only (never on ``sim``).
"""
