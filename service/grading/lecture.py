"""Feedback in the lecture's terms, computed from the report's own numbers.

The sentences themselves live in `service.engine.narrative`, which the engine's own `causes` and
`summary` use too, so the grader and the report tell one story in one voice. These functions only
read the numbers out of a dumped report (a dict, as clients see it).
"""

from __future__ import annotations

from typing import Any

from service.engine import narrative
from service.engine.narrative import power_of_ten

__all__ = ["cause_sentences", "explain", "growth_sentence", "power_of_ten", "range_sentences"]


def growth_sentence(report: dict[str, Any]) -> str:
    """`your network's gradient shrinks by 0.24 per layer; after 49 layers ...`."""
    diag = report.get("diagnosis") or {}
    return narrative.growth_story(report.get("depth"), diag.get("log10_total_growth"), diag.get("growth_per_layer"))


def range_sentences(report: dict[str, Any]) -> list[str]:
    """Overflow to inf, underflow to 0 and cancellation in the pass dtype, with the dtype's range."""
    diag = report.get("diagnosis") or {}
    limits = diag.get("dtype_limits") or {}
    dtype = limits.get("dtype") or (report.get("runtime") or {}).get("dtype") or "the pass dtype"
    span = ""
    if limits.get("max") is not None and limits.get("smallest_normal") is not None:
        span = f" (its normal range is {limits['smallest_normal']:.2g} to {limits['max']:.3g})"
    out = []
    for kind in ("overflow", "underflow", "cancellation"):
        event = diag.get(kind) or {}
        if event.get("occurred"):
            out.append(narrative.range_story(dtype, kind, event.get("quantity"), event.get("first_layer"), span))
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
