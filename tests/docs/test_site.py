"""The documentation site: its pages exist, its facts match the code, and it builds strictly.

The cheap tests need nothing but the repository. The site build needs the ``docs`` extra
(``pip install -e ".[docs]"``) and is skipped without it; it executes every tutorial in a
Jupyter kernel. By default it runs them at the tutorials' reduced sizes
(``KEYCAM_TUTORIAL_QUICK=1``, the same code), which keeps it to a minute or two; set
``KEYCAM_DOCS_FULL=1`` to build exactly the published pages (several minutes).
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
DOCS = ROOT / "docs"

SETUP_COMMANDS = (
    "pip install -e . && python -m sim.capture",
    'pip install -e ".[dev]" && python -m pytest',
)
CLIS = (
    "sim.capture",
    "sim.dataset",
    "optics.emva",
    "fabrication.export",
    "keynet.verify",
    "sim.calibrate patterns",
    "sim.calibrate simulate",
    "sim.calibrate solve",
)


def _nav_targets() -> list[str]:
    text = (ROOT / "mkdocs.yml").read_text(encoding="utf-8")
    nav = text[text.index("\nnav:") :]
    return re.findall(r":\s*(\S+\.(?:md|py))\s*$", nav, flags=re.M)


def test_every_nav_page_exists():
    targets = _nav_targets()
    assert len(targets) >= 10, targets
    missing = [t for t in targets if not (DOCS / t).is_file()]
    assert missing == [], missing


def test_every_tutorial_is_in_the_nav():
    listed = {t for t in _nav_targets() if t.startswith("tutorials/")}
    on_disk = {f"tutorials/{p.name}" for p in (DOCS / "tutorials").glob("[0-9][0-9]_*.py")}
    assert on_disk == listed


def test_start_page_and_readme_give_the_same_setup_commands():
    index = (DOCS / "index.md").read_text(encoding="utf-8")
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    for cmd in SETUP_COMMANDS:
        assert cmd in readme, cmd
        assert cmd in index, cmd
    assert "_generated/pipeline.png" in index  # the picture made by docs/hooks.py


def test_readme_links_to_the_documentation():
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    assert "docs/index.md" in readme
    assert "mkdocs build" in readme


@pytest.mark.parametrize("command", CLIS)
def test_cli_reference_lists_every_option(command):
    """Every option that ``--help`` prints is documented in reference/cli.md.

    A command with subcommands (``sim.calibrate solve``) is documented in its module's
    section.
    """
    module, *subcommand = command.split()
    proc = subprocess.run(
        [sys.executable, "-m", module, *subcommand, "--help"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stderr
    options = set(re.findall(r"(?<![\w-])(--[a-z][a-z0-9-]*)", proc.stdout)) - {"--help"}
    assert options, proc.stdout
    page = (DOCS / "reference" / "cli.md").read_text(encoding="utf-8")
    section = page[page.index(f"## `python -m {module}`") :]
    nxt = section.find("\n## ", 1)
    section = section if nxt < 0 else section[:nxt]
    undocumented = sorted(o for o in options if f"`{o}" not in section)
    assert undocumented == [], undocumented


@pytest.mark.slow
def test_site_builds_strictly_with_the_tutorials_executed(tmp_path):
    pytest.importorskip("mkdocs")
    pytest.importorskip("material")
    pytest.importorskip("mkdocs_jupyter")
    pytest.importorskip("ipykernel")
    env = dict(os.environ)
    env.pop("MPLBACKEND", None)
    env.update(
        KEYCAM_TUTORIAL_OUT=str(tmp_path / "tutorial_out"),
        KEYCAM_CACHE=str(tmp_path / "cache"),
        NO_MKDOCS_2_WARNING="1",
    )
    if os.environ.get("KEYCAM_DOCS_FULL") != "1":
        env["KEYCAM_TUTORIAL_QUICK"] = "1"
    site = tmp_path / "site"
    proc = subprocess.run(
        [sys.executable, "-m", "mkdocs", "build", "--strict", "-f", str(ROOT / "mkdocs.yml"),
         "-d", str(site)],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=1800,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-4000:]
    assert (site / "index.html").is_file()
    assert (site / "_generated" / "pipeline.png").stat().st_size > 10_000
    for name in sorted(p.stem for p in (DOCS / "tutorials").glob("[0-9][0-9]_*.py")):
        page = (site / "tutorials" / name / "index.html").read_text(encoding="utf-8")
        # executed: the figures are embedded, and no cell raised
        assert "data:image/png;base64," in page, name
        assert "Traceback" not in page, name
    # the working folder received nothing but the outputs (no caches, no stray files)
    assert {p.name for p in tmp_path.iterdir()} <= {"cache", "site", "tutorial_out"}
