"""The response's wire format: `service.engine.report.Report` → strict JSON.

Every float goes through `FiniteFloat` (NaN/±inf → null) and free-form dicts through
`FiniteJSON`, so a report can always be encoded with allow_nan=False. One nested
schema per engine dataclass; field names are the v1 contract (README.md: "What it computes").
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

from marshmallow import Schema, fields, missing

from .fields import FiniteFloat
from .training_report import TrainingCheckSchema, TrainingReportSchema

_isfinite = math.isfinite


def _finite(value: Any) -> Any:
    """JSON-safe copy: non-finite floats → None, tuples → lists, unknown objects → str."""
    if isinstance(value, bool) or value is None or isinstance(value, int | str):
        return value
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {str(k): _finite(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_finite(v) for v in value]
    try:
        return _finite(float(value))  # numpy / torch scalars
    except (TypeError, ValueError):
        return str(value)


class FiniteJSON(fields.Raw):
    """Free-form JSON (evidence, a recommended change) with non-finite floats as null."""

    def _serialize(self, value: Any, attr: str | None, obj: Any, **kwargs: Any) -> Any:
        return _finite(value)


def _float(description: str | None = None) -> FiniteFloat:
    meta = {"description": description} if description else {}
    return FiniteFloat(allow_none=True, metadata=meta)


def _int(description: str | None = None, nullable: bool = False) -> fields.Integer:
    meta = {"description": description} if description else {}
    return fields.Integer(allow_none=nullable, metadata=meta)


class TensorStatsSchema(Schema):
    norm = _float("Frobenius norm (null when not finite).")
    log10_norm = _float()
    mean = _float()
    std = _float()
    max_abs = _float()
    zero_fraction = _float()
    subnormal_fraction = _float()
    nonfinite_fraction = _float()
    numel = _int()
    status = fields.String(metadata={"description": "ok | zero | nonfinite"})


class JacobianStatsSchema(Schema):
    """∂h^d/∂h^t per sample, from the float64 log-domain reference (exact whatever the pass dtype).

    Every log10_* is the mean over the batch of the per-sample log10 (the geometric mean).
    """

    log10_spectral_norm = _float("log10 σ_max: svdvals where computed, else warm-started block power iteration.")
    log10_frobenius_norm = _float("log10 ‖P‖_F (exact method: exact; estimate: random probes).")
    log10_rms_gain = _float("log10(‖P‖_F / √n_d): the gain of a gradient arriving at the top in a random direction.")
    log10_min_singular_value = _float("null when rank_deficient or not_computed; a bound when upper_bound.")
    log10_condition_number = _float("log10 σ_max/σ_min; a lower bound when min_singular_value_status is upper_bound.")
    min_singular_value_status = fields.String(
        metadata={
            "description": "resolved | upper_bound (σ_min below what the formed product resolves, ~1e-13·σ_max "
            "in float64) | rank_deficient (exactly 0: dead units cut the rank) | not_computed"
        }
    )
    rank_bound = _int("min over the layers above of the active units (σ' ≠ 0), min over the batch", nullable=True)
    log10_frobenius_norm_min = _float("Smallest per-sample log10 ‖P‖_F in the batch.")
    log10_frobenius_norm_max = _float("Largest per-sample log10 ‖P‖_F in the batch.")
    method = fields.String(metadata={"description": "exact | estimate | identity (t = d)"})
    condition_number_status = fields.String(
        allow_none=True,
        metadata={
            "description": "resolved | lower_bound (σ_min is only bounded above, so log10_condition_number is a "
            "lower bound) | infinite (σ_min exactly 0; value null) | not_computed"
        },
    )
    singular_values_source = fields.String(
        allow_none=True,
        metadata={
            "description": "svd (svdvals of the formed product, resolving σ_min to ~1e-13·σ_max) | qr (the product "
            "accumulated in QR form, ln|diag R| per layer: singular_values=all on square products, any spread)"
        },
    )
    spectral_norm_status = fields.String(
        allow_none=True,
        metadata={
            "description": "exact (svdvals of the formed product) | lower_bound (the power iteration's Ritz value, "
            "never above σ_max and short of it by at most ~0.08 in log10 where measured: README) | not_computed"
        },
    )


class ActivationStatsSchema(Schema):
    name = fields.String()
    pre_activation_mean = _float()
    pre_activation_std = _float()
    log10_pre_activation_rms = _float("Stays finite where the std leaves the float range.")
    sigma_prime_mean = _float()
    sigma_prime_max = _float()
    saturated_fraction = _float()
    dead_fraction = _float()
    output_nonfinite_fraction = _float()
    sigma_prime_mean_square = _float("E[σ'(z)²] over units and samples: times σ_w², the measured χ of the layer.")


class UpdateStatsSchema(Schema):
    weight_norm = _float()
    update_ratio = _float("‖lr·∂ℓ/∂W‖ / ‖W‖ for one SGD step.")
    log10_update_ratio = _float()


class LayerReportSchema(Schema):
    index = _int("t = 1..d")
    in_features = _int()
    out_features = _int()
    weight_grad = fields.Nested(TensorStatsSchema, metadata={"description": "∂ℓ/∂W^t"})
    output_grad = fields.Nested(TensorStatsSchema, metadata={"description": "∂ℓ/∂h^t"})
    jacobian_product = fields.Nested(JacobianStatsSchema, metadata={"description": "∂h^d/∂h^t"})
    activation = fields.Nested(ActivationStatsSchema)
    update = fields.Nested(UpdateStatsSchema, allow_none=True)


class QuantityEventSchema(Schema):
    first_layer = _int(
        "This quantity's first flagged layer in the order it is computed: the lowest t for forward activations, "
        "the highest t for gradients (backpropagation starts at the top), d for the loss.",
        nullable=True,
    )
    layer_count = _int()
    max_fraction = _float()


class RangeEventSchema(Schema):
    occurred = fields.Boolean()
    first_layer = _int(
        "The first flagged layer in the order the computation reaches it: the forward pass h^1 … h^d, the loss, "
        "then backpropagation from the top (∂ℓ/∂h^t, then ∂ℓ/∂W^t, for t = d … 1); `quantity` names which.",
        nullable=True,
    )
    quantity = fields.String(
        allow_none=True,
        metadata={
            "description": "forward_activation | output_grad | weight_grad | loss: the quantity first_layer is of"
        },
    )
    fraction = _float("Of that layer's values.")
    layers_from_top = _int("d - first_layer + 1", nullable=True)
    by_quantity = fields.Dict(keys=fields.String(), values=fields.Nested(QuantityEventSchema))


class DtypeLimitsSchema(Schema):
    dtype = fields.String()
    max = _float()
    smallest_normal = _float()
    smallest_subnormal = _float()
    eps = _float()
    log10_max = _float()
    log10_smallest_normal = _float()


class CauseSchema(Schema):
    code = fields.String()
    message = fields.String()
    layers = fields.List(fields.Integer())
    evidence = FiniteJSON(metadata={"description": "The figures behind the cause."})


class OutcomeSchema(Schema):
    verdict = fields.String()
    log10_total_growth = _float()
    growth_per_layer = _float()
    overflow = fields.Boolean()
    underflow = fields.Boolean()
    gradient_overflow = fields.Boolean(metadata={"description": "∂ℓ/∂h, ∂ℓ/∂W or the loss overflowed."})
    gradient_underflow = fields.Boolean(metadata={"description": "∂ℓ/∂h or ∂ℓ/∂W underflowed."})
    forward_overflow = fields.Boolean()
    forward_underflow = fields.Boolean()
    batch_size = _int("The batch this rerun used: the spec's own for every fixes=true (same seed).", nullable=True)
    jacobian_method = fields.String(allow_none=True, metadata={"description": "The Jacobian method of this rerun."})
    training = fields.Nested(
        TrainingCheckSchema,
        allow_none=True,
        metadata={
            "description": "Where the spec has training and its probe found layers that did not learn or diverged: "
            "the probe rerun on the changed spec (null otherwise)."
        },
    )


class RecommendationSchema(Schema):
    code = fields.String()
    change = FiniteJSON(metadata={"description": "The spec fields to change, with new values."})
    rationale = fields.String()
    verified = fields.Nested(OutcomeSchema, allow_none=True)
    fixes = fields.Boolean(allow_none=True)
    addresses = fields.String(
        metadata={
            "description": "What the change is judged on: growth (stable, no overflow/underflow) | gradient_range "
            "(loss_scale: the gradients' range) | forward_range (input_scale: the forward pass's range) | range "
            "(a wider dtype: every range problem)"
        }
    )
    codes = fields.List(
        fields.String(),
        metadata={
            "description": "Every advice code that proposed this same resulting spec, `code` first: one "
            "recommendation per resulting spec, its reasons merged in `rationale`."
        },
    )


class DiagnosisSchema(Schema):
    verdict = fields.String(metadata={"description": "exploding | vanishing | stable"})
    log10_total_growth = _float("log10 of the RMS gain ‖∂h^d/∂h^1‖_F / √n_d.")
    growth_per_layer = _float("10^(log10_total_growth / (d − 1))")
    log10_growth_per_layer = _float()
    onset_layer = _int(nullable=True)
    overflow = fields.Nested(RangeEventSchema)
    underflow = fields.Nested(RangeEventSchema)
    dtype_limits = fields.Nested(DtypeLimitsSchema)
    causes = fields.List(fields.Nested(CauseSchema))
    recommendations = fields.List(fields.Nested(RecommendationSchema))
    summary = fields.String()
    thresholds = fields.Dict(keys=fields.String(), values=FiniteFloat(allow_none=True))
    growth_from_layer = _int(
        "The t whose product ∂h^d/∂h^t the verdict reads: 1, or a residual network's first block output (inside a "
        "branch the product carries the branch's own scale); growth_per_layer is over d − t layers."
    )
    cancellation = fields.Nested(
        RangeEventSchema,
        metadata={
            "description": "Values 0 in the pass dtype whose exact magnitude lies inside its normal range: lost to "
            "rounding (e.g. products summing to an exact 0), not to the range, so not underflow."
        },
    )


class BlockTheorySchema(Schema):
    first_layer = _int()
    last_layer = _int()
    skip = fields.Boolean()
    predicted_gain = _float("√ of the predicted factor on the squared gradient norm across the block.")
    measured_gain = _float("RMS gain of the products from the block's output to its input (null for the first block).")


class ArchitectureTheorySchema(Schema):
    model = fields.String(metadata={"description": "residual | normalized | residual_normalized | batchnorm | none"})
    status = fields.String(metadata={"description": "approximation (with its measured error) | unavailable (null)"})
    predicted_log10_total_growth = _float()
    measured_log10_total_growth = _float()
    log10_error = _float("predicted − measured log10 total growth")
    reason = fields.String(metadata={"description": "Why there is no prediction (empty where there is one)."})
    assumptions = fields.String()
    references = fields.List(fields.String())
    blocks = fields.List(fields.Nested(BlockTheorySchema))


class LayerTheorySchema(Schema):
    index = _int()
    chi = _float()
    predicted_gain = _float("√χ")


class RecurrentTheorySchema(Schema):
    gamma = _float("Pascanu's γ: sup |σ'| of the rnn cell's σ (tanh 1, sigmoid 1/4, relu 1); null for lstm, gru.")
    sigma_max_recurrent = fields.List(FiniteFloat(), metadata={"description": "σ_max(W_hh) per stacked layer."})
    pascanu_threshold = _float("1/γ")
    pascanu_condition = fields.String(
        allow_none=True,
        metadata={
            "description": "vanishing_guaranteed (σ_max < 1/γ: sufficient) | exploding_possible (σ_max > 1/γ: "
            "necessary, not sufficient) | boundary; null for lstm and gru."
        },
    )
    log10_pascanu_bound = _float("(T − 1)·log10(γ·σ_max): a bound on log10 ‖∂h_T/∂h_1‖₂ (one layer).")
    pascanu_weight_scale = _float("The weight_scale at which σ_max(W_hh) = 1/γ.")
    mean_keep_gate = fields.List(
        FiniteFloat(), allow_none=True, metadata={"description": "lstm: mean forget gate per step; gru: mean z."}
    )
    log10_keep_gate_decay = _float("Σ log10 of the mean keep gate over steps 2..T: the cell path's predicted decay.")
    reason = fields.String()


class TheorySchema(Schema):
    sigma_w2 = _float()
    chi_mean = _float()
    predicted_growth_per_layer = _float()
    predicted_log10_total_growth = _float()
    depth_scale = _float(
        "-1/ln χ: the layers over which the squared gradient norm changes by a factor e (the norm: -2/ln χ)."
    )
    critical_weight_scale = _float(
        "weight_scale with χ = 1 at the length map's fixed point q* (0 and ∞ included), for square layers of the "
        "median hidden width; null where no scale gives χ = 1 (gelu, silu: χ jumps across 1), critical_note says why."
    )
    critical_note = fields.String()
    layers = fields.List(fields.Nested(LayerTheorySchema))
    architecture = fields.Nested(
        ArchitectureTheorySchema,
        allow_none=True,
        metadata={"description": "Residual/normalised networks: the mean-field prediction per block (null: plain)."},
    )
    recurrent = fields.Nested(
        RecurrentTheorySchema,
        allow_none=True,
        metadata={"description": "Recurrent specs: Pascanu's bound (rnn cell), the keep gate's decay (lstm, gru)."},
    )


class BlockInfoSchema(Schema):
    first_layer = _int()
    last_layer = _int()
    skip = fields.Boolean(metadata={"description": "h_out = h_in + branch_scale·f(h_in)"})
    note = fields.String(allow_none=True, metadata={"description": "Why the block has no skip."})


class NormalizedLayerSchema(Schema):
    layer = _int()
    at = fields.String(metadata={"description": "input (before the layer's weights) | output (after σ or the sum)"})


class ArchitectureInfoSchema(Schema):
    residual_every = _int(nullable=True)
    branch_scale = _float()
    normalization = fields.String()
    position = fields.String(allow_none=True)
    eps = _float()
    blocks = fields.List(fields.Nested(BlockInfoSchema))
    normalized_layers = fields.List(fields.Nested(NormalizedLayerSchema))
    products = fields.String(
        metadata={
            "description": "per_sample: ∂h^d_b/∂h^t_b per sample (the batch statistics are over samples); "
            "whole_batch (batchnorm): the whole batch's (B·n_d)×(B·n_t) product, the samples coupled through the "
            "batch statistics as autograd differentiates them; its RMS gain is ‖P‖_F/√(B·n_d)."
        }
    )
    growth_from_layer = _int()


class RuntimeSchema(Schema):
    device = fields.String(metadata={"description": 'Where the analysis ran: "cpu" or "cuda:<index>".'})
    device_name = fields.String(metadata={"description": 'The GPU\'s name, or "cpu".'})
    device_requested = fields.String(
        metadata={"description": "The spec's device (auto runs small analyses on the CPU, where they are faster)."}
    )
    dtype = fields.String()
    float16_emulated = fields.Boolean()
    jacobian_method = fields.String()
    jacobian_precision = fields.String()
    torch_version = fields.String()
    python_version = fields.String()
    engine_version = fields.String()
    threads = _int()
    elapsed_ms = _float("Engine time for this analysis.")
    notes = fields.List(fields.String())


class ReferenceFidelitySchema(Schema):
    method = fields.String(
        metadata={"description": "perturbed_forward: the float64 reference again, from inputs moved by `perturbation`."}
    )
    perturbation = _float("Relative size of the input's move: about 4 float64 roundings (2^-50).")
    tolerance = _float("Relative error of h^t or σ'(z^t) from which a layer's reference values are not trusted.")
    trusted = fields.Boolean(metadata={"description": "No layer's estimated error passes the tolerance."})
    first_untrusted_layer = _int(
        "The first layer past the tolerance (chaotic forward): from it on, σ', χ, the activation statistics and "
        "every Jacobian product through those layers describe a network within rounding of this one.",
        nullable=True,
    )
    log10_max_relative_error = _float("log10 of the largest estimated relative error; null where it is 0.")
    log10_relative_errors = fields.List(
        _float(), metadata={"description": "Per layer t = 1..d: log10 of the estimated relative error (null: 0)."}
    )


# Members of ReportSchema that the HTTP layer adds to a report (service/api/analyses.py).
HTTP_ONLY: tuple[str, ...] = ("cache",)


class CacheSchema(Schema):
    hit = fields.Boolean(
        required=True,
        metadata={"description": "true: served from the report cache (same id, same numbers); false: computed now."},
    )


class MatrixGradSchema(Schema):
    layer = _int()
    matrix = fields.String(metadata={"description": "W_hh | W_ih"})
    gate = fields.String(allow_none=True, metadata={"description": "lstm i f g o, gru r z n; null: the whole matrix"})
    stats = fields.Nested(TensorStatsSchema)
    update = fields.Nested(
        UpdateStatsSchema, allow_none=True, metadata={"description": "With learning_rate: ‖lr·∂ℓ/∂W‖/‖W‖."}
    )


class ClippingSchema(Schema):
    threshold = _float("‖∂ℓ/∂W_hh‖ of the shares from the steps inside the stable band.")
    measured_norm = _float("‖∂ℓ/∂θ‖ over every recurrent matrix, in the pass dtype.")
    clip_factor = _float("min(1, threshold/measured_norm)")
    kind = fields.String(metadata={"description": "training_time: bounds the update, not the Jacobian; never a fix"})
    note = fields.String()


class RecurrentInfoSchema(Schema):
    cell = fields.String()
    steps = _int()
    hidden = _int()
    input_dim = _int()
    stacked = _int()
    loss_at = fields.String()
    forget_bias = _float()
    state_units = _int("Per layer: h (rnn, gru) or h and c (lstm).")
    products = fields.String()
    onset_steps_back = _int("T − the onset step.", nullable=True)
    weight_grads = fields.List(fields.Nested(MatrixGradSchema))
    depth_products = fields.List(
        fields.Nested(JacobianStatsSchema), metadata={"description": "∂h^L_T/∂h^l_T, l = 1..L, at the last step."}
    )
    clipping = fields.Nested(ClippingSchema)


class ReportSchema(Schema):
    """POST /v1/analyses response: the full report."""

    id = fields.String(
        metadata={"description": "sha256 of the normalised spec, the Jacobian method that ran and the engine version."}
    )
    engine_version = fields.String()
    depth = _int()
    loss = _float()
    loss_status = fields.String()
    layers = fields.List(fields.Nested(LayerReportSchema))
    diagnosis = fields.Nested(DiagnosisSchema)
    theory = fields.Nested(TheorySchema)
    runtime = fields.Nested(RuntimeSchema)
    architecture = fields.Nested(
        ArchitectureInfoSchema,
        allow_none=True,
        metadata={"description": "Where the blocks and normalisation layers are (null: the plain MLP)."},
    )
    reference_fidelity = fields.Nested(
        ReferenceFidelitySchema,
        allow_none=True,
        metadata={
            "description": "How far the float64 reference forward (σ', χ, the products) is the exact network's: "
            "where a chaotic forward amplifies its own rounding past the tolerance, and from which layer."
        },
    )
    training = fields.Nested(
        TrainingReportSchema,
        allow_none=True,
        metadata={"description": "What k optimizer steps did, where the spec has `training` (null: no training)."},
    )
    axis = fields.String(
        metadata={"description": "What layers[] runs along: depth (the layers) or time (a recurrent spec's steps)."}
    )
    recurrent = fields.Nested(
        RecurrentInfoSchema,
        allow_none=True,
        metadata={"description": "A recurrent spec's cell, horizon, matrix gradients and clipping (null otherwise)."},
    )
    cache = fields.Nested(
        CacheSchema,
        metadata={
            "description": "HTTP responses only (not the CLI's output, not part of the report id): whether the "
            "report came from the cache; also the X-Cache header."
        },
    )


_REPORT_SCHEMA = ReportSchema()

# ---------------------------------------------------------------------------------------------
# dump_report's fast path: a plan compiled once from ReportSchema's own fields, so the schemas
# above stay the one definition of the wire format. Per value it calls the same field's
# `_serialize` marshmallow would, but skips marshmallow's per-field and per-nested-object
# machinery (accessor lookups, hooks, `dump` per nested object), and skips the call altogether
# where `_serialize` would return the value unchanged (None; an exact str, int or bool for
# String, Integer, Boolean; a finite exact float for FiniteFloat): about 8x faster than
# marshmallow, ~0.1 ms per small report. Any field, schema option or hook the plan does not
# model makes it fall back to `_REPORT_SCHEMA.dump`; tests compare both outputs, key order included.

_MISSING = object()
Converter = Callable[[Any], Any]
# (output key, attribute, the type whose exact instances pass through unchanged or None, converter)
Plan = tuple[tuple[str, str, type | None, Converter], ...]
# Fields whose `_serialize(value, attr, obj)` uses neither attr nor obj.
_LEAF_FIELDS = (fields.String, fields.Integer, fields.Boolean, FiniteFloat, FiniteJSON)


class _Unsupported(TypeError):
    """A schema feature the compiled plan does not model."""


def _leaf(field: fields.Field) -> Converter:
    serialize = field._serialize
    return lambda value: serialize(value, None, None)


def _passthrough(field: fields.Field) -> type | None:
    """The type whose exact instances `field._serialize` returns as they are (float: finite ones only)."""
    kind = type(field)
    if kind is fields.String:  # ensure_text_type(str) is the str itself
        return str
    if kind is fields.Integer and not field.as_string:  # int(int) is the int itself
        return int
    if kind is fields.Boolean:  # Field._serialize returns the value
        return bool
    if kind is FiniteFloat and not field.as_string:  # float(x) is x; non-finite ones go to _serialize
        return float
    return None


def _converter(field: fields.Field) -> Converter:
    """The field's dump of a value; every converter maps None to None (as each field does)."""
    if isinstance(field, fields.Nested):
        if field.many or field.schema.many:
            raise _Unsupported(f"Nested(many=True) at {field.name}")
        plan = _plan(field.schema)
        return lambda value: None if value is None else _dump(plan, value)
    if isinstance(field, fields.List):
        inner = _converter(field.inner)
        exact = _passthrough(field.inner)
        if exact is not None and exact is not float:
            return lambda value: None if value is None else [v if type(v) is exact else inner(v) for v in value]
        return lambda value: None if value is None else [inner(v) for v in value]
    if isinstance(field, fields.Dict):
        if field.key_field is None or field.value_field is None:
            raise _Unsupported(f"untyped Dict at {field.name}")
        key, val = _converter(field.key_field), _converter(field.value_field)
        return lambda value: None if value is None else {key(k): val(v) for k, v in value.items()}
    if type(field) in _LEAF_FIELDS:
        return _leaf(field)
    raise _Unsupported(f"{type(field).__name__} at {field.name}")


def _plan(schema: Schema) -> Plan:
    if any(schema._hooks.values()):
        raise _Unsupported(f"{type(schema).__name__} has pre/post-dump hooks")
    plan = []
    for name, field in schema.dump_fields.items():
        attribute = field.attribute or name
        if "." in attribute or field.dump_default is not missing:
            raise _Unsupported(f"{type(schema).__name__}.{name}: dotted attribute or dump_default")
        plan.append((field.data_key or name, attribute, _passthrough(field), _converter(field)))
    return tuple(plan)


def _dump(plan: Plan, obj: Any) -> dict[str, Any]:
    """Like Schema.dump: an attribute (or dict key) the object lacks is left out of the output."""
    out: dict[str, Any] = {}
    if isinstance(obj, dict):
        for key, attribute, exact, convert in plan:
            value = obj.get(attribute, _MISSING)
            if value is _MISSING:
                continue
            kind = type(value)
            if value is None or (kind is exact and (kind is not float or _isfinite(value))):
                out[key] = value
            else:
                out[key] = convert(value)
    else:
        for key, attribute, exact, convert in plan:
            value = getattr(obj, attribute, _MISSING)
            if value is _MISSING:
                continue
            kind = type(value)
            if value is None or (kind is exact and (kind is not float or _isfinite(value))):
                out[key] = value
            else:
                out[key] = convert(value)
    return out


def compile_plan(schema: Schema) -> Plan | None:
    """The fast plan for `schema`, or None where it uses something the plan does not model."""
    try:
        return _plan(schema)
    except (_Unsupported, RecursionError):  # RecursionError: a self-nesting schema
        return None


def _mark_always_present() -> None:
    """Every member of a report is dumped from an engine dataclass attribute, so it is always there (null where
    not computed), except the HTTP-only ones: `required`, so the OpenAPI document and a client generated from
    it say so (tests/api/test_openapi_statuses.py checks real reports against it)."""
    for schema in [v for v in globals().values() if isinstance(v, type) and issubclass(v, Schema)]:
        if schema.__module__ == __name__:
            for name, field in schema._declared_fields.items():
                if name not in HTTP_ONLY:
                    field.required = True


_mark_always_present()
_REPORT_PLAN = compile_plan(_REPORT_SCHEMA)


def dump_report(report: Any) -> dict[str, Any]:
    """ReportSchema().dump(report), from one shared compiled plan (a fresh ReportSchema() per call
    rebuilds every nested schema, about 1.2 ms per small report; dumping keeps no state)."""
    if _REPORT_PLAN is None:  # pragma: no cover - only if ReportSchema grows an unmodelled feature
        return _REPORT_SCHEMA.dump(report)
    return _dump(_REPORT_PLAN, report)
