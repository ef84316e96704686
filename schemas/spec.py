"""The request's wire format: a model spec in JSON → `service.engine.spec.ModelSpec`.

Defaults are the engine's dataclass defaults (`service.engine.spec`), read here once: the
`load_default` of each field and the number in its description (which feeds OpenAPI) are the
same value. The per-request work limits are checked before any tensor is allocated.
"""

from __future__ import annotations

from dataclasses import MISSING
from dataclasses import fields as dataclass_fields
from typing import Any

from marshmallow import ValidationError, fields, post_load, validate, validates_schema

from service.engine.cost import estimate_cost, parameters, predict_time
from service.engine.cost_training import training_flops
from service.engine.spec import (
    ACTIVATIONS,
    CHAIN_PRECISIONS,
    DEFAULT_ACTIVATION,
    DEVICES,
    DTYPES,
    JACOBIAN_METHODS,
    LOSSES,
    NORM_EPS,
    NORM_KINDS,
    NORM_POSITIONS,
    RECURRENT_ACTIVATION,
    RECURRENT_INITS,
    RESIDUAL_EVERY,
    RNN_ACTIVATIONS,
    Architecture,
    JacobianOptions,
    ModelSpec,
    Normalization,
    Residual,
    Thresholds,
    recurrent_widths,
)

from .device_budget import budget_device, limit_name, memory_mib
from .fields import StrictFloat, StrictSchema
from .limits import Limits, limit_message
from .recurrent import (
    RECURRENT_EXAMPLE,
    RecurrentSchema,
    check_recurrent,
    check_recurrent_limits,
    one_of_layers_recurrent,
)
from .training import TRAINING_EXAMPLE, TrainingSchema


def _defaults(cls: type) -> dict[str, Any]:
    """A dataclass's plain field defaults, by name."""
    return {f.name: f.default for f in dataclass_fields(cls) if f.default is not MISSING}


SPEC = _defaults(ModelSpec)
JACOBIAN = _defaults(JacobianOptions)
RESIDUAL = _defaults(Residual)
NORMALIZATION = _defaults(Normalization)
THRESHOLDS = _defaults(Thresholds)


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
        load_default=JACOBIAN["method"],
        validate=validate.OneOf(JACOBIAN_METHODS),
        metadata={
            "description": "exact: formed products; estimate: matrix-free probes and power iteration; "
            f"{JACOBIAN['method']} (default): exact unless its work passes the server's auto_exact_gflop budget."
        },
    )
    precision = fields.String(
        load_default=JACOBIAN["precision"],
        validate=validate.OneOf(CHAIN_PRECISIONS),
        metadata={
            "description": "Arithmetic of the product chain (renormalised every layer, so it never "
            "overflows). auto (default): float64 where the chain costs at most 1 GFLOP or singular_values is "
            "all (float64 resolves σ_min to 1e-13·σ_max, float32 to 1e-5), else float32, whose norms agree with "
            "float64 to 1e-6 in log10 at twice the speed. runtime.jacobian_precision says which ran."
        },
    )
    probes = fields.Integer(
        strict=True,
        load_default=JACOBIAN["probes"],
        validate=validate.Range(min=2),
        metadata={
            "description": "Orthonormal random probes for the estimate method's Frobenius norms "
            f"(default {JACOBIAN['probes']}; as many as the output width is exact)."
        },
    )
    power_iterations = fields.Integer(
        strict=True,
        load_default=JACOBIAN["power_iterations"],
        validate=validate.Range(min=0),
        metadata={
            "description": "Block power-iteration steps per product for spectral norms "
            f"(default {JACOBIAN['power_iterations']}), each "
            "warm-started from the product above (the top one gets at least 8; on a GPU, products small "
            "enough run in chunks of layers from the chunk above's basis, with one step more); 0 skips "
            "the spectral norms (null) where svdvals do not give them."
        },
    )
    singular_values = fields.String(
        load_default=JACOBIAN["singular_values"],
        validate=validate.OneOf(("auto", "all", "none")),
        metadata={
            "description": "svdvals of formed products for σ_min and the condition number: all layers, "
            f"none, or {JACOBIAN['singular_values']} (default: all where affordable, else t=1 and log-spaced layers)."
        },
    )

    @post_load
    def make(self, data: dict[str, Any], **kwargs: Any) -> JacobianOptions:
        return JacobianOptions(**data)


class ThresholdsSchema(StrictSchema):
    exploding_log10 = StrictFloat(
        load_default=THRESHOLDS["exploding_log10"],
        validate=validate.Range(min=0, min_inclusive=False, max=300),
        metadata={
            "description": "Verdict exploding when log10 of the total RMS growth is above this "
            f"(default {THRESHOLDS['exploding_log10']:g})."
        },
    )
    vanishing_log10 = StrictFloat(
        load_default=THRESHOLDS["vanishing_log10"],
        validate=validate.Range(min=-300, max=0, max_inclusive=False),
        metadata={
            "description": "Verdict vanishing when log10 of the total RMS growth is below this "
            f"(default {THRESHOLDS['vanishing_log10']:g})."
        },
    )
    flag_fraction = StrictFloat(
        load_default=THRESHOLDS["flag_fraction"],
        validate=validate.Range(min=0, max=1, min_inclusive=False),
        metadata={
            "description": "A layer counts as overflowed/underflowed when more than this fraction of "
            f"its values is non-finite/flushed to zero (default {THRESHOLDS['flag_fraction']:g})."
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


class ResidualSchema(StrictSchema):
    every = fields.Integer(
        strict=True,
        load_default=RESIDUAL["every"],
        validate=validate.OneOf(RESIDUAL_EVERY),
        metadata={
            "description": "Consecutive layers per block (1, 2 or 3; default "
            f"{RESIDUAL['every']}): a block whose input and output widths are equal computes "
            "h_out = h_in + branch_scale·f(h_in), f its layers as in the plain MLP; one whose widths differ has no "
            "skip (reported in architecture.blocks)."
        },
    )
    branch_scale = StrictFloat(
        load_default=RESIDUAL["branch_scale"],
        validate=validate.Range(min=0, max=1e3),
        metadata={
            "description": "The factor on every branch (default "
            f"{RESIDUAL['branch_scale']:g}); 1/√(number of blocks) keeps the stream's variance bounded, "
            "0 starts every branch switched off (SkipInit, ReZero)."
        },
    )

    @post_load
    def make(self, data: dict[str, Any], **kwargs: Any) -> Residual:
        return Residual(**data)


class NormalizationSchema(StrictSchema):
    kind = fields.String(
        load_default=NORMALIZATION["kind"],
        validate=validate.OneOf(NORM_KINDS),
        metadata={
            "description": f"none (default), layernorm, rmsnorm or batchnorm: γ = 1, β = 0, ε = {NORM_EPS:g}; "
            "batchnorm normalises each unit over the batch with the batch's own statistics (a training step)."
        },
    )
    position = fields.String(
        load_default=NORMALIZATION["position"],
        validate=validate.OneOf(NORM_POSITIONS),
        metadata={
            "description": f"pre (default {NORMALIZATION['position']}): the input of each block's branch (without "
            "residual: of each weight layer); post: after each layer's activation (with residual: after each "
            "block's addition)."
        },
    )

    @post_load
    def make(self, data: dict[str, Any], **kwargs: Any) -> Normalization:
        return Normalization(**data)


class ArchitectureSchema(StrictSchema):
    residual = fields.Nested(
        ResidualSchema,
        load_default=None,
        allow_none=True,
        metadata={"description": "Residual blocks (absent or null: none)."},
    )
    normalization = fields.Nested(
        NormalizationSchema,
        load_default=Normalization,
        metadata={"description": "Normalisation layers (default: none)."},
    )

    @post_load
    def make(self, data: dict[str, Any], **kwargs: Any) -> Architecture:
        return Architecture(**data)


ARCHITECTURE_EXAMPLE = {
    "residual": {"every": 2, "branch_scale": 0.1414},
    "normalization": {"kind": "layernorm", "position": "pre"},
}


class ModelSpecSchema(StrictSchema):
    """POST /v1/analyses body. Loading returns a `ModelSpec`; unknown fields are refused."""

    layers = LayersField(
        metadata={
            "description": "Required unless recurrent is given (exactly one of the two). "
            "[n_0, n_1, ..., n_d] (input width, then each layer's width) or "
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
        load_default=None,
        metadata={
            "description": f"σ of every layer, or a list of d names. One of {', '.join(ACTIVATIONS)}. "
            f"Default {DEFAULT_ACTIVATION}; with recurrent: the rnn cell's σ, one name of "
            f"{', '.join(RNN_ACTIVATIONS)} (default {RECURRENT_ACTIVATION}); lstm and gru take none.",
            "oneOf": [
                {"type": "string", "enum": list(ACTIVATIONS)},
                {"type": "array", "items": {"type": "string", "enum": list(ACTIVATIONS)}, "minItems": 1},
            ],
        },
    )
    init = fields.String(
        load_default=SPEC["init"],
        validate=validate.OneOf(RECURRENT_INITS),
        metadata={
            "description": f"Weight initialisation (default {SPEC['init']}). With recurrent: of each recurrent "
            "matrix W_hh (per gate block for lstm and gru), where identity (weight_scale·I) is also allowed; the "
            "input weights W_xh are always N(0, 1/fan_in) (LeCun), whatever init and weight_scale say."
        },
    )
    weight_scale = StrictFloat(
        load_default=SPEC["weight_scale"],
        validate=validate.Range(min=0, min_inclusive=False, max=1e6),
        metadata={
            "description": "normal: the std s (W ~ N(0, s²)); uniform: U(-s, s); named schemes: a gain "
            f"multiplying the scheme's own scale. Default {SPEC['weight_scale']:g}."
        },
    )
    bias = fields.Boolean(
        load_default=SPEC["bias"],
        truthy={True},
        falsy={False},
        metadata={"description": f"Add a bias (zeros at init) to every layer. Default {str(SPEC['bias']).lower()}."},
    )
    dtype = fields.String(
        load_default=SPEC["dtype"],
        validate=validate.OneOf(DTYPES),
        metadata={"description": f"Precision of the forward and backward pass (default {SPEC['dtype']})."},
    )
    device = fields.String(
        load_default=SPEC["device"],
        validate=validate.OneOf(DEVICES),
        metadata={
            "description": f"cpu (reproducible), cuda (refused where absent), auto (cuda if present). "
            f"Default {SPEC['device']}."
        },
    )
    batch_size = fields.Integer(
        strict=True,
        load_default=SPEC["batch_size"],
        validate=validate.Range(min=1),
        metadata={"description": f"Inputs in the batch (default {SPEC['batch_size']})."},
    )
    input_scale = StrictFloat(
        load_default=SPEC["input_scale"],
        validate=validate.Range(min=0, min_inclusive=False, max=1e6),
        metadata={"description": f"x ~ N(0, input_scale²) (default {SPEC['input_scale']:g})."},
    )
    seed = fields.Integer(
        strict=True,
        load_default=SPEC["seed"],
        validate=validate.Range(min=0, max=2**63 - 1),
        metadata={
            "description": f"RNG seed for weights, inputs and labels (default {SPEC['seed']}): same seed, same numbers."
        },
    )
    loss = fields.String(
        load_default=SPEC["loss"],
        validate=validate.OneOf(LOSSES),
        metadata={
            "description": "sum (∂ℓ/∂h^d = 1, the lecture's setting), mean, mse (zero targets), "
            f"cross_entropy (seeded random labels). Default {SPEC['loss']}."
        },
    )
    loss_scale = StrictFloat(
        load_default=SPEC["loss_scale"],
        validate=validate.Range(min=0, min_inclusive=False, max=2.0**24),
        metadata={
            "description": "Backpropagate loss_scale·ℓ in the pass dtype (float16 mixed precision's fix for "
            f"gradient underflow); gradient statistics are unscaled. Default {SPEC['loss_scale']:g}."
        },
    )
    learning_rate = StrictFloat(
        load_default=SPEC["learning_rate"],
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
    architecture = fields.Nested(
        ArchitectureSchema,
        load_default=None,
        allow_none=True,
        metadata={
            "description": "Residual blocks and normalisation layers (absent or null: the plain MLP). One that adds "
            "nothing (no residual, normalization none) is the plain MLP, with its report id.",
            "example": ARCHITECTURE_EXAMPLE,
        },
    )
    training = fields.Nested(
        TrainingSchema,
        load_default=None,
        allow_none=True,
        metadata={
            "description": "Optional: also train the network for `steps` optimizer steps on a synthetic task and "
            "report per step and layer what its gradients do (the report's `training`). Absent or null: no training.",
            "example": TRAINING_EXAMPLE,
        },
    )
    recurrent = fields.Nested(
        RecurrentSchema,
        load_default=None,
        allow_none=True,
        metadata={
            "description": "A recurrent network unrolled over time, used instead of layers (exactly one of the two): "
            "the report's layers become steps (axis time).",
            "example": RECURRENT_EXAMPLE,
        },
    )
    verify_recommendations = fields.Boolean(
        load_default=SPEC["verify_recommendations"],
        truthy={True},
        falsy={False},
        metadata={
            "description": "Rerun each recommended change cheaply and report what it gives "
            f"(default {str(SPEC['verify_recommendations']).lower()})."
        },
    )

    def __init__(self, *args: Any, limits: Limits | None = None, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.limits = limits or Limits()

    @validates_schema
    def _cross_field(self, data: dict[str, Any], **kwargs: Any) -> None:
        widths = data.get("layers")
        one_of_layers_recurrent(data, widths)
        rec = data.get("recurrent")
        if rec is not None:
            check_recurrent(data, rec)
            if data.get("training") is not None:  # the top layer's h is the output: hidden units
                check_training(
                    data["training"], (rec.input_dim, rec.hidden), data.get("batch_size", SPEC["batch_size"])
                )
            return
        if data.get("init") == "identity":
            raise ValidationError("identity init is for a recurrent spec's W_hh; layers take the others.", "init")
        if widths is None:
            return
        act = data.get("activation")
        if isinstance(act, tuple) and len(act) != len(widths) - 1:
            raise ValidationError(
                f"Give one activation or exactly one per layer: {len(widths) - 1} layers, {len(act)} names.",
                "activation",
            )
        arch = data.get("architecture")
        if arch is not None and arch.normalization.kind == "batchnorm" and data.get("batch_size", 8) < 2:
            raise ValidationError(
                "batchnorm needs batch_size ≥ 2: it normalises each unit over the batch.", "batch_size"
            )
        if arch is not None and arch.normalization.kind == "layernorm" and min(widths) < 2:
            raise ValidationError("layernorm needs every width ≥ 2: it normalises over a sample's units.", "layers")
        if data.get("loss") == "cross_entropy" and widths[-1] < 2:
            raise ValidationError("cross_entropy needs at least 2 output units (the last width).", "loss")
        training = data.get("training")
        if training is not None:
            check_training(training, widths, data.get("batch_size", SPEC["batch_size"]))

    @post_load
    def make(self, data: dict[str, Any], **kwargs: Any) -> ModelSpec:
        rec = data.get("recurrent")
        if rec is not None:
            data.pop("layers", None)
            data["widths"] = recurrent_widths(rec)
            data["activations"] = (data.pop("activation") or RECURRENT_ACTIVATION,) * rec.steps
            spec = ModelSpec(**data)
            errors = check_limits(spec, self.limits)
            if errors:
                raise ValidationError(errors)
            return spec
        widths = data.pop("layers")
        act = data.pop("activation") or DEFAULT_ACTIVATION
        data["activations"] = (act,) * (len(widths) - 1) if isinstance(act, str) else act
        arch = data.get("architecture")
        if arch is not None and arch.is_plain:
            data["architecture"] = None  # the plain MLP, exactly: same numbers, same report id
        spec = ModelSpec(widths=widths, **data)
        errors = check_limits(spec, self.limits)
        if errors:
            raise ValidationError(errors)
        return spec


def check_training(training: Any, widths: tuple[int, ...], batch_size: int) -> None:
    """What `training` needs of the rest of the spec."""
    if training.examples < batch_size:
        message = f"examples={training.examples} is below batch_size={batch_size}: a batch is drawn from the data set."
        raise ValidationError({"training": {"examples": [message]}})
    if training.task == "classification" and widths[-1] < 2:
        raise ValidationError(
            {"training": {"task": ["classification needs at least 2 output units (the last width): one per class."]}}
        )


def check_limits(spec: ModelSpec, limits: Limits) -> dict[str, list[str]]:
    """Messages per field for every limit the spec passes; empty when it fits. An analysis that will run on a GPU
    is admitted by the GPU's budget (schemas.device_budget)."""
    errors: dict[str, list[str]] = {}
    device = "cpu"

    def add(field: str, what: str, value: float, name: str, hint: str = "") -> None:
        name = limit_name(name, device)
        limit = getattr(limits, name)
        if value > limit:
            errors.setdefault(field, []).append(limit_message(what, value, name, limit) + hint)

    if spec.recurrent is not None:
        return check_recurrent_limits(spec, limits, add, errors)

    add("layers", "depth", spec.depth, "max_depth")
    add("layers", "width", max(spec.widths), "max_width")
    add("batch_size", "batch_size", spec.batch_size, "max_batch_size")
    add("jacobian", "probes", spec.jacobian.probes, "max_probes")
    add("jacobian", "power_iterations", spec.jacobian.power_iterations, "max_power_iterations")
    if spec.training is not None:
        add("training.steps", "training.steps", spec.training.steps, "max_training_steps")
        add("training.examples", "training.examples", spec.training.examples, "max_training_examples")
        add("training.histograms", "histograms", len(spec.training.histograms), "max_training_histograms")
    if errors:
        return errors
    device = budget_device(spec, limits)
    add("layers", "parameters", parameters(spec.widths, spec.bias), "max_parameters")
    if errors:
        return errors
    cost = estimate_cost(spec, limits.auto_exact_gflop)
    growth = "width³" if cost.jacobian_method == "exact" else "width²"
    hint = (
        f"; the {cost.jacobian_method} Jacobian work grows with batch_size × depth × {growth}, so a smaller "
        "batch_size (it is per sample), power_iterations or network fits here, or submit the same spec as "
        'POST /v1/jobs {"analysis": spec}, which runs it on the job queue up to GRADSTAB_MAX_JOB_GFLOP'
    )
    trained = spec.training is not None and training_flops(spec) / 1e9 > cost.gflop / 2
    if trained:  # mostly the training probe's steps
        hint = "; mostly training steps: fewer training.steps, a smaller batch_size or network, or POST /v1/jobs"
    add("training.steps" if trained else "layers", "estimated work (GFLOP)", round(cost.gflop, 2), "max_gflop", hint)
    memory = memory_mib(spec, limits, device, cost.memory_mib)
    add("layers", "estimated memory (MiB)", round(memory, 1), "max_memory_mib", hint)
    if limits.max_seconds > 0 and not errors:
        timing = predict_time(spec, 1, limits.auto_exact_gflop)
        part = timing.largest()
        field, shrink = SHRINK[part]
        scale = getattr(limits, limit_name("cost_scale", device))
        seconds = timing.parts[part] * scale
        hint = f"; mostly {part.replace('_', ' ')} ({seconds:.3g} s): shrink {shrink}, or POST /v1/jobs"
        add(field, "predicted time (s)", round(timing.seconds * scale, 2), "max_seconds", hint)
    return errors


# Per part of the predicted time (service.engine.cost.Timing): the field its refusal names, and what to shrink;
# POST /v1/jobs {"analysis": spec} runs the same spec on the job queue, up to half GRADSTAB_JOB_TASK_TIMEOUT.
SHRINK = {  # short: a message is clipped at schemas.errors.MAX_ECHO_CHARS
    "gemm": ("layers", "batch_size, widths or depth"),
    "layers": ("layers", "depth"),
    "power_steps": ("jacobian", "jacobian.power_iterations, depth or batch_size"),
    "singular_values": ("jacobian", "jacobian.singular_values, depth or batch_size"),
    "sweeps": ("jacobian", "jacobian.power_iterations or depth, or use method exact"),
    "reruns": ("verify_recommendations", "depth, or verify_recommendations"),
    "training": ("training.steps", "training.steps or depth"),
}
