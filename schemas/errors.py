"""Errors on the wire: RFC 9457 problem details (the body of every 4xx/5xx, content type
application/problem+json), and the one flattener of marshmallow's nested messages, which the API,
the CLI, the grading formats and the assignment loader all use."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any

from marshmallow import Schema, fields

from .limits import OVER_LIMIT

Path = tuple[str | int, ...]

# An error repeats at most this much of what the client sent: a field name or message is cut to
# MAX_ECHO_CHARS characters, and at most MAX_FIELD_ERRORS entries are listed (the last one says
# how many more there were). A 900 KB value or 60,000 unknown keys must not come back in full.
MAX_ECHO_CHARS = 200
MAX_FIELD_ERRORS = 20


def clip(text: str, limit: int = MAX_ECHO_CHARS) -> str:
    """`text` cut to `limit` characters, saying how many were left out."""
    return text if len(text) <= limit else f"{text[:limit]}… ({len(text) - limit} more characters)"


class FieldErrorSchema(Schema):
    field = fields.String(
        required=True,
        metadata={
            "description": "Dotted path of the bad field (e.g. jacobian.probes); 'body' for the request as a whole."
        },
    )
    message = fields.String(required=True, metadata={"description": "What is wrong and what is allowed."})


class ProblemSchema(Schema):
    type = fields.String(
        required=True,
        metadata={
            "description": "A URI naming the kind of problem: <GRADSTAB_PUBLIC_URL>/problems/validation where the "
            "operator configured the public URL (GET it for a page describing the problem), else "
            "tag:gradstab,2026:/problems/validation (its page: /problems/validation on this service)."
        },
    )
    title = fields.String(required=True, metadata={"description": "Short summary of the kind of problem."})
    status = fields.Integer(required=True, metadata={"description": "The HTTP status code."})
    detail = fields.String(required=True, metadata={"description": "This occurrence, in words."})
    instance = fields.String(metadata={"description": "The request path."})
    request_id = fields.String(metadata={"description": "Also in the X-Request-ID header and the logs."})
    errors = fields.List(
        fields.Nested(FieldErrorSchema),
        metadata={"description": "One entry per bad field (validation and limit problems)."},
    )


def _walk(messages: Any, path: Path = ()) -> Iterator[tuple[Path, str]]:
    """marshmallow's nested {field: [msg] | {...}} → (path, message) pairs; `_schema` adds no step."""
    if isinstance(messages, Mapping):
        for key, value in messages.items():
            yield from _walk(value, path if key == "_schema" else (*path, key))
    elif isinstance(messages, list | tuple):
        for message in messages:
            yield from _walk(message, path)
    else:
        yield path, messages if isinstance(messages, str) else str(messages)


def field_errors(messages: Any) -> list[dict[str, str]]:
    """[{"field": "jacobian.probes", "message": ...}] ('body' where no field is named): the API's `errors`.

    Names and messages are clipped, and past MAX_FIELD_ERRORS entries one last entry counts the rest."""
    out: list[dict[str, str]] = []
    extra = 0
    for path, message in _walk(messages):
        if len(out) >= MAX_FIELD_ERRORS:
            extra += 1
            continue
        out.append({"field": clip(".".join(str(p) for p in path) or "body"), "message": clip(message)})
    if extra:
        out.append({"field": "body", "message": f"{extra} more errors not listed (at most {MAX_FIELD_ERRORS} are)."})
    return out


def error_lines(messages: Any) -> list[str]:
    """`rubric.checks[2].pointer: ...` lines, one per problem (assignment files, grading formats)."""
    lines = []
    for path, message in _walk(messages):
        where = ""
        for step in path:
            where += f"[{step}]" if isinstance(step, int) else f".{step}" if where else str(step)
        lines.append(f"{where}: {message}" if where else message)
    return lines


@dataclass(frozen=True)
class Invalid:
    """A spec that did not load, described once for the API's 422 and the CLI's message."""

    reason: str  # limit | invalid_rubric | validation (also the metrics label and the problem type)
    title: str
    detail: str
    errors: list[dict[str, str]]


def describe_invalid(messages: Any) -> Invalid:
    """`limit` when every message is a refused-by-limit one, else `validation`."""
    errors = field_errors(messages)
    if errors and all(OVER_LIMIT in e["message"] for e in errors):
        detail = "The spec asks for more work than this server allows: " + "; ".join(
            f"{e['field']}: {e['message']}" for e in errors
        )
        return Invalid("limit", "Over a limit", detail, errors)
    names = ", ".join(dict.fromkeys(e["field"] for e in errors[:MAX_FIELD_ERRORS]))
    more = " and more (see errors)" if len(errors) > MAX_FIELD_ERRORS else ""
    if errors and all(e["field"] == "rubric" or e["field"].startswith("rubric.") for e in errors):
        return Invalid("invalid_rubric", "Invalid rubric", f"Invalid rubric fields: {names}{more}.", errors)
    return Invalid("validation", "Invalid spec", f"Invalid fields: {names}{more}.", errors)
