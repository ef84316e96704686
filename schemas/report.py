"""The response's wire format: `service.engine.report.Report` → strict JSON.

Every float goes through `FiniteFloat` (NaN/±inf → null) and free-form dicts through
`FiniteJSON`, so a report can always be encoded with allow_nan=False. One nested
schema per engine dataclass; field names are the v1 contract (shared/DESIGN.md §3).
"""

from __future__ import annotations

import math
from typing import Any

from marshmallow import Schema, fields

from .fields import FiniteFloat


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
    first_layer = _int("Lowest t for forward activations, highest t for gradients.", nullable=True)
    layer_count = _int()
    max_fraction = _float()


class RangeEventSchema(Schema):
    occurred = fields.Boolean()
    first_layer = _int(nullable=True)
    quantity = fields.String(
        allow_none=True,
        metadata={"description": "forward_activation | output_grad | weight_grad | loss"},
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


class RecommendationSchema(Schema):
    code = fields.String()
    change = FiniteJSON(metadata={"description": "The spec fields to change, with new values."})
    rationale = fields.String()
    verified = fields.Nested(OutcomeSchema, allow_none=True)
    fixes = fields.Boolean(allow_none=True)


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


class LayerTheorySchema(Schema):
    index = _int()
    chi = _float()
    predicted_gain = _float("√χ")


class TheorySchema(Schema):
    sigma_w2 = _float()
    chi_mean = _float()
    predicted_growth_per_layer = _float()
    predicted_log10_total_growth = _float()
    depth_scale = _float("-1/ln χ")
    critical_weight_scale = _float()
    critical_note = fields.String()
    layers = fields.List(fields.Nested(LayerTheorySchema))


class RuntimeSchema(Schema):
    device = fields.String()
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


class ReportSchema(Schema):
    """POST /v1/analyses response: the full report."""

    id = fields.String(metadata={"description": "sha256 of the normalised spec and engine version."})
    engine_version = fields.String()
    depth = _int()
    loss = _float()
    loss_status = fields.String()
    layers = fields.List(fields.Nested(LayerReportSchema))
    diagnosis = fields.Nested(DiagnosisSchema)
    theory = fields.Nested(TheorySchema)
    runtime = fields.Nested(RuntimeSchema)


_REPORT_SCHEMA = ReportSchema()


def dump_report(report: Any) -> dict[str, Any]:
    """ReportSchema().dump with one shared instance: a fresh one rebuilds every nested schema
    (about 1.2 ms per small report), and dumping keeps no state, so one instance serves all."""
    return _REPORT_SCHEMA.dump(report)
