"""The optics helpers fabrication relies on, imported in this one place.

Fabrication depends on :mod:`optics` only; lattice geometry (site centres, key blocks) comes
from here so that a move of the lattice module is a one-line change.
"""

from __future__ import annotations

from optics import lattice

__all__ = ["lattice"]
