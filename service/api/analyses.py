"""POST /v1/analyses: the contract's spec in, the full report out."""

from __future__ import annotations

import logging
import time

from flask import Response

from schemas.report import ReportSchema
from schemas.spec import ModelSpecSchema
from service.config import Settings
from service.engine import ModelSpec, Report, analyze
from service.engine.errors import SpecError

from .autograder import cache_response, cached_report
from .errors import ProblemError
from .negotiation import JSON, OPENAPI_DOC, negotiate, picture_response
from .smorest import Blueprint

log = logging.getLogger("service.api")


def run_analysis(spec: ModelSpec, settings: Settings) -> Report:
    """The engine, with its refusals (e.g. device=cuda where there is none) as a 422 naming the field."""
    try:
        return analyze(spec, auto_exact_gflop=settings.limits.auto_exact_gflop)
    except SpecError as exc:
        reason = "unavailable_device" if exc.field == "device" else "engine_refused"
        raise ProblemError(
            422,
            reason,
            exc.message,
            [{"field": exc.field, "message": exc.message}],
            title="The spec cannot run on this server",
        ) from exc


def blueprint(settings: Settings) -> Blueprint:
    blp = Blueprint(
        "analyses",
        __name__,
        url_prefix="/v1",
        description="Diagnose exploding and vanishing gradients of an MLP spec.",
    )

    @blp.route("/analyses", methods=["POST"])
    @blp.arguments(
        ModelSpecSchema(limits=settings.limits),
        example={
            "layers": {"depth": 100, "width": 4},
            "activation": "identity",
            "init": "normal",
            "weight_scale": 1.0,
        },
    )
    @blp.response(200, ReportSchema)
    @blp.alt_response(400, response="BAD_REQUEST")
    @blp.alt_response(413, response="REQUEST_ENTITY_TOO_LARGE")
    @blp.alt_response(415, response="UNSUPPORTED_MEDIA_TYPE")
    @blp.alt_response(406, response="NOT_ACCEPTABLE")
    @blp.doc(**OPENAPI_DOC)
    def create_analysis(spec: ModelSpec) -> Response:
        """Analyse a spec.

        Builds the network, runs forward and backward in the requested dtype, and reports
        per-layer gradient and Jacobian-product statistics, a verdict, its causes and
        verified fixes. Same body, same numbers. Refused with problem+json: 400 malformed
        JSON, 413 body too large, 415 not JSON, 422 invalid fields or over a limit.
        """
        started = time.perf_counter()
        media = negotiate()  # before any work: an unacceptable Accept is 406 at once
        # The report cache: the engine runs, and metrics count it, only on a miss.
        cached = cached_report(spec)
        report = cached.report
        verdict, dtype = report["diagnosis"]["verdict"], report["runtime"]["dtype"]
        log.info(
            "analysis",
            extra={
                "verdict": verdict,
                "dtype": dtype,
                "depth": spec.depth,
                "max_width": max(spec.widths),
                "batch_size": spec.batch_size,
                "jacobian_method": report["runtime"]["jacobian_method"],
                "engine_ms": report["runtime"]["elapsed_ms"],
                "cache_hit": cached.hit,
                "handler_ms": round((time.perf_counter() - started) * 1000.0, 3),
            },
        )
        if media != JSON:
            return picture_response(report, media)
        response = cache_response(cached)  # adds "cache": {"hit": ...} and X-Cache
        response.vary.add("Accept")
        return response

    return blp
