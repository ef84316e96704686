"""Constraints on the submitted spec, compared on the normalised spec so that spellings agree.

A student who writes `{"depth": 50, "width": 16}` and one who writes the 51 widths have the
same `layers`; an omitted field equals its default. The view uses the request's wire names
(`layers`, `activation`, `init`, ...) plus three derived ones: depth, width, input_dim.
"""

from __future__ import annotations

from dataclasses import asdict
from typing import Any

from service.engine.spec import Architecture, ModelSpec, Residual, spec_dict, training_from_dict

from .compare import fmt

# architecture's members by dotted name, so a check can require or forbid one without spelling the whole object
ARCHITECTURE_MEMBERS: tuple[str, ...] = (
    "architecture.residual",
    "architecture.residual.every",
    "architecture.residual.branch_scale",
    "architecture.normalization.kind",
    "architecture.normalization.position",
)
# a recurrent spec's members (issue 21): "recurrent.steps": 300 pins the horizon while the cell may change
RECURRENT_MEMBERS: tuple[str, ...] = tuple(
    f"recurrent.{m}" for m in ("cell", "steps", "hidden", "input_dim", "stacked", "loss_at", "forget_bias")
)
DERIVED: tuple[str, ...] = ("depth", "width", "input_dim", *ARCHITECTURE_MEMBERS, *RECURRENT_MEMBERS)


def spec_view(spec: ModelSpec) -> dict[str, Any]:
    """The spec as wire-named plain values: activation is one name when every layer shares it."""
    raw = spec_dict(spec)
    widths = list(raw.pop("widths"))
    acts = list(raw.pop("activations"))
    view: dict[str, Any] = {"layers": widths, "activation": acts[0] if len(set(acts)) == 1 else acts}
    view.update(raw)
    hidden = widths[1:]
    view["depth"] = len(widths) - 1
    view["width"] = hidden[0] if len(set(hidden)) == 1 else None
    view["input_dim"] = widths[0]
    arch = view.get("architecture") or Architecture().as_dict()
    res, norm = arch["residual"], arch["normalization"]
    view["architecture.residual"] = res
    view["architecture.residual.every"] = res["every"] if res else None
    view["architecture.residual.branch_scale"] = res["branch_scale"] if res else None
    view["architecture.normalization.kind"] = norm["kind"]
    view["architecture.normalization.position"] = norm["position"] if norm["kind"] != "none" else None
    rec = view.get("recurrent")
    for name in RECURRENT_MEMBERS:
        view[name] = rec[name.removeprefix("recurrent.")] if rec else None
    return view


def wire_fields(view: dict[str, Any]) -> list[str]:
    return [k for k in view if k not in DERIVED]


def normalise_expected(name: str, value: Any) -> Any:
    """An instructor's `equals` value in the view's form (a layers object → widths, 1 → 1.0)."""
    if name == "layers" and isinstance(value, dict) and "depth" in value and "width" in value:
        width = value["width"]
        return [value.get("input_dim", width)] + [width] * value["depth"]
    if name == "activation" and isinstance(value, list) and value and len(set(value)) == 1:
        return value[0]
    if name == "training" and isinstance(value, dict):  # defaults filled in, as the schema loads it
        return asdict(training_from_dict(value))
    if name == "architecture" and isinstance(value, dict):  # as the schema normalises it: defaults filled in
        arch = Architecture.from_dict(value)
        return None if arch.is_plain else arch.as_dict()
    if name == "architecture.residual" and isinstance(value, dict):
        return asdict(Residual(**value))
    return value


def _same(a: Any, b: Any) -> bool:
    if isinstance(a, bool) or isinstance(b, bool):
        return a is b
    return a == b


def _short(value: Any) -> str:
    """Widths lists can be long: show depth and the distinct widths instead."""
    if isinstance(value, list) and len(value) > 6:
        return f"[{', '.join(map(fmt, value[:3]))}, … {len(value)} items]"
    return fmt(value) if not isinstance(value, list | dict) else str(value)


def equals_failures(view: dict[str, Any], equals: dict[str, Any]) -> list[str]:
    out = []
    for name, expected in equals.items():
        want = normalise_expected(name, expected)
        have = view.get(name)
        if not _same(have, want):
            out.append(f"{name} must be {_short(want)}, yours is {_short(have)}")
    return out


def changed_fields(view: dict[str, Any], starter: dict[str, Any], may_change: tuple[str, ...]) -> list[str]:
    out = []
    for name in wire_fields(starter):
        if name in may_change:
            continue
        if not _same(view.get(name), starter.get(name)):
            out.append(f"{name} ({_short(starter.get(name))} → {_short(view.get(name))})")
    return out
