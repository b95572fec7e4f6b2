"""Run the audit's attacks against one camera and key; collect the figures (never the key)."""

from __future__ import annotations

import io
import time
from collections.abc import Callable
from typing import Any

import numpy as np

from sim.camera import Camera

__all__ = ["ATTACKS", "plot_png", "run_audit"]

#: Attack families in the order they run.
ATTACKS = ("chosen", "known", "ciphertext", "keynet")


def run_audit(
    camera: Camera,
    *,
    attacks: tuple[str, ...] = ("chosen", "known", "ciphertext"),
    bases: tuple[int, ...] = (2, 8, 64),
    pairs: tuple[int, ...] = (3, 4, 5, 6, 8),
    frames: tuple[int, ...] = (25, 50, 100, 250, 500, 1000, 2000),
    keynet_w1: Any = None,
    rng: np.random.Generator,
    tick: Callable[[str], None] | None = None,
) -> dict[str, Any]:
    """Attack ``camera`` as each adversary would; return fractions and correlations.

    Parameters
    ----------
    camera : Camera
        The device (config and key). The key is used to simulate frames and to score.
    attacks : tuple of str
        Any of :data:`ATTACKS`.
    bases, pairs, frames : tuple of int
        Code bases (chosen plaintext), numbers of known pairs, stream lengths (ciphertext only).
    keynet_w1 : sparse matrix, optional
        First layer of a key-net made for this camera (needed for ``"keynet"``).
    rng : numpy.random.Generator
        Scenes and frame noise.
    tick : callable, optional
        Called with a short label after each step (progress display).

    Returns
    -------
    dict
        One entry per attack with a list of rows; each row names the data the attacker had
        and what they recovered (fractions in [0, 1], correlations). No key material.
    """
    from sim.audit.chosen import chosen_plaintext
    from sim.audit.known import known_plaintext
    from sim.audit.topology import ciphertext_only

    unknown = set(attacks) - set(ATTACKS)
    if unknown:
        raise ValueError(f"attacks: unknown {sorted(unknown)}; choose from {list(ATTACKS)}")
    step = tick or (lambda _label: None)
    out: dict[str, Any] = {}
    timings: dict[str, float] = {}
    if "chosen" in attacks:
        t0 = time.perf_counter()
        out["chosen_plaintext"] = []
        for b in bases:
            out["chosen_plaintext"].append(chosen_plaintext(camera, base=b, rng=rng))
            step(f"chosen plaintext, base {b}")
        timings["chosen_plaintext"] = time.perf_counter() - t0
    if "known" in attacks:
        t0 = time.perf_counter()
        out["known_plaintext"] = known_plaintext(camera, list(pairs), rng=rng)
        step("known plaintext")
        timings["known_plaintext"] = time.perf_counter() - t0
    if "ciphertext" in attacks:
        t0 = time.perf_counter()
        out["ciphertext_only"] = ciphertext_only(
            camera, list(frames), rng=rng, progress_fn=lambda m: step(f"stream +{m} frames")
        )
        step("ciphertext only")
        timings["ciphertext_only"] = time.perf_counter() - t0
    if "keynet" in attacks:
        if keynet_w1 is None:
            raise ValueError("attacks: 'keynet' needs a key-net file (--keynet)")
        t0 = time.perf_counter()
        out["keynet_structure"] = [_keynet_row(camera, keynet_w1, rng=rng)]
        step("key-net structure")
        timings["keynet_structure"] = time.perf_counter() - t0
    out["seconds"] = timings
    return out


def _keynet_row(camera: Camera, w1: Any, *, rng: np.random.Generator) -> dict[str, Any]:
    from sim.audit.common import (
        image_correlation,
        natural_stream,
        observe,
        reassemble,
        routing_fraction,
        true_fiber_values,
    )
    from sim.audit.keynet_structure import structure_attack

    fp = camera.config.faceplate
    if w1.shape[1] != fp.n_fibers or fp.rows != fp.cols or fp.rows % 2:
        raise ValueError(
            f"key-net: first layer has {w1.shape[1]} inputs, the camera {fp.n_fibers} sites "
            f"({fp.rows} x {fp.cols}); audit a key-net with the camera it was made for"
        )
    scenes = natural_stream(4, camera.scene_shape, rng=rng)
    r = observe(camera, scenes, rng=rng)
    guess, weight = structure_attack(w1, r[:1], side=fp.rows)
    picture = reassemble(r[1:] * weight, guess, fp.n_fibers)
    return {
        "files": 1,
        "frames": 1,
        "routing_fraction": routing_fraction(camera, guess),
        "image_correlation": image_correlation(true_fiber_values(camera, scenes[1:]), picture),
    }


_AXES = {
    "chosen_plaintext": ("frames", "frames shown (chosen patterns)"),
    "known_plaintext": ("pairs", "known (scene, frame) pairs"),
    "ciphertext_only": ("frames", "frames of natural scenes (ciphertext only)"),
    "keynet_structure": ("files", "key-net files"),
}


def plot_png(name: str, rows: list[dict[str, Any]]) -> bytes:
    """A PNG of one attack's curve: recovered fractions and correlation against data."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    xkey, xlabel = _AXES[name]
    rows = sorted(rows, key=lambda r: r[xkey])
    x = [r[xkey] for r in rows]
    fig, ax = plt.subplots(figsize=(5, 3.4), dpi=100)
    for key, label, mark in (
        ("routing_fraction", "routing recovered (fraction of fibers)", "o-"),
        ("neighbour_fraction", "neighbours recovered (fraction of fibers)", "s--"),
        ("image_correlation", "correlation of reassembled image", "^-"),
    ):
        if key in rows[0]:
            ax.plot(x, [r[key] for r in rows], mark, label=label)
    ax.set_xlabel(xlabel)
    ax.set_ylim(-0.05, 1.05)
    if name == "ciphertext_only" and len(x) > 1:
        ax.set_xscale("log")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7, loc="lower right")
    ax.set_title(name.replace("_", " "))
    fig.tight_layout()
    buf = io.BytesIO()
    fig.savefig(buf, format="png")
    plt.close(fig)
    return buf.getvalue()
