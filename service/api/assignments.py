"""GET /v1/assignments[/{id}] and POST /v1/assignments/{id}/submissions: the assignments kept on
the server (public instructions, hidden rubric). An unknown id is a 404 through errors.py."""

from __future__ import annotations

from typing import Any

from schemas.grading import AssignmentPublicSchema, AssignmentSubmissionSchema
from service.application.assignments import public_view
from service.config import Settings
from service.grading.model import GradeRequest

from .auth import caller_role
from .grading import GRADE_RESPONSE, respond
from .smorest import Blueprint
from .state import state


def blueprint(settings: Settings) -> Blueprint:
    blp = Blueprint(
        "assignments",
        __name__,
        url_prefix="/v1",
        description="Assignments kept on the server: public instructions, hidden rubric.",
    )

    @blp.route("/assignments", methods=["GET"])
    @blp.response(200, AssignmentPublicSchema(many=True))
    def list_assignments() -> list[dict[str, Any]]:
        """The public part of every assignment (never a rubric).

        id, title, instructions, starter spec, the fields a student may change, the answers to give and the
        maximum score, for every file loaded from GRADSTAB_ASSIGNMENTS_DIR at start-up; empty without it."""
        return [public_view(a) for _, a in sorted(state().grading.assignments.items())]

    @blp.route("/assignments/<assignment_id>", methods=["GET"])
    @blp.response(200, AssignmentPublicSchema)
    @blp.alt_response(404, response="NOT_FOUND")
    def get_assignment(assignment_id: str) -> dict[str, Any]:
        """Title, instructions, the starter spec, what may change and which answers to give.

        The same public view as the list, for one id; 404 for an id no loaded file has. The rubric stays on
        the server: submissions are graded against it."""
        return public_view(state().grading.assignment(assignment_id))

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
    @blp.doc(responses={"200": GRADE_RESPONSE})
    @blp.alt_response(404, response="NOT_FOUND")
    @blp.alt_response(422, response="UNPROCESSABLE_ENTITY")
    @blp.alt_response(429, response="TOO_MANY_REQUESTS")
    def submit(request: GradeRequest, assignment_id: str) -> Any:
        """Grade a student's spec (and answers) against the assignment's hidden rubric.

        Hidden checks always count in the score. Instructor keys (the course autograder's) get
        every check with its visibility in the gradescope format, for the platform to hide;
        student keys, an open service and the prairielearn format get hidden checks only as
        "Hidden check k" with points and passed/failed. Formats and invalid specs as for
        POST /v1/grade.
        """
        assignment = state().grading.assignment(assignment_id)
        return respond(request, assignment, for_student=caller_role() != "instructor")

    return blp
