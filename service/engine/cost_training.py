"""A-priori cost of the training probe (service/engine/training.py): work, time and memory, counted per step.

Each step runs the pass forward and backward (≈ 6 flops per weight and sample), the optimizer (a few element-wise
passes over the weights), and its bookkeeping (the weights copied, ‖ΔW‖, ‖W‖ and ‖∂ℓ/∂W‖); float16/bfloat16 add a
float64 pass on the same weights for the underflow counts. The loss is taken before and after over the first
EVAL_EXAMPLES examples (forward only, 2 flops per weight and example). The fixed costs per layer and step (kernel
calls) dominate narrow nets; TRAIN_LAYER_STEP_S is set so that measured/predicted stays ≤ 1 on the 2-core reference
machine (five specs, plain and sigmoid, float32 and float16, depth 8 to 100: 0.14 to 0.5 on an idle machine, at
most 1.07 with 1.5e-4 while the whole test suite ran beside it; issue 22's note).
"""

from __future__ import annotations

from itertools import pairwise

from .spec import ModelSpec

EVAL_EXAMPLES = 256  # training.EVAL_EXAMPLES (no torch here): the loss before and after is over these examples

TRAIN_FLOPS_PER_WEIGHT_SAMPLE = 6.0  # forward 2, backward 4
TRAIN_BOOKKEEPING_FLOPS_PER_WEIGHT = 40.0  # optimizer, the copy, three norms in float64 (GEMM-equivalent)
TRAIN_LAYER_STEP_S = 2e-4  # per layer and step: its forward/backward kernels, optimizer, statistics (one thread)
HALF_PRECISION_FACTOR = 3.0  # float16 (emulated in float64, rounded per operation) and bfloat16: plus a float64 pass
# Recommendations are judged by training too (training_verify.py): reruns of the probe on the changed specs share a
# budget of this many probes of the spec's own; past it a recommendation's training stays not verified.
TRAINING_VERIFY_RUNS = 2


def _weights(spec: ModelSpec) -> int:
    return sum(a * b + (b if spec.bias else 0) for a, b in pairwise(spec.widths))


def _half(spec: ModelSpec) -> bool:
    return spec.dtype in ("float16", "bfloat16")


def _runs(spec: ModelSpec) -> float:
    """The probe itself and, where recommendations are verified, their training reruns' budget."""
    return 1.0 + (TRAINING_VERIFY_RUNS if spec.verify_recommendations else 0.0)


def training_flops(spec: ModelSpec) -> float:
    """The probe and its reruns' budget (what admission counts)."""
    return _runs(spec) * probe_flops(spec)


def training_verify_budget_flops(spec: ModelSpec) -> float:
    return TRAINING_VERIFY_RUNS * probe_flops(spec)


def probe_flops(spec: ModelSpec) -> float:
    """One run of the probe."""
    if spec.training is None:
        return 0.0
    tr = spec.training
    weights = _weights(spec)
    per_step = TRAIN_FLOPS_PER_WEIGHT_SAMPLE * spec.batch_size * weights
    per_step *= HALF_PRECISION_FACTOR if _half(spec) else 1.0
    evaluation = 2 * 2.0 * min(tr.examples, max(EVAL_EXAMPLES, spec.batch_size)) * weights
    return tr.steps * (per_step + TRAIN_BOOKKEEPING_FLOPS_PER_WEIGHT * weights) + evaluation


def training_fixed_seconds(spec: ModelSpec) -> float:
    """The per-layer, per-step kernel costs that the GFLOP count does not see."""
    if spec.training is None:
        return 0.0
    factor = HALF_PRECISION_FACTOR if _half(spec) else 1.0
    return _runs(spec) * spec.training.steps * spec.depth * TRAIN_LAYER_STEP_S * factor


def training_memory_bytes(spec: ModelSpec) -> float:
    """Master weights, their gradients, a copy before the step, W_0 in float64 and the optimizer's state (Adam: two
    moments), the data set and its targets in float64 and in the compute dtype, the step's activations."""
    if spec.training is None:
        return 0.0
    tr = spec.training
    weights = _weights(spec)
    state = 2 if tr.optimizer in ("adam", "adamw") else (1 if tr.momentum else 0)
    per_weight = 4 * (3 + state) + 8 + (16 if _half(spec) else 0)  # + the pass's rounded copies and float64 pass
    data = tr.examples * (spec.widths[0] + spec.widths[-1]) * 16
    acts = spec.batch_size * sum(spec.widths) * 8 * 6
    return per_weight * weights + data + acts
