"""Open every page of a built site in headless Chromium and report what a reader would see wrong.

The site is served from 127.0.0.1 by a local HTTP server that adds one small script to each
HTML page. That script records console errors, uncaught exceptions, resources that failed to
load and images that did not decode, waits until MathJax has typeset the page, and writes its
findings into the page, where ``chromium --dump-dom`` shows them. Chromium resolves no host
name other than 127.0.0.1, so a page that needs the network fails the check. The dumped DOM
is then searched for TeX that MathJax left as text (``$...$``, ``\\frac``, ``\\(``).

Run by hand on a built site: ``python tests/docs/browser_check.py docs/_build/html``.
"""

from __future__ import annotations

import functools
import html.parser
import http.server
import json
import re
import shutil
import subprocess
import sys
import tempfile
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

MARKER = "keycam-browser-check"

PROBE = (
    """<script>
(function () {
  var found = [];
  var origError = console.error;
  console.error = function () {
    found.push("console.error: " + Array.prototype.join.call(arguments, " "));
    return origError.apply(console, arguments);
  };
  window.addEventListener("error", function (e) {
    var t = e.target;
    if (t && t !== window && (t.src || t.href)) {
      found.push("failed to load: " + (t.src || t.href));
    } else {
      found.push("uncaught: " + e.message);
    }
  }, true);
  window.addEventListener("unhandledrejection", function (e) {
    found.push("unhandled rejection: " + e.reason);
  });
  function report() {
    for (var i = 0; i < document.images.length; i++) {
      var img = document.images[i];
      if (!img.complete || img.naturalWidth === 0) found.push("broken image: " + img.src);
    }
    var pre = document.createElement("pre");
    pre.id = "MARKER";
    pre.textContent = JSON.stringify(found);
    document.body.appendChild(pre);
  }
  window.addEventListener("load", function () {
    var mj = window.MathJax && window.MathJax.startup && window.MathJax.startup.promise;
    if (mj) {
      mj.then(report, function (e) { found.push("MathJax: " + e); report(); });
    } else {
      setTimeout(report, 0);
    }
  });
})();
</script>"""
).replace("MARKER", MARKER)

#: TeX left as text after MathJax ran
RAW_TEX = re.compile(
    r"\$[^$\s][^$]*\$|\\(?:frac|sqrt|mathrm|cdot|lvert|rvert|pi|lambda|eta|sigma|mu|nu|"
    r"theta|min|max|left|right|times|approx|le|ge)\b|\\\(|\\\)|\\\[|\\\]"
)
#: elements whose text is not prose: code, scripts, MathJax's own output, the probe's report
SKIP_TAGS = {"script", "style", "pre", "code", "kbd", "samp", "textarea", "mjx-container",
             "mjx-assistive-mml", "math", "svg"}  # fmt: skip


class _Text(html.parser.HTMLParser):
    """Visible prose of a page, and the probe's report."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.depth = 0
        self.chunks: list[str] = []
        self.report: str | None = None
        self._in_report = False
        self.math_nodes = 0
        self.typeset = 0

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = dict(attrs)
        if a.get("id") == MARKER:
            self._in_report = True
            self.report = ""
        if tag == "mjx-container":
            self.typeset += 1
        if "math" in (a.get("class") or "").split():
            self.math_nodes += 1
        if tag in SKIP_TAGS:
            self.depth += 1

    def handle_endtag(self, tag: str) -> None:
        if tag in SKIP_TAGS and self.depth:
            self.depth -= 1
        if tag == "pre":
            self._in_report = False

    def handle_data(self, data: str) -> None:
        if self._in_report:
            self.report = (self.report or "") + data
        elif not self.depth:
            self.chunks.append(data)


class _Handler(http.server.SimpleHTTPRequestHandler):
    """Serves the site, adding the probe to HTML pages; records every request."""

    requests: list[tuple[str, int]]

    def log_message(self, format: str, *args: object) -> None:
        pass

    def send_response(self, code: int, message: str | None = None) -> None:
        self.requests.append((self.path, code))
        super().send_response(code, message)

    def send_head(self):  # type: ignore[no-untyped-def]
        path = Path(self.translate_path(self.path))
        if path.is_file() and path.suffix == ".html":
            body = path.read_bytes().replace(b"<head>", b"<head>" + PROBE.encode(), 1)
            self.send_response(200)
            self.send_header("Content-Type", "text/html; charset=utf-8")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            import io

            return io.BytesIO(body)
        return super().send_head()


@contextmanager
def serve(site: Path) -> Iterator[tuple[str, list[tuple[str, int]]]]:
    """Serve ``site`` on 127.0.0.1 (a free port); yields the base URL and the request log."""
    requests: list[tuple[str, int]] = []
    handler = type("Handler", (_Handler,), {"requests": requests})
    server = http.server.ThreadingHTTPServer(
        ("127.0.0.1", 0), functools.partial(handler, directory=str(site))
    )
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}", requests
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=10)


def chromium() -> str | None:
    """Path of a Chromium executable, or None."""
    for name in ("chromium", "chromium-browser"):
        if path := shutil.which(name):
            return path
    return None


def dump_dom(browser: str, url: str, *, budget_ms: int = 20_000, timeout_s: float = 120) -> str:
    """The DOM of ``url`` after scripts ran, from headless Chromium without network access."""
    with tempfile.TemporaryDirectory(prefix="chromium-profile-") as profile:
        proc = subprocess.run(
            [browser, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
             "--no-first-run", "--disable-background-networking", "--disable-component-update",
             "--disable-sync", "--disable-extensions", f"--user-data-dir={profile}",
             "--host-resolver-rules=MAP * ~NOTFOUND , EXCLUDE 127.0.0.1",
             f"--virtual-time-budget={budget_ms}", "--dump-dom", url],
            capture_output=True,
            text=True,
            timeout=timeout_s,
        )  # fmt: skip
    if proc.returncode != 0:
        raise RuntimeError(f"chromium exited {proc.returncode}: {proc.stderr[-1000:]}")
    return proc.stdout


def external_resources(page: Path) -> list[str]:
    """Scripts, stylesheets, fonts, images or frames a page would load from another host."""
    text = page.read_text(encoding="utf-8", errors="replace")
    found = re.findall(
        r"<(?:script|img|iframe|source)\b[^>]*\bsrc=[\"'](https?:)?//[^\"']+[\"']", text
    )
    links = re.findall(r"<link\b[^>]*>", text)
    bad = [
        link
        for link in links
        if re.search(r"href=[\"'](?:https?:)?//", link)
        and re.search(r"rel=[\"'](?:stylesheet|preload|icon|modulepreload|prefetch)", link)
    ]
    return [*found, *bad]


def external_css_urls(site: Path) -> list[str]:
    """``url(...)`` and ``@import`` of another host in the site's stylesheets (e.g. web fonts)."""
    found = []
    for css in sorted(site.rglob("*.css")):
        text = css.read_text(encoding="utf-8", errors="replace")
        for m in re.finditer(r"(?:url\(\s*['\"]?|@import\s+['\"])((?:https?:)?//[^'\")\s]+)", text):
            found.append(f"{css.relative_to(site).as_posix()}: {m.group(1)}")
    return found


def check_page(browser: str, base: str, rel: str) -> list[str]:
    """Problems a reader would see on one page (empty: none)."""
    dom = dump_dom(browser, f"{base}/{rel}")
    parser = _Text()
    parser.feed(dom)
    problems: list[str] = []
    if parser.report is None:
        return ["the page did not finish loading (no report from the probe)"]
    problems += json.loads(parser.report)
    text = " ".join("".join(parser.chunks).split())
    for m in RAW_TEX.finditer(text):
        problems.append(f"raw TeX in the text: …{text[max(0, m.start() - 40) : m.end() + 40]}…")
    if parser.math_nodes and not parser.typeset:
        problems.append(f"{parser.math_nodes} math elements, none typeset by MathJax")
    return problems


def check_site(site: Path, browser: str) -> dict[str, list[str]]:
    """Every HTML page of ``site`` -> its problems (pages without problems are left out)."""
    pages = sorted(
        p.relative_to(site).as_posix()
        for p in site.rglob("*.html")
        if not p.relative_to(site).parts[0].startswith("_")
    )
    out: dict[str, list[str]] = {}
    with serve(site) as (base, requests):
        for rel in pages:
            problems = [f"loads from another host: {r}" for r in external_resources(site / rel)]
            problems += check_page(browser, base, rel)
            if problems:
                out[rel] = problems
        missing = sorted({p for p, code in requests if code >= 400 and p != "/favicon.ico"})
    if missing:
        out["(server)"] = [f"requested but missing: {p}" for p in missing]
    if css := external_css_urls(site):
        out["(stylesheets)"] = [f"loads from another host: {c}" for c in css]
    return out


def main(argv: list[str]) -> int:
    site = Path(argv[0] if argv else "docs/_build/html")
    browser = chromium()
    if browser is None:
        print("chromium not found", file=sys.stderr)
        return 2
    problems = check_site(site, browser)
    for page, items in problems.items():
        for item in items:
            print(f"{page}: {item}")
    n = len(list(site.rglob("*.html")))
    print(f"{n} pages checked, {len(problems)} with problems")
    return 1 if problems else 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
