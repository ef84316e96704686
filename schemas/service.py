"""Wire formats of the service's own resources: capabilities and health."""

from __future__ import annotations

from marshmallow import Schema, fields


class JobQueueSchema(Schema):
    """The job queue's health: GET /v1/capabilities' `jobs`."""

    backend = fields.String(required=True, metadata={"description": "rq (REDIS_URL set) or in-process."})
    queue = fields.String(required=True, allow_none=True, metadata={"description": "GRADSTAB_JOB_QUEUE (rq)."})
    workers = fields.Integer(
        required=True,
        allow_none=True,
        metadata={
            "description": "Live workers consuming the queue (rq: heartbeat younger than 3 × "
            "GRADSTAB_WORKER_HEARTBEAT + 15 s; in-process: this server worker's threads). 0: jobs wait; "
            "null: the queue could not be read."
        },
    )
    queued = fields.Integer(required=True, allow_none=True, metadata={"description": "Tasks waiting for a worker."})
    running = fields.Integer(required=True, allow_none=True, metadata={"description": "Tasks being run now."})
    worker_seen_at = fields.DateTime(
        required=True, allow_none=True, metadata={"description": "When a live worker was last seen (rq); null: never."}
    )
    error = fields.String(required=True, allow_none=True, metadata={"description": "Why the queue was unreadable."})
    tasks_succeeded = fields.Integer(required=True, metadata={"description": "Tasks whose points all succeeded."})
    tasks_failed = fields.Integer(required=True, metadata={"description": "Tasks with a failed point, or that raised."})
    tasks_retried = fields.Integer(required=True, metadata={"description": "Redelivered tasks (a worker was lost)."})
    jobs_finished = fields.Integer(required=True, metadata={"description": "Jobs that ran to their last point."})
    job_seconds_mean = fields.Float(
        required=True, allow_none=True, metadata={"description": "Their mean run time, first point to last."}
    )


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
    recurrent = fields.Dict(
        keys=fields.String(),
        values=fields.Raw(),
        required=True,
        metadata={
            "description": "What the spec's `recurrent` accepts: cells, loss_at, the rnn cell's activations and "
            "the recurrent inits (identity included)."
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
    jobs = fields.Nested(JobQueueSchema, metadata={"description": "The job queue: workers, depth, outcomes."})


class HealthSchema(Schema):
    status = fields.String(required=True, metadata={"description": "ok (livez) or ready (readyz)."})
    pid = fields.Integer(required=True, metadata={"description": "The worker process that answered."})
    warm_up_ms = fields.Float(
        allow_none=True,
        metadata={"description": "How long this worker's warm-up analysis took."},
    )
