"""The training probe: k optimizer steps of the spec's network on a synthetic task, watched per layer and step.

The network is the analysis's (network.make_parameters: same weights; blockpass.block_forward: the same plain or
residual/normalised pass in the spec's dtype, float16 emulated on the CPU as the analysis emulates it). The
optimizer is torch.optim's SGD/Adam/AdamW over the master weights: float32 where the pass is float16/bfloat16 (the
weights are rounded to the dtype for each step's pass and the dtype's gradients copied back, as torch.amp does),
else the pass dtype itself. Loss scaling: loss_scaling.LossScaling (dynamic is torch.amp.GradScaler).

What is watched, per step: the batch loss, the loss scale, whether the step was skipped; per layer: ‖∂ℓ/∂W‖ from the
gradient as the dtype held it (unscaled in float64), ‖ΔW‖/‖W‖ of the master weights, the non-finite count of the
loss-scaled gradient and (float16/bfloat16) its values flushed to zero, against a float64 pass on the same weights;
at the requested steps, histograms of log10|S·∂ℓ/∂W| over fixed bins spanning the dtype's range. At the end: the data
set's loss before and after, divergence, and per layer the distance from init ‖W_k − W_0‖/‖W_0‖ with a did-not-learn
flag relative to the best-learning layer.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import torch
import torch.nn.functional as F

from .blockpass import block_forward
from .cost_training import EVAL_EXAMPLES
from .loss_scaling import LossScaling
from .network import TORCH_DTYPES, Parameters, PassState
from .recurrent import RecurrentParameters
from .spec import ModelSpec
from .training_recurrent import make_recurrent_task, matrix_names, recurrent_forward, trainables
from .training_report import (
    LayerHistogram,
    TrainingHistogram,
    TrainingLayer,
    TrainingReport,
    TrainingStep,
)
from .training_summary import summarize
from .training_tasks import Task, batch_order, make_task

Tensor = torch.Tensor
HISTOGRAM_BINS = 64  # equal-width bins of log10|g| from the dtype's smallest subnormal to its largest finite value
# The loss before and after k steps is taken over the data set's first EVAL_EXAMPLES examples (cost_training's; at
# least a batch; in batches where batchnorm's statistics are per batch), at a fixed cost: the whole set (d=20, n=256,
# 1024 examples) cost 40 % of 200 training steps of batch 8.


@dataclass
class _Net:
    """The optimizer's weights and how each step's pass gets its own from them."""

    master_w: list[Tensor]  # (n_t, n_{t-1}) leaf tensors the optimizer steps
    master_b: list[Tensor]
    biases: list[bool]
    target: torch.dtype
    compute: torch.dtype
    emulated: bool

    @property
    def shared(self) -> bool:
        """The pass runs on the master weights themselves (float32, float64)."""
        return not self.emulated and self.master_w[0].dtype == self.target

    def state(self) -> PassState:
        if self.shared:
            return PassState(self.target, self.compute, False, self.master_w, self._bias_list(self.master_b))
        w = [m.detach().to(self.target).to(self.compute).requires_grad_(True) for m in self.master_w]
        b = [m.detach().to(self.target).to(self.compute).requires_grad_(True) for m in self.master_b]
        return PassState(self.target, self.compute, self.emulated, w, self._bias_list(b))

    def _bias_list(self, b: list[Tensor]) -> list[Tensor | None]:
        it = iter(b)
        return [next(it) if has else None for has in self.biases]

    def parameters(self) -> list[Tensor]:
        return [*self.master_w, *self.master_b]


def make_net(
    spec: ModelSpec, params: Parameters | RecurrentParameters, device: torch.device, emulate_float16: bool = True
) -> _Net:
    target = TORCH_DTYPES[spec.dtype]
    master = torch.float64 if target == torch.float64 else torch.float32
    emulated = target == torch.float16 and device.type == "cpu" and emulate_float16
    compute = torch.float64 if emulated else target
    if isinstance(params, RecurrentParameters):  # W_ih^l, W_hh^l per stacked layer, b^l beside W_ih^l
        weights, biases = trainables(params)
    else:
        weights, biases = params.compact_weights, params.biases
    w = [c.to(device=device, dtype=master).clone().requires_grad_(True) for c in weights]
    b = [x.to(device=device, dtype=master).clone().requires_grad_(True) for x in biases if x is not None]
    return _Net(w, b, [x is not None for x in biases], target, compute, emulated)


def forward(spec: ModelSpec, st: PassState, x: Tensor) -> Tensor:
    """The network's output for a batch: the block pass (plain, residual/normalised) or the recurrent cells."""
    return recurrent_forward(spec, st, x) if spec.recurrent is not None else block_forward(spec, st, x)


def make_optimizer(spec: ModelSpec, params: list[Tensor]) -> torch.optim.Optimizer:
    """torch.optim with its own defaults beyond lr (and SGD's momentum)."""
    assert spec.training is not None
    tr = spec.training
    if tr.optimizer == "sgd":
        return torch.optim.SGD(params, lr=tr.learning_rate, momentum=tr.momentum)
    if tr.optimizer == "adam":
        return torch.optim.Adam(params, lr=tr.learning_rate)
    return torch.optim.AdamW(params, lr=tr.learning_rate)


def task_loss(kind: str, h: Tensor, targets: Tensor) -> Tensor:
    """mse over every element, or cross_entropy over every (sample[, step]) row of logits."""
    if kind == "mse":
        return F.mse_loss(h, targets)
    return F.cross_entropy(h.flatten(0, -2), targets.flatten())


def histogram_edges(dtype: torch.dtype) -> list[float]:
    """HISTOGRAM_BINS + 1 edges in log10 from the dtype's smallest subnormal to its largest finite value."""
    info = torch.finfo(dtype)
    lo = math.log10(info.smallest_normal * info.eps)  # the smallest subnormal
    hi = math.log10(info.max)
    return [lo + (hi - lo) * i / HISTOGRAM_BINS for i in range(HISTOGRAM_BINS + 1)]


def train(
    spec: ModelSpec,
    params: Parameters | RecurrentParameters,
    device: torch.device,
    *,
    emulate_float16: bool = True,
    progress: Callable[[int, int], None] | None = None,
) -> TrainingReport:
    """k steps of spec.training; `progress(done, total)` after each step (the job's progress is the step count)."""
    assert spec.training is not None
    tr = spec.training
    task = make_recurrent_task(spec) if spec.recurrent is not None else make_task(spec)
    net = make_net(spec, params, device, emulate_float16)
    opt = make_optimizer(spec, net.parameters())
    scaling = LossScaling(tr.loss_scaling, spec.loss_scale, device)
    x_all = task.x.to(device=device, dtype=net.compute)
    y_all = task.targets.to(device=device, dtype=net.compute) if task.loss == "mse" else task.targets.to(device)
    w0 = [w.detach().double().clone() for w in net.master_w]
    initial = _dataset_loss(spec, net, task, x_all, y_all)
    edges = histogram_edges(net.target)
    wanted = set(tr.histograms)
    losses, scales, skipped = [], [], []
    grad_norms, update_norms, weight_norms, overflow, underflow = [], [], [], [], []
    histograms: list[TrainingHistogram] = []
    before = [torch.empty_like(w) for w in net.master_w]
    for k, idx in enumerate(batch_order(spec)):
        idx = idx.to(device)
        st = net.state()
        opt.zero_grad(set_to_none=True)
        h = forward(spec, st, x_all[idx])
        loss = st.rnd(task_loss(task.loss, st.rnd(h), y_all[idx]))
        scale = scaling.scale
        st.rnd(scaling.scaled(loss)).backward()
        held = _held_grads(net, st)  # S·∂ℓ/∂W as the dtype holds it
        norms, counts = _grad_norms(held)
        grad_norms.append(norms / scale)
        overflow.append(counts)
        underflow.append(_flushed(spec, net, st, held, task.loss, x_all[idx], y_all[idx], scale))
        if k in wanted:
            histograms.append(_histograms(k, scale, held, edges))
        with torch.no_grad():  # W_k into a buffer kept across steps, ΔW = W_{k+1} − W_k in place: no allocation
            torch._foreach_copy_(before, net.master_w)
            weight_norms.append(torch.stack(torch._foreach_norm(before)).double())
            skipped.append(scaling.step(opt))
            torch._foreach_sub_(before, net.master_w)
            update_norms.append(torch.stack(torch._foreach_norm(before)).double())
        losses.append(loss.detach().double())
        scales.append(scale)
        if progress is not None:
            progress(k + 1, tr.steps)
    final = _dataset_loss(spec, net, task, x_all, y_all)
    steps = [
        TrainingStep(k, v if math.isfinite(v) else None, "ok" if math.isfinite(v) else "nonfinite", s, sk)
        for k, (v, s, sk) in enumerate(zip(torch.stack(losses).tolist(), scales, skipped, strict=True))
    ]
    layers = _layer_series(net, w0, grad_norms, update_norms, weight_norms, overflow, underflow)
    if spec.recurrent is not None:
        for layer, name in zip(layers, matrix_names(spec), strict=True):
            layer.matrix = name
    return TrainingReport(
        optimizer=tr.optimizer,
        learning_rate=tr.learning_rate,
        momentum=tr.momentum,
        task=tr.task,
        loss_function=task.loss,
        examples=tr.examples,
        batch_size=spec.batch_size,
        steps_run=len(steps),
        loss_scaling=tr.loss_scaling,
        pass_dtype=spec.dtype,
        master_dtype=str(net.master_w[0].dtype).removeprefix("torch."),
        float16_emulated=net.emulated,
        steps=steps,
        layers=layers,
        histogram_edges_log10=edges,
        histograms=histograms,
        summary=summarize(spec, steps, layers, initial, final, scaling.scale),
    )


def _grad_norms(held: list[Tensor]) -> tuple[Tensor, Tensor]:
    """Per layer ‖g‖ (float64) and the count of non-finite values of g. The norms are taken in g's dtype in one
    foreach call (float32 sums of squares: ~1e-7 relative); only where one is not finite (a non-finite value, or
    squares past float32's range) is the layer read again, in float64, and its non-finite values counted: the
    common step never scans its gradients twice."""
    norms = torch.stack(torch._foreach_norm(held)).double()
    counts = torch.zeros(len(held), dtype=torch.int64, device=norms.device)
    if not bool(torch.isfinite(norms).all()):
        for t in torch.nonzero(~torch.isfinite(norms)).flatten().tolist():
            norms[t] = torch.linalg.vector_norm(held[t], dtype=torch.float64)
            counts[t] = (~torch.isfinite(held[t])).sum()
    return norms, counts


def _held_grads(net: _Net, st: PassState) -> list[Tensor]:
    """The weight gradients as the pass dtype holds them (in the compute dtype), copied to the master weights'
    .grad where the pass ran on a rounded copy (torch.amp: the float16 gradients cast to float32)."""
    if net.shared:
        return [_grad(w) for w in net.master_w]
    held = []
    for m, w in zip(net.master_w, st.weights, strict=True):
        g = _grad(w).to(net.target)
        m.grad = g.to(m.dtype)
        held.append(g.to(net.compute) if net.emulated else g)
    bias_pass = [b for b in st.biases if b is not None]
    for m, b in zip(net.master_b, bias_pass, strict=True):
        m.grad = _grad(b).to(net.target).to(m.dtype)
    return held


def _grad(w: Tensor) -> Tensor:
    return w.grad if w.grad is not None else torch.zeros_like(w)  # a branch scaled by 0 gets no gradient at all


def _flushed(
    spec: ModelSpec, net: _Net, st: PassState, held: list[Tensor], loss: str, x: Tensor, y: Tensor, scale: float
) -> Tensor | None:
    """Per layer: values of S·∂ℓ/∂W that are non-zero in exact (float64) arithmetic on the same weights and batch
    and 0 as the dtype held them (the analysis's underflow). Only for float16/bfloat16, where it costs a float64
    pass per step; None for float32/float64, whose range no such gradient leaves."""
    if net.target not in (torch.float16, torch.bfloat16):
        return None
    f64 = torch.float64
    weights = [w.detach().to(f64).requires_grad_(True) for w in st.weights]
    biases = [None if b is None else b.detach().to(f64).requires_grad_(True) for b in st.biases]
    exact = PassState(f64, f64, False, weights, biases)
    h = forward(spec, exact, x.to(f64))
    (task_loss(loss, h, y.to(f64) if loss == "mse" else y) * scale).backward()
    return torch.stack([((_grad(w) != 0) & (g == 0)).sum() for w, g in zip(weights, held, strict=True)])


def _histograms(step: int, scale: float, held: list[Tensor], edges: list[float]) -> TrainingHistogram:
    lo, hi = edges[0], edges[-1]
    out = []
    for t, g in enumerate(held, start=1):
        mag = g.detach().double().abs().flatten()
        finite = torch.isfinite(mag)
        zero = mag == 0
        logs = torch.log10(mag[finite & ~zero]).clamp(lo, hi)
        counts = torch.histc(logs, bins=len(edges) - 1, min=lo, max=hi) if logs.numel() else torch.zeros(len(edges) - 1)
        out.append(LayerHistogram(t, [int(c) for c in counts.tolist()], int(zero.sum()), int((~finite).sum())))
    return TrainingHistogram(step, scale, out)


def _dataset_loss(spec: ModelSpec, net: _Net, task: Task, x_all: Tensor, y_all: Tensor) -> float:
    """The mean loss over the data set's first EVAL_EXAMPLES examples in the pass dtype (in chunks: batchnorm's
    statistics are per batch)."""
    arch = spec.architecture
    n = min(x_all.shape[0], max(EVAL_EXAMPLES, spec.batch_size))
    rows = spec.batch_size if arch is not None and arch.normalization.kind == "batchnorm" else n
    total, count = 0.0, 0
    with torch.no_grad():
        st = net.state()
        for start in range(0, n - rows + 1, rows):
            h = forward(spec, st, x_all[start : start + rows])
            total += float(st.rnd(task_loss(task.loss, st.rnd(h), y_all[start : start + rows])).double()) * rows
            count += rows
    return total / count


def _layer_series(
    net: _Net,
    w0: list[Tensor],
    grad_norms: list[Tensor],
    update_norms: list[Tensor],
    weight_norms: list[Tensor],
    overflow: list[Tensor],
    underflow: list[Tensor | None],
) -> list[TrainingLayer]:
    """The per-step stacks (steps, layers) → per-layer series, in one conversion each."""
    g = torch.stack(grad_norms).T.tolist()
    ratio = (torch.stack(update_norms) / torch.stack(weight_norms)).T.tolist()
    over = torch.stack(overflow).T.tolist()
    under = torch.stack(underflow).T.tolist() if underflow and underflow[0] is not None else None  # type: ignore[arg-type]
    with torch.no_grad():
        dist = [
            float(torch.linalg.vector_norm(w.detach().double() - a) / torch.linalg.vector_norm(a))
            for w, a in zip(net.master_w, w0, strict=True)
        ]
    layers = []
    for t in range(len(w0)):
        norms = [v if math.isfinite(v) else None for v in g[t]]
        layers.append(
            TrainingLayer(
                index=t + 1,
                grad_norm=norms,
                log10_grad_norm=[math.log10(v) if v is not None and v > 0 else None for v in norms],
                update_ratio=[v if math.isfinite(v) else None for v in ratio[t]],
                overflow_count=[int(v) for v in over[t]],
                underflow_count=[int(v) for v in under[t]] if under is not None else [None] * len(g[t]),
                distance_from_init=dist[t] if math.isfinite(dist[t]) else None,
                did_not_learn=False,  # decided against the best layer in training_summary.summarize
            )
        )
    return layers
