"""Hand-written report dicts in the contract's shape (what ReportSchema dumps), for unit tests."""

from __future__ import annotations

import math
from typing import Any


def make_report(
    *,
    depth: int = 50,
    growth_per_layer: float = 0.24,
    verdict: str | None = None,
    dtype: str = "float32",
    overflow_layer: int | None = None,
    underflow_layer: int | None = None,
) -> dict[str, Any]:
    total = (depth - 1) * math.log10(growth_per_layer)
    if verdict is None:
        verdict = "vanishing" if total < -2 else "exploding" if total > 2 else "stable"

    def event(layer: int | None, quantity: str) -> dict[str, Any]:
        return {
            "occurred": layer is not None,
            "first_layer": layer,
            "quantity": quantity if layer else None,
            "fraction": 0.5 if layer else None,
        }

    return {
        "id": "ab" * 32,
        "engine_version": "1.0.0",
        "depth": depth,
        "loss": 1.0,
        "loss_status": "ok",
        "layers": [
            {
                "index": t,
                "in_features": 16,
                "out_features": 16,
                "weight_grad": {"norm": 10 ** (total * (depth - t) / max(depth - 1, 1)), "zero_fraction": 0.0},
            }
            for t in range(1, depth + 1)
        ],
        "diagnosis": {
            "verdict": verdict,
            "log10_total_growth": total,
            "growth_per_layer": growth_per_layer,
            "overflow": event(overflow_layer, "forward_activation"),
            "underflow": event(underflow_layer, "weight_grad"),
            "dtype_limits": {"dtype": dtype, "max": 65504.0, "smallest_normal": 6.1e-05},
            "causes": [
                {
                    "code": "small_derivative",
                    "message": "σ' ≤ 1/4 for sigmoid, so each factor diag(σ')W shrinks the gradient",
                }
            ],
            "recommendations": [],
            "summary": "",
        },
        "runtime": {"dtype": dtype, "engine_version": "1.0.0"},
    }
