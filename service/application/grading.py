"""One grading run: validate the submitted spec, get its report (from the report service: the
cache or the engine), evaluate the rubric, write the result in the requested format. Shared by
POST /v1/grade and POST /v1/assignments/{id}/submissions; Flask-free.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

from marshmallow import ValidationError

from schemas.errors import error_lines
from schemas.limits import Limits
from schemas.spec import ModelSpecSchema
from service.grading.constraints import spec_view
from service.grading.formats import render, student_view
from service.grading.grader import Context, grade, not_gradable
from service.grading.model import Assignment, GradeRequest, GradeResult, reads_training
from service.plots.picture import report_pictures

from .reports import SHARED, CacheView, ReportService

PICTURE_FORMATS = ("gradescope", "prairielearn")  # the plot goes into their results (PNG data URL)


class NotFound(LookupError):
    """No such assignment; the HTTP layer answers 404 (service/api/errors.py)."""

    def __init__(self, detail: str) -> None:
        super().__init__(detail)
        self.detail = detail


@dataclass(frozen=True)
class Graded:
    body: dict[str, Any]  # in the requested format
    result: GradeResult
    cache_hit: bool | None  # None: the spec was not gradable, no report was looked up


@dataclass
class GradingService:
    reports: ReportService
    limits: Limits
    assignments: dict[str, Assignment] = field(default_factory=dict)

    def assignment(self, assignment_id: str) -> Assignment:
        found = self.assignments.get(assignment_id)
        if found is None:
            known = ", ".join(sorted(self.assignments)) or "none are configured"
            raise NotFound(f"No assignment {assignment_id!r} (known: {known}).")
        return found

    def grade(
        self,
        request: GradeRequest,
        assignment: Assignment | None = None,
        for_student: bool = False,
        view: CacheView = SHARED,
    ) -> Graded:
        """The response body and the result behind it.

        An invalid spec raises ValidationError under submission.spec for the json format (the API
        answers 422); the gradescope and prairielearn formats grade it instead, as 0 points with the
        reasons (Gradescope) or `gradable: false` (PrairieLearn: no attempt used up), because those
        bodies go straight to the student through the platform.
        """
        started = time.perf_counter()
        rubric = assignment.rubric if assignment else request.rubric
        hit = None
        pictures: list[Any] = []
        try:
            spec = ModelSpecSchema(limits=self.limits).load(request.submission.spec)
        except ValidationError as exc:
            if request.format == "json":
                raise ValidationError({"submission": {"spec": exc.messages}}) from exc
            result = not_gradable(rubric, error_lines(exc.messages))
        else:
            cached = self.reports.report(spec, view)
            hit = cached.hit
            ctx = Context(
                report=cached.report,
                view=spec_view(spec),
                answers=dict(request.submission.answers),
                starter_view=assignment.starter_view if assignment else None,
                may_change=assignment.may_change if assignment else None,
            )
            result = grade(rubric, ctx)
            result.cache_hit = hit
            if request.format in PICTURE_FORMATS:
                pictures = report_pictures(cached.report, training=reads_training(rubric))
        if for_student:
            result = student_view(result)
        return Graded(render(result, request.format, time.perf_counter() - started, pictures), result, hit)
