"""Wire formats of the service's own resources: capabilities and health."""

from __future__ import annotations

from marshmallow import Schema, fields


class CapabilitiesSchema(Schema):
    activations = fields.List(fields.String(), required=True)
    inits = fields.List(fields.String(), required=True)
    dtypes = fields.List(fields.String(), required=True)
    devices = fields.List(
        fields.String(),
        required=True,
        metadata={"description": "Devices this server can run (cuda only where present)."},
    )
    gpus = fields.List(
        fields.Dict(keys=fields.String(), values=fields.Raw()),
        required=True,
        metadata={
            "description": "The CUDA devices this worker sees: index, name, memory_mib, current (the one "
            "device cuda and auto use); empty without CUDA."
        },
    )
    losses = fields.List(fields.String(), required=True)
    jacobian_methods = fields.List(fields.String(), required=True)
    jacobian_precisions = fields.List(fields.String(), required=True)
    architecture = fields.Dict(
        keys=fields.String(),
        values=fields.Raw(),
        required=True,
        metadata={
            "description": "What the spec's `architecture` accepts: residual_every, normalization_kinds, "
            "normalization_positions, and the ε of every normalisation (normalization_eps)."
        },
    )
    limits = fields.Dict(
        keys=fields.String(),
        values=fields.Raw(metadata={"type": "number"}),
        required=True,
        metadata={"description": "The per-request limits in force on this server."},
    )
    limit_env = fields.Dict(
        keys=fields.String(),
        values=fields.String(),
        required=True,
        metadata={"description": "The environment variable that sets each limit."},
    )
    max_json_depth = fields.Integer(
        required=True,
        metadata={"description": "Deepest JSON nesting accepted (GRADSTAB_MAX_JSON_DEPTH)."},
    )
    versions = fields.Dict(keys=fields.String(), values=fields.String(), required=True)


class HealthSchema(Schema):
    status = fields.String(required=True, metadata={"description": "ok (livez) or ready (readyz)."})
    pid = fields.Integer(required=True, metadata={"description": "The worker process that answered."})
    warm_up_ms = fields.Float(
        allow_none=True,
        metadata={"description": "How long this worker's warm-up analysis took."},
    )
