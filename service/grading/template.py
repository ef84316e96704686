"""Instructor feedback templates: `{name}` or `{/json/pointer}`, each with an optional `:format`.

Example: "Your net grows by {/diagnosis/growth_per_layer:.3g} per layer; {story}". Names are
checked when the rubric is loaded (a typo fails the load, not a student's grade); a pointer
that names nothing in a particular report renders as `n/a`.
"""

from __future__ import annotations

import re
from typing import Any

from .pointer import PointerError, resolve

PLACEHOLDER = re.compile(r"\{([^{}:]*)(?::([^{}]*))?\}")
# What a template may name besides pointers: filled by the grader for every check.
NAMES: dict[str, str] = {
    "actual": "the value the check looked at (report value, answer or spec field)",
    "expected": "what the check expected, in words",
    "answer": "the student's answer (answer checks)",
    "verdict": "exploding, vanishing or stable",
    "depth": "the number of layers d",
    "growth_per_layer": "the per-layer factor 10^(log10_total_growth/(d−1))",
    "log10_total_growth": "log10 of the RMS gain of the whole Jacobian product",
    "total_growth": "10^log10_total_growth, written like 4e-31",
    "story": "the analysis in the lecture's terms",
    "report_id": "the report's id (sha256 of the normalised spec, Jacobian method and engine version)",
}


def problems(template: str) -> list[str]:
    """What is wrong with a template: unknown names, stray braces."""
    out = []
    stripped = template.replace("{{", "").replace("}}", "")
    for match in PLACEHOLDER.finditer(stripped):
        name = match.group(1).strip()
        if not name.startswith("/") and name not in NAMES:
            out.append(
                f"unknown placeholder {{{name}}}; use a JSON pointer like {{/diagnosis/verdict}} "
                f"or one of {', '.join(sorted(NAMES))}"
            )
    leftover = PLACEHOLDER.sub("", stripped)
    if "{" in leftover or "}" in leftover:
        out.append("unbalanced brace: write {{ or }} for a literal brace")
    return out


def render(template: str, values: dict[str, Any], report: dict[str, Any] | None) -> str:
    """Fill a template; a value that cannot be formatted with the given spec is shown as is."""

    def fill(match: re.Match[str]) -> str:
        name, spec = match.group(1).strip(), match.group(2) or ""
        if name.startswith("/"):
            try:
                value = resolve(report, name) if report is not None else None
            except PointerError:
                return "n/a"
        else:
            value = values.get(name)
        if value is None:
            return "n/a"
        try:
            return format(value, spec)
        except (TypeError, ValueError):
            return str(value)

    parts = template.split("{{")
    return "{".join("}".join(PLACEHOLDER.sub(fill, seg) for seg in p.split("}}")) for p in parts)
