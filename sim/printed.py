"""Where the faceplate's transmission comes from: the printed part, or an assumed value.

A camera's ``[transmission]`` table (:class:`TransmissionConfig`) says which:

- ``source = "printed"`` (the default): every fiber transmits what the printed part would,
  computed from the routed geometry of the device's own key for the configured process
  (:func:`fabrication.printed.printed_transmission`: attenuation over the fiber's length,
  loss at its tightest bend, Fresnel loss at both faces). It is the same computation as
  ``python -m fabrication.export KEY --write-transmission``.
- ``source = "assumed"``: the key's own transmission (``transmission_mean`` and
  ``transmission_rms`` of the faceplate recipe, or whatever a key file holds), e.g. for a
  glass faceplate or a measured part.

Routing a key takes a moment, so a computed transmission is cached by a one-way digest of
the routing, the lattice and the process. The cache holds secret-derived data: it lives in
``$KEYCAM_CACHE_DIR`` (else ``$KEYCAM_CACHE``, ``$XDG_CACHE_HOME/keycam``,
``~/.cache/keycam``) under ``printed/``, folders mode 0700, files mode 0600. A damaged or
foreign entry is recomputed, never trusted.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
from pathlib import Path
from typing import Any, Literal

import numpy as np
from pydantic import Field

from keycam.config import ConfigModel

__all__ = [
    "TransmissionConfig",
    "apply_transmission",
    "cache_dir",
    "lens_launch",
    "printed_for_key",
]

_MAGIC = b"keycam-printed-transmission\n"


class TransmissionConfig(ConfigModel):
    """Source of the faceplate transmission (the camera's ``[transmission]`` table)."""

    source: Literal["printed", "assumed"] = Field(
        "printed",
        description="'printed': computed from the routed geometry of the device key for "
        "the process below; 'assumed': the key's own transmission values.",
    )
    process: Literal["resin", "fdm"] = Field(
        "resin", description="Fabrication process preset the part is printed with."
    )
    attenuation_db_per_cm: float | None = Field(
        None,
        ge=0,
        le=100,
        description="Measured propagation loss of the core material, dB/cm; None = the "
        "process preset's value (resin 0.5 dB/cm).",
    )

    def process_config(self):
        """The :class:`fabrication.process.ProcessConfig` this table describes."""
        from fabrication.process import ProcessConfig

        over = {}
        if self.attenuation_db_per_cm is not None:
            over["attenuation_db_per_cm"] = self.attenuation_db_per_cm
        return ProcessConfig.preset(self.process, **over)


def cache_dir() -> Path:
    """Folder of the printed-transmission cache (see the module docstring)."""
    for var in ("KEYCAM_CACHE_DIR", "KEYCAM_CACHE"):
        value = os.environ.get(var)
        if value:
            return Path(value) / "printed"
    xdg = os.environ.get("XDG_CACHE_HOME")
    base = Path(xdg) / "keycam" if xdg else Path.home() / ".cache" / "keycam"
    return base / "printed"


def _encode(digest: str, total: np.ndarray, info: dict[str, Any]) -> bytes:
    buf = io.BytesIO()
    np.save(buf, np.ascontiguousarray(total, dtype="<f8"), allow_pickle=False)
    body = buf.getvalue()
    head = json.dumps({"digest": digest, "info": info}, sort_keys=True).encode()
    check = hashlib.sha256(head + body).hexdigest().encode()
    return _MAGIC + check + b"\n" + len(head).to_bytes(8, "little") + head + body


def _decode(data: bytes, digest: str, n: int) -> tuple[np.ndarray, dict[str, Any]] | None:
    """Cached values, or None for anything damaged, foreign or for another key."""
    try:
        if not data.startswith(_MAGIC):
            return None
        rest = data[len(_MAGIC) :]
        check, rest = rest[:64], rest[65:]
        size = int.from_bytes(rest[:8], "little")
        head, body = rest[8 : 8 + size], rest[8 + size :]
        if hashlib.sha256(head + body).hexdigest().encode() != check:
            return None
        meta = json.loads(head)
        if meta.get("digest") != digest:
            return None
        total = np.load(io.BytesIO(body), allow_pickle=False)
        if total.shape != (n,) or total.dtype != np.float64 or not np.all(np.isfinite(total)):
            return None
        if np.any(total < 0) or np.any(total > 1):
            return None
        return total, dict(meta["info"])
    except (ValueError, KeyError, TypeError, OSError, EOFError):
        return None


def printed_for_key(
    key, config: TransmissionConfig, launch=None
) -> tuple[np.ndarray, dict[str, Any]]:
    """Per-fiber printed transmission of ``key`` and its public summary, cached.

    ``launch`` (:class:`fabrication.transmission.Launch`) is the camera lens's cone; it sets
    the bend loss. ``None``: the acceptance cone uniformly filled.

    Returns
    -------
    total : (n,) float
        Transmission of every input fiber, fraction.
    info : dict
        ``source``, ``process``, ``attenuation_db_per_cm``, ``bundle_length_mm``,
        ``transmission_mean``, ``transmission_min`` (aggregates only, safe to publish).

    Raises
    ------
    ValueError
        If the routed part fails a manufacturability check (it could not be printed).
    """
    from fabrication.printed import printed_transmission, routing_digest
    from keycam.fileio import write_bytes_atomic

    process = config.process_config()
    digest = routing_digest(key, process, launch)
    folder = cache_dir()
    path = folder / f"{digest[:40]}.bin"
    try:
        hit = _decode(path.read_bytes(), digest, key.n_fibers)
    except OSError:
        hit = None
    if hit is not None:
        return hit
    try:
        pt = printed_transmission(key, process, launch)
    except ValueError as err:  # e.g. a lattice finer than the process can print
        raise ValueError(
            f"{err}; for a faceplate that is not printed with this process (glass, measured) "
            'set [transmission] source = "assumed"'
        ) from None
    if not pt.checks_passed:
        raise ValueError(
            f"key {key.fingerprint} cannot be printed with the {process.name!r} process "
            "(a manufacturability check fails); use transmission.source = 'assumed'"
        )
    info = {"source": "printed", **pt.summary()}
    try:
        folder.mkdir(mode=0o700, parents=True, exist_ok=True)
        write_bytes_atomic(path, _encode(digest, pt.total, info), mode=0o600, overwrite=True)
    except OSError:
        pass  # a read-only or full cache only costs the next run the computation again
    return pt.total.copy(), info


def apply_transmission(config: TransmissionConfig, key, launch=None) -> tuple[Any, dict[str, Any]]:
    """The key the camera uses, and what its sidecar says about the transmission.

    ``launch`` is the camera lens's cone at the input face (:func:`lens_launch`).

    With ``source = "printed"`` the key's transmission is replaced by the printed part's
    (its recipe's ``transmission_mean`` becomes the printed mean); dead fibers, bias and
    crosstalk are kept. With ``"assumed"`` the key is returned unchanged.
    """
    from optics.faceplate import Key

    if config.source == "assumed":
        t = np.asarray(key.transmission)
        return key, {
            "source": "assumed",
            "transmission_mean": float(t.mean()),
            "transmission_min": float(t.min()),
        }
    total, info = printed_for_key(key, config, launch)
    mean = float(np.mean(total))
    # the printed fiber's cone is what the relay collects, whatever the key file's recipe says
    recipe = key.config.model_copy(
        update={
            "transmission_mean": min(max(mean, 1e-12), 1.0),
            "numerical_aperture": config.process_config().numerical_aperture,
        }
    )
    printed = Key(
        recipe, key.routing, total, key.bias, key.dead, key.crosstalk_in, key.crosstalk_out
    )
    return printed, info


def lens_launch(lens):
    """The cone a camera lens launches into the input face (a fabrication ``Launch``).

    Cone half-angle ``atan(1/(2 N_w))`` at the working f-number, around the chief ray from the
    exit pupil ``p = lens.pupil_distance_mm`` in front of the face (``exit_pupil_distance_mm``,
    or the image distance ``s_i`` for a stop at the lens), so the chief ray to a site at radius
    ``r`` tilts by ``atan(r / p)``.
    """
    from fabrication.transmission import Launch

    return Launch.from_f_number(lens.working_f_number, lens.pupil_distance_mm)
