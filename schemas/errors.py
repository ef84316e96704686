"""RFC 9457 problem details: the body of every 4xx/5xx (content type application/problem+json)."""

from __future__ import annotations

from marshmallow import Schema, fields


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
        metadata={"description": "A URI naming the kind of problem (e.g. /problems/validation)."},
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
