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

from sim.calibration.frames import read_frame, read_frames, simulate_frames
from sim.calibration.graycode import (
    PatternFrame,
    PatternSet,
    code_bits,
    frames_needed,
    gray_decode,
    gray_encode,
    make_patterns,
    pattern_summary,
)
from sim.calibration.manifest import (
    MANIFEST_NAME,
    CaptureInfo,
    Manifest,
    check_manifest,
    manifest_of,
    read_manifest,
)
from sim.calibration.registration import Registration, register_face
from sim.calibration.solve import Calibration, solve_key

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
