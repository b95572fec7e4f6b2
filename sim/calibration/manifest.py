"""The JSON manifest of a calibration pattern set: which frame plays which role.

``patterns`` writes ``manifest.json`` next to the pattern images; a copy travels with the
recorded frames, extended by a ``capture`` section (exposure, source). ``solve`` rebuilds the
pattern set for the camera at hand and refuses a manifest that does not describe exactly that
set (another camera, another lattice, frames added, removed or renamed).

Schema (strict: unknown keys are errors)::

    {"format": "keycam-calibration-patterns", "version": 1,
     "camera": {"digest", "lattice", "rows", "cols", "scene_shape_px", "sensor_shape_px"},
     "code": {"kind": "binary-reflected Gray", "bits_x", "bits_y", "complements"},
     "frames": [{"name", "role": "white"|"black"|"gray", "axis", "bit", "inverted",
                 "code_value"}, ...],
     "capture": {"exposure_s", "source", "key_fingerprint"}}      (with recorded frames)
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

if TYPE_CHECKING:  # pragma: no cover
    from sim.calibration.graycode import PatternSet

__all__ = [
    "MANIFEST_FORMAT",
    "MANIFEST_NAME",
    "CaptureInfo",
    "Manifest",
    "check_manifest",
    "manifest_of",
    "read_manifest",
]

MANIFEST_FORMAT = "keycam-calibration-patterns"
MANIFEST_VERSION = 1
MANIFEST_NAME = "manifest.json"
_MAX_MANIFEST_BYTES = 1 << 20
_FROZEN = ConfigDict(extra="forbid", frozen=True)


class _FrameModel(BaseModel):
    model_config = _FROZEN
    name: str = Field(pattern=r"^[A-Za-z0-9_.-]{1,64}$", description="File stem of the frame.")
    role: Literal["white", "black", "gray"] = Field(description="What the frame shows.")
    axis: Literal["x", "y"] | None = Field(None, description="Gray frames: coded axis.")
    bit: int | None = Field(None, ge=0, le=31, description="Gray frames: code bit (0 = LSB).")
    inverted: bool = Field(False, description="Gray frames: the complement.")
    code_value: int = Field(ge=0, le=255, description="8-bit sRGB grey of the lit parts.")


class _CameraModel(BaseModel):
    model_config = _FROZEN
    digest: str = Field(max_length=64, description="Digest of the pattern-relevant config.")
    lattice: Literal["square", "hexagonal"]
    rows: int = Field(ge=1, description="Fiber rows.")
    cols: int = Field(ge=1, description="Fiber columns.")
    scene_shape_px: tuple[int, int] = Field(description="Scene grid (rows, cols), pixels.")
    sensor_shape_px: tuple[int, int] = Field(description="Sensor (height, width), pixels.")


class _CodeModel(BaseModel):
    model_config = _FROZEN
    kind: Literal["binary-reflected Gray"]
    bits_x: int = Field(ge=0, le=31, description="Gray bits along x (columns).")
    bits_y: int = Field(ge=0, le=31, description="Gray bits along y (rows).")
    complements: bool = Field(description="Every Gray frame is followed by its complement.")


class CaptureInfo(BaseModel):
    """How the frames were recorded (the manifest's ``capture`` section, next to frames)."""

    model_config = _FROZEN
    exposure_s: float = Field(gt=0, le=3600, description="Exposure of every frame, seconds.")
    source: str = Field("camera", max_length=200, description="'simulated' or 'camera'.")
    key_fingerprint: str | None = Field(
        None, max_length=64, description="Fingerprint of the simulated device's key."
    )


class Manifest(BaseModel):
    """A pattern manifest as read from JSON (see the module docstring)."""

    model_config = _FROZEN
    format: Literal["keycam-calibration-patterns"]
    version: Literal[1]
    camera: _CameraModel
    code: _CodeModel
    frames: list[_FrameModel] = Field(min_length=2, max_length=200)
    capture: CaptureInfo | None = None


def manifest_of(patterns: PatternSet, capture: CaptureInfo | None = None) -> dict[str, Any]:
    """JSON-ready manifest of a pattern set; ``capture`` describes recorded frames."""
    m = Manifest(
        format=MANIFEST_FORMAT,
        version=MANIFEST_VERSION,
        camera=_CameraModel(
            digest=patterns.digest,
            lattice=patterns.lattice,
            rows=patterns.rows,
            cols=patterns.cols,
            scene_shape_px=patterns.scene_shape,
            sensor_shape_px=patterns.sensor_shape,
        ),
        code=_CodeModel(
            kind="binary-reflected Gray",
            bits_x=patterns.bits_x,
            bits_y=patterns.bits_y,
            complements=patterns.complements,
        ),
        frames=[
            _FrameModel(
                name=f.name,
                role=f.role,
                axis=f.axis,
                bit=f.bit,
                inverted=f.inverted,
                code_value=f.code_value,
            )
            for f in patterns.frames
        ],
        capture=capture,
    )
    return m.model_dump(mode="json", exclude_none=True)


def read_manifest(path: str | os.PathLike[str]) -> Manifest:
    """Read and validate a manifest file (bounded size, strict schema).

    Raises
    ------
    ValueError
        Missing, oversized, not JSON, or not a pattern manifest (the message names the file
        and, for a schema error, the field).
    """
    p = Path(path)
    if not p.is_file():
        raise ValueError(f"manifest {p}: no such file")
    if p.stat().st_size > _MAX_MANIFEST_BYTES:
        raise ValueError(f"manifest {p}: larger than {_MAX_MANIFEST_BYTES} bytes")
    try:
        doc = json.loads(p.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ValueError(f"manifest {p}: not valid JSON ({exc})") from None
    if not isinstance(doc, dict) or doc.get("format") != MANIFEST_FORMAT:
        raise ValueError(f"manifest {p}: not a keycam calibration pattern manifest")
    try:
        return Manifest.model_validate(doc)
    except ValidationError as exc:
        err = exc.errors()[0]
        loc = ".".join(str(x) for x in err.get("loc", ()))
        raise ValueError(f"manifest {p}: {loc}: {err.get('msg', 'invalid')}") from None


def check_manifest(manifest: Manifest, patterns: PatternSet, *, source: str = "manifest") -> None:
    """Raise ``ValueError`` unless ``manifest`` describes exactly ``patterns``.

    ``patterns`` is the set made for the camera at hand (with the manifest's choice of
    complements); the camera digest, lattice, grids and every frame must agree.
    """
    if manifest.camera.digest != patterns.digest:
        raise ValueError(
            f"{source} was made for another camera (pattern digest {manifest.camera.digest}, "
            f"this configuration's is {patterns.digest}): use the configuration the patterns "
            "were made with"
        )
    want = manifest_of(patterns)
    got = manifest.model_dump(mode="json", exclude_none=True)
    got.pop("capture", None)
    if len(got["frames"]) != len(want["frames"]):
        raise ValueError(
            f"{source} lists {len(got['frames'])} frames, this camera's pattern set has "
            f"{len(want['frames'])}"
        )
    for k, (a, b) in enumerate(zip(got["frames"], want["frames"], strict=True)):
        if a != b:
            raise ValueError(
                f"{source}: frame {k} is {a.get('name')!r} ({a.get('role')}), this camera's "
                f"pattern set has {b['name']!r} ({b['role']}) there"
            )
    if got != want:
        raise ValueError(f"{source} does not match this camera's pattern set")
