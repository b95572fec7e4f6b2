"""MkDocs hooks: figures made at build time, and where executed tutorials write their files.

``on_pre_build`` runs before MkDocs collects the pages, so a figure written here into
``docs/_generated/`` (git-ignored) is published like any other file:

- ``_generated/pipeline.png`` — the default camera's pipeline stage by stage (read off
  ``Camera.pipeline``), the raw frame and the authorised view (start page).

The tutorials are executed by mkdocs-jupyter in a Jupyter kernel started from this process,
so the environment set here reaches them: their PNG copies go to a temporary folder (not into
the source tree) unless ``KEYCAM_TUTORIAL_OUT`` is already set, and a non-interactive
``MPLBACKEND`` is removed so that figures appear inline on the pages.
"""

from __future__ import annotations

import io
import os
import shutil
import tempfile
from pathlib import Path

GENERATED = "_generated"
_made_out_dir: str | None = None


def _write_if_changed(path: Path, data: bytes) -> None:
    """Write only when the bytes differ, so that `mkdocs serve` does not rebuild forever."""
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
        ax.set_title(title, fontsize=10)
        ax.set_axis_off()
    fig.suptitle(
        f"default camera: {fp.rows} × {fp.cols} fibers, {fp.block_size} × {fp.block_size} "
        f"key blocks (permuted), {frame.shape[0]} × {frame.shape[1]} px sensor"
    )
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=100)
    return buf.getvalue()


def on_pre_build(config, **kwargs) -> None:
    global _made_out_dir
    docs = Path(config["docs_dir"])
    _write_if_changed(docs / GENERATED / "pipeline.png", pipeline_png())
    if not os.environ.get("KEYCAM_TUTORIAL_OUT"):
        _made_out_dir = tempfile.mkdtemp(prefix="keycam-tutorials-")
        os.environ["KEYCAM_TUTORIAL_OUT"] = _made_out_dir
    backend = os.environ.get("MPLBACKEND", "")
    if backend and "inline" not in backend:
        del os.environ["MPLBACKEND"]


def on_post_build(config, **kwargs) -> None:
    """Remove the temporary folder of the tutorials' PNG copies (the pages embed them)."""
    global _made_out_dir
    if _made_out_dir is not None:
        shutil.rmtree(_made_out_dir, ignore_errors=True)
        if os.environ.get("KEYCAM_TUTORIAL_OUT") == _made_out_dir:
            del os.environ["KEYCAM_TUTORIAL_OUT"]
        _made_out_dir = None
