"""Tolerance and range comparison of a report value with a target, with the reason it failed."""

from __future__ import annotations

import math
from typing import Any

from .model import Target


def is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def fmt(value: Any) -> str:
    """A number as a student reads it (4 significant digits); anything else as JSON would show it."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if is_number(value):
        return f"{value:.4g}"
    return repr(value) if isinstance(value, str) else str(value)


def within(actual: float, expected: float, abs_tol: float, rel_tol: float) -> bool:
    return math.isclose(actual, expected, abs_tol=abs_tol, rel_tol=rel_tol)


def tolerance_text(expected: float, abs_tol: float, rel_tol: float) -> str:
    allowed = max(abs_tol, rel_tol * abs(expected))
    return f"±{allowed:.3g}" if allowed > 0 else "exactly"


def describe(target: Target) -> str:
    """The target in words: `-2 ≤ value ≤ 2`, `0.5 ±0.01`, `'stable'`."""
    parts = []
    if target.has_expected:
        if is_number(target.expected):
            parts.append(f"{fmt(target.expected)} {tolerance_text(target.expected, target.abs_tol, target.rel_tol)}")  # type: ignore[arg-type]
        else:
            parts.append(fmt(target.expected))
    if target.min is not None and target.max is not None:
        parts.append(f"between {fmt(target.min)} and {fmt(target.max)}")
    elif target.min is not None:
        parts.append(f"at least {fmt(target.min)}")
    elif target.max is not None:
        parts.append(f"at most {fmt(target.max)}")
    return ", ".join(parts)


def meets(actual: Any, target: Target) -> tuple[bool, str]:
    """(passed, why not): why is empty when it passed."""
    numeric = target.min is not None or target.max is not None or is_number(target.expected)
    if numeric:
        if actual is None:
            return False, "the report has no finite value there (null: it overflowed or is undefined)"
        if not is_number(actual):
            return False, f"the report's value there is {fmt(actual)}, not a number"
        if target.has_expected and not within(actual, target.expected, target.abs_tol, target.rel_tol):  # type: ignore[arg-type]
            return False, f"it is {fmt(actual)}, expected {describe(target)}"
        if (target.min is not None and actual < target.min) or (target.max is not None and actual > target.max):
            return False, f"it is {fmt(actual)}, expected {describe(target)}"
        return True, ""
    if type(actual) is not type(target.expected) or actual != target.expected:
        return False, f"it is {fmt(actual)}, expected {fmt(target.expected)}"
    return True, ""
