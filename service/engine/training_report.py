"""The report's `training` section: plain dataclasses that `schemas.training_report.TrainingReportSchema` dumps.

Per-step and per-layer series are lists indexed by step (0..k-1). Floats may be non-finite or None here; the schema
writes null, and a count or status beside each says why (overflow_count for a gradient norm, loss_status for a loss).
"""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass
class TrainingStep:
    index: int
    loss: float | None  # the batch's loss ℓ before the step, unscaled, as the pass dtype computed it
    loss_status: str  # ok | nonfinite
    loss_scale: float  # S the step's backward ran with (dynamic: GradScaler's scale at that step)
    skipped: bool  # dynamic loss scaling found non-finite gradients and did not step


@dataclass
class TrainingLayer:
    index: int
    grad_norm: list[float | None]  # ‖∂ℓ/∂W^t‖ per step from the dtype's gradient, unscaled (null: overflow_count > 0)
    log10_grad_norm: list[float | None]  # null also where the gradient is exactly 0
    update_ratio: list[float | None]  # ‖W_{k+1} − W_k‖ / ‖W_k‖ of the optimizer's weights (0 on a skipped step)
    overflow_count: list[int]  # non-finite values of the loss-scaled gradient as the dtype holds it
    underflow_count: list[int | None]  # values of S·∂ℓ/∂W non-zero in float64 arithmetic (same weights and batch)
    # and 0 in the dtype; float16/bfloat16 only (null for float32/float64)
    distance_from_init: float | None  # ‖W_k − W_0‖ / ‖W_0‖ after the last step (null: non-finite weights)
    did_not_learn: bool  # distance_from_init < NOT_LEARNED_FRACTION × the largest layer's (or non-finite weights)
    matrix: str | None = None  # recurrent specs: which matrix (W_ih^l, W_hh^l); None for a feed-forward layer W^index


@dataclass
class LayerHistogram:
    index: int
    counts: list[int]  # per bin of log10|g| (edges: TrainingReport.histogram_edges_log10)
    zeros: int
    nonfinite: int


@dataclass
class TrainingHistogram:
    step: int
    loss_scale: float  # g is the loss-scaled gradient; log10|∂ℓ/∂W| is its bin minus log10(loss_scale)
    layers: list[LayerHistogram]


@dataclass
class TrainingSummary:
    initial_loss: float | None  # over the data set's first 256 examples (EVAL_EXAMPLES), before the first step
    final_loss: float | None  # the same after the last step
    loss_ratio: float | None  # final / initial (null where either is non-finite or initial is 0)
    diverged: bool
    divergence_step: int | None  # first step whose batch loss is non-finite or > DIVERGENCE_FACTOR × step 0's
    skipped_steps: list[int]
    final_loss_scale: float
    not_learning_layers: list[int]
    best_learning_layer: int | None
    not_learned_fraction: float  # the threshold did_not_learn uses, relative to the best layer's distance
    # distance_from_init of layer 1 over layer d's: a rubric's "the bottom layer learns too" in one number
    first_to_last_distance_ratio: float | None
    sentence: str


@dataclass
class TrainingReport:
    optimizer: str
    learning_rate: float
    momentum: float
    task: str
    loss_function: str  # mse (teacher) | cross_entropy (classification)
    examples: int
    batch_size: int
    steps_run: int
    loss_scaling: str
    pass_dtype: str
    master_dtype: str  # the optimizer's weights: float32 under float16/bfloat16 (torch.amp), else the pass dtype
    float16_emulated: bool
    steps: list[TrainingStep]
    layers: list[TrainingLayer]
    histogram_edges_log10: list[float]
    histograms: list[TrainingHistogram]
    summary: TrainingSummary
    notes: list[str] = field(default_factory=list)


@dataclass
class TrainingCheck:
    """A recommendation judged by training: the probe rerun on the changed spec (service/engine/training_verify.py).

    status: verified (rerun; the fields say what it gave) | not_verified (past the reruns' shared budget: nothing is
    claimed, every other field null)."""

    status: str
    reason: str
    not_learning_layers: list[int] | None = None  # of the changed spec's run
    now_learning_layers: list[int] | None = None  # layers that did not learn before and do now
    all_learn: bool | None = None
    diverged: bool | None = None
    loss_ratio: float | None = None
