"""Calibration: recover a built device's key from frames of patterns shown to the camera.

A printed faceplate is never exactly its design, and a commercial incoherent bundle comes
with an unknown routing; the owner measures the key by showing the camera known patterns.
This package holds the pieces; ``python -m sim.calibrate`` is the command line.

- :mod:`~sim.calibration.graycode` -- the pattern set (Gray codes of every fiber's row and
  column, white, black), :func:`make_patterns`;
- :mod:`~sim.calibration.manifest` -- the JSON manifest naming each frame's role;
- :mod:`~sim.calibration.frames` -- reading recorded frames, :func:`simulate_frames`;
- :mod:`~sim.calibration.registration` -- where the output face lies on the sensor;
- :mod:`~sim.calibration.readout`, :mod:`~sim.calibration.decode` -- per-site readout, bit
  likelihoods, routing by minimum-cost matching;
- :mod:`~sim.calibration.solve` -- :func:`solve_key`: frames -> measured :class:`Key`.

Only the camera's public geometry (lens, lattice, relay, sensor) is used, never its key.
"""

import importlib
from typing import Any

_WHERE = {
    "read_frame": "frames",
    "read_frames": "frames",
    "simulate_frames": "frames",
    "PatternFrame": "graycode",
    "PatternSet": "graycode",
    "code_bits": "graycode",
    "frames_needed": "graycode",
    "gray_decode": "graycode",
    "gray_encode": "graycode",
    "make_patterns": "graycode",
    "pattern_summary": "graycode",
    "MANIFEST_NAME": "manifest",
    "CaptureInfo": "manifest",
    "Manifest": "manifest",
    "check_manifest": "manifest",
    "manifest_of": "manifest",
    "read_manifest": "manifest",
    "Registration": "registration",
    "register_face": "registration",
    "Calibration": "solve",
    "solve_key": "solve",
}


def __getattr__(name: str) -> Any:
    """Import a public name's module on first use (the CLI checks files before scipy loads)."""
    if name not in _WHERE:
        raise AttributeError(f"module 'sim.calibration' has no attribute {name!r}")
    value = getattr(importlib.import_module(f"sim.calibration.{_WHERE[name]}"), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(__all__)


__all__ = [
    "MANIFEST_NAME",
    "Calibration",
    "CaptureInfo",
    "Manifest",
    "PatternFrame",
    "PatternSet",
    "Registration",
    "check_manifest",
    "code_bits",
    "frames_needed",
    "gray_decode",
    "gray_encode",
    "make_patterns",
    "manifest_of",
    "pattern_summary",
    "read_frame",
    "read_frames",
    "read_manifest",
    "register_face",
    "simulate_frames",
    "solve_key",
]
