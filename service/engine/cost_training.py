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


# Recurrent specs (training_recurrent.py): each optimizer step runs every cell T times per sample; the fixed costs
# are per time step, stacked layer and optimizer step (a cell's small kernels forward and backward, one thread).
# Measured per cell step (50 steps, one thread, min of 3, shared 2-core machine): rnn 4.6e-5 (h 32) and 9.6e-5
# (h 128, T 200), lstm 1.7e-4 (h 64, 2 stacked), gru 2.3e-4 per float16 factor (h 32, emulated float16).
TRAIN_CELL_STEP_S = {"rnn": 1.2e-4, "lstm": 2.5e-4, "gru": 3e-4}
RECURRENT_GATES = {"rnn": 1, "lstm": 4, "gru": 3}  # recurrent.GATES (no torch here)


def _weights(spec: ModelSpec) -> int:
    """Trainable values (recurrent: W_ih, W_hh and b of every stacked layer)."""
    rec = spec.recurrent
    if rec is not None:
        g, h = RECURRENT_GATES[rec.cell], rec.hidden
        return sum(g * h * ((rec.input_dim if layer == 0 else h) + h + 1) for layer in range(rec.stacked))
    return sum(a * b + (b if spec.bias else 0) for a, b in pairwise(spec.widths))


def _uses(spec: ModelSpec) -> int:
    """How often one sample's pass uses every weight: T time steps for a recurrent spec, once for a layer stack."""
    return spec.recurrent.steps if spec.recurrent is not None else 1


def _io(spec: ModelSpec) -> int:
    """Values per example of the data set: inputs and targets."""
    rec = spec.recurrent
    if rec is not None:
        return rec.steps * (rec.input_dim + (rec.hidden if rec.loss_at == "every" else 1)) + rec.hidden
    return spec.widths[0] + spec.widths[-1]


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
    weights, uses = _weights(spec), _uses(spec)
    per_step = TRAIN_FLOPS_PER_WEIGHT_SAMPLE * spec.batch_size * weights * uses
    per_step *= HALF_PRECISION_FACTOR if _half(spec) else 1.0
    evaluation = 2 * 2.0 * min(tr.examples, max(EVAL_EXAMPLES, spec.batch_size)) * weights * uses
    task = 2.0 * tr.examples * weights * uses if spec.recurrent is not None else 0.0  # the teacher's sequences
    return tr.steps * (per_step + TRAIN_BOOKKEEPING_FLOPS_PER_WEIGHT * weights) + evaluation + task


def training_fixed_seconds(spec: ModelSpec) -> float:
    """The per-layer, per-step kernel costs that the GFLOP count does not see."""
    if spec.training is None:
        return 0.0
    factor = HALF_PRECISION_FACTOR if _half(spec) else 1.0
    rec = spec.recurrent
    if rec is not None:  # every step: T·stacked cells forward and backward; the loss before and after: forward only
        per_step = rec.steps * rec.stacked * TRAIN_CELL_STEP_S[rec.cell]
        return _runs(spec) * (spec.training.steps + 1) * per_step * factor
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
    data = tr.examples * _io(spec) * 16
    rec = spec.recurrent
    if rec is not None:  # autograd's saved tensors of every cell step; the loss's forward over EVAL_EXAMPLES
        rows = max(spec.batch_size, min(tr.examples, EVAL_EXAMPLES))
        acts = rec.steps * rec.stacked * RECURRENT_GATES[rec.cell] * rec.hidden * (spec.batch_size * 10 + rows) * 8
    else:
        acts = spec.batch_size * sum(spec.widths) * 8 * 6
    return per_weight * weights + data + acts
