"""Every how-to guide and executed explanation page runs, as a reader would run it.

Like the tutorials (``test_tutorials.py``), each page is a jupytext percent-format script run
as a plain Python subprocess from an empty folder with ``KEYCAM_TUTORIAL_QUICK=1`` (the same
code at reduced sizes) and ``KEYCAM_TUTORIAL_OUT`` pointing at that folder; the test checks
the figures it writes and that it prints no path of the machine it ran on.
"""

from __future__ import annotations

import re

import pytest
from test_tutorials import DOCS, check_links, run_page

#: page (relative to docs/) -> the figures it must write
FIGURES = {
    "howto/own_sensor.py": ["howto_sensor_ptc.png"],
    "howto/own_lens.py": ["howto_lens_mtf.png"],
    "howto/choose_the_relay.py": ["howto_relay_efficiency.png"],
    "howto/read_real_frames.py": ["howto_real_frames.png"],
    "howto/encrypt_a_dataset.py": ["howto_dataset_frames.png"],
    "explanation/light-budget.py": ["light_budget.png"],
}


def test_every_howto_is_listed():
    on_disk = {f"howto/{p.name}" for p in (DOCS / "howto").glob("*.py")}
    assert on_disk == {k for k in FIGURES if k.startswith("howto/")}


@pytest.mark.parametrize("name", sorted(FIGURES))
def test_page_is_a_percent_notebook_with_a_title_and_working_links(name):
    text = (DOCS / name).read_text(encoding="utf-8")
    assert text.count("# %% [markdown]") >= 3
    assert len(re.findall(r"^# %%\s*$", text, flags=re.M)) >= 3
    first = text.split("# %% [markdown]", 1)[1].lstrip().splitlines()[0]
    assert first.startswith("# # "), first
    for fig in FIGURES[name]:
        assert f'"{fig}"' in text, fig
    check_links(DOCS / name)


@pytest.mark.parametrize("name", sorted(FIGURES))
def test_page_runs_and_writes_its_figures(name, tmp_path):
    run_page(DOCS / name, tmp_path, FIGURES[name], min_size=(800, 400))
