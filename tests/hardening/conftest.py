"""Fixtures of the hardening tests; the builders live in ``tests/keycam_hostile.py``."""

from __future__ import annotations

from pathlib import Path

import pytest
from keycam_hostile import SMALL_TOML, scene


@pytest.fixture
def small_toml(tmp_path: Path) -> Path:
    p = tmp_path / "small.toml"
    p.write_text(SMALL_TOML)
    return p


@pytest.fixture
def scene_png(tmp_path: Path) -> Path:
    return scene(tmp_path / "scene.png")
