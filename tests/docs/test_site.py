"""The documentation site: its pages exist, its facts match the code, and it builds strictly.

The cheap tests need nothing but the repository. The site build (``conftest.built_site``)
needs the ``docs`` extra (``pip install -e ".[docs]"``) and is skipped without it; it
executes every tutorial and how-to in a Jupyter kernel, at reduced sizes by default
(``KEYCAM_TUTORIAL_QUICK=1``, the same code), which keeps it to a few minutes; set
``KEYCAM_DOCS_FULL=1`` to build exactly the published pages.
"""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
DOCS = ROOT / "docs"
SECTIONS = ("tutorials", "howto", "explanation", "reference")

SETUP_COMMANDS = (
    "pip install -e . && python -m sim.capture",
    'pip install -e ".[dev]" && python -m pytest',
)
DOCS_COMMAND = 'pip install -e ".[docs]" && sphinx-build -W -b html docs docs/_build/html'
CLIS = (
    "sim.capture",
    "sim.dataset",
    "optics.emva",
    "fabrication.export",
    "keynet.verify",
    "sim.calibrate patterns",
    "sim.calibrate simulate",
    "sim.calibrate solve",
    "sim.audit",
)


def toctree_entries(page: Path) -> list[str]:
    """The documents a page's ``toctree`` blocks list, relative to ``docs/``, no suffix."""
    text = page.read_text(encoding="utf-8")
    entries: list[str] = []
    for block in re.findall(r"```\{toctree\}\n(.*?)```", text, flags=re.S):
        for line in block.splitlines():
            line = line.strip()
            if line and not line.startswith(":"):
                rel = (page.parent / line).resolve().relative_to(DOCS)
                entries.append(rel.as_posix())
    return entries


def _source(doc: str) -> Path | None:
    for suffix in (".md", ".py"):
        if (DOCS / f"{doc}{suffix}").is_file():
            return DOCS / f"{doc}{suffix}"
    return None


def _site_pages() -> list[str]:
    pages = []
    for section in toctree_entries(DOCS / "index.md"):
        pages.append(section)
        pages += toctree_entries(DOCS / f"{section}.md")
    return pages


def test_start_page_lists_one_toctree_per_section():
    assert toctree_entries(DOCS / "index.md") == [f"{s}/index" for s in SECTIONS]


def test_every_toctree_page_exists():
    pages = _site_pages()
    assert len(pages) >= 20, pages
    missing = [p for p in pages if _source(p) is None]
    assert missing == [], missing


@pytest.mark.parametrize("section", SECTIONS)
def test_every_page_of_a_section_is_in_its_toctree(section):
    listed = set(toctree_entries(DOCS / section / "index.md"))
    on_disk = {
        f"{section}/{p.stem}"
        for p in (DOCS / section).iterdir()
        if p.suffix in (".md", ".py") and p.stem != "index"
    }
    assert on_disk == listed


def test_start_page_and_readme_give_the_same_setup_commands():
    index = (DOCS / "index.md").read_text(encoding="utf-8")
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    for cmd in (*SETUP_COMMANDS, DOCS_COMMAND):
        assert cmd in readme, cmd
        assert cmd in index, cmd
    assert "_generated/pipeline.png" in index  # the picture made by docs/conf.py


def test_readme_links_to_the_documentation():
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    assert "docs/index.md" in readme
    assert "mkdocs" not in readme


def test_markdown_links_name_existing_pages():
    for page in DOCS.rglob("*.md"):
        if "_build" in page.parts or "_generated" in page.parts:
            continue
        text = page.read_text(encoding="utf-8")
        for link in re.findall(r"\]\(([^)\s]+)\)", text):
            if link.startswith(("http://", "https://", "#", "mailto:", "_generated/")):
                continue  # _generated/: made by docs/conf.py at build time
            target = (page.parent / link.split("#", 1)[0]).resolve()
            assert target.exists(), f"{page.relative_to(DOCS)}: {link}"


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
@pytest.mark.xdist_group("docs_site")
def test_site_builds_strictly_with_every_page_executed(built_site):
    site = built_site
    assert (site / "index.html").is_file()
    assert (site / "_images" / "pipeline.png").stat().st_size > 10_000
    for page in _site_pages():
        html = site / f"{page}.html"
        assert html.is_file(), page
        text = html.read_text(encoding="utf-8")
        assert "Traceback" not in text, page
    for page in [*DOCS.glob("tutorials/*.py"), *DOCS.glob("howto/*.py")]:
        rel = page.relative_to(DOCS).with_suffix(".html")
        # executed: the figures are on the page
        assert '<img alt="../_images/' in (site / rel).read_text(encoding="utf-8") or (
            'src="../_images/' in (site / rel).read_text(encoding="utf-8")
        ), rel
    # MathJax is served from the site itself
    assert (site / "_static" / "mathjax" / "tex-chtml.js").is_file()
