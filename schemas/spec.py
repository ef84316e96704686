"""The request's wire format: a model spec in JSON → `service.engine.spec.ModelSpec`.

This module owns the defaults (documented in each field's description, which also feeds
OpenAPI) and checks the per-request work limits before any tensor is allocated.
"""

from __future__ import annotations

from typing import Any

from marshmallow import RAISE, Schema, ValidationError, fields, post_load, validate, validates_schema

from service.engine.cost import estimate_cost, parameters
from service.engine.spec import (
    ACTIVATIONS,
    CHAIN_PRECISIONS,
    DEVICES,
    DTYPES,
    INITS,
    JACOBIAN_METHODS,
    LOSSES,
    JacobianOptions,
    ModelSpec,
    Thresholds,
)

from .fields import StrictFloat
from .limits import Limits

OVER_LIMIT = "is over the limit"


def limit_message(what: str, value: float | int, name: str, limit: float | int) -> str:
    """One wording for every refused-by-limit message, so clients and metrics can tell them apart."""
    return f"{what} {value:g} {OVER_LIMIT} {name}={limit:g} (set by {Limits.env_name(name)})"


class StrictSchema(Schema):
    class Meta:
        unknown = RAISE


class LayersField(fields.Field):
    """`[n_0, n_1, ..., n_d]` or `{"depth": d, "width": n, "input_dim": n_0}` → the width tuple."""

    default_error_messages = {  # noqa: RUF012 (marshmallow's own convention)
        # Braces doubled: marshmallow str.format()s error messages.
        "invalid": 'Give a list of layer widths [n_0, ..., n_d] or {{"depth": d, "width": n, "input_dim": n_0}}.',
    }

    def _deserialize(self, value: Any, attr: str | None, data: Any, **kwargs: Any) -> tuple[int, ...]:
        if isinstance(value, list):
            widths = value
        elif isinstance(value, dict):
            unknown = set(value) - {"depth", "width", "input_dim"}
            if unknown:
                raise ValidationError(f"Unknown keys {sorted(unknown)}; allowed: depth, width, input_dim.")
            if "depth" not in value or "width" not in value:
                raise ValidationError("Both depth and width are required; input_dim defaults to width.")
            depth, width = value["depth"], value["width"]
            input_dim = value.get("input_dim", width)
            for key, v in (("depth", depth), ("width", width), ("input_dim", input_dim)):
                if not _is_int(v) or v < 1:
                    raise ValidationError(f"{key} must be an integer ≥ 1, got {v!r}.")
            # Refuse before expanding: {"depth": 10**18} would otherwise allocate the list.
            limits = getattr(self.parent, "limits", None) or Limits()
            if depth > limits.max_depth:
                raise ValidationError(limit_message("depth", depth, "max_depth", limits.max_depth))
            widths = [input_dim] + [width] * depth
        else:
            raise self.make_error("invalid")
        if len(widths) < 2:
            raise ValidationError("At least two widths are needed: the input width and one layer.")
        for i, n in enumerate(widths):
            if not _is_int(n) or n < 1:
                raise ValidationError(f"Width at position {i} must be an integer ≥ 1, got {n!r}.")
        return tuple(int(n) for n in widths)


class ActivationField(fields.Field):
    """One activation name for every layer, or a list of d names."""

    def _deserialize(self, value: Any, attr: str | None, data: Any, **kwargs: Any) -> tuple[str, ...] | str:
        names = value if isinstance(value, list) else [value]
        if not names:
            raise ValidationError("Give an activation name or a non-empty list of names.")
        for name in names:
            if not isinstance(name, str) or name not in ACTIVATIONS:
                raise ValidationError(f"{name!r} is not an activation; choose from {', '.join(ACTIVATIONS)}.")
        return value if isinstance(value, str) else tuple(names)


def _is_int(v: Any) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


class JacobianSchema(StrictSchema):
    method = fields.String(
        load_default="auto",
        validate=validate.OneOf(JACOBIAN_METHODS),
        metadata={
            "description": "exact: formed products; estimate: matrix-free probes and power iteration; "
            "auto (default): exact unless its work passes the server's auto_exact_gflop budget."
        },
    )
    precision = fields.String(
        load_default="float64",
        validate=validate.OneOf(CHAIN_PRECISIONS),
        metadata={
            "description": "Arithmetic of the product chain (renormalised every layer, so it never "
            "overflows). Default float64; float32 is about twice as fast and resolves σ_min less far."
        },
    )
    probes = fields.Integer(
        strict=True,
        load_default=16,
        validate=validate.Range(min=2),
        metadata={
            "description": "Orthonormal random probes for the estimate method's Frobenius norms "
            "(default 16; as many as the output width is exact)."
        },
    )
    power_iterations = fields.Integer(
        strict=True,
        load_default=2,
        validate=validate.Range(min=0),
        metadata={
            "description": "Block power-iteration steps per product for spectral norms (default 2), each "
            "warm-started from the product above (the top one gets at least 8); 0 skips the spectral "
            "norms (null) where svdvals do not give them."
        },
    )
    singular_values = fields.String(
        load_default="auto",
        validate=validate.OneOf(("auto", "all", "none")),
        metadata={
            "description": "svdvals of formed products for σ_min and the condition number: all layers, "
            "none, or auto (default: all where affordable, else t=1 and log-spaced layers)."
        },
    )

    @post_load
    def make(self, data: dict[str, Any], **kwargs: Any) -> JacobianOptions:
        return JacobianOptions(**data)


class ThresholdsSchema(StrictSchema):
    exploding_log10 = StrictFloat(
        load_default=2.0,
        validate=validate.Range(min=0, min_inclusive=False, max=300),
        metadata={"description": "Verdict exploding when log10 of the total RMS growth is above this (default 2)."},
    )
    vanishing_log10 = StrictFloat(
        load_default=-2.0,
        validate=validate.Range(min=-300, max=0, max_inclusive=False),
        metadata={"description": "Verdict vanishing when log10 of the total RMS growth is below this (default -2)."},
    )
    flag_fraction = StrictFloat(
        load_default=0.01,
        validate=validate.Range(min=0, max=1, min_inclusive=False),
        metadata={
            "description": "A layer counts as overflowed/underflowed when more than this fraction of "
            "its values is non-finite/flushed to zero (default 0.01)."
        },
    )
    flag_min_count = fields.Integer(
        strict=True,
        load_default=2,
        validate=validate.Range(min=1, max=1_000_000),
        metadata={
            "description": "... and at least this many of its values (default 2): one stray value is not a diagnosis."
        },
    )

    @post_load
    def make(self, data: dict[str, Any], **kwargs: Any) -> Thresholds:
        return Thresholds(**data)


class ModelSpecSchema(StrictSchema):
    """POST /v1/analyses body. Loading returns a `ModelSpec`; unknown fields are refused."""

    layers = LayersField(
        required=True,
        metadata={
            "description": "[n_0, n_1, ..., n_d] (input width, then each layer's width) or "
            '{"depth": d, "width": n, "input_dim": n_0} (input_dim defaults to width).',
            "oneOf": [
                {"type": "array", "items": {"type": "integer", "minimum": 1}, "minItems": 2},
                {
                    "type": "object",
                    "properties": {
                        "depth": {"type": "integer", "minimum": 1},
                        "width": {"type": "integer", "minimum": 1},
                        "input_dim": {"type": "integer", "minimum": 1},
                    },
                    "required": ["depth", "width"],
                    "additionalProperties": False,
                },
            ],
        },
    )
    activation = ActivationField(
        load_default="relu",
        metadata={
            "description": f"σ of every layer, or a list of d names. One of {', '.join(ACTIVATIONS)}. Default relu.",
            "oneOf": [
                {"type": "string", "enum": list(ACTIVATIONS)},
                {"type": "array", "items": {"type": "string", "enum": list(ACTIVATIONS)}, "minItems": 1},
            ],
        },
    )
    init = fields.String(
        load_default="kaiming_normal",
        validate=validate.OneOf(INITS),
        metadata={"description": "Weight initialisation (default kaiming_normal)."},
    )
    weight_scale = StrictFloat(
        load_default=1.0,
        validate=validate.Range(min=0, min_inclusive=False, max=1e6),
        metadata={
            "description": "normal: the std s (W ~ N(0, s²)); uniform: U(-s, s); named schemes: a gain "
            "multiplying the scheme's own scale. Default 1."
        },
    )
    bias = fields.Boolean(
        load_default=False,
        truthy={True},
        falsy={False},
        metadata={"description": "Add a bias (zeros at init) to every layer. Default false."},
    )
    dtype = fields.String(
        load_default="float32",
        validate=validate.OneOf(DTYPES),
        metadata={"description": "Precision of the forward and backward pass (default float32)."},
    )
    device = fields.String(
        load_default="cpu",
        validate=validate.OneOf(DEVICES),
        metadata={"description": "cpu (default, reproducible), cuda (refused where absent), auto (cuda if present)."},
    )
    batch_size = fields.Integer(
        strict=True,
        load_default=8,
        validate=validate.Range(min=1),
        metadata={"description": "Inputs in the batch (default 8)."},
    )
    input_scale = StrictFloat(
        load_default=1.0,
        validate=validate.Range(min=0, min_inclusive=False, max=1e6),
        metadata={"description": "x ~ N(0, input_scale²) (default 1)."},
    )
    seed = fields.Integer(
        strict=True,
        load_default=0,
        validate=validate.Range(min=0, max=2**63 - 1),
        metadata={"description": "RNG seed for weights, inputs and labels (default 0): same seed, same numbers."},
    )
    loss = fields.String(
        load_default="sum",
        validate=validate.OneOf(LOSSES),
        metadata={
            "description": "sum (default: ∂ℓ/∂h^d = 1, the lecture's setting), mean, mse (zero targets), "
            "cross_entropy (seeded random labels)."
        },
    )
    loss_scale = StrictFloat(
        load_default=1.0,
        validate=validate.Range(min=0, min_inclusive=False, max=2.0**24),
        metadata={
            "description": "Backpropagate loss_scale·ℓ in the pass dtype (float16 mixed precision's fix for "
            "gradient underflow); gradient statistics are unscaled. Default 1."
        },
    )
    learning_rate = StrictFloat(
        load_default=None,
        allow_none=True,
        validate=validate.Range(min=0, min_inclusive=False, max=1e6),
        metadata={"description": "Optional: report per-layer update/weight ratios for one SGD step."},
    )
    jacobian = fields.Nested(
        JacobianSchema, load_default=JacobianOptions, metadata={"description": "How the products are computed."}
    )
    thresholds = fields.Nested(
        ThresholdsSchema, load_default=Thresholds, metadata={"description": "Verdict thresholds."}
    )
    verify_recommendations = fields.Boolean(
        load_default=True,
        truthy={True},
        falsy={False},
        metadata={"description": "Rerun each recommended change cheaply and report what it gives (default true)."},
    )

    def __init__(self, *args: Any, limits: Limits | None = None, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.limits = limits or Limits()

    @validates_schema
    def _cross_field(self, data: dict[str, Any], **kwargs: Any) -> None:
        widths = data.get("layers")
        if widths is None:
            return
        act = data.get("activation")
        if isinstance(act, tuple) and len(act) != len(widths) - 1:
            raise ValidationError(
                f"Give one activation or exactly one per layer: {len(widths) - 1} layers, {len(act)} names.",
                "activation",
            )
        if data.get("loss") == "cross_entropy" and widths[-1] < 2:
            raise ValidationError("cross_entropy needs at least 2 output units (the last width).", "loss")

    @post_load
    def make(self, data: dict[str, Any], **kwargs: Any) -> ModelSpec:
        widths = data.pop("layers")
        act = data.pop("activation")
        data["activations"] = (act,) * (len(widths) - 1) if isinstance(act, str) else act
        spec = ModelSpec(widths=widths, **data)
        errors = check_limits(spec, self.limits)
        if errors:
            raise ValidationError(errors)
        return spec


def check_limits(spec: ModelSpec, limits: Limits) -> dict[str, list[str]]:
    """Messages per field for every limit the spec passes; empty when it fits."""
    errors: dict[str, list[str]] = {}

    def add(field: str, what: str, value: float, name: str, hint: str = "") -> None:
        limit = getattr(limits, name)
        if value > limit:
            errors.setdefault(field, []).append(limit_message(what, value, name, limit) + hint)

    add("layers", "depth", spec.depth, "max_depth")
    add("layers", "width", max(spec.widths), "max_width")
    add("batch_size", "batch_size", spec.batch_size, "max_batch_size")
    add("jacobian", "probes", spec.jacobian.probes, "max_probes")
    add("jacobian", "power_iterations", spec.jacobian.power_iterations, "max_power_iterations")
    if errors:
        return errors
    add("layers", "parameters", parameters(spec.widths, spec.bias), "max_parameters")
    if errors:
        return errors
    cost = estimate_cost(spec, limits.auto_exact_gflop)
    hint = (
        f"; the {cost.jacobian_method} Jacobian work grows with batch_size × depth × width³, so a smaller "
        "batch_size (it is per sample) or network fits"
    )
    add("layers", "estimated work (GFLOP)", round(cost.gflop, 2), "max_gflop", hint)
    add("layers", "estimated memory (MiB)", round(cost.memory_mib, 1), "max_memory_mib", hint)
    return errors
