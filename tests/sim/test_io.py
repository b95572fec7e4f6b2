"""Scene reading and validation, sRGB and luminance, frame/sidecar/preview writing."""

from __future__ import annotations

import json

import numpy as np
import pytest
from PIL import Image

from sim.io import (
    ImageReadError,
    default_scene_path,
    linear_to_srgb,
    luminance,
    read_image,
    srgb_to_linear,
    write_frame_png,
    write_json,
    write_npy,
    write_preview,
)
from sim.scene import area_matrix, fit_to_aspect, prepare_scene, resample_area


def test_srgb_transfer_matches_iec_61966_2_1():
    # Reference values of the sRGB EOTF: 0.5 -> 0.214041, 0.04045 -> 0.0031308 (knee).
    assert srgb_to_linear(0.5) == pytest.approx(0.2140411, abs=1e-6)
    assert srgb_to_linear(0.04045) == pytest.approx(0.0031308, abs=1e-7)
    assert srgb_to_linear(1.0) == pytest.approx(1.0)
    v = np.linspace(0, 1, 1001)
    np.testing.assert_allclose(linear_to_srgb(srgb_to_linear(v)), v, atol=1e-12)


def test_luminance_uses_rec709_weights_on_linear_rgb():
    img = np.zeros((1, 3, 3))
    img[0, 0, 0] = img[0, 1, 1] = img[0, 2, 2] = 1.0
    np.testing.assert_allclose(luminance(img)[0], [0.2126, 0.7152, 0.0722])
    np.testing.assert_allclose(luminance(np.ones((2, 2, 3))), 1.0)
    with pytest.raises(ValueError, match="image"):
        luminance(np.zeros((2, 2, 4)))


def test_default_scene_is_matplotlibs_grace_hopper():
    p = default_scene_path()
    assert p.name == "grace_hopper.jpg" and p.is_file()
    s = read_image(p)
    assert s.data.shape == (600, 512, 3) and s.bits == 8
    assert 0.0 <= s.data.min() and s.data.max() <= 1.0


def test_8bit_grey_png_is_srgb_decoded(tmp_path):
    a = np.array([[0, 128, 255]], dtype=np.uint8)
    Image.fromarray(a).save(tmp_path / "g.png")
    s = read_image(tmp_path / "g.png")
    np.testing.assert_allclose(s.data, srgb_to_linear(a / 255.0))
    assert s.data.ndim == 2 and s.bits == 8


def test_16bit_grey_png_keeps_16_bits(tmp_path):
    a = np.array([[0, 1, 32768, 65535]], dtype=np.uint16)
    Image.fromarray(a).save(tmp_path / "g16.png")
    s = read_image(tmp_path / "g16.png")
    assert s.bits == 16
    np.testing.assert_allclose(s.data, srgb_to_linear(a / 65535.0))
    assert s.data[0, 1] > 0  # one code value above black is not lost


def test_rgba_drops_alpha_with_a_note(tmp_path):
    a = np.zeros((4, 5, 4), dtype=np.uint8)
    a[..., 0] = 255
    a[..., 3] = 10
    Image.fromarray(a, mode="RGBA").save(tmp_path / "rgba.png")
    s = read_image(tmp_path / "rgba.png")
    assert s.data.shape == (4, 5, 3)
    np.testing.assert_allclose(s.data[..., 0], 1.0)
    assert any("alpha" in n for n in s.notes)


def test_jpeg_and_tiff_float_and_palette(tmp_path):
    rgb = np.full((6, 7, 3), 200, dtype=np.uint8)
    Image.fromarray(rgb).save(tmp_path / "c.jpg", quality=95)
    j = read_image(tmp_path / "c.jpg")
    assert j.data.shape == (6, 7, 3)
    np.testing.assert_allclose(j.data, srgb_to_linear(200 / 255), atol=0.02)
    f = np.linspace(0, 1, 12, dtype=np.float32).reshape(3, 4)
    Image.fromarray(f, mode="F").save(tmp_path / "f.tif")
    t = read_image(tmp_path / "f.tif")
    np.testing.assert_allclose(t.data, f, rtol=1e-6)  # float TIFF: already linear
    Image.fromarray(rgb).convert("P").save(tmp_path / "p.png")
    assert read_image(tmp_path / "p.png").data.shape == (6, 7, 3)
    g16 = np.full((3, 3), 40000, dtype=np.uint16)
    Image.fromarray(g16).save(tmp_path / "g16.tif")
    np.testing.assert_allclose(read_image(tmp_path / "g16.tif").data, srgb_to_linear(40000 / 65535))


@pytest.mark.parametrize(
    ("make", "match"),
    [
        (lambda p: None, "no such file"),
        (lambda p: p.mkdir(), "folder"),
        (lambda p: p.write_bytes(b""), "empty"),
        (lambda p: p.write_bytes(b"this is text, not pixels " * 10), "not a readable image"),
    ],
)
def test_bad_files_raise_image_read_error(tmp_path, make, match):
    p = tmp_path / "scene.png"
    make(p)
    with pytest.raises(ImageReadError, match=match):
        read_image(p)


def test_truncated_and_too_large_images(tmp_path):
    rng = np.random.default_rng(0)
    Image.fromarray(rng.integers(0, 255, (64, 64, 3), dtype=np.uint8)).save(tmp_path / "x.png")
    data = (tmp_path / "x.png").read_bytes()
    (tmp_path / "cut.png").write_bytes(data[: len(data) // 2])
    with pytest.raises(ImageReadError, match="truncated"):
        read_image(tmp_path / "cut.png")
    with pytest.raises(ImageReadError, match="exceeds the limit of 1000 pixels"):
        read_image(tmp_path / "x.png", max_pixels=1000)
    assert read_image(tmp_path / "x.png", max_pixels=64 * 64).data.shape == (64, 64, 3)


def test_frame_png_round_trip_is_exact(tmp_path):
    f = np.random.default_rng(1).integers(0, 4096, (17, 23), dtype=np.uint16)
    write_frame_png(tmp_path / "f.png", f)
    back = np.asarray(Image.open(tmp_path / "f.png"))
    assert back.dtype == np.uint16 and np.array_equal(back, f)
    with pytest.raises(ValueError, match="uint16"):
        write_frame_png(tmp_path / "g.png", f.astype(np.int32))


def test_npy_json_and_preview_writers(tmp_path):
    stack = np.arange(24, dtype=np.uint16).reshape(2, 3, 4)
    write_npy(tmp_path / "s.npy", stack)
    assert np.array_equal(np.load(tmp_path / "s.npy"), stack)
    write_json(tmp_path / "s.json", {"b": 1, "a": [1.5]})
    assert json.loads((tmp_path / "s.json").read_text()) == {"a": [1.5], "b": 1}
    write_preview(tmp_path / "p.png", [np.ones((4, 4)), np.zeros((8, 2))], ["a", "b"])
    im = Image.open(tmp_path / "p.png")
    assert im.mode == "L" and im.width == 10 + 320 + 10 + 80 + 10
    assert not list(tmp_path.glob("*.part"))


def test_area_resampling_preserves_mean_and_rows_sum_to_one():
    for n_in, n_out in ((10, 3), (3, 10), (600, 256), (7, 7)):
        m = area_matrix(n_in, n_out)
        np.testing.assert_allclose(np.asarray(m.sum(axis=1)).ravel(), 1.0)
    img = np.random.default_rng(2).random((45, 61))
    r = resample_area(img, (17, 23))
    assert r.mean() == pytest.approx(img.mean(), rel=1e-12)
    np.testing.assert_allclose(resample_area(np.ones((5, 5)), (2, 9)), 1.0)
    # integer factor: block means
    b = resample_area(img[:44, :60], (11, 15))
    assert b[0, 0] == pytest.approx(img[:4, :4].mean())


@pytest.mark.parametrize(
    ("shape_in", "shape_out"),
    [((64, 64), (256, 256)), ((8, 12), (24, 36)), ((5, 64), (20, 256)), ((64, 64), (100, 256))],
)
def test_integer_upsampling_repeats_each_value_exactly(shape_in, shape_out):
    # Where the area weights are exactly 1 each value is taken directly; the numbers are
    # those of the two sparse products (0.0 + 1.0 * value: -0.0 becomes 0.0), bit for bit.
    img = np.random.default_rng(4).random(shape_in)
    img[0, 0], img[1, 1] = -0.0, 0.0
    rr, rc = area_matrix(shape_in[0], shape_out[0]), area_matrix(shape_in[1], shape_out[1])
    want = np.asarray(rc @ (rr @ img).T).T
    got = resample_area(img, shape_out)
    np.testing.assert_array_equal(got, want)
    assert not np.signbit(got).any()
    fy, fx = shape_out[0] // shape_in[0], shape_out[1] // shape_in[1]
    if shape_out == (shape_in[0] * fy, shape_in[1] * fx) and {fy, fx} <= {1, 2, 4, 8}:
        # power-of-two factors: the area weights are exactly 1, each value is repeated
        np.testing.assert_array_equal(got, np.kron(img + 0.0, np.ones((fy, fx))))


def test_fit_to_aspect_centre_crops():
    img = np.zeros((600, 512))
    assert fit_to_aspect(img, (256, 256)).shape == (512, 512)
    assert fit_to_aspect(np.zeros((100, 300)), (1, 1)).shape == (100, 100)
    wide = np.zeros((100, 300))
    wide[:, 150] = 1
    assert fit_to_aspect(wide, (1, 1))[:, 50].all()  # the centre column stays in the middle
    x = prepare_scene(np.ones((30, 40, 3)), (8, 8))
    assert x.shape == (8, 8) and np.allclose(x, 1.0)


def _png16(img: np.ndarray, colour_type: int) -> bytes:
    """Reference encoder: a 16-bit colour PNG using all five row filters in turn."""
    import struct
    import zlib

    h, w, ch = img.shape
    bpp = 2 * ch
    raw = img.astype(">u2").view(np.uint8).reshape(h, w * bpp).astype(int)
    stream, prev = b"", np.zeros(w * bpp, int)
    for r in range(h):
        ft, row, out = r % 5, raw[r], []
        for i in range(row.size):
            a = row[i - bpp] if i >= bpp else 0
            b, c = prev[i], (prev[i - bpp] if i >= bpp else 0)
            p = a + b - c
            paeth = (
                a
                if abs(p - a) <= min(abs(p - b), abs(p - c))
                else (b if abs(p - b) <= abs(p - c) else c)
            )
            pred = (0, a, b, (a + b) // 2, paeth)[ft]
            out.append((row[i] - pred) & 0xFF)
        stream += bytes([ft, *out])
        prev = row

    def chunk(t: bytes, d: bytes) -> bytes:
        return struct.pack(">I", len(d)) + t + d + struct.pack(">I", zlib.crc32(t + d))

    ihdr = struct.pack(">IIBBBBB", w, h, 16, colour_type, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", ihdr)
        + chunk(b"IDAT", zlib.compress(stream))
        + chunk(b"IEND", b"")
    )


@pytest.mark.parametrize(("channels", "colour_type"), [(3, 2), (4, 6)])
def test_16bit_colour_png_is_read_at_full_precision(tmp_path, channels, colour_type):
    img = np.random.default_rng(3).integers(0, 65536, (9, 13, channels), dtype=np.uint16)
    p = tmp_path / "c16.png"
    p.write_bytes(_png16(img, colour_type))
    # Pillow itself only sees the top 8 bits ...
    assert np.array_equal(np.asarray(Image.open(p))[..., :3], (img[..., :3] >> 8).astype(np.uint8))
    # ... the reader keeps all 16.
    s = read_image(p)
    assert s.bits == 16 and s.data.shape == (9, 13, 3)
    np.testing.assert_allclose(s.data, srgb_to_linear(img[..., :3] / 65535.0), rtol=1e-12)
    assert ("alpha" in " ".join(s.notes)) == (channels == 4)


def test_16bit_png_decoder_is_bounded(tmp_path):
    """A stream that inflates past the declared size is refused after that size, not at its end."""
    import io
    import tracemalloc
    import zlib

    from sim.png16 import read_png16_colour

    def stream(n: int) -> bytes:
        c = zlib.compressobj(9)
        return c.compress(bytes(n)) + c.flush()

    def png(w: int, h: int, data: bytes) -> bytes:
        import struct

        def chunk(t: bytes, d: bytes) -> bytes:
            return struct.pack(">I", len(d)) + t + d + struct.pack(">I", zlib.crc32(t + d))

        ihdr = struct.pack(">IIBBBBB", w, h, 16, 6, 0, 0, 0)
        return (
            b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", data) + chunk(b"IEND", b"")
        )

    bomb = png(2, 2, stream(200_000_000))  # 200 MB of zeros declared as 2 x 2 pixels
    tracemalloc.start()
    with pytest.raises(ValueError, match="decompression bomb"):
        read_png16_colour(io.BytesIO(bomb), max_pixels=100)
    assert tracemalloc.get_traced_memory()[1] < 20_000_000
    tracemalloc.stop()
    with pytest.raises(ValueError, match="exceeds the limit of 3 pixels"):
        read_png16_colour(io.BytesIO(png(2, 2, stream(2 * 17))), max_pixels=3)
    with pytest.raises(ValueError, match="truncated"):
        read_png16_colour(io.BytesIO(png(2, 2, stream(2 * 17 - 1))), max_pixels=4)
    assert read_png16_colour(io.BytesIO(png(2, 2, stream(2 * 17))), max_pixels=4).shape == (2, 2, 4)
    # and through read_image, as a one-line refusal
    (tmp_path / "bomb.png").write_bytes(bomb)
    with pytest.raises(ImageReadError, match=r"bomb\.png"):
        read_image(tmp_path / "bomb.png")


@pytest.mark.parametrize("filters", [(0, 2), (0, 1, 2, 3, 4)])
def test_16bit_png_filters_row_by_row_and_on_diagonals(tmp_path, filters):
    img = np.random.default_rng(5).integers(0, 65536, (11, 7, 3), dtype=np.uint16)
    data = _png16(img, 2)
    if filters == (0, 2):  # re-encode with None / Up rows only (the row-by-row path)
        import struct
        import zlib

        raw = img.astype(">u2").view(np.uint8).reshape(11, -1).astype(int)
        rows = [bytes([0, *raw[0]])]
        rows += [bytes([2, *((raw[r] - raw[r - 1]) & 0xFF)]) for r in range(1, 11)]
        idat = zlib.compress(b"".join(rows))
        head, tail = data[: data.index(b"IDAT") - 4], data[data.index(b"IEND") - 4 :]
        crc = struct.pack(">I", zlib.crc32(b"IDAT" + idat))
        data = head + struct.pack(">I", len(idat)) + b"IDAT" + idat + crc + tail
    p = tmp_path / "c.png"
    p.write_bytes(data)
    np.testing.assert_allclose(read_image(p).data, srgb_to_linear(img / 65535.0), rtol=1e-12)


def test_a_tiff_with_malformed_tags_is_a_corrupt_image(tmp_path):
    # Found by the property suite: Pillow raises TypeError("Missing dimensions") on it.
    bad = (
        b"II*\x00\x08\x00\x00\x00\n\x00\x00\x01\x04\x00\x01\x00\x00\x00\x01\x00\x00\x00\x01\x01"
        b"\x04\x00\x01\x00\x00\x00\x01\x00\x00\x00\x02\x01\x03\x00\x03\x00\x00\x00\x86\x00\x00"
        b"\x00\x03\x01\x03\x00\x01\x00\x00\x00\x01\x00\x00\x00\x06\x01\x03\x00\x01\x00\x00\x00"
        b"\x02\x00\x00\x00\x11\x01\x04\x00\x01\x00\x00\x00\x8c\x00\x00\x00\x15\x01\x03\x00\x01"
        b"\x00\x00\x00\x03\x00\x00\x00\x16\x01\x04\x00\x01\x00\x00\x00\x01\x00\x00\x00\x17\x01"
        b"\x04\x00\x01\x00\x00\x00\x03\x00\x00\x00\x1c\x01\x03\x00\x01\x00\x00\x00\x01\x00\x00"
        b"\x00\x01\x00\x00\x00\x08\x00\x08\x00\x08\x00^\x81\xc1"
    )
    p = tmp_path / "bad.tif"
    p.write_bytes(bad)
    with pytest.raises(ImageReadError, match=r"bad\.tif"):
        read_image(p)
