"""The built site in a real browser: every page renders, offline.

Headless Chromium opens every page of the strictly built site from a server on 127.0.0.1
with every other host unresolvable, and the check fails on TeX left as text, a math element
MathJax did not typeset, an image that did not load, a console error or uncaught exception,
any request the site cannot serve, or a page that links a script, stylesheet or font from
another host (``browser_check.py``). Skipped where Chromium is not installed (``.ci/run``
installs it with apt when it can).
"""

from __future__ import annotations

import pytest
from browser_check import check_page, check_site, chromium, serve


@pytest.fixture(scope="module")
def browser() -> str:
    path = chromium()
    if path is None:
        pytest.skip("chromium is not installed")
    return path


@pytest.mark.slow
@pytest.mark.xdist_group("docs_site")
def test_every_page_renders_offline_in_chromium(built_site, browser):
    problems = check_site(built_site, browser)
    assert problems == {}, "\n".join(f"{p}: {i}" for p, items in problems.items() for i in items)


@pytest.mark.slow
def test_the_check_sees_raw_tex_missing_images_and_errors(tmp_path, browser):
    """A page with each fault is reported (the check can fail)."""
    (tmp_path / "bad.html").write_text(
        "<html><head><title>t</title></head><body><p>energy $E = h \\nu$ per photon</p>"
        '<img src="missing.png"><script>console.error("boom")</script></body></html>',
        encoding="utf-8",
    )
    (tmp_path / "good.html").write_text(
        "<html><head><title>t</title></head><body><p>price: 5 $ or 6 $</p>"
        "<pre>$HOME \\frac</pre></body></html>",
        encoding="utf-8",
    )
    with serve(tmp_path) as (base, _):
        bad = check_page(browser, base, "bad.html")
        good = check_page(browser, base, "good.html")
    assert any("raw TeX" in p for p in bad), bad
    assert any("missing.png" in p for p in bad), bad
    assert any("boom" in p for p in bad), bad
    assert good == [], good
