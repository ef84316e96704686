"""Feedback in the lecture's terms, computed from the report's own numbers.

The lecture explains a deep net's gradient as a product of d−1 layer Jacobians: a factor g per
layer gives g^(d−1) from the top layer to the bottom one (1.5^100 ≈ 4e17 explodes, 0.8^100 ≈
2e-10 vanishes), sigmoid's σ' ≤ 1/4 makes that factor small, and float16 turns both into
inf or 0 within a few dozen layers. These sentences restate a report that way for a student.
"""

from __future__ import annotations

import math
from typing import Any


def power_of_ten(log10_value: float) -> str:
    """10^x written as `4e-31` even where the float itself would underflow or overflow."""
    if -3 <= log10_value < 3:
        return f"{10**log10_value:.2g}"
    exponent = math.floor(log10_value)
    mantissa = round(10 ** (log10_value - exponent))
    if mantissa >= 10:  # rounding to one significant digit carried over
        mantissa, exponent = 1, exponent + 1
    return f"{mantissa}e{exponent}"


def growth_sentence(report: dict[str, Any]) -> str:
    """`your network's gradient shrinks by 0.24 per layer; after 49 layers ...`."""
    diag = report.get("diagnosis") or {}
    depth = report.get("depth")
    total = diag.get("log10_total_growth")
    per_layer = diag.get("growth_per_layer")
    if not isinstance(depth, int) or total is None:
        return "the analysis could not measure how the gradient changes from layer to layer"
    layers = max(depth - 1, 0)
    if layers == 0:
        return "your network has a single layer, so there is no product of Jacobians to grow or shrink"
    if per_layer is None:
        per_layer = 10 ** (total / layers) if abs(total / layers) < 300 else None
    factor = f"{per_layer:.2g}" if per_layer is not None else f"10^{total / layers:.2f}"
    ratio = power_of_ten(total)
    if total < 0:
        return (
            f"your network's gradient shrinks by {factor} per layer; after {layers} layers the first "
            f"layer's gradient is {ratio} of the last one's (the lecture's vanishing case: 0.8^100 ≈ 2e-10)"
        )
    if total > 0:
        return (
            f"your network's gradient grows by {factor} per layer; after {layers} layers the first "
            f"layer's gradient is {ratio} times the last one's (the lecture's exploding case: "
            "1.5^100 ≈ 4e17)"
        )
    return f"your network's gradient keeps its size: a factor of {factor} per layer over {layers} layers"


def range_sentences(report: dict[str, Any]) -> list[str]:
    """Overflow to inf and underflow to 0 in the pass dtype, with the dtype's range."""
    diag = report.get("diagnosis") or {}
    limits = diag.get("dtype_limits") or {}
    dtype = limits.get("dtype") or (report.get("runtime") or {}).get("dtype") or "the pass dtype"
    span = ""
    if limits.get("max") is not None and limits.get("smallest_normal") is not None:
        span = f" (its normal range is {limits['smallest_normal']:.2g} to {limits['max']:.3g})"
    out = []
    for key, what in (("overflow", "overflowed to inf/NaN"), ("underflow", "underflowed to 0")):
        event = diag.get(key) or {}
        if event.get("occurred"):
            where = f" first at layer {event['first_layer']}" if event.get("first_layer") else ""
            quantity = f" in {event['quantity'].replace('_', ' ')}" if event.get("quantity") else ""
            out.append(f"in {dtype}{span} values {what}{quantity}{where}")
    return out


def cause_sentences(report: dict[str, Any], limit: int = 2) -> list[str]:
    """The engine's own explanation of why (its `causes`), at most `limit` of them."""
    causes = (report.get("diagnosis") or {}).get("causes") or []
    return [c["message"] for c in causes[:limit] if isinstance(c, dict) and c.get("message")]


def explain(report: dict[str, Any]) -> str:
    """The whole story: verdict, growth per layer, overflow/underflow, causes."""
    verdict = (report.get("diagnosis") or {}).get("verdict")
    head = f"The gradient is {verdict}: " if verdict else ""
    sentences = [head + growth_sentence(report) + "."]
    sentences += [s[0].upper() + s[1:] + "." for s in range_sentences(report)]
    sentences += [s if s.endswith(".") else s + "." for s in cause_sentences(report)]
    return " ".join(sentences)
