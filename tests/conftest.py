"""Fixtures for the whole suite."""

from __future__ import annotations

import os

import pytest


@pytest.fixture(scope="session", autouse=True)
def _private_keycam_cache(tmp_path_factory):
    """Cached printed transmissions (secret-derived) go to a temporary folder, never home.

    Set in the environment so that commands run as subprocesses use it too.
    """
    folder = tmp_path_factory.mktemp("keycam_cache")
    old = os.environ.get("KEYCAM_CACHE_DIR")
    os.environ["KEYCAM_CACHE_DIR"] = str(folder)
    yield folder
    if old is None:
        os.environ.pop("KEYCAM_CACHE_DIR", None)
    else:
        os.environ["KEYCAM_CACHE_DIR"] = old
