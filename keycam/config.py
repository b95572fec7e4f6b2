"""The base of every keycam configuration model.

:class:`ConfigModel` is a pydantic model that is frozen (derive variants with
``model_copy(update=...)`` and re-validate, or ``model_validate({...})``), refuses unknown
fields, refuses ``inf`` and ``nan``, and takes numbers and booleans only as what they are: a
boolean is not a count (``rows = true`` does not load as 1) and a number is not a switch. A bad
value therefore fails when the configuration is loaded, with the field's name, never deep
inside a computation.
"""

from __future__ import annotations

import types
import typing
from typing import Any

from pydantic import BaseModel, ConfigDict, ValidationInfo, field_validator

__all__ = ["ConfigModel"]


def _accepts(annotation: Any, kind: type) -> bool:
    """Whether a field annotated ``annotation`` accepts values of ``kind`` (through unions)."""
    if annotation is kind:
        return True
    origin = typing.get_origin(annotation)
    if origin is typing.Annotated:
        return _accepts(typing.get_args(annotation)[0], kind)
    if origin in (typing.Union, types.UnionType):
        return any(_accepts(a, kind) for a in typing.get_args(annotation))
    return False


class ConfigModel(BaseModel):
    """Frozen, closed, finite configuration with strict booleans."""

    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)

    @field_validator("*", mode="before")
    @classmethod
    def _booleans_are_not_numbers(cls, value: Any, info: ValidationInfo) -> Any:
        field = cls.model_fields.get(info.field_name or "")
        if field is None:
            return value
        ann = field.annotation
        wants_bool = _accepts(ann, bool)
        wants_number = _accepts(ann, int) or _accepts(ann, float)
        if isinstance(value, bool) and wants_number and not wants_bool:
            raise ValueError(f"expected a number, got the boolean {str(value).lower()}")
        if wants_bool and not wants_number and not isinstance(value, bool):
            raise ValueError(f"expected true or false, got {value!r}")
        return value
