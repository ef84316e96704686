"""POST /v1/grade (a rubric in the request) and the assignments kept on the server.

Views are a few lines: load with a schema, call `service.grading.runner.run`, return the body
in the requested format with `X-Cache: hit|miss`.
"""

from __future__ import annotations

import logging
from typing import Any

from marshmallow import ValidationError

from schemas.grading import AssignmentPublicSchema, AssignmentSubmissionSchema, GradeRequestSchema
from service.grading.assignments import Assignment
from service.grading.model import GradeRequest
from service.grading.runner import run

from .auth import caller_name, caller_role, require_role
from .autograder import autograder, cached_report
from .errors import ProblemError, validation_problem
from .smorest import Blueprint
from .state import state

log = logging.getLogger("service.api")


def _grade(request: GradeRequest, assignment: Assignment | None, for_student: bool) -> tuple[Any, int, dict]:
    ag = autograder()
    hits: list[bool] = []

    def get_report(spec: Any) -> tuple[dict[str, Any], bool]:
        cached = cached_report(spec)
        hits.append(cached.hit)
        return cached.report, cached.hit

    try:
        body, result = run(
            request, get_report, limits=state().settings.limits, assignment=assignment, for_student=for_student
        )
    except ValidationError as exc:
        raise validation_problem({"submission": {"spec": exc.messages}}) from exc
    ag.metrics.grades.labels(key=caller_name(), format=request.format, gradable=str(result.gradable).lower()).inc()
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
    headers = {"X-Cache": "hit" if hits[0] else "miss"} if hits else {}
    return body, 200, headers


def grade_blueprint() -> Blueprint:
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
    @blp.response(200)
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
        return _grade(request, None, for_student=False)

    return blp


def _find(assignment_id: str) -> Assignment:
    found = autograder().assignments.get(assignment_id)
    if found is None:
        known = ", ".join(sorted(autograder().assignments)) or "none are configured"
        raise ProblemError(404, "not_found", f"No assignment {assignment_id!r} (known: {known}).", title="Not Found")
    return found


def assignments_blueprint() -> Blueprint:
    blp = Blueprint(
        "assignments",
        __name__,
        url_prefix="/v1",
        description="Assignments kept on the server: public instructions, hidden rubric.",
    )

    @blp.route("/assignments", methods=["GET"])
    @blp.response(200, AssignmentPublicSchema(many=True))
    def list_assignments() -> list[dict[str, Any]]:
        """The public part of every assignment (never a rubric)."""
        return [a.public() for _, a in sorted(autograder().assignments.items())]

    @blp.route("/assignments/<assignment_id>", methods=["GET"])
    @blp.response(200, AssignmentPublicSchema)
    @blp.alt_response(404, response="NOT_FOUND")
    def get_assignment(assignment_id: str) -> dict[str, Any]:
        """Title, instructions, the starter spec, what may change and which answers to give."""
        return _find(assignment_id).public()

    @blp.route("/assignments/<assignment_id>/submissions", methods=["POST"])
    @blp.arguments(
        AssignmentSubmissionSchema,
        example={
            "spec": {
                "layers": {"depth": 30, "width": 16},
                "activation": "sigmoid",
                "init": "xavier_normal",
                "weight_scale": 4.0,
            },
            "answers": {"growth_per_layer": 0.95, "total_growth": 0.2},
            "format": "gradescope",
        },
    )
    @blp.response(200)
    @blp.alt_response(404, response="NOT_FOUND")
    @blp.alt_response(422, response="UNPROCESSABLE_ENTITY")
    @blp.alt_response(429, response="TOO_MANY_REQUESTS")
    def submit(request: GradeRequest, assignment_id: str) -> Any:
        """Grade a student's spec (and answers) against the assignment's hidden rubric.

        Instructor keys (the course autograder's) get every check with its visibility, for
        the platform to hide; student keys and an open service get only the visible checks
        and a count of the others. Formats and invalid specs as for POST /v1/grade.
        """
        assignment = _find(assignment_id)
        return _grade(request, assignment, for_student=caller_role() != "instructor")

    return blp
