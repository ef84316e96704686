"""Jobs and sweeps: POST /v1/sweeps, POST /v1/jobs → 202 + Location; GET and DELETE /v1/jobs/{id}.

The domain is service.jobs (no Flask): this module loads bodies with schemas.jobs, calls the
`JobService` (built with the app's state from Settings.jobs), dumps with `JobSchema`, and maps the
jobs package's exceptions to problems (503 store unavailable, 429 over the per-key quota).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from flask import Response, request, url_for

from schemas.figures import FigureArgsSchema
from schemas.jobs import AnalysisJobRequestSchema, JobSchema, SweepRequestSchema
from service.config import Settings
from service.jobs.errors import JobError, QuotaExceeded, StoreUnavailable
from service.jobs.model import Plan
from service.jobs.service import JobService

from . import auth
from .errors import ProblemError, handle_http_exception
from .negotiation import HTML, JSON, PNG, SVG, negotiate, picture_response, sweep_picture_response
from .smorest import Blueprint
from .state import state

_TEXT = {"type": "string"}
JOB_MEDIA = {
    JSON: {"schema": {"$ref": "#/components/schemas/Job"}},
    HTML: {"schema": _TEXT},
    SVG: {"schema": _TEXT},
    PNG: {"schema": {**_TEXT, "format": "binary"}},
}
SWEEP_EXAMPLE = {
    "base": {"layers": {"depth": 10, "width": 128}, "activation": "relu"},
    "grid": {"init": ["kaiming_normal", "xavier_normal"], "layers.depth": [10, 50]},
}


def jobs() -> JobService:
    service = state().jobs
    assert service is not None
    return service


def _owner() -> str:
    name = auth.caller_name()
    return name if name != "anonymous" else f"addr:{request.remote_addr or 'unknown'}"


def _not_found(job_id: str) -> ProblemError:
    return ProblemError(
        404, "not_found", f"No job {job_id}: never submitted, or expired (results are kept GRADSTAB_JOB_TTL seconds)."
    )


def _accepted(plan: Plan) -> tuple[dict[str, Any], int, dict[str, str]]:
    job, _created = jobs().submit(plan, _owner())
    location = url_for("jobs.get_job", job_id=job.record.id)
    return jobs().describe(job, with_result=False), 202, {"Location": location}


def blueprint(app_settings: Settings) -> Blueprint:
    settings, limits = app_settings.jobs, app_settings.limits
    blp = Blueprint(
        "jobs",
        __name__,
        url_prefix="/v1",
        description="Sweeps over spec fields and long analyses, run as jobs on a task queue.",
    )

    def starts_a_job(view: Callable[..., Any]) -> Callable[..., Any]:
        """What POST /v1/sweeps and POST /v1/jobs answer: 202 with the job and its Location, or a problem."""
        decorators = (
            blp.response(
                202, JobSchema, headers={"Location": {"description": "/v1/jobs/{id}", "schema": {"type": "string"}}}
            ),
            blp.alt_response(400, response="BAD_REQUEST"),
            blp.alt_response(415, response="UNSUPPORTED_MEDIA_TYPE"),
            blp.alt_response(429, response="TOO_MANY_REQUESTS"),
            blp.alt_response(503, response="SERVICE_UNAVAILABLE"),
        )
        for decorate in reversed(decorators):  # innermost first, as stacked decorators apply
            view = decorate(view)
        return view

    @blp.errorhandler(JobError)
    def job_error(error: JobError) -> Response:
        if isinstance(error, QuotaExceeded):
            problem = ProblemError(429, "job_quota", str(error), title="Job quota reached")
        else:
            assert isinstance(error, StoreUnavailable)
            problem = ProblemError(503, "jobs_unavailable", str(error), title="The job queue is unavailable")
        response = handle_http_exception(problem)
        response.headers["Retry-After"] = "5" if problem.code == 503 else "30"
        return response

    @blp.route("/sweeps", methods=["POST"])
    @blp.arguments(SweepRequestSchema(limits=limits, jobs=settings), example=SWEEP_EXAMPLE)
    @starts_a_job
    def create_sweep(plan: Plan) -> Any:
        """Start a sweep.

        The points are the cross product of the grid's axes applied to the base spec, each
        validated like a POST /v1/analyses body. Same normalised request, same job id: a
        resubmission returns the existing job. 422 names an unknown axis, an empty list of
        values or a point over a limit (GRADSTAB_MAX_SWEEP_POINTS, GRADSTAB_MAX_JOB_GFLOP).
        """
        return _accepted(plan)

    @blp.route("/jobs", methods=["POST"])
    @blp.arguments(AnalysisJobRequestSchema(limits=limits, jobs=settings))
    @starts_a_job
    def create_job(plan: Plan) -> Any:
        """Start one analysis as a job.

        For a spec beyond the synchronous endpoint's GRADSTAB_MAX_GFLOP (up to
        GRADSTAB_MAX_JOB_GFLOP). The job's result is the full report.
        """
        return _accepted(plan)

    @blp.route("/jobs/<string:job_id>", methods=["GET"])
    @blp.arguments(FigureArgsSchema, location="query", as_kwargs=True)
    @blp.response(200, JobSchema)
    @blp.alt_response(404, response="NOT_FOUND")
    @blp.alt_response(503, response="SERVICE_UNAVAILABLE")
    @blp.alt_response(406, response="NOT_ACCEPTABLE")
    @blp.alt_response(409, response="CONFLICT")
    @blp.doc(
        responses={
            "200": {
                "description": "The job: JSON by default; for a sweep, Accept text/html gives its phase-diagram page "
                "and image/svg+xml or image/png the verdict heatmap; for an analysis job, its report's page or plot.",
                "content": {**JOB_MEDIA},
            }
        }
    )
    def get_job(job_id: str, figure: str = "gradients") -> Any:
        """A job's status, progress and (partial, for a sweep) result.

        JSON by default; a sweep with Accept text/html answers its phase diagrams page, image/svg+xml or
        image/png the verdict heatmap (with the χ = 1 line), from the points done so far; an analysis job
        its report's page or plot."""
        media = negotiate()
        job = jobs().get(job_id)
        if job is None:
            raise _not_found(job_id)
        body = jobs().describe(job)
        if media == JSON:
            return body
        result = body.get("result") or {}
        if body.get("kind") == "sweep":
            return sweep_picture_response(result, media)
        if not result:
            raise ProblemError(409, "no_points_yet", "The analysis has not finished yet; ask again later.")
        return picture_response(result, media, figure)

    @blp.route("/jobs/<string:job_id>", methods=["DELETE"])
    @blp.response(200, JobSchema)
    @blp.alt_response(404, response="NOT_FOUND")
    @blp.alt_response(503, response="SERVICE_UNAVAILABLE")
    def cancel_job(job_id: str) -> Any:
        """Cancel a job: no further points start; the points already delivered stay readable.

        A point that is running finishes and is delivered. Cancelling a finished job changes nothing. The
        job (status cancelled) is kept GRADSTAB_JOB_TTL seconds, and the same request returns it until then."""
        job = jobs().cancel(job_id)
        if job is None:
            raise _not_found(job_id)
        return jobs().describe(job)

    return blp
