"""Every tutorial and how-to runs, as a new user would run it, and produces its figures.

Each page is a jupytext percent-format script under ``docs/tutorials/`` or ``docs/howto/``.
It is run here as a plain Python subprocess from an empty folder, with
``KEYCAM_TUTORIAL_QUICK=1`` (the same code at reduced sizes) and ``KEYCAM_TUTORIAL_OUT``
pointing at that folder; the test then checks that every figure the page shows was written as
a real PNG image.
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
HOWTOS = DOCS / "howto"

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

#: how-to guides (``docs/howto/``) -> the figures they must write
HOWTO_FIGURES = {"encrypt_a_dataset.py": ["howto_dataset_frames.png"]}

#: every executed page, as "folder/name.py" -> its figures
PAGES = {f"tutorials/{k}": v for k, v in FIGURES.items()} | {
    f"howto/{k}": v for k, v in HOWTO_FIGURES.items()
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
    howtos = sorted(p.name for p in HOWTOS.glob("*.py"))
    assert howtos == sorted(HOWTO_FIGURES), "a how-to was added or removed: update HOWTO_FIGURES"


@pytest.mark.parametrize("name", sorted(PAGES))
def test_tutorial_is_a_percent_notebook_with_a_title(name):
    text = (DOCS / name).read_text(encoding="utf-8")
    markdown = text.count("# %% [markdown]")
    code = len(re.findall(r"^# %%\s*$", text, flags=re.M))
    assert markdown >= 3 and code >= 3, (markdown, code)
    first = text.split("# %% [markdown]", 1)[1].lstrip().splitlines()[0]
    assert first.startswith("# # "), f"first markdown cell must start with a title: {first!r}"
    # the figures the test expects are the ones the page saves
    for fig in PAGES[name]:
        assert f'"{fig}"' in text, fig


@pytest.mark.parametrize("name", sorted(PAGES))
def test_tutorial_links_point_at_pages(name):
    """Notebook pages are not rewritten by MkDocs: links must be site URLs that exist.

    A tutorial is published at ``tutorials/<name>/``, so ``../../explanation/units/`` is the
    page built from ``docs/explanation/units.md`` and ``../02_choosing_a_sensor/`` another
    tutorial.
    """
    text = (DOCS / name).read_text(encoding="utf-8")
    links = re.findall(r"\]\(([^)\s]+)\)", text)
    for link in links:
        if link.startswith(("http://", "https://", "#")):
            continue
        assert not link.endswith((".md", ".py")), f"{link}: use the page URL, not the file"
        target = Path(Path(name).parent, Path(name).stem, link)  # as the browser resolves it
        parts: list[str] = []
        for part in target.parts:
            if part == "..":
                parts.pop()
            elif part != ".":
                parts.append(part)
        page = Path(*parts)
        assert (DOCS / page).with_suffix(".md").is_file() or (
            DOCS / page.with_suffix(".py")
        ).is_file(), link


@pytest.mark.parametrize("name", sorted(PAGES))
def test_tutorial_runs_and_writes_its_figures(name, tmp_path):
    if name.startswith("howto/"):
        pytest.importorskip("dask")  # the how-to needs the dataset extra
        pytest.importorskip("zarr")
    out = tmp_path / "figures"
    proc = subprocess.run(
        [sys.executable, str(DOCS / name)],
        cwd=tmp_path,
        env=_env(out, tmp_path / "keycam_cache"),
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    written = sorted(p.name for p in out.glob("*.png"))
    assert written == sorted(PAGES[name]), written
    for fig in PAGES[name]:
        path = out / fig
        assert path.read_bytes()[:8] == PNG_MAGIC, fig
        with Image.open(path) as im:
            im.verify()
        with Image.open(path) as im:
            w, h = im.size
            assert w >= 300 and h >= 200, (fig, im.size)
            # a figure, not a blank canvas
            lo, hi = im.convert("L").getextrema()
            assert hi - lo > 100, (fig, lo, hi)
    # nothing but the figures folder (and the weight cache) appears in the working folder
    leftovers = sorted(
        p.name for p in tmp_path.iterdir() if p.name not in ("figures", "keycam_cache")
    )
    assert leftovers == [], leftovers
