"""The base of every keycam configuration model.

:class:`ConfigModel` is a pydantic model that is frozen (derive variants with
``model_copy(update=...)`` and re-validate, or ``model_validate({...})``), refuses unknown
fields, refuses ``inf`` and ``nan``, and takes numbers and booleans only as what they are: a
boolean is not a count (``rows = true`` does not load as 1) and a number is not a switch. A bad
value therefore fails when the configuration is loaded, with the field's name, never deep
inside a computation.

:func:`describe_validation_error` turns a validation error into one line that names every bad
field and its problem but never quotes a whole table, and never quotes the value of a secret
field (one whose name contains ``seed``, ``key``, ``secret``, ``password`` or ``token``):
a camera configuration's ``faceplate.seed`` *is* its key.
"""

from __future__ import annotations

import types
import typing
from typing import Any, ClassVar

from pydantic import BaseModel, ConfigDict, ValidationInfo, field_validator

__all__ = ["ConfigModel", "describe_validation_error", "is_secret_field"]

#: Parts of a field name that mark its value as secret (never echoed in messages).
SECRET_NAME_PARTS = ("seed", "key", "secret", "password", "token")

_MAX_ECHO = 40  # longest value representation quoted in a message, characters


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

    #: Fields added after files were first made with the model, with the value every older
    #: file implicitly had (see :meth:`without_added_later`).
    ADDED_LATER: ClassVar[dict[str, Any]] = {}

    @classmethod
    def without_added_later(cls, dump: dict[str, Any]) -> dict[str, Any]:
        """``dump`` (this model as JSON data) without the fields of :attr:`ADDED_LATER` that
        hold their implicit value: what a fingerprint or a comparison with older files (key
        files, pattern sets, dataset stores) should see, so that they still match."""
        return {
            k: v for k, v in dump.items() if k not in cls.ADDED_LATER or v != cls.ADDED_LATER[k]
        }

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


def is_secret_field(loc: tuple[Any, ...] | list[Any]) -> bool:
    """Whether a field location (``("faceplate", "seed")``) names a secret value."""
    return any(
        isinstance(part, str) and any(s in part.lower() for s in SECRET_NAME_PARTS) for part in loc
    )


def _echo(value: Any) -> str | None:
    """A short representation of a scalar input, or None (tables, lists, long values)."""
    if value is None or isinstance(value, bool | int | float):
        text = repr(value)
    elif isinstance(value, str):
        text = repr(value)
    else:
        return None
    return text if len(text) <= _MAX_ECHO else None


def describe_validation_error(exc: Any) -> str:
    """One line describing a pydantic ``ValidationError`` without leaking secrets.

    Each problem is ``location: message`` and, for a short scalar input of a field that is
    not secret, ``(got VALUE)``. Unknown fields are named but their values are not quoted;
    tables and lists are never quoted.
    """
    parts = []
    errors = exc.errors(include_url=False, include_context=False)
    for err in errors[:10]:
        loc = tuple(err.get("loc", ()))
        where = ".".join(str(p) for p in loc) or str(exc.title)
        msg = str(err.get("msg", ""))
        kind = str(err.get("type", ""))
        secret = is_secret_field(loc)
        value = err.get("input")
        if secret:
            shown = _echo(value)
            if shown is not None and len(str(value)) >= 3:
                msg = msg.replace(shown, "<hidden>").replace(str(value), "<hidden>")
            msg += " (value hidden: secret field)"
        elif kind == "extra_forbidden":
            msg = "unknown field (not allowed here)"
        else:
            shown = _echo(value)
            if shown is not None:
                msg += f" (got {shown})"
        parts.append(f"{where}: {msg}")
    more = len(errors) - len(parts)
    if more > 0:
        parts.append(f"and {more} more problem(s)")
    return f"invalid {exc.title} - " + "; ".join(parts)
