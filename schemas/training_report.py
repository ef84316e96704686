"""The report's `training` section on the wire: `service.engine.training_report.TrainingReport` → strict JSON.

Every float goes through FiniteFloat (non-finite → null); the count or status beside it says why. Series are
lists indexed by step (0..steps_run−1).
"""

from __future__ import annotations

from marshmallow import Schema, fields

from .fields import FiniteFloat


def _float(description: str | None = None) -> FiniteFloat:
    return FiniteFloat(allow_none=True, metadata={"description": description} if description else {})


def _floats(description: str) -> fields.List:
    return fields.List(FiniteFloat(allow_none=True), metadata={"description": description})


class TrainingStepSchema(Schema):
    index = fields.Integer(metadata={"description": "The step, from 0."})
    loss = _float("The batch's loss before the step, unscaled, as the pass dtype computed it (null: not finite).")
    loss_status = fields.String(metadata={"description": "ok | nonfinite"})
    loss_scale = _float("The loss scale S the step's backward ran with (dynamic: GradScaler's at that step).")
    skipped = fields.Boolean(metadata={"description": "Dynamic loss scaling found non-finite gradients: no step."})


class TrainingLayerSchema(Schema):
    index = fields.Integer()
    grad_norm = _floats("Per step: ‖∂ℓ/∂W‖ of the gradient the dtype held, unscaled (null: overflow_count > 0).")
    log10_grad_norm = _floats("Per step: log10 of grad_norm (null also where the gradient is exactly 0).")
    update_ratio = _floats("Per step: ‖W_{k+1} − W_k‖ / ‖W_k‖ of the optimizer's weights (0 on a skipped step).")
    overflow_count = fields.List(
        fields.Integer(), metadata={"description": "Per step: non-finite values of the loss-scaled gradient."}
    )
    underflow_count = fields.List(
        fields.Integer(allow_none=True),
        metadata={
            "description": "Per step: values of the loss-scaled gradient non-zero in float64 arithmetic on the same "
            "weights and batch and 0 in the dtype (float16/bfloat16; null for float32/float64)."
        },
    )
    distance_from_init = _float("‖W_k − W_0‖ / ‖W_0‖ after the last step (null: non-finite weights).")
    did_not_learn = fields.Boolean(
        metadata={"description": "distance_from_init below summary.not_learned_fraction of the best layer's."}
    )
    matrix = fields.String(
        allow_none=True,
        metadata={
            "description": "Recurrent specs: which trainable matrix this entry is, W_ih^l or W_hh^l of stacked layer "
            "l (index 2l−1 and 2l). null for feed-forward specs, whose entry `index` is layer W^index."
        },
    )


class LayerHistogramSchema(Schema):
    index = fields.Integer()
    counts = fields.List(fields.Integer(), metadata={"description": "Per bin of histogram_edges_log10."})
    zeros = fields.Integer()
    nonfinite = fields.Integer()


class TrainingHistogramSchema(Schema):
    step = fields.Integer()
    loss_scale = _float("The histogram is of S·∂ℓ/∂W as held in the dtype: subtract log10 S for log10|∂ℓ/∂W|.")
    layers = fields.List(fields.Nested(LayerHistogramSchema))


class TrainingSummarySchema(Schema):
    initial_loss = _float("The loss over the data set's first 256 examples (at least a batch) before the first step.")
    final_loss = _float("The same after the last step.")
    loss_ratio = _float("final_loss / initial_loss (null where either is not finite).")
    diverged = fields.Boolean()
    divergence_step = fields.Integer(
        allow_none=True,
        metadata={"description": "First step whose batch loss is not finite or over 10× step 0's (null: none)."},
    )
    skipped_steps = fields.List(fields.Integer())
    final_loss_scale = _float()
    not_learning_layers = fields.List(fields.Integer())
    best_learning_layer = fields.Integer(allow_none=True)
    not_learned_fraction = _float("did_not_learn threshold, relative to the best layer's distance from init.")
    first_to_last_distance_ratio = _float(
        "Layer 1's distance_from_init over layer d's (null where either is not finite or layer d's is 0)."
    )
    sentence = fields.String(
        metadata={"description": "The training run in one sentence (the verdict stays the init's)."}
    )


class TrainingCheckSchema(Schema):
    """A recommendation judged by training (service/engine/training_verify.py)."""

    status = fields.String(metadata={"description": "verified | not_verified (past the reruns' budget: no claim)."})
    reason = fields.String()
    not_learning_layers = fields.List(fields.Integer(), allow_none=True)
    now_learning_layers = fields.List(
        fields.Integer(), allow_none=True, metadata={"description": "Layers that did not learn before and do now."}
    )
    all_learn = fields.Boolean(allow_none=True)
    diverged = fields.Boolean(allow_none=True)
    loss_ratio = _float()


class TrainingReportSchema(Schema):
    """What k optimizer steps did (service/engine/training.py)."""

    optimizer = fields.String()
    learning_rate = _float()
    momentum = _float()
    task = fields.String()
    loss_function = fields.String(metadata={"description": "mse (teacher) | cross_entropy (classification)"})
    examples = fields.Integer()
    batch_size = fields.Integer()
    steps_run = fields.Integer()
    loss_scaling = fields.String()
    pass_dtype = fields.String()
    master_dtype = fields.String(
        metadata={
            "description": "The optimizer's weights: float32 under float16/bfloat16 (torch.amp), else the pass's."
        }
    )
    float16_emulated = fields.Boolean()
    steps = fields.List(fields.Nested(TrainingStepSchema))
    layers = fields.List(fields.Nested(TrainingLayerSchema))
    histogram_edges_log10 = _floats("HISTOGRAM_BINS + 1 edges: the dtype's smallest subnormal to its largest value.")
    histograms = fields.List(fields.Nested(TrainingHistogramSchema))
    summary = fields.Nested(TrainingSummarySchema)
    notes = fields.List(fields.String())


for _schema in (
    TrainingStepSchema,
    TrainingLayerSchema,
    LayerHistogramSchema,
    TrainingHistogramSchema,
    TrainingSummarySchema,
    TrainingReportSchema,
    TrainingCheckSchema,
):
    for _field in _schema._declared_fields.values():
        _field.required = True  # dumped from dataclass attributes: always present (null where not computed)
