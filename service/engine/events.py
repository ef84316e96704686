"""Overflow and underflow of the pass, layer by layer, against the exact reference.

Overflow: inf/NaN in the pass dtype. Underflow is range: a value that is 0 in the pass dtype
and non-zero but below the dtype's smallest normal number in exact arithmetic (times the loss
scale for the gradients, which the pass holds scaled). A value that is 0 in the pass although
its exact magnitude lies inside the normal range was lost to rounding (products summing to an
exact 0): that is cancellation, reported apart. Zeros that are zero in exact arithmetic too (a
ReLU's dead units) are structure, neither. A layer is flagged when more than
`thresholds.flag_fraction` of its values, and at least `thresholds.flag_min_count` of them, are hit.
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
GRADIENTS = ("output_grad", "weight_grad")


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


def _reference_gradients(
    spec: ModelSpec, params: Parameters, ref: Reference
) -> tuple[list[Tensor], list[WeightGradLog]]:
    """ln |exact ∂ℓ/∂h^t| per layer (float64, log domain; -inf where exactly 0) and ∂ℓ/∂W^t in factored form."""
    d = spec.depth
    g_dir, g_log = ref.top_grad_dir, ref.top_grad_log_scale  # (B, n_d), (B,)
    out_logs: list[Tensor] = [torch.empty(0)] * d
    w_logs: list[WeightGradLog | None] = [None] * d
    for t in range(d, 0, -1):
        out_logs[t - 1] = torch.log(g_dir.abs()) + g_log[:, None]
        g_z = g_dir * ref.layers[t - 1].sigma_prime  # (B, n_t), scale g_log
        if t > 1:
            h_dir, h_log = ref.layers[t - 2].h_dir, ref.layers[t - 2].h_log_scale
        else:
            norm = torch.linalg.vector_norm(params.x, dim=1)
            h_dir, h_log = params.x / torch.where(norm > 0, norm, 1.0)[:, None], torch.log(norm)
        log_w = g_log + h_log
        finite = torch.isfinite(log_w)
        top = log_w[finite].max() if bool(finite.any()) else torch.tensor(0.0, dtype=torch.float64)
        weight = torch.where(finite, torch.exp(log_w - top), torch.zeros_like(log_w))
        w_logs[t - 1] = WeightGradLog(weight, g_z, h_dir, top)
        g_next = g_z @ params.weights[t - 1]
        norm = torch.linalg.vector_norm(g_next, dim=1)
        g_dir = g_next / torch.where(norm > 0, norm, 1.0)[:, None]
        g_log = g_log + torch.log(norm)
    return out_logs, [w for w in w_logs if w is not None]


def reference_log_magnitudes(spec: ModelSpec, params: Parameters, ref: Reference) -> tuple[list[Tensor], list[Tensor]]:
    """ln |exact value| of every ∂ℓ/∂h^t and ∂ℓ/∂W^t (float64, log domain; -inf where exactly 0), per layer."""
    out_logs, w_logs = _reference_gradients(spec, params, ref)
    return out_logs, [w.dense() for w in w_logs]


def range_events(
    spec: ModelSpec, params: Parameters, ref: Reference, result: PassResult, layers: list[LayerReport]
) -> tuple[RangeEvent, RangeEvent, RangeEvent]:
    """(overflow, underflow, cancellation) for the forward activations, ∂ℓ/∂h^t and ∂ℓ/∂W^t of every layer.

    The non-finite fractions come from the layers' statistics (already counted there).
    """
    out_logs, w_logs = _reference_gradients(spec, params, ref)
    frac, min_count = spec.thresholds.flag_fraction, spec.thresholds.flag_min_count
    ln_tiny = math.log(float(torch.finfo(TORCH_DTYPES[spec.dtype]).tiny))
    ln_scale = math.log(spec.loss_scale)
    hits: dict[str, dict[str, list[tuple[int, float]]]] = {
        kind: {FORWARD: [], "output_grad": [], "weight_grad": []} for kind in ("over", "under", "cancel")
    }
    for t in range(1, spec.depth + 1):
        lr, lref = layers[t - 1], ref.layers[t - 1]
        quads = (
            (FORWARD, result.outputs[t - 1], torch.log(lref.h_dir.abs()) + lref.h_log_scale[:, None], 0.0),
            ("output_grad", result.output_grads[t - 1], out_logs[t - 1], ln_scale),
            ("weight_grad", result.weight_grads[t - 1], w_logs[t - 1], ln_scale),
        )
        f_overs = (
            lr.activation.output_nonfinite_fraction,
            lr.output_grad.nonfinite_fraction,
            lr.weight_grad.nonfinite_fraction,
        )
        for (name, values, exact_log, shift), f_over in zip(quads, f_overs, strict=True):
            zero = values.detach().cpu() == 0
            n = zero.numel()
            if f_over > frac and round(f_over * n) >= min_count:
                hits["over"][name].append((t, f_over))
            if not bool(zero.any()):
                continue
            # ln |value| as the pass would hold it (gradients times the loss scale), where it holds a zero
            at_zero = (exact_log.at(zero) if isinstance(exact_log, WeightGradLog) else exact_log[zero]) + shift
            exact_nonzero = torch.isfinite(at_zero)  # -inf: exactly 0 (a dead unit), structure
            below = exact_nonzero & (at_zero < ln_tiny)
            for kind, mask in (("under", below), ("cancel", exact_nonzero & ~below)):
                count = int(mask.sum())
                if count / n > frac and count >= min_count:
                    hits[kind][name].append((t, count / n))
    overflow = _combine(hits["over"], spec.depth)
    if not _finite(result.loss) and not overflow.occurred:
        overflow = RangeEvent(True, spec.depth, "loss", 1.0, 1, {"loss": QuantityEvent(spec.depth, 1, 1.0)})
    elif not _finite(result.loss):
        overflow.by_quantity["loss"] = QuantityEvent(spec.depth, 1, 1.0)
    return overflow, _combine(hits["under"], spec.depth), _combine(hits["cancel"], spec.depth)


def _finite(x: float) -> bool:
    return x == x and abs(x) != float("inf")


def _combine(hits: dict[str, list[tuple[int, float]]], depth: int) -> RangeEvent:
    by_q: dict[str, QuantityEvent] = {}
    for name, layers in hits.items():
        if not layers:
            continue
        first = min(layers) if name == FORWARD else max(layers)
        by_q[name] = QuantityEvent(
            first_layer=first[0], layer_count=len(layers), max_fraction=max(f for _, f in layers)
        )
    for name in (*GRADIENTS, FORWARD):
        if name in by_q:
            first_t = by_q[name].first_layer
            assert first_t is not None
            frac = dict(hits[name])[first_t]
            return RangeEvent(True, first_t, name, frac, depth - first_t + 1, by_q)
    return RangeEvent(False, None, None, None, None, by_q)
