"""Overflow and underflow of the pass, layer by layer, against the exact reference.

Overflow: inf/NaN in the pass dtype. Underflow is range: a value that is 0 in the pass dtype
and non-zero but below the dtype's smallest normal number in exact arithmetic (times the loss
scale for the gradients, which the pass holds scaled). A value that is 0 in the pass although
its exact magnitude lies inside the normal range was lost to rounding (products summing to an
exact 0): that is cancellation, reported apart. Zeros that are zero in exact arithmetic too (a
ReLU's dead units) are structure, neither. A layer is flagged when more than
`thresholds.flag_fraction` of its values, and at least `thresholds.flag_min_count` of them, are hit.

"First" is the order in which the computation reaches a value: the forward pass h^1 … h^d, then the loss, then
backpropagation from the top, ∂ℓ/∂h^t and then ∂ℓ/∂W^t for t = d … 1. Each quantity's `first_layer` is its own
first in that order (the lowest t forward, the highest t for the gradients); the event's headline
`first_layer`/`quantity` is the earliest of them (the lecture's float16 product: the forward pass at layer 20,
before ∂ℓ/∂W^100 and ∂ℓ/∂h^82).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch

from .network import TORCH_DTYPES, Parameters, PassResult
from .reference import Reference
from .report import LayerReport, QuantityEvent, RangeEvent
from .spec import ModelSpec

Tensor = torch.Tensor
# Which end of the net a quantity is computed from: forward from the bottom, gradients from the top.
FORWARD = "forward_activation"
LOSS = "loss"


@dataclass
class WeightGradLog:
    """ln |exact ∂ℓ/∂W^t| = ln |Σ_b w_b g_z[b,i] h_dir[b,j]| + top, kept factored: the range events need it only
    where the pass holds a zero, which for a healthy net is nowhere (forming it costs n_t·n_{t-1} logs)."""

    weight: Tensor  # (B,) per-sample scales relative to e^top
    g_z: Tensor  # (B, n_t) ∂ℓ/∂z^t directions
    h_dir: Tensor  # (B, n_{t-1}) h^{t-1} directions
    top: Tensor  # () the largest per-sample log scale

    def dense(self) -> Tensor:
        return torch.log(torch.einsum("b,bi,bj->ij", self.weight, self.g_z, self.h_dir).abs()) + self.top

    def at(self, mask: Tensor) -> Tensor:
        """The values at mask's True entries (1-D, in mask's row-major order)."""
        if int(mask.sum()) * 4 > mask.numel():  # most of the layer: the dense product is cheaper
            return self.dense()[mask]
        rows, cols = mask.nonzero(as_tuple=True)
        vals = (self.weight[:, None] * self.g_z[:, rows] * self.h_dir[:, cols]).sum(dim=0)
        return torch.log(vals.abs()) + self.top


@dataclass
class Factored:
    """A layer's exact values as direction × e^scale per sample: (B, n) directions, (B,) ln scales."""

    dirs: Tensor
    log_scales: Tensor

    def logs(self) -> Tensor:
        return torch.log(self.dirs.abs()) + self.log_scales[:, None]


def _reference_gradients(
    spec: ModelSpec, params: Parameters, ref: Reference
) -> tuple[list[Factored], list[WeightGradLog]]:
    """Exact ∂ℓ/∂h^t per layer (float64, factored: its logs are -inf where exactly 0) and ∂ℓ/∂W^t, also factored.

    The backward recursion is per layer; each layer's ∂ℓ/∂W^t scales (Σ over samples of g ⊗ h, with
    per-sample log scales g_log + h_log relative to their largest finite one) are then formed for every
    layer at once.
    """
    d = spec.depth
    g_dir, g_log = ref.top_grad_dir, ref.top_grad_log_scale  # (B, n_d), (B,)
    out: list[Factored] = [Factored(g_dir, g_log)] * d
    g_zs: list[Tensor] = [g_dir] * d
    for t in range(d, 0, -1):
        out[t - 1] = Factored(g_dir, g_log)
        g_zs[t - 1] = g_z = g_dir * ref.layers[t - 1].sigma_prime  # (B, n_t), scale g_log
        if t > 1:
            g_next = g_z @ params.weights[t - 1]
            norm = torch.linalg.vector_norm(g_next, dim=1)
            g_dir = g_next / torch.where(norm > 0, norm, 1.0)[:, None]
            g_log = g_log + torch.log(norm)
    x_norm = torch.linalg.vector_norm(params.x, dim=1)
    inputs = [Factored(params.x / torch.where(x_norm > 0, x_norm, 1.0)[:, None], torch.log(x_norm))]
    inputs += [Factored(lr.h_dir, lr.h_log_scale) for lr in ref.layers[:-1]]  # h^{t-1}, t = 1..d
    g_z_scales = [o.log_scales for o in out]  # ∂ℓ/∂z^t = g_dir·σ' keeps ∂ℓ/∂h^t's scale
    return out, weight_grad_logs([Factored(g, s) for g, s in zip(g_zs, g_z_scales, strict=True)], inputs)


def weight_grad_logs(g_zs: list[Factored], inputs: list[Factored]) -> list[WeightGradLog]:
    """∂ℓ/∂W^t = Σ_b ∂ℓ/∂z^t_b ⊗ (input of layer t)_b, factored, from both factors per layer (each (B, ·) with
    per-sample log scales): the per-sample scales relative to each layer's largest finite one, for all layers
    at once."""
    log_w = torch.stack([g.log_scales for g in g_zs]) + torch.stack([h.log_scales for h in inputs])  # (d, B)
    finite = torch.isfinite(log_w)
    top = torch.where(finite, log_w, -math.inf).amax(dim=1)
    top = torch.where(torch.isfinite(top), top, 0.0)  # a layer with no finite scale: its weights are all 0
    weight = torch.where(finite, torch.exp(log_w - top[:, None]), 0.0)
    return [WeightGradLog(weight[t], g_zs[t].dirs, inputs[t].dirs, top[t]) for t in range(len(g_zs))]


def reference_log_magnitudes(spec: ModelSpec, params: Parameters, ref: Reference) -> tuple[list[Tensor], list[Tensor]]:
    """ln |exact value| of every ∂ℓ/∂h^t and ∂ℓ/∂W^t (float64, log domain; -inf where exactly 0), per layer."""
    outs, w_logs = _reference_gradients(spec, params, ref)
    return [o.logs() for o in outs], [w.dense() for w in w_logs]


@dataclass
class _Classes:
    """Per layer: zeros of the pass below the dtype's normal range in exact arithmetic, and zeros inside it."""

    under: list[int]
    cancel: list[int]


def _classify(ln_at_zero: Tensor, ln_tiny: float) -> tuple[int, int]:
    """(underflow, cancellation) counts among ln |exact value| of the pass's zeros (-inf: exactly 0, structure)."""
    exact_nonzero = torch.isfinite(ln_at_zero)
    below = exact_nonzero & (ln_at_zero < ln_tiny)
    under = int(below.sum())
    return under, int(exact_nonzero.sum()) - under


def _vector_classes(values: list[Tensor], exact: list[Factored], shift: float, ln_tiny: float) -> _Classes:
    """Activations or ∂ℓ/∂h^t of every layer: one copy to the host and one set of operations per group of
    equal-width layers (per-layer operations would cost more than the arithmetic, and on a GPU each read
    would synchronise)."""
    d = len(values)
    under, cancel = [0] * d, [0] * d
    groups: dict[tuple[int, ...], list[int]] = {}
    for i, v in enumerate(values):
        groups.setdefault(tuple(v.shape), []).append(i)
    for idx in groups.values():
        zero = torch.stack([values[i].detach() for i in idx]).eq(0)  # (k, B, n)
        if not bool(zero.any()):
            continue
        dirs = torch.stack([exact[i].dirs for i in idx])
        zero = zero.to(dirs.device)  # a no-op where the reference runs on the pass's device
        scales = torch.stack([exact[i].log_scales for i in idx])
        ln = torch.log(dirs.abs()) + scales[..., None] + shift  # ln |value| as the pass would hold it
        exact_nonzero = zero & torch.isfinite(ln)  # -inf: exactly 0 (a dead unit), structure
        below = exact_nonzero & (ln < ln_tiny)
        counts = torch.stack([below.flatten(1).sum(1), exact_nonzero.flatten(1).sum(1)]).tolist()
        for i, u, nz in zip(idx, *counts, strict=True):
            under[i], cancel[i] = u, nz - u
    return _Classes(under, cancel)


def _weight_grad_classes(grads: list[Tensor], exact: list[WeightGradLog], shift: float, ln_tiny: float) -> _Classes:
    """∂ℓ/∂W^t of every layer. A zero of the pass is structural where every term Σ_b g_z[b,i]·h[b,j] is exactly
    0 (a unit dead in every sample, say): one 0/1 GEMM of the exact factors' supports finds those, on the
    pass's device, so the exact values are formed only at the other zeros, which a healthy net does not have."""
    d = len(grads)
    under, cancel = [0] * d, [0] * d
    # one read for every layer's count; a layer's mask is formed again where it has any (a healthy net: none)
    counts = torch.stack([_live_zeros(g, w).sum() for g, w in zip(grads, exact, strict=True)]).tolist()
    for t, (count, g, w) in enumerate(zip(counts, grads, exact, strict=True)):
        if count:
            under[t], cancel[t] = _classify(w.at(_live_zeros(g, w).to(w.g_z.device)) + shift, ln_tiny)
    return _Classes(under, cancel)


def _live_zeros(grad: Tensor, exact: WeightGradLog) -> Tensor:
    """Zeros of the pass's ∂ℓ/∂W^t whose exact value has a non-zero term (n_t, n_{t-1}), on the pass's device."""
    rows = ((exact.g_z * exact.weight[:, None]) != 0).T.to(device=grad.device, dtype=torch.float32)  # (n_t, B)
    cols = (exact.h_dir != 0).to(device=grad.device, dtype=torch.float32)  # (B, n_prev)
    return grad.detach().eq(0) & ((rows @ cols) > 0)


def range_events(
    spec: ModelSpec,
    params: Parameters,
    ref: Reference,
    result: PassResult,
    layers: list[LayerReport],
    exact: tuple[list[Factored], list[WeightGradLog]] | None = None,
) -> tuple[RangeEvent, RangeEvent, RangeEvent]:
    """(overflow, underflow, cancellation) for the forward activations, ∂ℓ/∂h^t and ∂ℓ/∂W^t of every layer.

    The non-finite fractions come from the layers' statistics (already counted there). `exact`: the exact
    ∂ℓ/∂h^t and ∂ℓ/∂W^t where the caller has them (a block network's walk), else the plain MLP's recursion.
    """
    outs, w_logs = exact if exact is not None else _reference_gradients(spec, params, ref)
    frac, min_count = spec.thresholds.flag_fraction, spec.thresholds.flag_min_count
    ln_tiny = math.log(float(torch.finfo(TORCH_DTYPES[spec.dtype]).tiny))
    ln_scale = math.log(spec.loss_scale)
    forward = [Factored(lr.h_dir, lr.h_log_scale) for lr in ref.layers]
    quantities = (
        (FORWARD, result.outputs, _vector_classes(result.outputs, forward, 0.0, ln_tiny)),
        ("output_grad", result.output_grads, _vector_classes(result.output_grads, outs, ln_scale, ln_tiny)),
        ("weight_grad", result.weight_grads, _weight_grad_classes(result.weight_grads, w_logs, ln_scale, ln_tiny)),
    )
    hits: dict[str, dict[str, list[tuple[int, float]]]] = {
        kind: {FORWARD: [], "output_grad": [], "weight_grad": []} for kind in ("over", "under", "cancel")
    }
    for t in range(1, spec.depth + 1):
        lr = layers[t - 1]
        f_overs = (
            lr.activation.output_nonfinite_fraction,
            lr.output_grad.nonfinite_fraction,
            lr.weight_grad.nonfinite_fraction,
        )
        for (name, values, classes), f_over in zip(quantities, f_overs, strict=True):
            n = values[t - 1].numel()
            if f_over > frac and round(f_over * n) >= min_count:
                hits["over"][name].append((t, f_over))
            for kind, count in (("under", classes.under[t - 1]), ("cancel", classes.cancel[t - 1])):
                if count / n > frac and count >= min_count:
                    hits[kind][name].append((t, count / n))
    if not _finite(result.loss):
        hits["over"][LOSS] = [(spec.depth, 1.0)]
    return _combine(hits["over"], spec.depth), _combine(hits["under"], spec.depth), _combine(hits["cancel"], spec.depth)


def _finite(x: float) -> bool:
    return x == x and abs(x) != float("inf")


def computation_step(quantity: str, t: int, depth: int) -> int:
    """Where layer t's `quantity` comes in the order the computation reaches it: h^1 … h^d (1 … d), the loss
    (d + 1), then ∂ℓ/∂h^t and ∂ℓ/∂W^t for t = d … 1."""
    if quantity == FORWARD:
        return t
    if quantity == LOSS:
        return depth + 1
    return depth + 2 + 2 * (depth - t) + (quantity == "weight_grad")


def _combine(hits: dict[str, list[tuple[int, float]]], depth: int) -> RangeEvent:
    """Each quantity's first flagged layer and the event's headline: the first of them the computation reaches."""
    by_q: dict[str, QuantityEvent] = {}
    firsts: list[tuple[int, str, int, float]] = []  # (computation step, quantity, layer, fraction)
    for name, layers in hits.items():
        if not layers:
            continue
        t, frac = min(layers, key=lambda hit, name=name: computation_step(name, hit[0], depth))
        by_q[name] = QuantityEvent(first_layer=t, layer_count=len(layers), max_fraction=max(f for _, f in layers))
        firsts.append((computation_step(name, t, depth), name, t, frac))
    if not firsts:
        return RangeEvent(False, None, None, None, None, by_q)
    _, name, t, frac = min(firsts)
    return RangeEvent(True, t, name, frac, depth - t + 1, by_q)
