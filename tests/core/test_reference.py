"""keycam.reference: the configuration reference lists every field of CameraConfig.

The expected fields are collected here from the pydantic models themselves (``model_fields``,
recursing into nested models), independently of the JSON-schema walk the generator does.
"""

from __future__ import annotations

import typing
from pathlib import Path

from pydantic import BaseModel

from keycam.reference import config_fields, markdown_reference
from sim.config import CameraConfig

DOCS = Path(__file__).resolve().parents[2] / "docs"


def _model_of(annotation: typing.Any) -> type[BaseModel] | None:
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    for arg in typing.get_args(annotation):
        if (m := _model_of(arg)) is not None:
            return m
    return None


def _all_fields(model: type[BaseModel], prefix: str = "") -> dict[str, typing.Any]:
    out: dict[str, typing.Any] = {}
    for name, info in model.model_fields.items():
        path = f"{prefix}{name}"
        out[path] = info
        if (sub := _model_of(info.annotation)) is not None:
            out.update(_all_fields(sub, f"{path}."))
    return out


def test_every_field_of_camera_config_is_listed_with_its_description():
    expected = _all_fields(CameraConfig)
    listed = {f.path: f for f in config_fields(CameraConfig)}
    assert set(listed) == set(expected)
    assert len(listed) > 50  # scene, lens, faceplate, coupling, sensor and the top level
    for path, info in expected.items():
        assert info.description, f"{path} has no description (with its unit)"
        assert listed[path].description == " ".join(info.description.split()), path


def test_defaults_and_limits_come_from_the_schema():
    fields = {f.path: f for f in config_fields(CameraConfig)}
    assert fields["lens"].default == "required"
    assert fields["auto_target"].default == "0.8"
    assert fields["auto_target"].limits == "> 0; ≤ 1"
    assert fields["exposure_limits_s"].limits == "2 items"
    assert fields["coupling.relay_f_number"].type == "number or null"
    assert fields["coupling.relay_f_number"].limits == "≥ 0.5; ≤ 64"
    assert fields["colour"].type == '"mono" or "bayer_rggb"'


def test_markdown_has_one_table_per_toml_table_and_a_row_per_field():
    text = markdown_reference(CameraConfig)
    for table in ("scene", "lens", "faceplate", "coupling", "sensor"):
        assert f"## `[{table}]`" in text
    rows = [line for line in text.splitlines() if line.startswith("| `")]
    assert len(rows) == len(config_fields(CameraConfig))


def test_the_reference_page_includes_the_generated_tables():
    page = (DOCS / "reference" / "configuration.md").read_text(encoding="utf-8")
    assert "_generated/configuration_fields.md" in page
    conf = (DOCS / "conf.py").read_text(encoding="utf-8")
    assert "markdown_reference(CameraConfig)" in conf
