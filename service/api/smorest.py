"""Project-wide flask-smorest behaviour: strict JSON bodies and problem+json errors.

Resources subclass nothing themselves: they use `Blueprint` from here, so every
`@blp.arguments` parses bodies with `loads_body` and every error is a problem.
"""

from __future__ import annotations

import http
from typing import Any, NoReturn

import flask
import flask_smorest
import marshmallow as ma
from apispec import BasePlugin
from flask_smorest.utils import prepare_response
from webargs.flaskparser import FlaskParser

from schemas.errors import ProblemSchema
from schemas.grading import GRADE_RESPONSE_SCHEMAS
from schemas.jobs import JOB_RESULT_SCHEMAS
from schemas.jsonio import BodyError, loads_body

from . import errors
from .auth import is_open_path

# The only request media type the API reads. Not the +json family (issue 20 item 8): application/json-patch+json,
# merge-patch+json or problem+json name other documents than a spec, and reading them as one hid the mistake.
JSON_TYPES = ("application/json",)


def _is_json_type(mimetype: str) -> bool:
    return mimetype in JSON_TYPES


class StrictParser(FlaskParser):
    """Reads JSON bodies with `loads_body` and turns every failure into a problem."""

    def _raw_load_json(self, req: flask.Request) -> Any:
        if not _is_json_type(req.mimetype):
            got = req.mimetype or "no Content-Type"
            raise errors.ProblemError(415, "content_type", f"Send the body as application/json (got {got}).")
        charset = req.mimetype_params.get("charset", "utf-8").lower()
        if charset not in ("utf-8", "utf8"):
            raise errors.ProblemError(415, "content_type", f"Send the body as UTF-8 (got charset={charset}).")
        max_depth = flask.current_app.config["GRADSTAB_SETTINGS"].max_json_depth
        try:
            body = loads_body(req.get_data(cache=True), max_depth)
        except BodyError as exc:
            raise errors.ProblemError(400, exc.reason, exc.detail) from exc
        if not isinstance(body, dict):
            kind = "an array" if isinstance(body, list) else f"a {type(body).__name__}"
            raise errors.ProblemError(
                422,
                "not_object",
                f"The body must be a JSON object (a model spec), got {kind}.",
                [{"field": "body", "message": "Expected a JSON object."}],
            )
        return body

    def handle_error(self, error: ma.ValidationError, req: flask.Request, schema: ma.Schema, **kwargs: Any) -> NoReturn:
        messages = error.messages
        # webargs nests the messages under the location ({"json": {...}}); clients see field paths.
        if isinstance(messages, dict) and set(messages) == {"json"}:
            messages = messages["json"]
        raise errors.validation_problem(messages)


class Blueprint(flask_smorest.Blueprint):
    ARGUMENTS_PARSER = StrictParser()


def exclusive_bounds(converter: Any, field: ma.fields.Field, ret: dict[str, Any], **kwargs: Any) -> dict[str, Any]:
    """apispec drops Range(min_inclusive=False): weight_scale > 0 would read as ≥ 0 (OpenAPI 3.0 flags)."""
    out: dict[str, Any] = {}
    for v in field.validators:
        if isinstance(v, ma.validate.Range):
            if v.min is not None and not v.min_inclusive:
                out["exclusiveMinimum"] = True
            if v.max is not None and not v.max_inclusive:
                out["exclusiveMaximum"] = True
    return out


# The two ways service/api/auth.py accepts a key; either one satisfies an operation.
SECURITY_SCHEMES: dict[str, dict[str, str]] = {
    "bearerKey": {
        "type": "http",
        "scheme": "bearer",
        "description": "An API key (GRADSTAB_API_KEYS) as `Authorization: Bearer <key>`.",
    },
    "apiKeyHeader": {"type": "apiKey", "in": "header", "name": "X-API-Key", "description": "The same key."},
}
KEY_REQUIRED: list[dict[str, list[str]]] = [{name: []} for name in SECURITY_SCHEMES]


def operation_id(endpoint: str, method: str, methods: int) -> str:
    """camelCase of the view's name (`jobs.get_job` → getJob); the method leads where a route has several."""
    words = endpoint.rsplit(".", 1)[-1].split("_")
    if methods > 1 and words[0] != method:
        words = [method, *words]
    return words[0] + "".join(w.capitalize() for w in words[1:])


RATE_LIMIT_HEADERS = {
    name: {"description": text, "schema": {"type": "integer", "format": "int64", "minimum": 0}}
    for name, text in (
        ("X-RateLimit-Limit", "Requests the caller's window allows (GRADSTAB_RATE_LIMIT)."),
        ("X-RateLimit-Remaining", "Requests left in the caller's window."),
        ("X-RateLimit-Reset", "When the window resets, in seconds since the epoch."),
    )
}


BODY_RESPONSES = (("400", "BAD_REQUEST"), ("413", "REQUEST_ENTITY_TOO_LARGE"), ("415", "UNSUPPORTED_MEDIA_TYPE"))


class ContractPlugin(BasePlugin):
    """What every operation declares: an operationId, a 500 (problem+json, with the request id), a 503 (the
    request deadline), 400/413/415 where it takes a JSON body (malformed, too large, not JSON), and the key
    it needs (with 401, 429 and the rate-limit headers on its successes) unless its path is one of auth's
    open paths. A server without keys ignores them, as the API does."""

    def operation_helper(self, path: str | None = None, operations: dict | None = None, **kwargs: Any) -> None:
        rule = kwargs.get("rule")
        for method, operation in (operations or {}).items():
            if rule is not None:
                operation.setdefault("operationId", operation_id(rule.endpoint, method, len(operations or {})))
            responses = operation.setdefault("responses", {})
            responses.setdefault("500", "INTERNAL_SERVER_ERROR")
            # Every request runs under GRADSTAB_REQUEST_DEADLINE and the worker timeout (both answer 503).
            responses.setdefault("503", "SERVICE_UNAVAILABLE")
            if "requestBody" in operation:  # every JSON body goes through StrictParser and the BodyLimit
                for status, name in BODY_RESPONSES:
                    responses.setdefault(status, name)
            if path is not None and is_open_path(path):
                operation["security"] = []
                continue
            operation["security"] = KEY_REQUIRED
            for status, name in (("401", "UNAUTHORIZED"), ("429", "TOO_MANY_REQUESTS")):
                if status not in {str(k) for k in responses}:
                    responses[status] = name
            for status, response in responses.items():
                if str(status).startswith("2") and isinstance(response, dict):
                    response.setdefault("headers", {}).update(RATE_LIMIT_HEADERS)


class Api(flask_smorest.Api):
    """Errors documented and served as application/problem+json; exact numeric ranges; security,
    operation ids and the grading results' schemas in the document."""

    ERROR_SCHEMA = ProblemSchema

    def _init_spec(self, **kwargs: Any) -> None:
        super()._init_spec(extra_plugins=[ContractPlugin(), *kwargs.pop("extra_plugins", ())], **kwargs)
        self.ma_plugin.converter.add_attribute_function(exclusive_bounds)
        for name, scheme in SECURITY_SCHEMES.items():
            self.spec.components.security_scheme(name, scheme)
        for name, schema in (GRADE_RESPONSE_SCHEMAS | JOB_RESULT_SCHEMAS).items():
            self.spec.components.schema(name, schema=schema)

    def _register_error_handlers(self) -> None:
        errors.register(self._app)

    def _register_responses(self) -> None:
        for status in http.HTTPStatus:
            response: dict[str, Any] = {"description": status.phrase}
            if status >= 400:
                response["schema"] = self.ERROR_SCHEMA
            prepare_response(response, self.spec, errors.PROBLEM_CONTENT_TYPE)
            self.spec.components.response(status.name, response, lazy=True)
        response = {"description": "Default error response", "schema": self.ERROR_SCHEMA}
        prepare_response(response, self.spec, errors.PROBLEM_CONTENT_TYPE)
        self.spec.components.response(self.DEFAULT_ERROR_RESPONSE_NAME, response, lazy=True)
