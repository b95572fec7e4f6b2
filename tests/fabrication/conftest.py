"""Shared helpers for the fabrication tests: small keys and their routes."""

from __future__ import annotations

import functools

import pytest

from fabrication.export import build
from fabrication.process import ProcessConfig
from optics.faceplate import FaceplateConfig, keygen


@functools.cache
def small_key(rows: int, block: int, permute: bool, seed: int = 1, lattice: str = "square"):
    """A key on a small lattice at the resin process pitch (1 mm)."""
    cfg = FaceplateConfig(
        lattice=lattice,
        rows=rows,
        cols=rows,
        block_size=block,
        permute_blocks=permute,
        seed=seed,
        pitch_um=1000.0,
        core_diameter_um=600.0,
    )
    return keygen(cfg)


@functools.cache
def small_device(rows: int, block: int, permute: bool, seed: int = 1, lattice: str = "square"):
    """The checked device of :func:`small_key` with the resin preset."""
    return build(small_key(rows, block, permute, seed, lattice), ProcessConfig.preset("resin"))


@pytest.fixture
def make_key():
    """Factory fixture: ``make_key(rows, block, permute, seed=1, lattice="square")``."""
    return small_key


@pytest.fixture
def make_device():
    """Factory fixture: ``make_device(rows, block, permute, seed=1, lattice="square")``."""
    return small_device


@pytest.fixture
def resin() -> ProcessConfig:
    return ProcessConfig.preset("resin")
