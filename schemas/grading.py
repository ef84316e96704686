"""Wire format of grading requests, submissions and assignment files (their rubric: schemas.rubric).

Loading returns `service.grading.model` objects; an assignment file loads into the fields of
`service.grading.model.Assignment` (service.application.assignments builds it).
"""

from __future__ import annotations

from typing import Any

from marshmallow import Schema, ValidationError, fields, post_load, validate, validates_schema

from service.grading.formats import FORMATS
from service.grading.model import (
    DEFAULT_FORMAT,
    VISIBILITIES,
    AnswerCheck,
    ConstraintCheck,
    GradeRequest,
    Rubric,
    Submission,
)

from .fields import StrictSchema
from .limits import Limits
from .rubric import ANSWER_NAME, ID_PATTERN, AnswerValue, RubricSchema, load_starter, wire_spec_fields

__all__ = [
    "GRADE_RESPONSE_SCHEMAS",
    "AssignmentFileSchema",
    "AssignmentPublicSchema",
    "AssignmentSubmissionSchema",
    "GradeRequestSchema",
    "RubricSchema",
    "SubmissionSchema",
]


MAX_ANSWERS = 100


def _few_enough(answers: dict[str, Any]) -> None:
    # Not validate.Length: apispec documents that as maxLength, which means nothing on an object.
    if len(answers) > MAX_ANSWERS:
        raise ValidationError(f"At most {MAX_ANSWERS} answers, got {len(answers)}.")


def _answers_field() -> fields.Dict:
    return fields.Dict(
        keys=fields.String(validate=validate.Regexp(ANSWER_NAME)),
        values=AnswerValue(),
        load_default=dict,
        validate=_few_enough,
        metadata={
            "description": 'Named numbers or verdicts, e.g. {"growth_per_layer": 0.24}.',
            "maxProperties": MAX_ANSWERS,
        },
    )


def _format_field() -> fields.String:
    return fields.String(
        load_default=DEFAULT_FORMAT,
        validate=validate.OneOf(FORMATS),
        metadata={
            "description": "json, gradescope (results.json) or prairielearn (external-grader results). "
            f"Default {DEFAULT_FORMAT}."
        },
    )


class SubmissionSchema(StrictSchema):
    spec = fields.Dict(required=True, metadata={"description": "The model spec, as POST /v1/analyses takes it."})
    answers = _answers_field()

    @post_load
    def make(self, data: dict[str, Any], **kwargs: Any) -> Submission:
        return Submission(**data)


class GradeRequestSchema(StrictSchema):
    """POST /v1/grade: a submission, a rubric, and the output format."""

    submission = fields.Nested(SubmissionSchema, required=True)
    rubric = fields.Nested(RubricSchema, required=True)
    format = _format_field()

    @validates_schema
    def _starters(self, data: dict[str, Any], **kwargs: Any) -> None:
        rubric = data.get("rubric")
        for i, check in enumerate(rubric.checks if rubric else ()):
            if isinstance(check, ConstraintCheck) and check.may_change is not None and check.starter is None:
                raise ValidationError(
                    {"rubric": {"checks": {i: {"starter": ["may_change needs the starter spec it compares with."]}}}}
                )

    @post_load
    def make(self, data: dict[str, Any], **kwargs: Any) -> GradeRequest:
        return GradeRequest(**data)


class AssignmentSubmissionSchema(StrictSchema):
    """POST /v1/assignments/{id}/submissions: the student's spec and answers, and the format."""

    spec = fields.Dict(required=True, metadata={"description": "The student's model spec."})
    answers = _answers_field()
    format = _format_field()

    @post_load
    def make(self, data: dict[str, Any], **kwargs: Any) -> GradeRequest:
        fmt = data.pop("format")
        return GradeRequest(submission=Submission(**data), rubric=Rubric(checks=()), format=fmt)


class AssignmentFileSchema(StrictSchema):
    """An assignment file: the public part (id .. answers) and the hidden rubric."""

    id = fields.String(
        required=True,
        validate=validate.Regexp(
            ID_PATTERN,
            error=("Use 1-64 characters: lowercase letters, digits, '_', '-', '.', starting with a letter or digit."),
        ),
    )
    title = fields.String(required=True, validate=validate.Length(min=1, max=200))
    instructions = fields.String(load_default="", validate=validate.Length(max=20000))
    starter = fields.Dict(required=True, metadata={"description": "The spec students start from."})
    may_change = fields.List(
        fields.String(), load_default=list, metadata={"description": "Spec fields students may change (public)."}
    )
    answers = fields.Dict(
        keys=fields.String(validate=validate.Regexp(ANSWER_NAME)),
        values=fields.String(),
        load_default=dict,
        metadata={"description": "Answer names → what to give (public)."},
    )
    rubric = fields.Nested(RubricSchema, required=True)

    def __init__(self, *args: Any, limits: Limits | None = None, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.limits = limits or Limits()

    @validates_schema
    def _consistent(self, data: dict[str, Any], **kwargs: Any) -> None:
        wire = wire_spec_fields()
        bad = [k for k in data.get("may_change", []) if k not in wire]
        if bad:
            raise ValidationError(f"Unknown spec fields {bad}; use {', '.join(wire)}.", "may_change")
        rubric = data.get("rubric")
        named = set(data.get("answers", {}))
        for i, check in enumerate(rubric.checks if rubric else ()):
            if isinstance(check, AnswerCheck) and named and check.answer not in named:
                raise ValidationError(
                    {
                        "rubric": {
                            "checks": {
                                i: {
                                    "answer": [
                                        f"{check.answer!r} is not among the assignment's answers {sorted(named)}."
                                    ]
                                }
                            }
                        }
                    }
                )

    @post_load
    def make(self, data: dict[str, Any], **kwargs: Any) -> dict[str, Any]:
        # Validated against the server's limits too: students must be able to submit it unchanged.
        data["starter_view"] = load_starter(data["starter"], "starter", self.limits)
        data["may_change"] = tuple(data["may_change"])
        return data


class AssignmentPublicSchema(Schema):
    """GET /v1/assignments/{id}: what a student may read. The rubric is never dumped."""

    id = fields.String()
    title = fields.String()
    instructions = fields.String()
    starter = fields.Dict(metadata={"description": "The spec to start from (as written by the instructor)."})
    may_change = fields.List(fields.String(), metadata={"description": "Spec fields you may change."})
    answers = fields.Dict(
        keys=fields.String(), values=fields.String(), metadata={"description": "Answers to give: name → what it is."}
    )
    max_score = fields.Float(metadata={"description": "Points available, hidden checks included."})


# The grade in each format (service.grading.formats), for the OpenAPI document: a generated client
# gets a typed result, and tests check real responses against these.
_VISIBILITY = {"enum": list(VISIBILITIES)}


class GradeCheckSchema(Schema):
    name = fields.String(required=True, metadata={"description": 'The check\'s name; "Hidden check k" for a student.'})
    kind = fields.String(required=True, metadata={"description": "verdict, value, answer, constraint; hidden."})
    passed = fields.Boolean(required=True)
    points = fields.Float(required=True)
    max_points = fields.Float(required=True)
    visibility = fields.String(required=True, metadata=_VISIBILITY)
    message = fields.String(required=True)


class GradeReportRefSchema(Schema):
    id = fields.String(allow_none=True, required=True)
    engine_version = fields.String(allow_none=True, required=True)
    verdict = fields.String(allow_none=True, required=True)


class HiddenCountSchema(Schema):
    checks = fields.Integer(required=True, metadata={"description": "Checks shown only as Hidden check k."})
    points = fields.Float(required=True)


class CacheHitSchema(Schema):
    hit = fields.Boolean(required=True)


class GradeResultSchema(Schema):
    """format=json: the service's own grade."""

    gradable = fields.Boolean(required=True)
    score = fields.Float(required=True)
    max_score = fields.Float(required=True)
    fraction = fields.Float(required=True, validate=validate.Range(0, 1))
    checks = fields.List(fields.Nested(GradeCheckSchema), required=True)
    summary = fields.String(required=True)
    report = fields.Nested(GradeReportRefSchema, required=True)
    hidden = fields.Nested(HiddenCountSchema, required=True)
    errors = fields.List(fields.String(), metadata={"description": "Why the spec was refused (not gradable)."})
    cache = fields.Nested(CacheHitSchema)


class GradescopeTestSchema(Schema):
    name = fields.String(required=True)
    score = fields.Float(required=True)
    max_score = fields.Float(required=True)
    status = fields.String(required=True, validate=validate.OneOf(["passed", "failed"]))
    output = fields.String(required=True)
    visibility = fields.String(required=True, metadata=_VISIBILITY)


class GradescopeExtraSchema(Schema):
    report_id = fields.String(allow_none=True)
    engine_version = fields.String(allow_none=True)
    gradable = fields.Boolean()


class GradescopeResultsSchema(Schema):
    """format=gradescope: Gradescope's results.json (gradescope-autograders.readthedocs.io, specs)."""

    score = fields.Float(required=True, metadata={"description": "The total; overrides the tests' sum."})
    execution_time = fields.Float(required=True)
    output = fields.String(required=True)
    output_format = fields.String(required=True, validate=validate.OneOf(["text", "html"]))
    tests = fields.List(fields.Nested(GradescopeTestSchema), required=True)
    extra_data = fields.Nested(GradescopeExtraSchema, required=True)


class PrairieLearnTestSchema(Schema):
    name = fields.String(required=True)
    points = fields.Float(required=True)
    max_points = fields.Float(required=True)
    message = fields.String(required=True)


class PrairieLearnImageSchema(Schema):
    label = fields.String(required=True)
    url = fields.String(required=True, metadata={"description": "A data: URL (PNG)."})


class PrairieLearnResultsSchema(Schema):
    """format=prairielearn: external-grader results (PrairieLearn docs/externalGrading.md)."""

    gradable = fields.Boolean(required=True)
    score = fields.Float(validate=validate.Range(0, 1), metadata={"description": "Absent when not gradable."})
    points = fields.Float()
    max_points = fields.Float()
    message = fields.String()
    output = fields.String()
    format_errors = fields.List(fields.String())
    tests = fields.List(fields.Nested(PrairieLearnTestSchema), required=True)
    images = fields.List(fields.Nested(PrairieLearnImageSchema))


GRADE_RESPONSE_SCHEMAS: dict[str, type[Schema]] = {
    "GradeResult": GradeResultSchema,
    "GradescopeResults": GradescopeResultsSchema,
    "PrairieLearnResults": PrairieLearnResultsSchema,
}
