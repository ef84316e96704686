"""Strict marshmallow fields: no string-to-number coercion, no NaN/Infinity, null for non-finite out."""

from __future__ import annotations

import math
from typing import Any

from marshmallow import RAISE, Schema, ValidationError, fields


class StrictFloat(fields.Float):
    """A JSON number (int or float, not bool, not a string); NaN and ±Infinity are refused."""

    def __init__(self, **kwargs: Any) -> None:
        kwargs.setdefault("allow_nan", False)
        super().__init__(**kwargs)

    def _deserialize(self, value: Any, attr: str | None, data: Any, **kwargs: Any) -> float:
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise ValidationError("Not a valid number.")
        return super()._deserialize(value, attr, data, **kwargs)


class FiniteFloat(fields.Float):
    """Dumps a float, or null where it is NaN or ±inf (strict JSON has no such tokens)."""

    def _serialize(self, value: Any, attr: str | None, obj: Any, **kwargs: Any) -> float | None:
        if value is None:
            return None
        out = float(value)
        return out if math.isfinite(out) else None


class StrictSchema(Schema):
    """Unknown fields are refused (marshmallow's RAISE), for every request body and file we load."""

    class Meta:
        unknown = RAISE
