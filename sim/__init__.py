"""The keycam camera: lens -> fiber faceplate -> sensor, composed into one affine operator.

- :mod:`sim.camera` -- :class:`~sim.camera.CameraConfig` (TOML) and :class:`~sim.camera.Camera`
  (``capture``, ``operator``, the separate stages, a conventional twin).
- :mod:`sim.scene` -- putting arbitrary images onto the camera's scene grid.
- :mod:`sim.io` -- scene reading and validation, frame/sidecar/preview writing.
- :mod:`sim.capture` -- ``python -m sim.capture``.
- :mod:`sim.calibration` -- measuring a built device's key from frames of Gray-code patterns;
  :mod:`sim.calibrate` -- ``python -m sim.calibrate``.

Nothing is imported here eagerly, so ``python -m sim.capture`` starts fast.
"""
