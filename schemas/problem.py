"""The RFC 9457 problem document as plain data, without marshmallow: the Flask app's error handlers
(service/api/errors.py) and the gunicorn worker's own refusals (service/gunicorn_worker.py, loaded in
the master too) build every problem body here. `schemas.errors.ProblemSchema` documents its fields."""

from __future__ import annotations

from typing import Any

PROBLEM_CONTENT_TYPE = "application/problem+json"


# The `type` of a problem where no public URL is configured: a tag: URI (RFC 4151), stable and opaque. Never built
# from the request's Host header, which the client chooses (issue 20 item 8).
TAG_PREFIX = "tag:gradstab,2026:/problems/"


def problem_type(kind: str, public_url: str = "") -> str:
    """The `type` member for a kind of problem (its metrics reason): `<GRADSTAB_PUBLIC_URL>/problems/<kind>`,
    whose page describes it, where the operator has configured the service's public URL; else a tag: URI."""
    return f"{public_url.rstrip('/')}/problems/{kind}" if public_url else TAG_PREFIX + kind


def problem_document(
    status: int,
    title: str,
    detail: str,
    *,
    kind: str,
    instance: str,
    request_id: str,
    errors: list[dict[str, str]] | None = None,
    public_url: str = "",
) -> dict[str, Any]:
    body: dict[str, Any] = {
        "type": problem_type(kind, public_url),
        "title": title,
        "status": status,
        "detail": detail,
        "instance": instance,
        "request_id": request_id,
    }
    if errors:
        body["errors"] = errors
    return body
