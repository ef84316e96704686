"""The engine's output: plain dataclasses that `schemas.report.ReportSchema` dumps.

Floats may be non-finite here; the schema writes them as null (strict JSON), and a
`status` field beside each such value says why.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from .training_report import TrainingCheck, TrainingReport


@dataclass
class TensorStats:
    """Statistics of one gradient tensor, as computed in the pass dtype (stats in float64).

    status: ok | zero (every value is exactly 0) | nonfinite (inf/NaN present, so the
    norm and moments are not finite and are given over the finite values only).
    """

    norm: float | None
    log10_norm: float | None
    mean: float | None
    std: float | None
    max_abs: float | None
    zero_fraction: float
    subnormal_fraction: float
    nonfinite_fraction: float
    numel: int
    status: str = "ok"


@dataclass
class JacobianStats:
    """Statistics of ∂h^d/∂h^t over the batch: each log10 is the mean over samples.

    min_singular_value_status: resolved | upper_bound (below what the method resolves;
    the value is a bound) | rank_deficient (exactly 0: dead units cut the rank; value
    null) | not_computed (estimate method or over the budget; value null).
    """

    log10_spectral_norm: float | None
    log10_frobenius_norm: float | None
    log10_rms_gain: float | None  # log10(‖P‖_F / √n_d)
    log10_min_singular_value: float | None
    log10_condition_number: float | None
    min_singular_value_status: str
    rank_bound: int | None  # min over the layers above of the active units (per sample, min)
    log10_frobenius_norm_min: float | None  # spread over the batch
    log10_frobenius_norm_max: float | None
    method: str  # exact | estimate | identity
    # resolved | lower_bound (σ_min only bounded above, so κ is a lower bound) | infinite (σ_min exactly 0)
    # | not_computed
    condition_number_status: str | None = None
    singular_values_source: str | None = None  # svd (the formed product) | qr (the product in QR form)
    # exact (svdvals, or the identity at t = d) | lower_bound (a power iteration's Ritz value: short of σ_max by at
    # most ~0.08 in log10 where measured, README) | not_computed
    spectral_norm_status: str | None = None


@dataclass
class ActivationStats:
    """Pre-activations z^t = W^t h^{t-1} (+b) and σ'(z^t) from the float64 reference forward."""

    name: str
    pre_activation_mean: float | None
    pre_activation_std: float | None
    log10_pre_activation_rms: float | None  # stays finite where the std leaves the float range
    sigma_prime_mean: float | None
    sigma_prime_max: float | None
    saturated_fraction: float | None  # sigmoid/tanh-like and smooth σ: σ'(z) < 1% of its peak
    dead_fraction: float | None  # relu-like: σ'(z) == 0
    output_nonfinite_fraction: float  # of h^t in the pass dtype
    sigma_prime_mean_square: float | None = None  # E[σ'(z)²] over units and samples: the measured χ/σ_w²


@dataclass
class UpdateStats:
    """One SGD step: ‖lr·∂ℓ/∂W‖ / ‖W‖ (about 1e-3 is the usual healthy ratio)."""

    weight_norm: float | None
    update_ratio: float | None
    log10_update_ratio: float | None


@dataclass
class LayerReport:
    index: int
    in_features: int
    out_features: int
    weight_grad: TensorStats
    output_grad: TensorStats  # ∂ℓ/∂h^t
    jacobian_product: JacobianStats
    activation: ActivationStats
    update: UpdateStats | None = None


@dataclass
class QuantityEvent:
    """Where one quantity overflowed or underflowed, in the order it is computed.

    first_layer is the lowest t for the forward activations and the highest t for the
    gradients (backpropagation starts at the top); the loss is at t = d.
    """

    first_layer: int | None
    layer_count: int
    max_fraction: float


@dataclass
class RangeEvent:
    """Overflow (inf/NaN) or underflow (non-zero in exact arithmetic, 0 in the dtype).

    first_layer/quantity: the first flagged value in the order the computation reaches it
    (forward h^1 … h^d, the loss, then ∂ℓ/∂h^t and ∂ℓ/∂W^t for t = d … 1:
    events.computation_step); by_quantity has each quantity's own first layer.
    """

    occurred: bool
    first_layer: int | None
    quantity: str | None  # forward_activation | output_grad | weight_grad | loss
    fraction: float | None  # of that layer's values
    layers_from_top: int | None  # d - first_layer + 1
    by_quantity: dict[str, QuantityEvent] = field(default_factory=dict)


@dataclass
class DtypeLimits:
    dtype: str
    max: float
    smallest_normal: float
    smallest_subnormal: float
    eps: float
    log10_max: float
    log10_smallest_normal: float


@dataclass
class Cause:
    # finite_width | weights_too_large | small_derivative | saturation | dead_units | weights_too_small
    # | dtype_overflow | dtype_underflow | cancellation | loss_overflow (service/engine/diagnosis/causes.py)
    code: str
    message: str
    layers: list[int] = field(default_factory=list)
    evidence: dict[str, Any] = field(default_factory=dict)


@dataclass
class Outcome:
    """What the engine measured when it ran a changed spec.

    overflow/underflow: of any quantity; gradient_*/forward_*: of the gradients (∂ℓ/∂h, ∂ℓ/∂W, the
    loss) and of the forward activations alone, so advice is judged on what it can change.
    """

    verdict: str
    log10_total_growth: float | None
    growth_per_layer: float | None
    overflow: bool
    underflow: bool
    gradient_overflow: bool = False
    gradient_underflow: bool = False
    forward_overflow: bool = False
    forward_underflow: bool = False
    batch_size: int | None = None  # the batch the rerun used: the user's own for every claimed fix
    jacobian_method: str | None = None  # the method that ran for the rerun
    training: TrainingCheck | None = None  # where the spec trains and its probe flagged layers or divergence


@dataclass
class Recommendation:
    """A spec change, rerun. `addresses` says what it is judged on (what the change can fix):

    growth: verdict stable and no overflow/underflow anywhere; gradient_range (loss_scale): no
    overflow/underflow of the gradients; forward_range (input_scale): none in the forward pass
    and none new in the gradients; range (a wider dtype): none anywhere.
    """

    code: str
    change: dict[str, Any]
    rationale: str
    verified: Outcome | None  # None when verification was switched off
    fixes: bool | None  # the changed spec no longer has the problem `addresses` names
    addresses: str = "growth"
    # every advisor code that proposed this same resulting spec, `code` first (their reasons are all in rationale)
    codes: list[str] = field(default_factory=list)


@dataclass
class Diagnosis:
    verdict: str  # exploding | vanishing | stable
    log10_total_growth: float | None
    growth_per_layer: float | None
    log10_growth_per_layer: float | None
    onset_layer: int | None  # the top-most t whose product ∂h^d/∂h^t leaves the stable band
    overflow: RangeEvent
    underflow: RangeEvent
    dtype_limits: DtypeLimits
    causes: list[Cause]
    recommendations: list[Recommendation]
    summary: str
    thresholds: dict[str, float]
    # values 0 in the pass whose exact magnitude is inside the dtype's normal range: lost to rounding
    # (products summing to an exact 0), not to the range; flagged like underflow, never called underflow
    cancellation: RangeEvent = field(default_factory=lambda: RangeEvent(False, None, None, None, None))
    # the layer t whose product ∂h^d/∂h^t the verdict reads: 1, or a residual network's first block output
    growth_from_layer: int = 1


@dataclass
class LayerTheory:
    index: int
    chi: float | None
    predicted_gain: float | None  # √χ


@dataclass
class BlockTheory:
    """One block's backpropagated gain: predicted (mean-field, gradient independence) and measured (the products)."""

    first_layer: int
    last_layer: int
    skip: bool
    predicted_gain: float | None  # √ of the predicted factor on the squared gradient norm
    measured_gain: float | None  # ‖∂h^d/∂h_in‖_F / ‖∂h^d/∂h_out‖_F at the block's input and output (RMS over samples)


@dataclass
class ArchitectureTheory:
    """Mean-field theory of a residual/normalised network beside the measurement, or why there is none."""

    model: str  # residual | normalized | residual_normalized | batchnorm | none
    status: str  # approximation (a prediction with its measured error) | unavailable (null, reason says why)
    predicted_log10_total_growth: float | None
    measured_log10_total_growth: float | None
    log10_error: float | None  # predicted − measured
    reason: str
    assumptions: str
    references: list[str] = field(default_factory=list)
    blocks: list[BlockTheory] = field(default_factory=list)


@dataclass
class RecurrentTheory:
    """Pascanu, Mikolov & Bengio (2013) for the rnn cell: with γ the bound on σ' (tanh 1, sigmoid 1/4, relu 1),
    σ_max(W_hh) < 1/γ is sufficient for the gradient to vanish, > 1/γ necessary for it to explode; for lstm and
    gru the state-keeping gate's mean per step (lstm f, gru z), whose product is the cell-state path's decay."""

    gamma: float | None
    sigma_max_recurrent: list[float]  # σ_max(W_hh) per stacked layer (all gate blocks for lstm, gru)
    pascanu_threshold: float | None  # 1/γ
    pascanu_condition: str | None  # vanishing_guaranteed | exploding_possible | boundary; None: not an rnn cell
    log10_pascanu_bound: float | None  # (T − 1)·log10(γ·σ_max): a bound on log10 ‖∂h_T/∂h_1‖₂ (one layer)
    pascanu_weight_scale: float | None  # the weight_scale at which σ_max(W_hh) = 1/γ
    mean_keep_gate: list[float] | None  # per step t = 1..T: mean forget gate (lstm) / update gate z (gru)
    log10_keep_gate_decay: float | None  # Σ_{t=2..T} log10 mean keep gate: the cell path's predicted decay
    reason: str


@dataclass
class Theory:
    """Mean-field prediction: χ^t = σ_w² E[σ'(z)²], z ~ N(0, q^t) with q^t measured."""

    sigma_w2: float
    chi_mean: float | None
    predicted_growth_per_layer: float | None
    predicted_log10_total_growth: float | None
    depth_scale: float | None  # -1/ln χ: layers over which the squared gradient norm changes by e (the norm: twice)
    critical_weight_scale: float | None  # the weight_scale with χ(q*) = 1 for square layers; None where none exists
    critical_note: str
    layers: list[LayerTheory]
    architecture: ArchitectureTheory | None = None  # residual/normalised networks only
    recurrent: RecurrentTheory | None = None  # recurrent specs only


@dataclass
class ReferenceFidelity:
    """How far the float64 reference forward is the exact network's (service/engine/fidelity.py)."""

    method: str  # perturbed_forward: the reference again from inputs moved by `perturbation` (relative)
    perturbation: float
    tolerance: float  # relative error of h^t or σ'(z^t) from which a layer is not trusted
    trusted: bool  # no layer passes the tolerance
    first_untrusted_layer: int | None
    log10_max_relative_error: float | None  # None where the two forwards agree exactly
    log10_relative_errors: list[float | None]  # per layer t = 1..d (index t-1); None where exactly 0


@dataclass
class Runtime:
    device: str  # torch's name: "cpu" or "cuda:<index>"
    dtype: str
    float16_emulated: bool
    jacobian_method: str
    jacobian_precision: str
    torch_version: str
    python_version: str
    engine_version: str
    threads: int
    elapsed_ms: float
    notes: list[str] = field(default_factory=list)
    device_name: str = ""  # the GPU's name (torch.cuda.get_device_name) or "cpu"
    device_requested: str = "cpu"  # the spec's device: auto, cpu or cuda


@dataclass
class BlockInfo:
    first_layer: int
    last_layer: int
    skip: bool  # h_out = h_in + branch_scale·f(h_in)
    note: str | None = None  # why a block has no skip


@dataclass
class NormalizedLayer:
    layer: int
    at: str  # input (before the layer's weights) | output (after its σ, or its block's sum)


@dataclass
class ArchitectureInfo:
    """Where the blocks and normalisation layers are, and what the products mean for this network."""

    residual_every: int | None
    branch_scale: float | None
    normalization: str
    position: str | None
    eps: float | None
    blocks: list[BlockInfo]
    normalized_layers: list[NormalizedLayer]
    products: str  # per_sample (∂h^d_b/∂h^t_b) | whole_batch (batchnorm couples the samples)
    growth_from_layer: int


@dataclass
class MatrixGrad:
    """∂ℓ/∂W of one recurrent matrix (or one gate block of it) over the whole sequence, in the pass dtype."""

    layer: int
    matrix: str  # W_hh | W_ih
    gate: str | None  # lstm i f g o, gru r z n; None: the whole matrix
    stats: TensorStats
    update: UpdateStats | None = None  # with learning_rate: one SGD step's ‖lr·∂ℓ/∂W‖/‖W‖


@dataclass
class Clipping:
    """Gradient-norm clipping (Pascanu et al. 2013) as a training-time measure: it bounds the update, not the
    Jacobian, so it never changes the verdict and is never offered as its fix."""

    threshold: float | None  # the norm of the gradient's share from the steps inside the stable band
    measured_norm: float | None  # ‖∂ℓ/∂θ‖ of every recurrent matrix, in the pass (None: not finite)
    clip_factor: float | None  # min(1, threshold/measured_norm): what clipping would multiply this update by
    kind: str  # training_time
    note: str


@dataclass
class RecurrentInfo:
    """What the per-step list means for a recurrent spec."""

    cell: str
    steps: int
    hidden: int
    input_dim: int
    stacked: int
    loss_at: str
    forget_bias: float
    state_units: int  # per layer: h (rnn, gru) or h and c (lstm)
    products: str  # what layers[t−1].jacobian_product is
    onset_steps_back: int | None  # T − onset step: how far back the gradient leaves the stable band
    weight_grads: list[MatrixGrad]
    depth_products: list[JacobianStats]  # ∂h^L_T/∂h^l_T for l = 1..L at the last step
    clipping: Clipping


@dataclass
class Report:
    id: str  # sha256 of the normalised spec, the resolved Jacobian method and the engine version
    engine_version: str
    depth: int
    loss: float | None
    loss_status: str
    layers: list[LayerReport]
    diagnosis: Diagnosis
    theory: Theory
    runtime: Runtime
    architecture: ArchitectureInfo | None = None  # null for the plain MLP
    reference_fidelity: ReferenceFidelity | None = None
    training: TrainingReport | None = None  # the spec's training probe (service/engine/training.py)
    axis: str = "depth"  # what layers[] runs along: depth (layers) | time (steps of a recurrent spec)
    recurrent: RecurrentInfo | None = None  # null unless the spec is recurrent
