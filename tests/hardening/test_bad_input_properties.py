"""Property-based bad-input suite: generated images, configurations, key files and arguments.

Every command is run in-process through :func:`keycam.cli.run` (a subprocess per example
would be too slow; ``test_inputs_refused.py`` and ``test_outputs_all_or_nothing.py`` run
the same commands as real subprocesses). The contract, for every generated input:

- the status is 0 (the input was usable) or 2 (refused), never a traceback;
- refused: exactly one line ``error: ...`` on stderr, nothing on stdout, and the output
  folder exactly as before (no file, no hidden temporary file, no folder);
- accepted: no hidden temporary file is left;
- no secret (the key seed, the key's routing) in stdout, stderr or any file written.

The loading API (configuration, key-file and image readers) is also called directly: it may
raise only ``ValueError`` / ``OSError`` subclasses (what the commands turn into one line).

Examples per test: a few dozen by default (the whole file takes about a minute on two
cores); ``KEYCAM_PROPERTY_EXAMPLES=500`` for the thorough run, which the ``slow`` variants
(``pytest -m slow tests/hardening``) use.
"""

from __future__ import annotations

import contextlib
import copy
import io
import json
import math
import os
import struct
import tempfile
import tomllib
import zlib
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st
from keycam_hostile import SECRET_SEED, SMALL_TOML, png16, zero_stream
from PIL import Image

from keycam.cli import run
from optics.faceplate import FaceplateConfig, keygen
from optics.faceplate.keyfile import canonical_json

QUICK = int(os.environ.get("KEYCAM_PROPERTY_EXAMPLES", "0") or 0)
THOROUGH = 500


def _settings(n: int) -> settings:
    return settings(
        max_examples=n,
        deadline=None,
        derandomize=n < THOROUGH,  # the default run tests the same examples every time
        database=None,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
    )


def contract_test(strategy: st.SearchStrategy, quick: int) -> Callable:
    """Make a quick test and a ``slow`` 500-example test from one property body."""

    def deco(body: Callable[[Any], None]) -> tuple[Callable, Callable]:
        fast = _settings(QUICK or quick)(given(strategy)(body))
        thorough = pytest.mark.slow(_settings(THOROUGH)(given(strategy)(body)))
        return fast, thorough

    return deco


# -- inputs built once ------------------------------------------------------------------------

_KEY8 = keygen(FaceplateConfig(rows=8, cols=8, block_size=4, seed=SECRET_SEED))
_KEY4 = keygen(FaceplateConfig(rows=4, cols=4, block_size=2, seed=SECRET_SEED))


def _key_file_bytes(key: Any) -> bytes:
    with tempfile.TemporaryDirectory() as d:
        return key.save(Path(d) / "k.key").read_bytes()


_KEY8_BYTES, _KEY4_BYTES = _key_file_bytes(_KEY8), _key_file_bytes(_KEY4)
_SECRETS = (
    str(SECRET_SEED),
    ", ".join(str(int(v)) for v in _KEY8.routing[:12]),
    ", ".join(str(int(v)) for v in _KEY4.routing[:12]),
)


@pytest.fixture(scope="module")
def work(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A folder with the valid inputs; every example works in a fresh folder inside it."""
    d = tmp_path_factory.mktemp("properties")
    for name, data in (("k8.key", _KEY8_BYTES), ("k4.key", _KEY4_BYTES)):
        (d / name).write_bytes(data)
        os.chmod(d / name, 0o600)
    (d / "small.toml").write_text(SMALL_TOML)
    return d


def _listing(folder: Path) -> dict[str, bytes]:
    if not folder.exists():
        return {}
    return {str(p.relative_to(folder)): p.read_bytes() for p in folder.rglob("*") if p.is_file()}


def check_contract(main: Callable, argv: Sequence[Any], out_dir: Path) -> int:
    """Run ``main`` in-process and assert the contract; return the status."""
    before = _listing(out_dir)
    existed = out_dir.exists()
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        try:
            status = run(main, [str(a) for a in argv])
        except SystemExit as exc:  # argparse usage errors exit directly
            status = exc.code if isinstance(exc.code, int) else 2
    text_out, text_err = out.getvalue(), err.getvalue()
    event(f"status {status}")
    assert status in (0, 2), (status, text_err)
    assert "Traceback" not in text_err, text_err
    produced = {} if not out_dir.exists() else _listing(out_dir)
    if status == 2:
        lines = text_err.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith("error: "), text_err
        assert text_out == ""
        assert produced == before and out_dir.exists() == existed, sorted(produced)
    hidden = [n for n in produced if Path(n).name.startswith(".")]
    assert not hidden, hidden
    for secret in _SECRETS:
        assert secret not in text_out and secret not in text_err, secret
        for name, data in produced.items():
            if name.endswith((".json", ".txt")):
                assert secret.encode() not in data, (name, secret)
    return int(status)


# -- strategies ---------------------------------------------------------------------------------

_BASE_CONFIG = tomllib.loads(SMALL_TOML)
_TABLES = ["scene", "lens", "faceplate", "coupling", "sensor"]

_scalars = st.one_of(
    st.integers(-(2**70), 2**70),
    st.sampled_from([0, 1, 2, 8, 64, 8192, 65536, 2**31, -1]),
    st.floats(allow_nan=True, allow_infinity=True),
    st.booleans(),
    st.text(max_size=12),
)
_values = st.recursive(
    _scalars,
    lambda inner: st.one_of(
        st.lists(inner, max_size=4),
        st.dictionaries(st.text("abcxyz_", min_size=1, max_size=5), inner, max_size=3),
    ),
    max_leaves=8,
)


def _toml_key(k: str) -> str:
    return k if k and all(c.isalnum() or c in "_-" for c in k) and k.isascii() else json.dumps(k)


def _toml_value(v: Any) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, int):
        return str(v)
    if isinstance(v, float):
        if math.isnan(v):
            return "nan"
        if math.isinf(v):
            return "inf" if v > 0 else "-inf"
        return repr(v)
    if isinstance(v, str):
        return json.dumps(v)
    if isinstance(v, list):
        return "[" + ", ".join(_toml_value(x) for x in v) + "]"
    if isinstance(v, dict):
        return "{" + ", ".join(f"{_toml_key(k)} = {_toml_value(x)}" for k, x in v.items()) + "}"
    raise TypeError(v)


def to_toml(doc: dict[str, Any]) -> str:
    top = [f"{_toml_key(k)} = {_toml_value(v)}" for k, v in doc.items() if not isinstance(v, dict)]
    tables = []
    for k, v in doc.items():
        if isinstance(v, dict):
            tables.append(f"[{_toml_key(k)}]")
            tables += [f"{_toml_key(a)} = {_toml_value(b)}" for a, b in v.items()]
    return "\n".join(top + tables) + "\n"


@st.composite
def config_texts(draw: st.DrawFn, base: dict[str, Any] = _BASE_CONFIG) -> str:
    """A camera configuration with a few fields changed, removed or added; maybe garbled."""
    doc = copy.deepcopy(base)
    for _ in range(draw(st.integers(0, 3))):
        table = draw(st.sampled_from([None, *_TABLES]))
        target = doc if table is None else doc.get(table)
        if not isinstance(target, dict):
            continue
        action = draw(st.sampled_from(["set", "set", "scale", "scale", "delete", "add"]))
        keys = sorted(target)
        if action == "scale" and keys:  # a plausible change: often still a valid camera
            k = draw(st.sampled_from(keys))
            v = target[k]
            if isinstance(v, int | float) and not isinstance(v, bool):
                f = draw(st.sampled_from([0.5, 0.9, 1.1, 2.0, 4.0]))
                target[k] = type(v)(v * f) if isinstance(v, float) else max(1, round(v * f))
        elif action == "set" and keys:
            target[draw(st.sampled_from(keys))] = draw(_values)
        elif action == "delete" and keys:
            del target[draw(st.sampled_from(keys))]
        else:
            target[draw(st.text("abcdefghij_", min_size=1, max_size=8))] = draw(_values)
    text = to_toml(doc)
    garble = draw(st.sampled_from(["none", "none", "truncate", "insert", "nest"]))
    if garble == "truncate":
        text = text[: draw(st.integers(0, len(text)))]
    elif garble == "insert":
        at = draw(st.integers(0, len(text)))
        text = text[:at] + draw(st.text(max_size=20)) + text[at:]
    elif garble == "nest":
        depth = draw(st.integers(1, 400))
        text += "deep = " + "[" * depth + "1" + "]" * depth + "\n"
    return text


def _png8(draw: st.DrawFn) -> bytes:
    h, w = draw(st.integers(1, 24)), draw(st.integers(1, 24))
    mode = draw(st.sampled_from(["L", "RGB", "RGBA", "P", "I;16", "LA", "1"]))
    arr = np.random.default_rng(draw(st.integers(0, 9))).integers(0, 255, (h, w, 4), np.uint8)
    im = Image.fromarray(arr, "RGBA").convert(mode if mode not in ("I;16",) else "L")
    if mode == "I;16":
        im = Image.fromarray(arr[..., 0].astype(np.uint16) * 257)
    buf = io.BytesIO()
    fmt = draw(st.sampled_from(["PNG", "TIFF"] + (["JPEG"] if mode in ("L", "RGB") else [])))
    im.save(buf, format=fmt)
    return buf.getvalue()


def _png16(draw: st.DrawFn) -> bytes:
    w = draw(st.one_of(st.integers(0, 40), st.sampled_from([2**31 - 1, 70000, 1 << 20])))
    h = draw(st.one_of(st.integers(0, 40), st.sampled_from([2**31 - 1, 70000, 1 << 20])))
    colour = draw(st.sampled_from([2, 6]))
    kind = draw(st.sampled_from(["zeros", "exact", "random", "bomb"]))
    bpp = 6 if colour == 2 else 8
    need = min(h * (1 + w * bpp), 1 << 22)
    if kind == "zeros":
        stream = zero_stream(need)
    elif kind == "exact":
        raw = np.random.default_rng(draw(st.integers(0, 9))).integers(0, 256, need, np.uint8)
        raw[:: max(1, 1 + w * bpp)] = draw(st.integers(0, 6))  # row filter types (5, 6 invalid)
        stream = zlib.compress(raw.tobytes())
    elif kind == "random":
        stream = draw(st.binary(max_size=200))
    else:
        stream = zero_stream(need + draw(st.integers(1, 50_000_000)))
    return png16(w, h, stream, colour_type=colour)


@st.composite
def image_bytes(draw: st.DrawFn) -> bytes:
    """Small valid images of many kinds, mutated: truncated, bytes flipped, header edited."""
    data = _png16(draw) if draw(st.booleans()) else _png8(draw)
    mutation = draw(st.sampled_from(["none", "truncate", "flip", "header", "garbage"]))
    if mutation == "truncate":
        data = data[: draw(st.integers(0, len(data)))]
    elif mutation == "flip":
        b = bytearray(data)
        for _ in range(draw(st.integers(1, 8))):
            b[draw(st.integers(0, len(b) - 1))] = draw(st.integers(0, 255))
        data = bytes(b)
    elif mutation == "header" and len(data) > 24:
        w, h = draw(st.integers(0, 2**32 - 1)), draw(st.integers(0, 2**32 - 1))
        data = data[:16] + struct.pack(">II", w, h) + data[24:]
    elif mutation == "garbage":
        data = draw(st.binary(max_size=300))
    return data


_json = st.recursive(
    st.one_of(
        st.none(),
        st.booleans(),
        st.integers(-(2**64), 2**64),
        st.text(max_size=8),
        st.floats(allow_nan=False, allow_infinity=False),
    ),
    lambda inner: st.one_of(
        st.lists(inner, max_size=4), st.dictionaries(st.text(max_size=6), inner, max_size=4)
    ),
    max_leaves=10,
)


def _split_key(raw: bytes) -> tuple[dict[str, Any], bytes]:
    (hlen,) = struct.unpack("<Q", raw[8:16])
    return json.loads(raw[16 : 16 + hlen]), raw[16 + hlen :]


def _join_key(header: dict[str, Any], payload: bytes, *, resum: bool) -> bytes:
    import hashlib

    header = dict(header)
    if resum:
        header.pop("checksum", None)
        digest = hashlib.sha256(canonical_json(header) + payload).hexdigest()
        header["checksum"] = "sha256:" + digest
    h = canonical_json(header)
    return b"\x89KEYCAM\n" + struct.pack("<Q", len(h)) + h + payload


@st.composite
def key_bytes(draw: st.DrawFn, raw: bytes) -> bytes:
    """A valid key file, mutated: cut, bytes flipped, header fields replaced (re-checksummed)."""
    mutation = draw(
        st.sampled_from(["none", "truncate", "flip", "field", "array", "json", "hlen", "deep"])
    )
    if mutation == "none":
        return raw
    if mutation == "truncate":
        return raw[: draw(st.integers(0, len(raw) - 1))]
    if mutation == "flip":
        b = bytearray(raw)
        for _ in range(draw(st.integers(1, 4))):
            b[draw(st.integers(0, len(b) - 1))] = draw(st.integers(0, 255))
        return bytes(b)
    if mutation == "hlen":
        return raw[:8] + struct.pack("<Q", draw(st.integers(0, 2**64 - 1))) + raw[16:]
    if mutation == "deep":
        d = draw(st.integers(20, 3000))
        return raw[:8] + struct.pack("<Q", 2 * d) + b"[" * d + b"]" * d
    header, payload = _split_key(raw)
    if mutation == "field":
        section = draw(st.sampled_from(["top", "meta", "config"]))
        target = {"top": header, "meta": header["meta"], "config": header["meta"]["config"]}
        t = target[section]
        t[draw(st.sampled_from(sorted(t)))] = draw(_json)
    elif mutation == "array":
        spec = draw(st.sampled_from(header["arrays"]))
        field = draw(st.sampled_from(["shape", "nbytes", "offset", "dtype", "name"]))
        spec[field] = draw(
            st.one_of(_json, st.lists(st.integers(-5, 2**40), max_size=3), st.integers(-5, 2**62))
        )
        if draw(st.booleans()):
            payload = payload[: draw(st.integers(0, len(payload)))]
    else:
        header = draw(_json) if draw(st.booleans()) else {**header, "meta": draw(_json)}
        if not isinstance(header, dict):
            h = json.dumps(header).encode()
            return raw[:8] + struct.pack("<Q", len(h)) + h + payload
    return _join_key(header, payload, resum=draw(st.booleans()))


# -- the properties -------------------------------------------------------------------------------


def _fresh(work: Path) -> Path:
    return Path(tempfile.mkdtemp(dir=work))


def _capture_main(argv: Sequence[str] | None) -> int:
    from sim.capture import main

    return main(argv)


def _image_body(work: Path, data: bytes) -> None:
    d = _fresh(work)
    (d / "scene.png").write_bytes(data)
    args = [d / "scene.png", "--config", work / "small.toml", "--key", work / "k8.key"]
    check_contract(_capture_main, [*args, "--out", d / "o", "--max-pixels", 1_000_000], d / "o")


test_capture_images, test_capture_images_500 = contract_test(image_bytes(), 100)(_image_body)


def _config_body(work: Path, text: str) -> None:
    d = _fresh(work)
    (d / "cam.toml").write_text(text)
    check_contract(_capture_main, ["--config", d / "cam.toml", "--out", d / "o"], d / "o")


test_capture_configs, test_capture_configs_500 = contract_test(config_texts(), 60)(_config_body)


def _capture_key_body(work: Path, data: bytes) -> None:
    d = _fresh(work)
    (d / "k.key").write_bytes(data)
    os.chmod(d / "k.key", 0o600)
    args = ["--config", work / "small.toml", "--key", d / "k.key", "--out", d / "o"]
    check_contract(_capture_main, args, d / "o")


test_capture_keys, test_capture_keys_500 = contract_test(key_bytes(_KEY8_BYTES), 60)(
    _capture_key_body
)


def _export_main(argv: Sequence[str] | None) -> int:
    from fabrication.export import main

    return main(argv)


def _export_body(work: Path, data: bytes) -> None:
    d = _fresh(work)
    (d / "k.key").write_bytes(data)
    os.chmod(d / "k.key", 0o600)
    args = [d / "k.key", "-o", d / "o", "--report", d / "o" / "r.json", "--no-3mf", "--quiet"]
    check_contract(_export_main, args, d / "o")


test_export_keys, test_export_keys_500 = contract_test(key_bytes(_KEY4_BYTES), 40)(_export_body)


def _emva_main(argv: Sequence[str] | None) -> int:
    from optics.emva.cli import main

    return main(argv)


_SENSOR = tomllib.loads('[sensor]\npreset = "imx174"\nwidth_px = 16\nheight_px = 16\n')


@st.composite
def emva_args(draw: st.DrawFn) -> list[str]:
    args = ["--quiet", "--steps", draw(st.sampled_from(["10", "12", "0", "-3", "x", "10000000"]))]
    if draw(st.booleans()):
        args += ["--stack", draw(st.sampled_from(["2", "4", "1", "1000000", "1e3"]))]
    args += ["--roi", draw(st.sampled_from(["16", "8x4", "3", "full", "0x0", "99999999x2"]))]
    if draw(st.booleans()):
        args += ["--config", "CONFIG"]
    return args


def _emva_body(work: Path, case: tuple[list[str], str]) -> None:
    args, text = case
    d = _fresh(work)
    (d / "s.toml").write_text(text)
    args = [str(d / "s.toml") if a == "CONFIG" else a for a in args]
    check_contract(_emva_main, [*args, "--plot", d / "p.png"], d)


test_emva, test_emva_500 = contract_test(
    st.tuples(emva_args(), config_texts(_SENSOR).filter(lambda t: len(t) < 5000)), 25
)(_emva_body)


def _verify_main(argv: Sequence[str] | None) -> int:
    from keynet.verify import main

    return main(argv)


def _verify_body(work: Path, text: str) -> None:
    d = _fresh(work)
    (d / "cam.toml").write_text(text)
    # a usable configuration would train; the weights are cached once for all examples
    saved = os.environ.get("KEYCAM_CACHE")
    os.environ["KEYCAM_CACHE"] = str(work / "cache")
    try:
        args = ["--config", d / "cam.toml", "--epochs", 1, "--digits", 5, "--quiet"]
        check_contract(_verify_main, [*args, "--json", d / "v.json"], d)
    finally:
        if saved is None:
            del os.environ["KEYCAM_CACHE"]
        else:
            os.environ["KEYCAM_CACHE"] = saved


_VERIFY_CONFIG = tomllib.loads(
    (Path(__file__).resolve().parents[2] / "keynet" / "data" / "verify_camera.toml")
    .read_text()
    .replace("seed = 0", f"seed = {SECRET_SEED}")
)
test_verify_configs, test_verify_configs_500 = contract_test(config_texts(_VERIFY_CONFIG), 20)(
    _verify_body
)


# -- the loading API directly ----------------------------------------------------------------------


def _only_value_or_os_errors(fn: Callable[[], Any]) -> None:
    try:
        fn()
    except (ValueError, OSError):
        pass


def _loading_body(work: Path, case: tuple[bytes, bytes, str]) -> None:
    from keycam.loading import load_toml, loads_json
    from optics.faceplate import Key
    from optics.sensor import SensorConfig
    from sim.config import load_config
    from sim.io import read_image

    image, key, toml_text = case
    d = _fresh(work)
    (d / "i.png").write_bytes(image)
    (d / "k.key").write_bytes(key)
    os.chmod(d / "k.key", 0o600)
    (d / "c.toml").write_text(toml_text)
    _only_value_or_os_errors(lambda: read_image(d / "i.png", max_pixels=1_000_000))
    _only_value_or_os_errors(lambda: Key.load(d / "k.key"))
    _only_value_or_os_errors(lambda: load_toml(d / "c.toml"))
    _only_value_or_os_errors(lambda: load_config(d / "c.toml"))
    _only_value_or_os_errors(lambda: SensorConfig.from_toml(d / "c.toml"))
    _only_value_or_os_errors(lambda: loads_json(key[16:], what="header"))


test_loading_api, test_loading_api_500 = contract_test(
    st.tuples(image_bytes(), key_bytes(_KEY8_BYTES), config_texts()), 60
)(_loading_body)
