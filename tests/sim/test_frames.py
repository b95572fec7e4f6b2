"""sim.frames.read_frames: raw DN from PNG, TIFF and .npy, exactly as the ADC gave them."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from sim.frames import FrameReadError, read_frames


@pytest.fixture
def frame() -> np.ndarray:
    rng = np.random.default_rng(0)
    return rng.integers(0, 4096, size=(24, 32), dtype=np.uint16)


def test_png_tiff_and_npy_round_trip(tmp_path, frame):
    Image.fromarray(frame).save(tmp_path / "f.png")
    Image.fromarray(frame).save(tmp_path / "f.tif")
    np.save(tmp_path / "f.npy", frame)
    np.save(tmp_path / "s.npy", np.stack([frame, frame[::-1]]))
    for name in ("f.png", "f.tif", "f.npy"):
        got = read_frames(tmp_path / name, bit_depth=12)
        assert got.dtype == np.uint16 and got.shape == (1, 24, 32)
        assert np.array_equal(got[0], frame), name
    stack = read_frames(tmp_path / "s.npy", bit_depth=12)
    assert np.array_equal(stack[1], frame[::-1])


def test_msb_aligned_data_is_shifted_back(tmp_path, frame):
    Image.fromarray(frame << 4).save(tmp_path / "msb.png")
    assert np.array_equal(
        read_frames(tmp_path / "msb.png", bit_depth=12, msb_aligned=True)[0], frame
    )
    with pytest.raises(FrameReadError, match="msb_aligned=True"):
        read_frames(tmp_path / "msb.png", bit_depth=12)
    with pytest.raises(FrameReadError, match="MSB-aligned"):
        read_frames(tmp_path / "msb.png", bit_depth=10, msb_aligned=True)  # low bits set


@pytest.mark.parametrize(
    ("name", "make", "match"),
    [
        ("grey8.png", lambda p: Image.new("L", (4, 4)).save(p), "16-bit greyscale"),
        ("rgb.png", lambda p: Image.new("RGB", (4, 4)).save(p), "16-bit greyscale"),
        ("float.npy", lambda p: np.save(p, np.zeros((4, 4))), "unsigned integer"),
        ("cube.npy", lambda p: np.save(p, np.zeros((2, 2, 2, 2), np.uint16)), "shape"),
        ("obj.npy", lambda p: np.save(p, np.array([{}]), allow_pickle=True), "pickles"),
        ("junk.png", lambda p: p.write_bytes(b"not an image"), "not a readable"),
        ("frame.jpg", lambda p: p.write_bytes(b"x"), "unknown frame format"),
    ],
)
def test_bad_files_are_refused_with_their_name(tmp_path, name, make, match):
    path = tmp_path / name
    make(path)
    with pytest.raises(FrameReadError, match=match) as info:
        read_frames(path, bit_depth=12)
    assert name in str(info.value)


def test_values_beyond_the_adc_and_bad_arguments(tmp_path):
    np.save(tmp_path / "big.npy", np.full((4, 4), 5000, np.uint16))
    with pytest.raises(FrameReadError, match="12-bit ADC"):
        read_frames(tmp_path / "big.npy", bit_depth=12)
    with pytest.raises(FrameReadError, match="no such file"):
        read_frames(tmp_path / "absent.png", bit_depth=12)
    with pytest.raises(ValueError, match="bit_depth"):
        read_frames(tmp_path / "big.npy", bit_depth=17)
    with pytest.raises(ValueError, match="bit_depth"):
        read_frames(tmp_path / "big.npy", bit_depth=True)
