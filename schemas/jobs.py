"""Jobs and sweeps on the wire: POST /v1/sweeps and POST /v1/jobs bodies → a `Plan`; the job out.

Every point of a sweep is loaded with the same `ModelSpecSchema` and limits as POST /v1/analyses;
the sweep as a whole is bounded by GRADSTAB_MAX_SWEEP_POINTS and GRADSTAB_MAX_JOB_GFLOP (summed
estimated work). A single analysis job may pass the synchronous GRADSTAB_MAX_GFLOP, up to
GRADSTAB_MAX_JOB_GFLOP.
"""

from __future__ import annotations

import dataclasses
import json
from typing import Any

from marshmallow import Schema, ValidationError, fields, post_load, validate, validates_schema

from service.engine.analysis import report_id
from service.engine.cost import estimate_cost
from service.grading.pointer import PointerError, parse
from service.jobs.model import STATUSES, Plan, spec_to_dict
from service.jobs.settings import JobSettings
from service.jobs.stable_lr import AXIS as LR_AXIS
from service.jobs.stable_lr import KIND as LR_KIND
from service.jobs.sweep import NESTED, expand, point_count

from .fields import StrictSchema
from .limits import ADMIT_MARGIN, OVER_LIMIT, Limits
from .recurrent import RecurrentSchema
from .spec import (
    ArchitectureSchema,
    JacobianSchema,
    ModelSpecSchema,
    NormalizationSchema,
    ResidualSchema,
    ThresholdsSchema,
)
from .training import TrainingSchema

MAX_POINT_ERRORS = 3  # failing points named in one 422
_NESTED_MEMBERS = {
    "layers": ("depth", "width", "input_dim"),
    "jacobian": tuple(JacobianSchema().fields),
    "thresholds": tuple(ThresholdsSchema().fields),
    "architecture": (
        *ArchitectureSchema().fields,
        *(f"residual.{m}" for m in ResidualSchema().fields),
        *(f"normalization.{m}" for m in NormalizationSchema().fields),
    ),
    "training": tuple(TrainingSchema().fields),
    "recurrent": tuple(RecurrentSchema().fields),  # recurrent.steps, recurrent.cell, ...
}
assert set(_NESTED_MEMBERS) == set(NESTED)
SPEC_REF = {"allOf": [{"$ref": "#/components/schemas/ModelSpec"}]}


def grid_fields() -> list[str]:
    """Every name a grid axis may have: a spec field, or `parent.member` of layers/jacobian/thresholds/architecture
    (architecture's members nest once more: `architecture.residual.branch_scale`)."""
    top = list(ModelSpecSchema().fields)
    return top + [f"{p}.{m}" for p, members in _NESTED_MEMBERS.items() for m in members]


def _prefixes(name: str) -> list[str]:
    """ "a.b.c" → ["a", "a.b"]: the axes that would set a whole object holding this one."""
    parts = name.split(".")
    return [".".join(parts[:i]) for i in range(1, len(parts))]


def _limit(what: str, value: float, setting: str, limit: float) -> str:
    env = JobSettings.env_name(setting)
    return f"{what} {value:g} {OVER_LIMIT} {setting}={limit:g} (set by {env})"


class _JobsSchema(StrictSchema):
    def __init__(self, *args: Any, limits: Limits | None = None, jobs: JobSettings | None = None, **kw: Any) -> None:
        super().__init__(*args, **kw)
        self.limits = limits or Limits()
        self.jobs = jobs or JobSettings()

    def _work(self, specs: list[Any]) -> None:
        gflop = sum(estimate_cost(s, self.limits.auto_exact_gflop).gflop for s in specs)
        if gflop > self.jobs.max_job_gflop:
            msg = _limit("estimated work (GFLOP)", round(gflop, 2), "max_job_gflop", self.jobs.max_job_gflop)
            raise ValidationError({"body": [msg]})

    def _point(self, params: dict[str, Any], spec: Any) -> dict[str, Any]:
        rid = report_id(spec, self.limits.auto_exact_gflop)
        return {"params": params, "spec": spec_to_dict(spec), "report_id": rid}


class SweepRequestSchema(_JobsSchema):
    """POST /v1/sweeps: the base spec, the grid's axes and, optionally, report values kept per point."""

    base = fields.Dict(
        required=True,
        metadata={"description": "A model spec (as POST /v1/analyses takes); each grid point overrides fields of it."}
        | SPEC_REF,
    )
    grid = fields.Dict(
        keys=fields.String(),
        values=fields.List(fields.Raw()),
        required=True,
        metadata={
            "description": "Axis name → list of values; the points are the cross product. Names are spec "
            "fields (weight_scale, activation, init, dtype, ...) or dotted members (layers.depth, "
            "layers.width, jacobian.method, thresholds.vanishing_log10, architecture.residual.branch_scale, "
            "architecture.normalization.kind, ...).",
            "example": {"init": ["kaiming_normal", "xavier_normal"], "layers.depth": [10, 50]},
        },
    )
    summary = fields.List(
        fields.String(),
        load_default=list,
        metadata={
            "description": "JSON pointers into each point's report to keep under the point's `extra`, and named "
            f"summaries: {LR_KIND} (needs a {LR_AXIS} axis and base.training) adds the result's {LR_KIND}: per "
            "combination of the other axes, the largest learning rate whose training did not diverge and whose "
            "loss fell.",
            "example": ["/diagnosis/onset_layer", LR_KIND],
        },
    )

    @validates_schema
    def _grid(self, data: dict[str, Any], **kwargs: Any) -> None:
        grid = data.get("grid")
        if grid is None:
            return
        if not grid:
            raise ValidationError('Give at least one axis, e.g. {"layers.depth": [10, 50]}.', "grid")
        allowed = grid_fields()
        errors: dict[str, list[str]] = {}
        for name, values in grid.items():
            if name not in allowed:
                errors[f"grid.{name}"] = [f"Unknown spec field {name!r}; a grid axis is one of {', '.join(allowed)}."]
            elif not values:
                errors[f"grid.{name}"] = ["Give a non-empty list of values."]
            elif any(prefix in grid for prefix in _prefixes(name)):
                prefix = next(p for p in _prefixes(name) if p in grid)
                errors[f"grid.{name}"] = [f"Both {prefix!r} and {name!r} are axes; keep one."]
        if errors:
            raise ValidationError(errors)
        n = point_count(grid)
        if n > self.jobs.max_points:
            raise ValidationError(_limit("points", n, "max_points", self.jobs.max_points), "grid")
        if any(k.startswith("layers.") for k in grid) and isinstance(data.get("base", {}).get("layers"), list):
            raise ValidationError(
                'A layers.* axis needs base.layers as {"depth": d, "width": n}, not a list of widths.', "base.layers"
            )
        for i, pointer in enumerate(data.get("summary") or []):
            if pointer == LR_KIND:
                if LR_AXIS not in grid:
                    raise ValidationError(f"{LR_KIND} needs a {LR_AXIS!r} axis in grid.", f"summary.{i}")
                continue
            try:
                parse(pointer)
            except PointerError as exc:
                raise ValidationError(str(exc), f"summary.{i}") from exc

    @post_load
    def make(self, data: dict[str, Any], **kwargs: Any) -> Plan:
        schema = ModelSpecSchema(limits=self.limits)
        points, specs, errors = [], [], {}
        for i, (params, body) in enumerate(expand(data["base"], data["grid"])):
            try:
                spec = schema.load(body)
            except ValidationError as exc:
                if len(errors) < MAX_POINT_ERRORS:
                    where = f" (point {i}: {json.dumps(params, sort_keys=True)})"
                    errors[f"points.{i}"] = _suffix(exc.messages, where)
                continue
            specs.append(spec)
            points.append(self._point(params, spec))
        if errors:
            raise ValidationError(errors)
        self._work(specs)
        return Plan("sweep", points, dict(data["grid"]), list(data["summary"]), self.limits.auto_exact_gflop)


def _suffix(messages: Any, where: str) -> Any:
    if isinstance(messages, str):
        return messages + where
    if isinstance(messages, list):
        return [_suffix(m, where) for m in messages]
    if isinstance(messages, dict):
        return {k: _suffix(v, where) for k, v in messages.items()}
    return messages


class AnalysisJobRequestSchema(_JobsSchema):
    """POST /v1/jobs: one analysis, allowed more work than the synchronous endpoint (GRADSTAB_MAX_JOB_GFLOP)."""

    analysis = fields.Dict(
        required=True,
        metadata={"description": "A model spec, as POST /v1/analyses takes; its report is the job's result."}
        | SPEC_REF,
    )

    @post_load
    def make(self, data: dict[str, Any], **kwargs: Any) -> Plan:
        limits = dataclasses.replace(
            self.limits,
            max_gflop=max(self.limits.max_gflop, self.jobs.max_job_gflop),
            # the job's task timeout, with the same margin as the request deadline (0 stays: no time limit)
            max_seconds=self.limits.max_seconds
            and max(self.limits.max_seconds, ADMIT_MARGIN * self.jobs.task_timeout_s),
        )
        try:
            spec = ModelSpecSchema(limits=limits).load(data["analysis"])
        except ValidationError as exc:
            raise ValidationError({"analysis": exc.messages}) from exc
        self._work([spec])
        return Plan("analysis", [self._point({}, spec)], {}, [], self.limits.auto_exact_gflop)


class StepProgressSchema(Schema):
    done = fields.Integer(required=True, metadata={"description": "Optimizer steps taken."})
    total = fields.Integer(required=True, metadata={"description": "training.steps of the spec."})


class ProgressSchema(Schema):
    done = fields.Integer(required=True, metadata={"description": "Points delivered (with a result or an error)."})
    total = fields.Integer(required=True, metadata={"description": "Points in the job."})
    training_steps = fields.Nested(
        StepProgressSchema,
        metadata={
            "description": "kind analysis with `training`: the training probe's steps so far, written by the worker "
            "at most twice a second and at its last step (absent before the probe starts, or where the report came "
            "from the cache)."
        },
    )


class WaitingSchema(Schema):
    reason = fields.String(
        required=True,
        validate=validate.OneOf(("no_worker",)),
        metadata={"description": "no_worker: no live worker consumes the job's queue (REDIS_URL set, no worker)."},
    )
    since = fields.DateTime(
        required=True,
        metadata={"description": "Since when: the job's creation, or the last time a live worker was seen if later."},
    )
    detail = fields.String(required=True, metadata={"description": "What to do about it, in words."})


class PointEventSchema(Schema):
    occurred = fields.Boolean(required=True)
    first_layer = fields.Integer(required=True, allow_none=True)
    quantity = fields.String(required=True, allow_none=True)


class PointTheorySchema(Schema):
    chi = fields.Float(required=True, allow_none=True, metadata={"description": "Mean-field χ (1: critical)."})
    predicted_log10_total_growth = fields.Float(required=True, allow_none=True)
    predicted_growth_per_layer = fields.Float(required=True, allow_none=True)
    critical_weight_scale = fields.Float(required=True, allow_none=True)


class LargestStableLRSchema(Schema):
    params = fields.Dict(required=True, metadata={"description": "The other axes' values of this group."})
    largest_stable_learning_rate = fields.Float(
        required=True,
        allow_none=True,
        metadata={"description": "Largest learning rate that did not diverge and whose loss fell (null: none)."},
    )
    learning_rates = fields.List(fields.Float(), required=True)
    stable = fields.List(fields.Boolean(), required=True, metadata={"description": "Per learning rate, ascending."})
    monotone = fields.Boolean(required=True, metadata={"description": "Every rate up to the answer was stable."})


class PointTrainingSchema(Schema):
    learning_rate = fields.Float(required=True)
    diverged = fields.Boolean(required=True)
    divergence_step = fields.Integer(required=True, allow_none=True)
    loss_ratio = fields.Float(required=True, allow_none=True)
    stable = fields.Boolean(required=True, metadata={"description": "Did not diverge and the loss fell."})
    skipped_steps = fields.Integer(required=True)
    not_learning_layers = fields.List(fields.Integer(), required=True)


class SweepPointSchema(Schema):
    """One analysed point of a sweep (service/jobs/summary.py)."""

    index = fields.Integer(required=True, metadata={"description": "Position in the grid's cross product."})
    params = fields.Dict(required=True, metadata={"description": "The grid values of this point, by axis name."})
    verdict = fields.String(required=True, validate=validate.OneOf(("exploding", "vanishing", "stable")))
    log10_total_growth = fields.Float(required=True, allow_none=True)
    growth_per_layer = fields.Float(required=True, allow_none=True)
    onset_layer = fields.Integer(required=True, allow_none=True)
    overflow = fields.Nested(PointEventSchema, required=True)
    underflow = fields.Nested(PointEventSchema, required=True)
    theory = fields.Nested(PointTheorySchema, required=True)
    summary = fields.String(required=True)
    report_id = fields.String(required=True, metadata={"description": "The id POST /v1/analyses gives this spec."})
    elapsed_ms = fields.Float(required=True)
    extra = fields.Dict(metadata={"description": "The request's `summary` pointers → their values (when asked)."})
    training = fields.Nested(
        PointTrainingSchema, metadata={"description": "Where the spec has training: what the probe's run gave."}
    )


class SweepPointErrorSchema(Schema):
    """A point whose analysis failed."""

    index = fields.Integer(required=True)
    params = fields.Dict(required=True)
    error = fields.String(required=True, metadata={"description": "Why: the engine's refusal or the task timeout."})


class SweepResultSchema(Schema):
    """A sweep's result: the points delivered so far (in index order), and the grid's axes."""

    points = fields.List(
        fields.Raw(
            metadata={
                "oneOf": [
                    {"$ref": "#/components/schemas/SweepPoint"},
                    {"$ref": "#/components/schemas/SweepPointError"},
                ]
            }
        ),
        required=True,
    )
    axes = fields.Dict(
        keys=fields.String(),
        values=fields.List(fields.Raw()),
        required=True,
        metadata={"description": "Axis name → its values, as the request's grid."},
    )
    summary = fields.List(fields.String(), metadata={"description": "The request's `summary` pointers."})
    largest_stable_learning_rate = fields.List(
        fields.Nested(LargestStableLRSchema),
        metadata={
            "description": f"Where the request's summary names {LR_KIND}: one entry per combination of the "
            "other axes (service/jobs/stable_lr.py)."
        },
    )


# Registered as components by service/api/smorest.py: Job.result refers to them by name.
JOB_RESULT_SCHEMAS: dict[str, type[Schema]] = {
    "SweepResult": SweepResultSchema,
    "SweepPoint": SweepPointSchema,
    "SweepPointError": SweepPointErrorSchema,
}


class JobSchema(Schema):
    """A job: GET /v1/jobs/{id}, and the 202 body of a submission."""

    id = fields.String(required=True, metadata={"description": "Content hash of the normalised request."})
    kind = fields.String(required=True, validate=validate.OneOf(("sweep", "analysis")))
    status = fields.String(required=True, validate=validate.OneOf(STATUSES))
    progress = fields.Nested(ProgressSchema, required=True)
    created_at = fields.DateTime(required=True)
    started_at = fields.DateTime(allow_none=True)
    finished_at = fields.DateTime(allow_none=True, metadata={"description": "null until the job ends."})
    result = fields.Raw(
        metadata={
            "description": "Present once a point is delivered. kind sweep: a SweepResult (the points delivered so "
            "far); kind analysis: the full Report, as POST /v1/analyses returns it.",
            "oneOf": [{"$ref": "#/components/schemas/SweepResult"}, {"$ref": "#/components/schemas/Report"}],
        }
    )
    error = fields.String(metadata={"description": "Why the job failed."})
    waiting = fields.Nested(
        WaitingSchema,
        metadata={
            "description": "Present while the job is unfinished and cannot progress (no live worker consumes its "
            "queue): why, and since when. Absent otherwise."
        },
    )
