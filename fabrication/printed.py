"""Transmission of the printed device: one source of truth for export and simulation.

:func:`printed_transmission` routes a key with a process, samples and checks the printed
centerlines exactly as :func:`fabrication.export.build` does for the STL files, and returns
each fiber's transmission from that geometry (:func:`fabrication.transmission.fiber_transmission`:
attenuation over the fiber's length, loss at its tightest bend, Fresnel loss at both faces).
``python -m fabrication.export --write-transmission`` and the camera simulation
(``sim.printed``) both call it, so the part that is printed and the camera that is simulated
have the same fibers.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from fabrication.export import build
from fabrication.process import ProcessConfig
from fabrication.routing import ROUTE_VERSION
from fabrication.transmission import Launch

__all__ = ["PrintedTransmission", "printed_transmission", "routing_digest"]


@dataclass(frozen=True)
class PrintedTransmission:
    """Per-fiber transmission of a printed device and the figures behind it.

    Attributes
    ----------
    total : (n,) float
        Transmission of every input fiber, fraction (attenuation × bend × Fresnel).
    attenuation, bend, fresnel : (n,) float
        The three factors.
    bundle_length_mm : float
        Face-to-face length of the printed bundle, mm.
    process : ProcessConfig
        The process the device was routed and evaluated for.
    launch : Launch or None
        The lens cone the bend loss was evaluated for (``None``: acceptance uniformly filled).
    checks_passed : bool
        Whether every manufacturability check passed (the camera refuses a device that
        could not be printed).
    """

    total: np.ndarray = field(repr=False)
    attenuation: np.ndarray = field(repr=False)
    bend: np.ndarray = field(repr=False)
    fresnel: np.ndarray = field(repr=False)
    bundle_length_mm: float
    process: ProcessConfig
    checks_passed: bool
    launch: Launch | None = None

    @classmethod
    def from_device(cls, device, launch: Launch | None = None) -> PrintedTransmission:
        """From a built device (:func:`fabrication.export.build`), for a launch."""
        return _from_device(device, launch)

    def summary(self) -> dict[str, Any]:
        """Aggregate figures safe to publish (nothing that reveals the routing)."""
        return {
            "process": self.process.name,
            "attenuation_db_per_cm": self.process.attenuation_db_per_cm,
            "bundle_length_mm": round(self.bundle_length_mm, 3),
            "launch": None if self.launch is None else self.launch.summary(),
            "bend_mean": float(np.mean(self.bend)),
            "transmission_mean": float(np.mean(self.total)),
            "transmission_min": float(np.min(self.total)),
        }


def routing_digest(key, process: ProcessConfig, launch: Launch | None = None) -> str:
    """Hex SHA-256 of what the printed transmission depends on (routing, lattice, process,
    launch).

    A one-way digest: it identifies a cached result without revealing the routing.
    """
    c = key.config
    lattice = {f: getattr(c, f) for f in ("lattice", "rows", "cols", "pitch_um", "block_size")}
    h = hashlib.sha256()
    h.update(f"keycam-printed-transmission/route-v{ROUTE_VERSION}/".encode())
    public = {
        "lattice": lattice,
        "process": process.model_dump(mode="json"),
        "launch": None if launch is None else launch.summary(),
    }
    h.update(json.dumps(public, sort_keys=True).encode())
    h.update(np.ascontiguousarray(key.routing, dtype="<i8").tobytes())
    return h.hexdigest()


def printed_transmission(
    key, process: ProcessConfig, launch: Launch | None = None
) -> PrintedTransmission:
    """Route, sample and check ``key`` with ``process``; transmission of every fiber.

    Parameters
    ----------
    key : optics.faceplate.Key
        The device key (its routing and lattice; its own transmission is ignored).
    process : ProcessConfig
        Printing process (clearances, bend radius, tilt, attenuation, indices).
    launch : Launch, optional
        The lens that fills the fibers; its cone sets the bend loss. ``None``: the acceptance
        cone uniformly filled (the worst case).

    Returns
    -------
    PrintedTransmission
        Indexed by input fiber, as ``Key.transmission``.
    """
    return PrintedTransmission.from_device(build(key, process), launch)


def _from_device(device, launch: Launch | None) -> PrintedTransmission:
    t = device.transmission_for(launch)
    return PrintedTransmission(
        total=np.asarray(t["total"], dtype=np.float64),
        attenuation=np.asarray(t["attenuation"], dtype=np.float64),
        bend=np.asarray(t["bend"], dtype=np.float64),
        fresnel=np.asarray(t["fresnel"], dtype=np.float64),
        bundle_length_mm=float(device.report.length_mm),
        process=device.process,
        checks_passed=bool(device.report.passed),
        launch=launch,
    )
