"""The built documentation site, shared by the slow docs tests (built once per run)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="session")
def built_site(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """``sphinx-build -W -b html docs`` into a temporary folder (the README's command).

    Every tutorial and how-to is executed, at reduced sizes unless ``KEYCAM_DOCS_FULL=1``.
    Skipped without the ``docs`` extra.
    """
    for module in ("sphinx", "pydata_sphinx_theme", "myst_nb", "jupytext", "ipykernel"):
        pytest.importorskip(module)
    work = tmp_path_factory.mktemp("docs_build")
    env = dict(os.environ)
    env.pop("MPLBACKEND", None)
    env.update(
        KEYCAM_TUTORIAL_OUT=str(work / "tutorial_out"),
        KEYCAM_CACHE=str(work / "cache"),
        PYTHONPATH=os.pathsep.join(filter(None, [str(ROOT), env.get("PYTHONPATH", "")])),
    )
    if os.environ.get("KEYCAM_DOCS_FULL") != "1":
        env["KEYCAM_TUTORIAL_QUICK"] = "1"
    site = work / "html"
    proc = subprocess.run(
        [sys.executable, "-m", "sphinx", "-W", "-b", "html", "-q", "-d", str(work / "doctrees"),
         str(ROOT / "docs"), str(site)],
        cwd=work,
        env=env,
        capture_output=True,
        text=True,
        timeout=2400,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-4000:]
    return site
