"""The RFC 9457 problem document as plain data, without marshmallow: the Flask app's error handlers
(service/api/errors.py) and the gunicorn worker's own refusals (service/gunicorn_worker.py, loaded in
the master too) build every problem body here. `schemas.errors.ProblemSchema` documents its fields."""

from __future__ import annotations

from typing import Any

PROBLEM_CONTENT_TYPE = "application/problem+json"


def problem_type(kind: str) -> str:
    """The `type` member for a kind of problem (its metrics reason)."""
    return f"/problems/{kind}"


def problem_document(
    status: int,
    title: str,
    detail: str,
    *,
    kind: str,
    instance: str,
    request_id: str,
    errors: list[dict[str, str]] | None = None,
) -> dict[str, Any]:
    body: dict[str, Any] = {
        "type": problem_type(kind),
        "title": title,
        "status": status,
        "detail": detail,
        "instance": instance,
        "request_id": request_id,
    }
    if errors:
        body["errors"] = errors
    return body
