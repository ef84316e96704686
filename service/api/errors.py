"""Every error as RFC 9457 problem+json: client input gets a 4xx naming the field, never a 500.

The one place where errors become HTTP: `ProblemError` for what the HTTP layer refuses itself,
`DOMAIN_ERRORS` for what the schemas, the engine and the application raise (a view never
catches those), and a 500 without internals for anything else.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from typing import Any

from flask import Flask, Response, current_app, g, request
from marshmallow import ValidationError
from werkzeug.exceptions import HTTPException

from schemas.errors import describe_invalid
from schemas.jsonio import dumps_bytes
from schemas.problem import PROBLEM_CONTENT_TYPE, problem_document
from service.application.deadline import ClientGone, DeadlineExceeded
from service.application.grading import NotFound
from service.engine.errors import SpecError

from .problems import problem_type, type_uri

log = logging.getLogger("service.api")

# The metrics label for each HTTP status that routing or werkzeug raises by itself.
_REASON_BY_STATUS = {
    400: "bad_request",
    404: "not_found",
    405: "method_not_allowed",
    413: "body_too_large",
    415: "content_type",
    422: "validation",
    429: "rate_limited",
}


class ProblemError(HTTPException):
    """A refusal with a metrics reason and optional per-field errors."""

    def __init__(
        self,
        status: int,
        reason: str,
        detail: str,
        errors: list[dict[str, str]] | None = None,
        title: str | None = None,
    ) -> None:
        super().__init__(description=detail)
        self.code = status
        self.reason = reason
        self.detail = detail
        self.errors = errors
        self.title = title


def validation_problem(messages: Any) -> ProblemError:
    """422 for a body that loads badly; `limit` when every message is a refused-by-limit one."""
    invalid = describe_invalid(messages)
    return ProblemError(422, invalid.reason, invalid.detail, invalid.errors, title=invalid.title)


def spec_problem(error: SpecError) -> ProblemError:
    """A valid spec this server cannot run (device=cuda without CUDA)."""
    reason = "unavailable_device" if error.field == "device" else "engine_refused"
    errors = [{"field": error.field, "message": error.message}]
    return ProblemError(422, reason, error.message, errors, title="The spec cannot run on this server")


def not_found_problem(error: NotFound) -> ProblemError:
    return ProblemError(404, "not_found", error.detail, title="Not Found")


def deadline_problem(error: DeadlineExceeded) -> ProblemError:
    """The request's soft deadline (GRADSTAB_REQUEST_DEADLINE) passed: 503, counted; no Retry-After
    (the same request would run as long again)."""
    current_app.extensions["gradstab"].metrics.cut_off("soft")
    detail = (
        f"The request was stopped after {error.seconds:g} s (GRADSTAB_REQUEST_DEADLINE, below the worker "
        "timeout GRADSTAB_TIMEOUT); submit the analysis as a job (POST /v1/jobs) or ask for less work."
    )
    return ProblemError(503, "deadline", detail, title="Request took too long")


def client_gone_problem(error: ClientGone) -> ProblemError:
    """Nobody reads this answer; it ends the request, is logged and counted (nginx's 499 for the same)."""
    current_app.extensions["gradstab"].metrics.cut_off("client_gone")
    return ProblemError(499, "client_gone", "The client closed the connection; the work was stopped.")


# Domain and application errors → problems: views raise nothing HTTP-specific for these.
DOMAIN_ERRORS: dict[type[Exception], Callable[[Any], ProblemError]] = {
    ValidationError: lambda error: validation_problem(error.messages),
    SpecError: spec_problem,
    NotFound: not_found_problem,
    DeadlineExceeded: deadline_problem,
    ClientGone: client_gone_problem,
}


def problem_response(
    status: int,
    title: str,
    detail: str,
    *,
    kind: str,
    errors: list[dict[str, str]] | None = None,
    headers: Mapping[str, str] | None = None,
) -> Response:
    body = problem_document(
        status, title, detail, kind=kind, instance=request.path, request_id=g.get("request_id", ""), errors=errors
    )
    known = problem_type(kind)  # one title per type (RFC 9457); the absolute type URI resolves to its page
    body["type"], body["title"] = type_uri(kind), known.title if known else title
    resp = current_app.response_class(dumps_bytes(body) + b"\n", status=status)
    resp.content_type = PROBLEM_CONTENT_TYPE
    for key, value in (headers or {}).items():
        resp.headers[key] = value
    return resp


def handle_http_exception(error: HTTPException) -> Response:
    status = error.code or 500
    if isinstance(error, ProblemError):
        reason, detail, errors, title = error.reason, error.detail, error.errors, error.title
    elif status >= 500:
        return handle_unexpected(getattr(error, "original_exception", None) or error)
    else:
        reason = _REASON_BY_STATUS.get(status, f"http_{status}")
        detail, errors, title = error.description or error.name, None, None
    # Keep protocol headers such as Allow (405); the body and its type are ours.
    keep = {k: v for k, v in error.get_headers() if k.lower() != "content-type"}
    if status < 500:
        current_app.extensions["gradstab"].metrics.refused(reason)
        log.info("refused", extra={"status": status, "reason": reason, "detail": detail})
    return problem_response(status, title or error.name, detail, kind=reason, errors=errors, headers=keep)


def handle_unexpected(error: BaseException) -> Response:
    """500 without internals in the body; the traceback goes to the log with the request id."""
    log.error("unhandled exception", exc_info=error)
    return problem_response(
        500,
        "Internal Server Error",
        "The server failed to process the request; the request id identifies it in the logs.",
        kind="internal",
    )


def _domain_handler(to_problem: Callable[[Any], ProblemError]) -> Callable[[Exception], Response]:
    def handle(error: Exception) -> Response:
        return handle_http_exception(to_problem(error))

    return handle


def register(app: Flask) -> None:
    app.register_error_handler(HTTPException, handle_http_exception)
    for kind, to_problem in DOMAIN_ERRORS.items():
        app.register_error_handler(kind, _domain_handler(to_problem))
    app.register_error_handler(Exception, handle_unexpected)
