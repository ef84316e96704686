"""One grading run: validate the submitted spec, get its report (from the cache or the engine),
evaluate the rubric, write the result in the requested format. Shared by /v1/grade and
/v1/assignments/{id}/submissions; Flask-free so the CLI and tests can call it directly.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from marshmallow import ValidationError

from schemas.grading import flatten_errors
from schemas.limits import Limits
from schemas.spec import ModelSpecSchema
from service.engine.spec import ModelSpec
from service.plots.picture import report_picture

from .assignments import Assignment
from .constraints import spec_view
from .formats import render, student_view
from .grader import Context, grade, not_gradable
from .model import GradeRequest, GradeResult

PICTURE_FORMATS = ("gradescope", "prairielearn")  # the plot goes into their results (PNG data URL)

# spec → (the report as its JSON dict, whether it came from the cache)
ReportSource = Callable[[ModelSpec], tuple[dict[str, Any], bool]]


def run(
    request: GradeRequest,
    get_report: ReportSource,
    *,
    limits: Limits,
    assignment: Assignment | None = None,
    for_student: bool = False,
) -> tuple[dict[str, Any], GradeResult]:
    """The response body and the result behind it.

    An invalid spec raises ValidationError for the json format (the API answers 422); the
    gradescope and prairielearn formats grade it instead, as 0 points with the reasons
    (Gradescope) or `gradable: false` (PrairieLearn: no attempt used up), because those
    bodies go straight to the student through the platform.
    """
    started = time.perf_counter()
    picture = None
    rubric = assignment.rubric if assignment else request.rubric
    try:
        spec = ModelSpecSchema(limits=limits).load(request.submission.spec)
    except ValidationError as exc:
        if request.format == "json":
            raise
        result = not_gradable(rubric, flatten_errors(exc.messages))
    else:
        report, hit = get_report(spec)
        ctx = Context(
            report=report,
            view=spec_view(spec),
            answers=dict(request.submission.answers),
            starter_view=assignment.starter_view if assignment else None,
            may_change=assignment.may_change if assignment else None,
        )
        result = grade(rubric, ctx)
        result.cache_hit = hit
        if request.format in PICTURE_FORMATS:
            picture = report_picture(report)
    if for_student:
        result = student_view(result)
    return render(result, request.format, time.perf_counter() - started, picture), result
