"""Overflow and underflow of the pass, layer by layer, against the exact reference.

Overflow: inf/NaN in the pass dtype. Underflow: a value that is non-zero in exact
arithmetic but 0 in the pass dtype; zeros that are zero in exact arithmetic too (a ReLU's
dead units) are structure, not underflow. A layer is flagged when more than
`thresholds.flag_fraction` of its values, and at least `thresholds.flag_min_count` of them, are hit.
"""

from __future__ import annotations

import torch

from .network import Parameters, PassResult
from .reference import Reference
from .report import LayerReport, QuantityEvent, RangeEvent
from .spec import ModelSpec

Tensor = torch.Tensor
# Which end of the net a quantity is computed from: forward from the bottom, gradients from the top.
FORWARD = "forward_activation"
GRADIENTS = ("output_grad", "weight_grad")


def reference_nonzero(spec: ModelSpec, params: Parameters, ref: Reference) -> tuple[list[Tensor], list[Tensor]]:
    """Masks of the exactly non-zero ∂ℓ/∂h^t and ∂ℓ/∂W^t (float64, log-domain, per layer)."""
    d = spec.depth
    g_dir, g_log = ref.top_grad_dir, ref.top_grad_log_scale  # (B, n_d), (B,)
    out_masks: list[Tensor] = [torch.empty(0)] * d
    w_masks: list[Tensor] = [torch.empty(0)] * d
    for t in range(d, 0, -1):
        out_masks[t - 1] = g_dir != 0
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
        w_masks[t - 1] = torch.einsum("b,bi,bj->ij", weight, g_z, h_dir) != 0
        g_next = g_z @ params.weights[t - 1]
        norm = torch.linalg.vector_norm(g_next, dim=1)
        g_dir = g_next / torch.where(norm > 0, norm, 1.0)[:, None]
        g_log = g_log + torch.log(norm)
    return out_masks, w_masks


def range_events(
    spec: ModelSpec, params: Parameters, ref: Reference, result: PassResult, layers: list[LayerReport]
) -> tuple[RangeEvent, RangeEvent]:
    """(overflow, underflow) for the forward activations, ∂ℓ/∂h^t and ∂ℓ/∂W^t of every layer.

    The non-finite fractions come from the layers' statistics (already counted there).
    """
    out_masks, w_masks = reference_nonzero(spec, params, ref)
    frac, min_count = spec.thresholds.flag_fraction, spec.thresholds.flag_min_count
    over: dict[str, list[tuple[int, float]]] = {FORWARD: [], "output_grad": [], "weight_grad": []}
    under: dict[str, list[tuple[int, float]]] = {FORWARD: [], "output_grad": [], "weight_grad": []}
    for t in range(1, spec.depth + 1):
        lr = layers[t - 1]
        quads = (
            (FORWARD, result.outputs[t - 1], ref.layers[t - 1].h_dir != 0, lr.activation.output_nonfinite_fraction),
            ("output_grad", result.output_grads[t - 1], out_masks[t - 1], lr.output_grad.nonfinite_fraction),
            ("weight_grad", result.weight_grads[t - 1], w_masks[t - 1], lr.weight_grad.nonfinite_fraction),
        )
        for name, values, exact_nonzero, f_over in quads:
            v = values.detach().cpu()
            n_under = int(((v == 0) & exact_nonzero).sum())
            f_under = n_under / v.numel()
            if f_over > frac and round(f_over * v.numel()) >= min_count:
                over[name].append((t, f_over))
            if f_under > frac and n_under >= min_count:
                under[name].append((t, f_under))
    overflow = _combine(over, spec.depth)
    if not _finite(result.loss) and not overflow.occurred:
        overflow = RangeEvent(True, spec.depth, "loss", 1.0, 1, {"loss": QuantityEvent(spec.depth, 1, 1.0)})
    elif not _finite(result.loss):
        overflow.by_quantity["loss"] = QuantityEvent(spec.depth, 1, 1.0)
    return overflow, _combine(under, spec.depth)


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
