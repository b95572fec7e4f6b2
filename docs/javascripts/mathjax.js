// MathJax 3 for keycam's pages. Markdown pages arrive through pymdownx.arithmatex (\( \) and
// \[ \] in elements of class "arithmatex"); the tutorials are notebooks rendered by
// mkdocs-jupyter, whose Markdown cells keep $ … $ and $$ … $$ — both are typeset here.
window.MathJax = {
  tex: {
    inlineMath: [["\\(", "\\)"], ["$", "$"]],
    displayMath: [["\\[", "\\]"], ["$$", "$$"]],
    processEscapes: true,
    processEnvironments: true,
  },
  options: {
    ignoreHtmlClass: ".*|",
    processHtmlClass: "arithmatex|jp-RenderedMarkdown|jp-MarkdownOutput",
  },
};

// Material for MkDocs swaps page content without a reload when instant navigation is on:
// typeset every new page.
if (typeof document$ !== "undefined") {
  document$.subscribe(() => {
    if (window.MathJax && MathJax.typesetPromise) {
      MathJax.startup.output.clearCache();
      MathJax.typesetClear();
      MathJax.texReset();
      MathJax.typesetPromise();
    }
  });
}
