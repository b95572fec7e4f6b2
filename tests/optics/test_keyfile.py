"""Key files: exact round trip, secrecy (mode 0600, no overwrite) and refusal of bad files."""

from __future__ import annotations

import json
import os
import stat
import struct
import zipfile

import numpy as np
import pytest

from optics.faceplate import FaceplateConfig, Key, KeyFileError, keygen
from optics.faceplate.keyfile import MAGIC, read_key_file, write_key_file


@pytest.fixture(scope="module")
def key() -> Key:
    cfg = FaceplateConfig(
        rows=12,
        cols=10,
        block_size=4,
        lattice="hexagonal",
        crosstalk_in=0.1,
        crosstalk_out=0.05,
        dead_fraction=0.05,
        bias_photons_per_s=30.0,
        gain_key_rms=0.2,
        seed=1234,
    )
    return keygen(cfg)


def _assert_same(a: Key, b: Key) -> None:
    assert a.config == b.config
    for name in ("routing", "transmission", "bias", "dead"):
        x, y = getattr(a, name), getattr(b, name)
        assert x.dtype == y.dtype
        np.testing.assert_array_equal(x, y)
    for name in ("crosstalk_in", "crosstalk_out"):
        x, y = getattr(a, name), getattr(b, name)
        assert (x != y).nnz == 0
        np.testing.assert_array_equal(x.toarray(), y.toarray())
    assert a.fingerprint == b.fingerprint


def test_round_trip_is_exact(tmp_path, key):
    path = key.save(tmp_path / "device.key")
    loaded = Key.load(path)
    _assert_same(key, loaded)
    assert loaded == key


def test_mode_0600_and_no_overwrite(tmp_path, key):
    path = tmp_path / "device.key"
    key.save(path)
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    before = path.read_bytes()
    other = keygen(key.config.model_copy(update={"seed": 99}))
    with pytest.raises(FileExistsError):
        other.save(path)
    assert path.read_bytes() == before
    other.save(path, overwrite=True)
    assert Key.load(path) == other
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    assert sorted(p.name for p in tmp_path.iterdir()) == ["device.key"]  # no temp files left


def test_fingerprint_is_short_hex_and_content_sensitive(key):
    fp = key.fingerprint
    assert len(fp) == 16 and all(ch in "0123456789abcdef" for ch in fp)
    assert keygen(key.config).fingerprint == fp
    assert keygen(key.config.model_copy(update={"seed": 1235})).fingerprint != fp
    t = key.transmission.copy()
    t[0] *= 0.5
    assert key.with_transmission(t).fingerprint != fp


def test_repr_reveals_no_arrays(key):
    text = repr(key)
    assert key.fingerprint in text and "hexagonal" in text and "12x10" in text
    assert str(int(key.routing[0])) not in text.replace(key.fingerprint, "").replace("12x10", "")
    assert "seed" not in text


def test_truncated_files_are_refused(tmp_path, key):
    path = key.save(tmp_path / "k.key")
    raw = path.read_bytes()
    for cut in (3, len(MAGIC) + 4, len(MAGIC) + 20, len(raw) // 2, len(raw) - 1):
        bad = tmp_path / f"cut{cut}.key"
        bad.write_bytes(raw[:cut])
        with pytest.raises(KeyFileError, match="truncated") as exc:
            Key.load(bad)
        assert str(bad) in str(exc.value)


def test_tampered_files_are_refused(tmp_path, key):
    path = key.save(tmp_path / "k.key")
    raw = bytearray(path.read_bytes())
    (hlen,) = struct.unpack("<Q", raw[len(MAGIC) : len(MAGIC) + 8])
    payload_start = len(MAGIC) + 8 + hlen
    rng = np.random.default_rng(7)
    positions = list(rng.integers(payload_start, len(raw), size=20))
    for pos in positions:
        bad = bytearray(raw)
        bad[pos] ^= 0x01
        p = tmp_path / "flip.key"
        p.write_bytes(bytes(bad))
        with pytest.raises(KeyFileError, match="checksum"):
            Key.load(p)
    # A consistent-looking edit of the header (change the seed) breaks the checksum too.
    header = json.loads(raw[len(MAGIC) + 8 : payload_start])
    header["meta"]["config"]["seed"] = 1
    hb = json.dumps(header, sort_keys=True, separators=(",", ":")).encode()
    p = tmp_path / "edit.key"
    p.write_bytes(MAGIC + struct.pack("<Q", len(hb)) + hb + bytes(raw[payload_start:]))
    with pytest.raises(KeyFileError, match="checksum"):
        Key.load(p)
    # Appended bytes are refused.
    p.write_bytes(bytes(raw) + b"\0")
    with pytest.raises(KeyFileError, match="trailing"):
        Key.load(p)


def test_foreign_files_are_refused(tmp_path, key):
    cases = {
        "empty.key": b"",
        "text.key": b"hello, this is not a key\n" * 4,
        "png.key": b"\x89PNG\r\n\x1a\n" + bytes(64),
    }
    for name, data in cases.items():
        (tmp_path / name).write_bytes(data)
    np.savez(tmp_path / "arrays.npz", routing=key.routing)
    with zipfile.ZipFile(tmp_path / "arrays.npz"):
        pass
    for name in [*cases, "arrays.npz"]:
        with pytest.raises(KeyFileError, match="not a keycam key file") as exc:
            Key.load(tmp_path / name)
        assert name in str(exc.value)
    with pytest.raises(FileNotFoundError):
        Key.load(tmp_path / "missing.key")


def test_valid_container_with_inconsistent_key_is_refused(tmp_path, key):
    """A well-formed file whose routing is not a permutation is still not a key."""
    arrays = dict(key._arrays())
    routing = arrays["routing"].copy()
    routing[1] = routing[0]
    arrays["routing"] = routing
    meta = {"config": key.config.model_dump(mode="json"), "fingerprint": key.fingerprint}
    p = write_key_file(tmp_path / "bad.key", meta, arrays)
    read_key_file(p)  # the container itself is intact
    with pytest.raises(KeyFileError, match="permutation"):
        Key.load(p)
    meta = {"config": {**key.config.model_dump(mode="json"), "rows": -1}, "fingerprint": "x"}
    p = write_key_file(tmp_path / "badcfg.key", meta, dict(key._arrays()))
    with pytest.raises(KeyFileError, match="configuration"):
        Key.load(p)


def test_unsupported_version_is_named(tmp_path, key):
    path = key.save(tmp_path / "k.key")
    raw = path.read_bytes()
    (hlen,) = struct.unpack("<Q", raw[len(MAGIC) : len(MAGIC) + 8])
    header = json.loads(raw[len(MAGIC) + 8 : len(MAGIC) + 8 + hlen])
    header["version"] = 99
    hb = json.dumps(header).encode()
    p = tmp_path / "v99.key"
    p.write_bytes(MAGIC + struct.pack("<Q", len(hb)) + hb + raw[len(MAGIC) + 8 + hlen :])
    with pytest.raises(KeyFileError, match="version 99"):
        Key.load(p)
