"""Problem types (RFC 9457): one absolute `type` URI, one title and one page per kind of refusal.

`type` is `<GRADSTAB_PUBLIC_URL>/problems/<kind>` where the operator has configured the service's public URL,
an absolute URI that resolves: GET it (no key needed) for an HTML page saying what the problem means and what
to do about it. Without one it is `tag:gradstab,2026:/problems/<kind>` (schemas.problem.problem_type), whose
page is at /problems/<kind> on the service: never a URI built from the request's Host header. The kind is also
the `reason` label of `gradstab_refusals_total`. A kind missing here still gets a page and a
title from its HTTP status (`http_405`), so no `type` the service sends ever 404s.
"""

from __future__ import annotations

import http
from dataclasses import dataclass
from html import escape

from flask import Blueprint, Response, current_app

from schemas.problem import problem_type as schema_problem_type

PATH_PREFIX = "/problems/"


@dataclass(frozen=True)
class ProblemType:
    status: int
    title: str
    description: str


PROBLEM_TYPES: dict[str, ProblemType] = {
    "bad_request": ProblemType(400, "Bad Request", "The request could not be read as HTTP the service understands."),
    "bad_json": ProblemType(
        400, "Malformed JSON", "The body is not valid JSON (NaN and Infinity are not JSON: send a number or null)."
    ),
    "empty_body": ProblemType(400, "Empty body", "The request has no body; send a JSON object."),
    "bad_encoding": ProblemType(400, "Body not UTF-8", "The body is not valid UTF-8; send UTF-8 JSON."),
    "too_deep": ProblemType(
        400, "JSON nested too deeply", "The body nests deeper than GRADSTAB_MAX_JSON_DEPTH allows."
    ),
    "body_timeout": ProblemType(
        408,
        "Request Timeout",
        "The request body did not arrive within GRADSTAB_BODY_TIMEOUT seconds; send the whole body at once.",
    ),
    "unauthorized": ProblemType(
        401,
        "Unauthorized",
        "No API key, or one the service does not know. Send it as `Authorization: Bearer <key>` or `X-API-Key`.",
    ),
    "forbidden": ProblemType(403, "Forbidden", "The API key is valid but its role may not do this."),
    "not_found": ProblemType(404, "Not Found", "No such resource: an unknown path, assignment or job (jobs expire)."),
    "method_not_allowed": ProblemType(
        405, "Method Not Allowed", "The path exists; the Allow header lists its methods."
    ),
    "no_points_yet": ProblemType(
        409, "Nothing to draw yet", "The job has no finished point (or result) to draw yet; ask again later."
    ),
    "not_acceptable": ProblemType(
        406, "Not Acceptable", "None of the media types in Accept can be produced; the detail lists those that can."
    ),
    "body_too_large": ProblemType(413, "Body too large", "The body is larger than GRADSTAB_MAX_BODY_BYTES."),
    "content_type": ProblemType(
        415, "Unsupported media type", "Send the body as application/json in UTF-8 (Content-Type: application/json)."
    ),
    "validation": ProblemType(
        422, "Invalid spec", "Fields of the request are missing, unknown or invalid; `errors` names each field."
    ),
    "invalid_rubric": ProblemType(
        422, "Invalid rubric", "The rubric of a grading request is invalid; `errors` names each check and field."
    ),
    "limit": ProblemType(
        422,
        "Over a limit",
        "The spec is valid but asks for more work than this server allows; each error names the limit, the "
        "figure and the environment variable an operator can raise.",
    ),
    "not_object": ProblemType(422, "Body not an object", "The body must be a JSON object."),
    "invalid_figure": ProblemType(
        422,
        "No such picture",
        "The `figure` query argument names a picture this report does not have (a training picture of a spec "
        "without training); `errors` names figure.",
    ),
    "unavailable_device": ProblemType(
        422, "The spec cannot run on this server", "The device the spec asks for (cuda) is not present here."
    ),
    "engine_refused": ProblemType(
        422, "The engine refused the spec", "The spec passed validation but the engine cannot run it as given."
    ),
    "rate_limited": ProblemType(
        429, "Too Many Requests", "The caller's rate limit is spent; retry after the Retry-After header's seconds."
    ),
    "work_budget": ProblemType(
        429,
        "Work budget spent",
        "The caller's estimated-work budget (GRADSTAB_WORK_LIMIT, GFLOP per window) cannot pay for this analysis "
        "now; retry after the Retry-After header's seconds, or send a smaller spec. Cached reports cost nothing.",
    ),
    "job_quota": ProblemType(
        429, "Job quota reached", "The caller has GRADSTAB_JOB_QUOTA unfinished jobs; wait for one or cancel one."
    ),
    "internal": ProblemType(
        500, "Internal Server Error", "The server failed; the request_id identifies the request in the logs."
    ),
    "not_ready": ProblemType(503, "Not ready", "This worker has not finished its warm-up analysis yet."),
    "jobs_unavailable": ProblemType(
        503, "The job queue is unavailable", "The job store (Redis) cannot be reached; stored results return with it."
    ),
}


def problem_type(kind: str) -> ProblemType | None:
    """The registered type, or one made from the status of an `http_<code>` kind."""
    if kind in PROBLEM_TYPES:
        return PROBLEM_TYPES[kind]
    code = kind.removeprefix("http_")
    if code.isdigit() and int(code) in http.HTTPStatus._value2member_map_:
        status = http.HTTPStatus(int(code))
        return ProblemType(status.value, status.phrase, status.description + ".")
    return None


def type_uri(kind: str) -> str:
    """The `type` URI of a kind: from the configured public URL, else a tag: URI (never from the Host header)."""
    return schema_problem_type(kind, current_app.config["GRADSTAB_SETTINGS"].server.public_url)


PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>{title}</title></head>
<body><h1>{title}</h1><p>HTTP {status}. {description}</p>
<p>Problem type <code>{kind}</code> of the gradient stability service: every refusal is
<code>application/problem+json</code> (RFC 9457) with <code>type</code>, <code>title</code>,
<code>status</code>, <code>detail</code>, <code>instance</code> and <code>request_id</code>.
The API is described at <a href="/docs">/docs</a> and <a href="/openapi.json">/openapi.json</a>.</p>
</body></html>
"""

bp = Blueprint("problems", __name__)


@bp.route(PATH_PREFIX + "<kind>", methods=["GET"])
def page(kind: str) -> Response:
    found = problem_type(kind)
    if found is None:
        return Response("Unknown problem type.\n", status=404, mimetype="text/plain")
    body = PAGE.format(
        title=escape(found.title), status=found.status, description=escape(found.description), kind=escape(kind)
    )
    return Response(body, mimetype="text/html")
