"""keycam fabrication: a key's routing as checked, printable fiber geometry.

- :mod:`fabrication.process` — printing processes (``ProcessConfig`` presets "resin", "fdm").
- :mod:`fabrication.decompose` — column/row/column decomposition and two-lane passes.
- :mod:`fabrication.braid` — phases and grid layouts of the braid (lanes, passes, two levels).
- :mod:`fabrication.clearance` — shortest stage that keeps every pair of fibers apart.
- :mod:`fabrication.routing` — collision-free centerlines (``route_permutation``, ``Route``)
  the lower bounds on bundle length (``lower_bound_mm``, ``bend_bound_mm``) and the floor of
  routes built this way (``two_lane_floor_mm``).
- :mod:`fabrication.sampling` — the printed polylines (``sample_route``).
- :mod:`fabrication.checks` — manufacturability checks (``run_checks``, ``CheckReport``).
- :mod:`fabrication.mesh` / :mod:`fabrication.meshio` — tubes, matrix, STL/3MF, read-back.
- :mod:`fabrication.transmission` — per-fiber transmission from the geometry.
- :mod:`fabrication.printed` — transmission of the printed device (``printed_transmission``),
  shared by the export and the camera simulation.
- :mod:`fabrication.export` — ``build`` and ``python -m fabrication.export``.

Depends on :mod:`optics` only (never on ``sim``).
"""
