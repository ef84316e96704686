"""POST /v1/grade: a submission graded against the rubric in the request (instructors).

Views are a few lines: load with a schema, call `GradingService.grade`, return the body in the
requested format with `X-Cache: hit|miss`. An invalid spec in the json format is a 422 through
service/api/errors.py.
"""

from __future__ import annotations

import logging
from typing import Any

from schemas.grading import GradeRequestSchema
from service.config import Settings
from service.grading.model import Assignment, GradeRequest

from .auth import caller_name, require_role
from .cache_hint import cache_view
from .metrics import caller_label
from .smorest import Blueprint
from .state import state

log = logging.getLogger("service.api")

# The 200 of both grading routes: the body is the grade in the requested format.
GRADE_RESPONSE = {
    "description": "The grade in the requested format: json, gradescope or prairielearn. X-Cache: hit or miss.",
    "content": {
        "application/json": {
            "schema": {
                "oneOf": [
                    {"$ref": f"#/components/schemas/{name}"}
                    for name in ("GradeResult", "GradescopeResults", "PrairieLearnResults")
                ]
            }
        }
    },
}


def respond(request: GradeRequest, assignment: Assignment | None, for_student: bool) -> tuple[Any, int, dict]:
    """Grade, count and log it; the body in the requested format with X-Cache (shared by both routes)."""
    graded = state().grading.grade(request, assignment, for_student=for_student, view=cache_view())
    result = graded.result
    state().metrics.graded(caller_label(), request.format, result.gradable)
    log.info(
        "grade",
        extra={
            "key_name": caller_name(),
            "assignment": assignment.id if assignment else None,
            "format": request.format,
            "gradable": result.gradable,
            "score": result.score,
            "max_score": result.max_score,
            "report_id": result.report_id,
            "cache_hit": result.cache_hit,
        },
    )
    headers = {}
    if graded.cache_hit is not None and result.report_id:
        headers["X-Cache"] = "hit" if graded.cache_hit else "miss"  # the caller's view, as in the body
    return graded.body, 200, headers


def blueprint(settings: Settings) -> Blueprint:
    blp = Blueprint(
        "grading", __name__, url_prefix="/v1", description="Grade a submitted spec against a rubric of checks."
    )

    @blp.route("/grade", methods=["POST"])
    @require_role("instructor")  # before the body is parsed: a 403 does not depend on the body
    @blp.arguments(
        GradeRequestSchema,
        example={
            "submission": {
                "spec": {"layers": {"depth": 10, "width": 16}, "activation": "sigmoid"},
                "answers": {"growth_per_layer": 0.3},
            },
            "rubric": {
                "checks": [
                    {"kind": "verdict", "name": "Gradient is stable", "points": 2, "expected": "stable"},
                    {
                        "kind": "answer",
                        "name": "Growth per layer",
                        "answer": "growth_per_layer",
                        "pointer": "/diagnosis/growth_per_layer",
                        "rel_tol": 0.05,
                    },
                ]
            },
            "format": "gradescope",
        },
    )
    @blp.doc(responses={"200": GRADE_RESPONSE})
    @blp.alt_response(401, response="UNAUTHORIZED")
    @blp.alt_response(403, response="FORBIDDEN")
    @blp.alt_response(422, response="UNPROCESSABLE_ENTITY")
    @blp.alt_response(429, response="TOO_MANY_REQUESTS")
    def grade(request: GradeRequest) -> Any:
        """Grade a submission against the rubric in the request.

        For instructors and their autograders (a student key gets 403: students submit to
        assignments, whose rubric stays on the server). Checks: verdict, value (JSON pointer
        into the report, tolerance or range), answer (the student's number or verdict against
        the report), constraint (on the submitted spec).

        The body is the grade in the requested `format`: `json` (per-check passed, points and
        message, score, summary, report id, `cache.hit`), `gradescope` (results.json) or
        `prairielearn` (external-grader results). An invalid spec is a 422 in the json format;
        the gradescope format grades it 0 with the reasons, the prairielearn format answers
        `gradable: false` with `format_errors`.
        """
        return respond(request, None, for_student=False)

    return blp
