"""A configuration reference generated from a pydantic model's JSON schema.

:func:`config_fields` walks the published JSON schema of a configuration model (the same one
``python -m sim.capture --print-schema`` prints) and returns one :class:`FieldDoc` per field,
nested tables included; :func:`markdown_reference` renders them as Markdown tables, one per
TOML table, for the documentation. Nothing here is written by hand, so the reference cannot
drift from the code.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any

from pydantic import BaseModel

__all__ = ["FieldDoc", "config_fields", "markdown_reference"]

_BOUNDS = (
    ("exclusiveMinimum", ">"),
    ("minimum", "≥"),
    ("exclusiveMaximum", "<"),
    ("maximum", "≤"),
    ("minItems", "items ≥"),
    ("maxItems", "items ≤"),
)


@dataclass(frozen=True)
class FieldDoc:
    """One configuration field as the reference shows it.

    Attributes
    ----------
    table : str
        The TOML table that holds it: ``""`` for the top level, ``"lens"``, ``"sensor"``, ...
    name : str
        The field's key in that table.
    type : str
        The accepted value types (``number``, ``integer``, ``string``, ``boolean``, arrays,
        ``null``, a table name, or the allowed strings).
    default : str
        The default as JSON, or ``"required"``.
    limits : str
        The bounds (``> 0``, ``≤ 1``, ``items ≥ 2``), ``"; "``-separated; may be empty.
    description : str
        The field's description, which names its unit.
    """

    table: str
    name: str
    type: str
    default: str
    limits: str
    description: str

    @property
    def path(self) -> str:
        """Dotted path, e.g. ``"lens.f_number"`` or ``"exposure"``."""
        return f"{self.table}.{self.name}" if self.table else self.name


def _ref_name(node: dict[str, Any]) -> str | None:
    ref = node.get("$ref")
    return ref.rsplit("/", 1)[-1] if isinstance(ref, str) else None


def _type(node: dict[str, Any]) -> str:
    if (name := _ref_name(node)) is not None:
        return f"table ({name})"
    if "anyOf" in node:
        return " or ".join(dict.fromkeys(_type(n) for n in node["anyOf"]))
    if "const" in node:
        return json.dumps(node["const"], ensure_ascii=False)
    if "enum" in node:
        return " or ".join(json.dumps(v, ensure_ascii=False) for v in node["enum"])
    kind = node.get("type", "any")
    if kind == "array":
        if "prefixItems" in node:
            return "[" + ", ".join(_type(n) for n in node["prefixItems"]) + "]"
        return f"array of {_type(node.get('items', {}))}"
    return str(kind)


def _limits(node: dict[str, Any]) -> str:
    parts: list[str] = []
    if node.get("minItems") is not None and node.get("minItems") == node.get("maxItems"):
        parts.append(f"{node['minItems']} items")
        node = {k: v for k, v in node.items() if k not in ("minItems", "maxItems")}
    for sub in [node, *node.get("anyOf", [])]:
        for key, sign in _BOUNDS:
            if key in sub:
                text = f"{sign} {json.dumps(sub[key])}"
                if text not in parts:
                    parts.append(text)
    return "; ".join(parts)


def config_fields(model: type[BaseModel]) -> list[FieldDoc]:
    """Every field of ``model`` and of the models nested in it, in schema order.

    Parameters
    ----------
    model : type of pydantic.BaseModel
        The configuration model, e.g. ``sim.config.CameraConfig``.

    Returns
    -------
    list of FieldDoc
        Top-level fields first, then each nested table's fields (tables in the order the
        top level names them).
    """
    schema = model.model_json_schema()
    defs = schema.get("$defs", {})
    out: list[FieldDoc] = []
    todo: list[tuple[str, dict[str, Any]]] = [("", schema)]
    seen: set[str] = set()
    while todo:
        table, node = todo.pop(0)
        required = set(node.get("required", []))
        for name, prop in node.get("properties", {}).items():
            if "default" in prop:
                default = json.dumps(prop["default"], ensure_ascii=False)
            elif name in required:
                default = "required"
            elif _ref_name(prop) is not None:
                default = "its table's defaults"
            else:
                default = "derived"
            out.append(
                FieldDoc(
                    table=table,
                    name=name,
                    type=_type(prop),
                    default=default,
                    limits=_limits(prop),
                    description=" ".join(str(prop.get("description", "")).split()),
                )
            )
            sub = _ref_name(prop)
            path = f"{table}.{name}" if table else name
            if sub is not None and path not in seen:
                seen.add(path)
                todo.append((path, defs[sub]))
    return out


def _code(text: str) -> str:
    return text if text in ("required", "its table's defaults", "derived") else f"`{_cell(text)}`"


def _cell(text: str) -> str:
    return text.replace("|", "\\|")


def markdown_reference(model: type[BaseModel]) -> str:
    """The configuration reference of ``model`` as Markdown: one table per TOML table.

    Each row gives the key, its type, default, limits and description (with the unit).
    """
    fields = config_fields(model)
    tables = list(dict.fromkeys(f.table for f in fields))
    lines: list[str] = []
    for table in tables:
        title = f"`[{table}]`" if table else "Top level"
        lines += [f"## {title}", ""]
        doc = _table_doc(model, table)
        if doc:
            lines += [doc, ""]
        lines += [
            "| key | type | default | limits | description |",
            "| --- | --- | --- | --- | --- |",
        ]
        for f in fields:
            if f.table != table:
                continue
            lines.append(
                f"| `{f.name}` | {_cell(f.type)} | {_code(f.default)} | "
                f"{_cell(f.limits) or '—'} | {_cell(f.description)} |"
            )
        lines.append("")
    return "\n".join(lines)


def _table_doc(model: type[BaseModel], table: str) -> str:
    """The first paragraph of the docstring of the model behind ``table``."""
    current: Any = model
    for part in [p for p in table.split(".") if p]:
        current = current.model_fields[part].annotation
    doc = (getattr(current, "__doc__", None) or "").strip().split("\n\n")[0]
    doc = re.sub(r":[a-z]+:`~?([^`]+)`", r"`\1`", doc)  # reST roles -> code
    return " ".join(doc.replace("``", "`").split())
