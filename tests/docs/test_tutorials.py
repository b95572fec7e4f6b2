"""Every tutorial runs, as a new user would run it, and produces its figures.

Each tutorial is a jupytext percent-format script under ``docs/tutorials/``. It is run here as
a plain Python subprocess from an empty folder, with ``KEYCAM_TUTORIAL_QUICK=1`` (the same
code at reduced sizes) and ``KEYCAM_TUTORIAL_OUT`` pointing at that folder; the test then
checks that every figure the page shows was written as a real PNG image.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
from PIL import Image

DOCS = Path(__file__).resolve().parents[2] / "docs"
TUTORIALS = DOCS / "tutorials"

#: tutorial script -> the figures it must write (file names in KEYCAM_TUTORIAL_OUT)
FIGURES = {
    "01_first_capture.py": ["01_preview.png", "01_raw_frame.png", "01_right_and_wrong_key.png"],
    "02_choosing_a_sensor.py": ["02_photon_transfer.png", "02_snr.png"],
    "03_designing_the_faceplate.py": [
        "03_lattice.png",
        "03_moire.png",
        "03_readout_noise.png",
        "03_block_keys.png",
        "03_privacy_vs_length.png",
    ],
    "04_key_to_printed_part.py": [
        "04_route.png",
        "04_transmission_vs_bend_radius.png",
        "04_printed_vs_designed.png",
    ],
    "05_does_inference_work.py": ["05_digits.png", "05_accuracy.png", "05_first_layer.png"],
    "06_calibrating_a_device.py": [
        "06_patterns.png",
        "06_frames.png",
        "06_measured_vs_true.png",
        "06_unscrambled.png",
    ],
}

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def _env(out: Path, cache: Path) -> dict[str, str]:
    env = dict(os.environ)
    env.update(
        KEYCAM_TUTORIAL_QUICK="1",
        KEYCAM_TUTORIAL_OUT=str(out),
        KEYCAM_CACHE=str(cache),  # trained weights: never into the user's home in a test
        MPLBACKEND="Agg",
        # small dense solves run faster on one thread than on an oversubscribed pool
        OPENBLAS_NUM_THREADS="1",
        OMP_NUM_THREADS="1",
        MKL_NUM_THREADS="1",
    )
    return env


def test_every_tutorial_is_listed():
    on_disk = sorted(p.name for p in TUTORIALS.glob("[0-9][0-9]_*.py"))
    assert on_disk == sorted(FIGURES), "a tutorial was added or removed: update FIGURES"


@pytest.mark.parametrize("name", sorted(FIGURES))
def test_tutorial_is_a_percent_notebook_with_a_title(name):
    text = (TUTORIALS / name).read_text(encoding="utf-8")
    markdown = text.count("# %% [markdown]")
    code = len(re.findall(r"^# %%\s*$", text, flags=re.M))
    assert markdown >= 3 and code >= 3, (markdown, code)
    first = text.split("# %% [markdown]", 1)[1].lstrip().splitlines()[0]
    assert first.startswith("# # "), f"first markdown cell must start with a title: {first!r}"
    # the figures the test expects are the ones the page saves
    for fig in FIGURES[name]:
        assert f'"{fig}"' in text, fig


def check_links(page: Path) -> None:
    """Links in a page's Markdown cells name source files of the site that exist.

    The site is built by Sphinx (myst-nb): a link to another page is the relative path of its
    source file (``../explanation/units.md``, ``02_choosing_a_sensor.py``), which Sphinx
    checks and turns into the page's URL; a directory-style URL would not be checked.
    """
    text = page.read_text(encoding="utf-8")
    for link in re.findall(r"\]\(([^)\s]+)\)", text):
        if link.startswith(("http://", "https://", "#")):
            continue
        target = (page.parent / link.split("#", 1)[0]).resolve()
        assert target.suffix in (".md", ".py"), f"{link}: link the page's source file"
        assert target.is_file() and DOCS in target.parents, link


@pytest.mark.parametrize("name", sorted(FIGURES))
def test_tutorial_links_point_at_pages(name):
    check_links(TUTORIALS / name)


def run_page(page: Path, tmp_path: Path, figures: list[str], *, min_size=(300, 200)) -> None:
    """Run a docs page as a reader would, from an empty folder, and check what it leaves.

    The page must exit cleanly, print no path of the machine it ran on (what it prints is
    shown on the site), write exactly ``figures`` into ``KEYCAM_TUTORIAL_OUT`` as real PNG
    images of at least ``min_size`` pixels that are not blank canvases, and leave nothing
    else in the working folder but the weight cache.
    """
    out = tmp_path / "figures"
    proc = subprocess.run(
        [sys.executable, str(page)],
        cwd=tmp_path,
        env=_env(out, tmp_path / "keycam_cache"),
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert str(tmp_path) not in proc.stdout, proc.stdout[-2000:]
    written = sorted(p.name for p in out.glob("*.png"))
    assert written == sorted(figures), written
    for fig in figures:
        path = out / fig
        assert path.read_bytes()[:8] == PNG_MAGIC, fig
        with Image.open(path) as im:
            im.verify()
        with Image.open(path) as im:
            w, h = im.size
            assert w >= min_size[0] and h >= min_size[1], (fig, im.size)
            # a figure, not a blank canvas
            lo, hi = im.convert("L").getextrema()
            assert hi - lo > 100, (fig, lo, hi)
    leftovers = sorted(
        p.name for p in tmp_path.iterdir() if p.name not in ("figures", "keycam_cache")
    )
    assert leftovers == [], leftovers


@pytest.mark.parametrize("name", sorted(FIGURES))
def test_tutorial_runs_and_writes_its_figures(name, tmp_path):
    run_page(TUTORIALS / name, tmp_path, FIGURES[name])
