"""Wire format of rubrics: their checks (verdict, value, answer, constraint) and the fields they use.

Loading returns `service.grading.model` objects. Every mistake an instructor can make in a
rubric (an unknown check kind, a bad JSON pointer, a template placeholder that does not exist,
min > max) is refused at load time with the field's path, so it never surfaces as a wrong grade.
Defaults (points, visibility, tolerances) are the grading model's.
"""

from __future__ import annotations

import math
import re
from dataclasses import fields as dataclass_fields
from typing import Any

from marshmallow import ValidationError, fields, post_load, validate, validates_schema

from service.grading.constraints import DERIVED, spec_view
from service.grading.model import (
    ABS_TOL,
    ANSWER_SCALES,
    REL_TOL,
    VERDICTS,
    VISIBILITIES,
    AnswerCheck,
    Check,
    ConstraintCheck,
    Rubric,
    Target,
    ValueCheck,
    VerdictCheck,
)
from service.grading.pointer import PointerError, parse
from service.grading.template import problems

from .fields import StrictFloat, StrictSchema
from .limits import Limits
from .spec import ModelSpecSchema

ID_PATTERN = re.compile(r"^[a-z0-9][a-z0-9_.-]{0,63}$")
ANSWER_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_.-]{0,63}$")
MAX_CHECKS = 200


# The grading model's defaults, read once: tolerances of value and answer checks, points, format.
_TOLERANCE = {"abs_tol": ABS_TOL, "rel_tol": REL_TOL}
_CHECK = {f.name: f.default for f in dataclass_fields(Check)}


def wire_spec_fields() -> tuple[str, ...]:
    return tuple(ModelSpecSchema().fields)


class JsonScalar(fields.Field):
    """A JSON number, string, boolean or null (no NaN/Infinity)."""

    def _deserialize(self, value: Any, attr: str | None, data: Any, **kwargs: Any) -> Any:
        if value is None or isinstance(value, bool | str):
            return value
        if isinstance(value, int | float) and math.isfinite(value):
            return value
        raise ValidationError("Give a number, string, boolean or null.")


class JsonValue(fields.Field):
    """Any JSON value (a spec field's value in `equals`)."""

    def _deserialize(self, value: Any, attr: str | None, data: Any, **kwargs: Any) -> Any:
        if isinstance(value, float) and not math.isfinite(value):
            raise ValidationError("NaN and Infinity are not JSON.")
        return value


class AnswerValue(fields.Field):
    """A student's answer: a finite number or a string (a verdict such as "vanishing")."""

    def _deserialize(self, value: Any, attr: str | None, data: Any, **kwargs: Any) -> Any:
        if isinstance(value, str) and len(value) <= 200:
            return value
        if isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value):
            return value
        raise ValidationError("An answer is a finite number or a string of at most 200 characters.")


class Pointer(fields.String):
    """An RFC 6901 JSON pointer into the report (checked for syntax here, for existence at grading)."""

    def _deserialize(self, value: Any, attr: str | None, data: Any, **kwargs: Any) -> str:
        text = super()._deserialize(value, attr, data, **kwargs)
        if text == "":
            raise ValidationError("Point at a value, e.g. /diagnosis/log10_total_growth.")
        try:
            parse(text)
        except PointerError as exc:
            raise ValidationError(str(exc)) from exc
        return text


class Template(fields.String):
    def _deserialize(self, value: Any, attr: str | None, data: Any, **kwargs: Any) -> str:
        text = super()._deserialize(value, attr, data, **kwargs)
        errors = problems(text)
        if errors:
            raise ValidationError(errors)
        return text


def _tolerance(description: str) -> StrictFloat:
    return StrictFloat(load_default=None, validate=validate.Range(min=0), metadata={"description": description})


class CheckBaseSchema(StrictSchema):
    kind = fields.String(required=True, metadata={"description": "verdict | value | answer | constraint"})
    name = fields.String(
        required=True,
        validate=validate.Length(min=1, max=200),
        metadata={"description": "Shown to the student; unique within the rubric."},
    )
    points = StrictFloat(
        load_default=_CHECK["points"],
        validate=validate.Range(min=0, max=1e6),
        metadata={"description": f"Points when the check passes (default {_CHECK['points']:g})."},
    )
    visibility = fields.String(
        load_default=_CHECK["visibility"],
        validate=validate.OneOf(VISIBILITIES),
        metadata={"description": f"Gradescope's: {', '.join(VISIBILITIES)} (default {_CHECK['visibility']})."},
    )
    feedback = Template(
        load_default=None,
        validate=validate.Length(max=4000),
        metadata={
            "description": "Template added to the message when the check fails: "
            "{/json/pointer:fmt} or {name:fmt} placeholders."
        },
    )
    feedback_pass = Template(
        load_default=None,
        validate=validate.Length(max=4000),
        metadata={"description": "Template added when the check passes."},
    )
    required = fields.Boolean(
        truthy={True},
        falsy={False},
        metadata={
            "description": "When it fails, the other checks earn no points "
            "(default: true for constraint checks, false otherwise)."
        },
    )

    def base(self, data: dict[str, Any]) -> dict[str, Any]:
        data.pop("kind")
        if data.get("required") is None:
            data.pop("required", None)
        return data


class VerdictCheckSchema(CheckBaseSchema):
    expected = fields.Raw(required=True, metadata={"description": "A verdict or a list of accepted verdicts."})

    @post_load
    def make(self, data: dict[str, Any], **kwargs: Any) -> VerdictCheck:
        raw = data["expected"]
        names = raw if isinstance(raw, list) else [raw]
        if not names or any(n not in VERDICTS for n in names):
            raise ValidationError(f"Give one of {', '.join(VERDICTS)} or a list of them.", "expected")
        data["expected"] = tuple(names)
        return VerdictCheck(**self.base(data))


class ValueCheckSchema(CheckBaseSchema):
    pointer = Pointer(
        required=True,
        metadata={
            "description": "Where in the report, e.g. /diagnosis/log10_total_growth or /layers/0/weight_grad/norm."
        },
    )
    expected = JsonScalar(metadata={"description": "The value it must equal (numbers: within the tolerance)."})
    abs_tol = _tolerance(f"Absolute tolerance for a numeric expected value (default {_TOLERANCE['abs_tol']:g}).")
    rel_tol = _tolerance(f"Relative tolerance for a numeric expected value (default {_TOLERANCE['rel_tol']:g}).")
    min = StrictFloat(load_default=None, metadata={"description": "Smallest accepted value."})
    max = StrictFloat(load_default=None, metadata={"description": "Largest accepted value."})

    @validates_schema
    def _target(self, data: dict[str, Any], **kwargs: Any) -> None:
        if "expected" not in data and data.get("min") is None and data.get("max") is None:
            raise ValidationError("Give expected, or min and/or max.", "expected")
        lo, hi = data.get("min"), data.get("max")
        if lo is not None and hi is not None and lo > hi:
            raise ValidationError(f"min {lo:g} is above max {hi:g}.", "min")
        numeric = isinstance(data.get("expected"), int | float) and not isinstance(data.get("expected"), bool)
        if not numeric and (data.get("abs_tol") is not None or data.get("rel_tol") is not None):
            raise ValidationError("Tolerances apply to a numeric expected value only.", "abs_tol")

    @post_load
    def make(self, data: dict[str, Any], **kwargs: Any) -> ValueCheck:
        has = "expected" in data
        target = Target(
            has_expected=has,
            expected=data.pop("expected", None),
            **_tolerances(data),
            min=data.pop("min"),
            max=data.pop("max"),
        )
        return ValueCheck(target=target, **self.base(data))


class AnswerCheckSchema(CheckBaseSchema):
    answer = fields.String(
        required=True,
        validate=validate.Regexp(ANSWER_NAME),
        metadata={"description": "The name of the student's answer."},
    )
    pointer = Pointer(required=True, metadata={"description": "The report value the answer must match."})
    abs_tol = _tolerance(f"Absolute tolerance (decades when scale is log10; default {_TOLERANCE['abs_tol']:g}).")
    rel_tol = _tolerance(f"Relative tolerance (default {_TOLERANCE['rel_tol']:g}).")
    scale = fields.String(
        load_default="linear",
        validate=validate.OneOf(ANSWER_SCALES),
        metadata={
            "description": "log10: the student gives a magnitude (4e-31) and the "
            "pointer names its log10 (a log10_* field); compared in decades."
        },
    )

    @post_load
    def make(self, data: dict[str, Any], **kwargs: Any) -> AnswerCheck:
        data.update(_tolerances(data))
        return AnswerCheck(**self.base(data))


class ConstraintCheckSchema(CheckBaseSchema):
    equals = fields.Dict(
        keys=fields.String(),
        values=JsonValue(),
        load_default=dict,
        metadata={
            "description": "Spec fields that must have these values, e.g. "
            '{"depth": 50, "activation": "sigmoid"} (wire names, plus depth, '
            "width, input_dim)."
        },
    )
    may_change = fields.List(
        fields.String(),
        load_default=None,
        metadata={"description": "The only spec fields that may differ from starter."},
    )
    starter = fields.Dict(
        load_default=None,
        metadata={"description": "The starter spec (wire format); in an assignment, the assignment's by default."},
    )

    @validates_schema
    def _names(self, data: dict[str, Any], **kwargs: Any) -> None:
        wire = wire_spec_fields()
        bad = [k for k in data.get("equals", {}) if k not in wire and k not in DERIVED]
        if bad:
            raise ValidationError(f"Unknown spec fields {bad}; use {', '.join((*wire, *DERIVED))}.", "equals")
        bad = [k for k in data.get("may_change") or [] if k not in wire]
        if bad:
            raise ValidationError(f"Unknown spec fields {bad}; use {', '.join(wire)}.", "may_change")
        if not data.get("equals") and data.get("may_change") is None:
            raise ValidationError("Give equals and/or may_change.", "equals")

    @post_load
    def make(self, data: dict[str, Any], **kwargs: Any) -> ConstraintCheck:
        if data.get("starter") is not None:
            data["starter"] = load_starter(data["starter"], "starter")
        if data.get("may_change") is not None:
            data["may_change"] = tuple(data["may_change"])
        return ConstraintCheck(**self.base(data))


def _tolerances(data: dict[str, Any]) -> dict[str, float]:
    """abs_tol and rel_tol popped from `data`, the model's defaults where not given."""
    given = {name: data.pop(name) for name in _TOLERANCE}
    return {name: _TOLERANCE[name] if value is None else value for name, value in given.items()}


def load_starter(raw: Any, field: str, limits: Limits | None = None) -> dict[str, Any]:
    """A starter spec → its normalised view; refused like a request body would be."""
    try:
        spec = ModelSpecSchema(limits=limits).load(raw)
    except ValidationError as exc:
        raise ValidationError({field: exc.messages}) from exc
    return spec_view(spec)


CHECK_SCHEMAS: dict[str, type[CheckBaseSchema]] = {
    "verdict": VerdictCheckSchema,
    "value": ValueCheckSchema,
    "answer": AnswerCheckSchema,
    "constraint": ConstraintCheckSchema,
}


class CheckField(fields.Field):
    """One check, loaded by the schema its `kind` names."""

    def _deserialize(self, value: Any, attr: str | None, data: Any, **kwargs: Any) -> Check:
        if not isinstance(value, dict):
            raise ValidationError("A check is an object with kind, name and points.")
        kind = value.get("kind")
        if kind not in CHECK_SCHEMAS:
            raise ValidationError({"kind": [f"{kind!r} is not a check kind; use {', '.join(CHECK_SCHEMAS)}."]})
        return CHECK_SCHEMAS[kind]().load(value)


class RubricSchema(StrictSchema):
    checks = fields.List(
        CheckField(),
        required=True,
        validate=validate.Length(min=1, max=MAX_CHECKS),
        metadata={"description": "verdict, value, answer and constraint checks."},
    )

    @validates_schema
    def _unique(self, data: dict[str, Any], **kwargs: Any) -> None:
        names = [c.name for c in data.get("checks", [])]
        dupes = sorted({n for n in names if names.count(n) > 1})
        if dupes:
            raise ValidationError(f"Check names must be unique; repeated: {dupes}.", "checks")

    @post_load
    def make(self, data: dict[str, Any], **kwargs: Any) -> Rubric:
        return Rubric(checks=tuple(data["checks"]))
