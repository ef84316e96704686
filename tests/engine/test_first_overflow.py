"""What "first" means in overflow/underflow (issue 24): the first flagged value in the order the computation
reaches it (forward h^1 … h^d, the loss, then ∂ℓ/∂h^t and ∂ℓ/∂W^t for t = d … 1), the headline naming which
quantity; each quantity's own first layer in by_quantity.

The expected layers come from the exact values (float64 products of the drawn weights, no float16 anywhere):
a layer is flagged where more than flag_fraction, and at least flag_min_count, of its exact magnitudes pass
float16's largest finite value. Rounding to float16 near 65504 can move a layer by one.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from schemas import ModelSpecSchema
from service.engine import analyze
from service.engine.network import make_parameters

from .conftest import make_spec

FLOAT16_MAX = 65504.0
EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "specs" / "lecture_identity_depth100.json"


def _identity_float16(**fields):
    return make_spec(activation="identity", dtype="float16", batch_size=2, **fields)


def _computation_order(d: int) -> list[tuple[str, int]]:
    """(quantity, layer) in the order the computation reaches them: forward, loss, then backward from the top."""
    order = [("forward_activation", t) for t in range(1, d + 1)] + [("loss", d)]
    return order + [(q, t) for t in range(d, 0, -1) for q in ("output_grad", "weight_grad")]


def _flagged(values: torch.Tensor, spec) -> bool:
    count = int((values.abs() > FLOAT16_MAX).sum())
    return count > spec.thresholds.flag_fraction * values.numel() and count >= spec.thresholds.flag_min_count


def _exact_firsts(spec) -> tuple[list[tuple[str, int]], dict[str, int]]:
    """Identity nets, ℓ = Σ h^d: every flagged (quantity, layer) in the order of the computation, and each
    quantity's first, from float64 products."""
    params = make_parameters(spec)
    d = spec.depth
    hs = [params.x]
    for w in params.weights:
        hs.append(hs[-1] @ w.T)  # (B, n_t)
    grads = {d: torch.ones_like(hs[d])}  # ∂ℓ/∂h^d = 1
    for t in range(d, 1, -1):
        grads[t - 1] = grads[t] @ params.weights[t - 1]
    order = _computation_order(d)
    values = {
        "forward_activation": lambda t: hs[t],
        "loss": lambda t: hs[d].sum().reshape(1),
        "output_grad": lambda t: grads[t],
        "weight_grad": lambda t: grads[t].T @ hs[t - 1],  # Σ_b ∂ℓ/∂h^t_b ⊗ h^{t-1}_b
    }
    hits = [(q, t) for q, t in order if _flagged(values[q](t), spec)]
    firsts: dict[str, int] = {}
    for q, t in hits:
        firsts.setdefault(q, t)
    return hits, firsts


def test_the_lecture_example_overflows_first_in_the_forward_pass() -> None:
    """The README's example (identity, width 4, normal 1, depth 100, float16): engine 1.3 said layer 82
    (output_grad); the computation reaches the forward pass's inf at layer ~20 first, ∂ℓ/∂W^100 next."""
    spec = ModelSpecSchema().load({**json.loads(EXAMPLE.read_text()), "verify_recommendations": False})
    hits, firsts = _exact_firsts(spec)
    over = analyze(spec).diagnosis.overflow
    assert hits[0][0] == "forward_activation" and over.quantity == "forward_activation"
    assert abs(over.first_layer - firsts["forward_activation"]) <= 1
    assert over.layers_from_top == spec.depth - over.first_layer + 1
    by_q = over.by_quantity
    assert abs(by_q["forward_activation"].first_layer - firsts["forward_activation"]) <= 1
    assert by_q["weight_grad"].first_layer == firsts["weight_grad"] == spec.depth
    assert abs(by_q["output_grad"].first_layer - firsts["output_grad"]) <= 1
    assert f"first at layer {over.first_layer} (forward activations)" in analyze(spec).diagnosis.summary


def test_a_gradient_that_overflows_alone_is_first_at_the_top_most_layer() -> None:
    """Orthogonal ×1.5 with small inputs: the forward pass stays finite, ∂ℓ/∂h^t = 1.5^(d−t)·(…) overflows about
    25 layers below the top, ∂ℓ/∂W^t = ∂ℓ/∂h^t ⊗ h^(t−1) ~ 1.5^(d−1)·1e-4 never does."""
    spec = _identity_float16(layers={"depth": 40, "width": 16}, init="orthogonal", weight_scale=1.5, input_scale=1e-4)
    _, firsts = _exact_firsts(spec)
    assert set(firsts) == {"output_grad"}  # the premise, from the exact values
    over = analyze(spec).diagnosis.overflow
    assert over.quantity == "output_grad" and abs(over.first_layer - firsts["output_grad"]) <= 1
    # the pass's ∂ℓ/∂W^t = ∂ℓ/∂h^t ⊗ h^(t−1) is inf wherever ∂ℓ/∂h^t is: reached just after it, at the same layer
    assert "forward_activation" not in over.by_quantity
    assert over.by_quantity["weight_grad"].first_layer == over.first_layer


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_the_headline_is_the_first_quantity_the_computation_reaches(seed: int) -> None:
    """Whatever the spec, the headline is the by_quantity entry the computation reaches first."""
    spec = _identity_float16(layers={"depth": 60, "width": 8}, init="normal", weight_scale=0.5, seed=seed)
    over = analyze(spec).diagnosis.overflow
    if not over.occurred:
        pytest.skip("no overflow at this seed")
    order = _computation_order(spec.depth)
    reached = [(q, e.first_layer) for q, e in over.by_quantity.items()]
    assert (over.quantity, over.first_layer) == min(reached, key=order.index)
