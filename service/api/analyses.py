"""POST /v1/analyses: the contract's spec in, the full report out."""

from __future__ import annotations

import logging
import time

from flask import Response, current_app

from schemas.figures import FigureArgsSchema, unavailable
from schemas.jsonio import dumps_bytes
from schemas.report import ReportSchema
from schemas.spec import ModelSpecSchema
from service.application.cache import CachedReport
from service.config import Settings
from service.engine.spec import ModelSpec

from .cache_hint import cache_view
from .negotiation import HTML, JSON, OPENAPI_DOC, figure_refused, negotiate, picture_response
from .smorest import Blueprint
from .state import state

log = logging.getLogger("service.api")
X_CACHE = {
    "X-Cache": {
        "description": "hit or miss: whether the report cache had it from an earlier request of the same caller.",
        "schema": {"type": "string"},
    }
}


def report_response(cached: CachedReport) -> Response:
    """The report as ReportSchema documents it, plus `cache: {"hit": ...}` and an X-Cache header.

    The report is already in wire form (dumped once, by the report service); a finished Response
    makes flask-smorest pass it through instead of dumping it a second time."""
    hit = cached.hit  # the caller's view (cache_hint.cache_view)
    body = {**cached.report, "cache": {"hit": hit}}
    response = current_app.response_class(dumps_bytes(body) + b"\n", mimetype="application/json")
    response.headers["X-Cache"] = "hit" if hit else "miss"
    return response


def _log(spec: ModelSpec, cached: CachedReport, started: float) -> None:
    runtime = cached.report["runtime"]
    log.info(
        "analysis",
        extra={
            "verdict": cached.report["diagnosis"]["verdict"],
            "dtype": runtime["dtype"],
            "depth": spec.depth,
            "max_width": max(spec.widths),
            "batch_size": spec.batch_size,
            "jacobian_method": runtime["jacobian_method"],
            "engine_ms": runtime["elapsed_ms"],
            "cache_hit": cached.hit,
            "handler_ms": round((time.perf_counter() - started) * 1000.0, 3),
        },
    )


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
    @blp.arguments(FigureArgsSchema, location="query", as_kwargs=True)
    @blp.response(200, ReportSchema, headers=X_CACHE)
    @blp.alt_response(400, response="BAD_REQUEST")
    @blp.alt_response(413, response="REQUEST_ENTITY_TOO_LARGE")
    @blp.alt_response(415, response="UNSUPPORTED_MEDIA_TYPE")
    @blp.alt_response(406, response="NOT_ACCEPTABLE")
    @blp.doc(responses={"200": {**OPENAPI_DOC["responses"]["200"], "headers": X_CACHE}})
    def create_analysis(spec: ModelSpec, figure: str = "gradients") -> Response:
        """Analyse a spec.

        Builds the network, runs forward and backward in the requested dtype, and reports
        per-layer gradient and Jacobian-product statistics, a verdict, its causes and
        verified fixes. Same body, same numbers. Refused with problem+json: 400 malformed
        JSON, 413 body too large, 415 not JSON, 422 invalid fields or over a limit.
        """
        started = time.perf_counter()
        media = negotiate()  # before any work: an unacceptable Accept is 406 at once
        if media not in (JSON, HTML) and (why := unavailable(figure, spec)):
            raise figure_refused(figure, why)
        cached = state().reports.report(spec, cache_view())  # the engine runs, and metrics count it, only on a miss
        _log(spec, cached, started)
        if media != JSON:
            return picture_response(cached.report, media, figure)
        response = report_response(cached)
        response.vary.add("Accept")
        return response

    return blp
