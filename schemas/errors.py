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
            "description": "An absolute URI naming the kind of problem (https://<host>/problems/validation); "
            "GET it for a page describing the problem."
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
    """[{"field": "jacobian.probes", "message": ...}] ('body' where no field is named): the API's `errors`."""
    return [{"field": ".".join(str(p) for p in path) or "body", "message": m} for path, m in _walk(messages)]


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
    names = ", ".join(dict.fromkeys(e["field"] for e in errors))
    if errors and all(e["field"] == "rubric" or e["field"].startswith("rubric.") for e in errors):
        return Invalid("invalid_rubric", "Invalid rubric", f"Invalid rubric fields: {names}.", errors)
    return Invalid("validation", "Invalid spec", f"Invalid fields: {names}.", errors)
