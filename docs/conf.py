"""Sphinx configuration of the keycam documentation.

Build (warnings are errors, every tutorial and how-to executed)::

    pip install -e ".[docs]" && sphinx-build -W -b html docs docs/_build/html

Stack: Sphinx with pydata-sphinx-theme, myst-nb (Markdown pages through MyST, the jupytext
percent-format scripts in ``tutorials/``, ``howto/`` and ``explanation/`` executed as
notebooks), autodoc + napoleon for the API reference, and MathJax served from the built site
(``sphinx-mathjax-offline``): no page loads anything from another host.

Adding a page: put ``docs/<section>/<name>.md`` (or a percent-format ``<name>.py``) beside
the others and add ``<name>`` as one line to the ``toctree`` in ``docs/<section>/index.md``.
Sections: ``tutorials``, ``howto``, ``explanation``, ``reference``.

Build-time work (``builder-inited``, before any page is read), written into
``docs/_generated/`` (git-ignored):

- ``pipeline.png`` -- the default camera's pipeline stage by stage, read off
  ``Camera.pipeline``, with the raw frame and the authorised view (start page);
- ``configuration_fields.md`` -- the configuration reference, generated from the pydantic
  schema of ``CameraConfig`` (``keycam.reference``).

The notebooks run in a Jupyter kernel started from this process, so the environment set
here reaches them: their PNG copies go to a temporary folder (removed after the build)
unless ``KEYCAM_TUTORIAL_OUT`` is set, and a non-interactive ``MPLBACKEND`` is removed so
that figures appear inline on the pages. ``KEYCAM_TUTORIAL_QUICK=1`` runs them at reduced
sizes (the tests do).
"""

from __future__ import annotations

import io
import os
import shutil
import sys
import tempfile
from pathlib import Path

DOCS = Path(__file__).resolve().parent
ROOT = DOCS.parent
sys.path.insert(0, str(ROOT))  # the packages of this checkout, before any installed copy
GENERATED = DOCS / "_generated"

# -- project -------------------------------------------------------------------------------
project = "keycam"
author = "keycam developers"
copyright = "keycam developers"
release = version = "0.1.0"

extensions = [
    "myst_nb",
    "sphinx.ext.autodoc",
    "sphinx.ext.napoleon",
    "sphinx.ext.mathjax",
    "sphinx-mathjax-offline",
]

root_doc = "index"
exclude_patterns = [
    "_build",
    "_generated/*.md",  # included by the pages that show them
    "conf.py",
    "**/.ipynb_checkpoints",
    "**/__pycache__",
]
# Warnings are errors (-W); these are not about the pages' content.
# Napoleon turns the shapes in docstrings (e.g. "(n_fibers,)") into cross-references; a
# name defined on two classes is ambiguous there, which says nothing about the page.
suppress_warnings = ["myst.header", "mystnb.unknown_mime_type", "ref.python"]

# -- Markdown and notebooks (myst-nb) ------------------------------------------------------
nb_custom_formats = {".py": ["jupytext.reads", {"fmt": "py:percent"}]}
myst_enable_extensions = ["dollarmath", "amsmath", "colon_fence", "deflist"]
myst_heading_anchors = 3
nb_execution_mode = "force"
nb_execution_raise_on_error = True
nb_execution_show_tb = True
nb_execution_timeout = 1800
nb_execution_in_temp = True  # a run writes nothing into the source tree
nb_merge_streams = True

# -- API reference (autodoc + napoleon, numpydoc-style docstrings) -------------------------
autodoc_default_options = {"members": True, "show-inheritance": False}
autodoc_member_order = "bysource"
autodoc_typehints = "none"  # the signatures and the numpydoc sections carry the types
autodoc_inherit_docstrings = False
napoleon_google_docstring = False
napoleon_numpy_docstring = True
napoleon_use_rtype = False
napoleon_use_ivar = True

# -- HTML ----------------------------------------------------------------------------------
html_theme = "pydata_sphinx_theme"
html_title = "keycam"
html_static_path = ["_static"]
html_css_files = ["keycam.css"]
html_last_updated_fmt = None
html_theme_options = {
    "navigation_with_keys": False,
    "show_toc_level": 2,
    "navbar_align": "left",
    "header_links_before_dropdown": 5,
    "footer_start": ["copyright"],
    "footer_end": ["sphinx-version"],
    "secondary_sidebar_items": ["page-toc"],
}
html_sidebars = {"index": []}
# The reader's light or dark preference; without it the theme logs a console error on a
# first visit.
html_context = {"default_mode": "auto"}
html_copy_source = False
html_show_sourcelink = False

# -- build-time figures and pages ------------------------------------------------------------


def _write_if_changed(path: Path, data: bytes) -> None:
    """Write only when the bytes differ, so that an unchanged figure does not trigger rebuilds."""
    if path.is_file() and path.read_bytes() == data:
        return
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(path.suffix + ".tmp")
    tmp.write_bytes(data)
    os.replace(tmp, path)


def pipeline_png() -> bytes:
    """The start page's picture, as PNG bytes (seeded: the same bytes on every build)."""
    import numpy as np
    from matplotlib.figure import Figure

    from sim.camera import Camera
    from sim.io import default_scene_path, linear_to_srgb, read_image

    camera = Camera.default()
    scene = camera.prepare_scene(read_image(default_scene_path()).data)
    exposure_s = camera.exposure_for(scene)
    rng = np.random.default_rng(1)
    frame = camera.capture(scene, rng=rng, exposure_s=exposure_s)
    view = camera.unscramble(frame, exposure_s=exposure_s)

    def display(values: np.ndarray) -> np.ndarray:
        v = np.nan_to_num(np.asarray(values, dtype=np.float64))
        v = v - np.percentile(v, 0.5)
        hi = np.percentile(v, 99.5)
        return linear_to_srgb(v / hi) if hi > 0 else np.zeros_like(v)

    # Every stage of the camera's pipeline, read off where it ends.
    fp = camera.config.faceplate
    shapes = {
        "lens": camera.sample_shape,
        "sampling": (fp.rows, fp.cols),
        "transfer": (fp.rows, fp.cols),
        "coupling": camera.frame_shape,
    }
    titles = {
        "lens": "after the lens (input face)",
        "sampling": "light into each fiber",
        "transfer": "light out of each site (keyed)",
        "coupling": "photons on the sensor",
    }
    x = scene.ravel()
    panels = [(scene, "scene")]
    for name in camera.pipeline.names:
        out = camera.pipeline.upto(name).apply(x)
        panels.append((out.reshape(shapes[name]), titles[name]))
    panels += [(frame, "raw frame (DN)"), (view, "authorised view (with the key)")]
    cols = (len(panels) + 1) // 2
    fig = Figure(figsize=(3.2 * cols, 7.0), layout="constrained")
    axes = fig.subplots(2, cols).ravel()
    for ax in axes[len(panels) :]:
        ax.set_axis_off()
    for ax, (img, title) in zip(axes, panels, strict=False):
        ax.imshow(display(img), cmap="gray", vmin=0, vmax=1, interpolation="nearest")
        ax.set_title(title, fontsize=11)
        ax.set_axis_off()
    fig.suptitle(
        f"default camera: {fp.rows} × {fp.cols} fibers, {fp.block_size} × {fp.block_size} "
        f"key blocks (permuted), {frame.shape[0]} × {frame.shape[1]} px sensor"
    )
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=100)
    return buf.getvalue()


_made_out_dir: str | None = None


def _generate(app) -> None:
    """``builder-inited``: figures and generated pages, and the notebooks' environment."""
    global _made_out_dir
    from keycam.reference import markdown_reference
    from sim.config import CameraConfig

    _write_if_changed(GENERATED / "pipeline.png", pipeline_png())
    _write_if_changed(
        GENERATED / "configuration_fields.md",
        markdown_reference(CameraConfig).encode("utf-8"),
    )
    if not os.environ.get("KEYCAM_TUTORIAL_OUT"):
        _made_out_dir = tempfile.mkdtemp(prefix="keycam-tutorials-")
        os.environ["KEYCAM_TUTORIAL_OUT"] = _made_out_dir
    backend = os.environ.get("MPLBACKEND", "")
    if backend and "inline" not in backend:
        del os.environ["MPLBACKEND"]
    # The kernel imports this checkout's packages too.
    paths = [str(ROOT), *filter(None, os.environ.get("PYTHONPATH", "").split(os.pathsep))]
    os.environ["PYTHONPATH"] = os.pathsep.join(dict.fromkeys(paths))


def _cleanup(app, exc) -> None:
    """``build-finished``: remove the temporary folder of the notebooks' PNG copies."""
    global _made_out_dir
    if _made_out_dir is not None:
        shutil.rmtree(_made_out_dir, ignore_errors=True)
        if os.environ.get("KEYCAM_TUTORIAL_OUT") == _made_out_dir:
            del os.environ["KEYCAM_TUTORIAL_OUT"]
        _made_out_dir = None


def setup(app) -> None:
    app.connect("builder-inited", _generate)
    app.connect("build-finished", _cleanup)
