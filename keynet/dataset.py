"""The bundled MNIST subset (5000 digits, 500 per class) and its fixed train/test split.

See ``keynet/data/LICENSE-mnist5000.md`` for licence (CC BY-SA 3.0), attribution and
provenance. Nothing is downloaded: the digits ship inside the package.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from importlib import resources

import numpy as np

__all__ = ["Split", "data_fingerprint", "held_out_mask", "load_digits", "load_split"]

TEST_EVERY = 5  # within each digit, positions 4, 9, 14, ... are test images


@dataclass(frozen=True)
class Split:
    """Digits as float32 in [0, 1] (``(N, 28, 28)``, row 0 = top) with ``(N,)`` int labels."""

    x_train: np.ndarray
    y_train: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray


def load_digits() -> tuple[np.ndarray, np.ndarray]:
    """All 5000 digits: ``images (5000, 28, 28) uint8`` (0 = background) and ``labels (5000,)``."""
    ref = resources.files("keynet.data").joinpath("mnist5000.npz")
    with resources.as_file(ref) as path, np.load(path, allow_pickle=False) as f:
        return f["images"].copy(), f["labels"].astype(np.int64)


def data_fingerprint() -> str:
    """SHA-256 (hex, first 16 characters) of the bundled images and labels."""
    images, labels = load_digits()
    h = hashlib.sha256(images.tobytes())
    h.update(labels.astype(np.uint8).tobytes())
    return h.hexdigest()[:16]


def held_out_mask(labels: np.ndarray) -> np.ndarray:
    """``(N,)`` bool: the test digits of the fixed split, given the labels in file order.

    Within each digit, positions 4, 9, 14, ... (every fifth) are test digits.
    """
    labels = np.asarray(labels)
    position = np.zeros(len(labels), dtype=np.int64)
    for d in np.unique(labels):
        idx = np.flatnonzero(labels == d)
        position[idx] = np.arange(len(idx))
    return position % TEST_EVERY == TEST_EVERY - 1


def load_split() -> Split:
    """The fixed 4000/1000 split, stratified 400/100 per digit.

    Within each digit the images keep their order in the source file; every fifth one
    (positions 4, 9, 14, ...) goes to the test set. Pixel values are divided by 255.
    """
    images, labels = load_digits()
    test = held_out_mask(labels)
    x = images.astype(np.float32) / np.float32(255.0)
    return Split(x[~test], labels[~test], x[test], labels[test])
