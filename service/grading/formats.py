"""A GradeResult written for its reader: the service's JSON, Gradescope, or PrairieLearn.

Gradescope: https://gradescope-autograders.readthedocs.io/en/latest/specs/ (results.json).
PrairieLearn: https://prairielearn.readthedocs.io/en/latest/externalGrading/ (grading results).
"""

from __future__ import annotations

import dataclasses
from html import escape
from typing import Any, Protocol

from .model import GradeResult


class Picture(Protocol):
    """A plot that travels inside a result (service.plots.picture.Picture): the grading domain only reads it."""

    @property
    def label(self) -> str: ...
    @property
    def data_url(self) -> str: ...
    def html(self) -> str: ...


FORMATS: tuple[str, ...] = ("json", "gradescope", "prairielearn")


def student_view(result: GradeResult) -> GradeResult:
    """Only the checks a student may see now; the rest are counted, never described.

    Gradescope shows hidden, after_due_date and after_published tests to students later or
    never, and then hides the total too; a student key gets the visible part and a count.
    """
    shown = [c for c in result.checks if c.visibility == "visible"]
    kept = [c for c in result.checks if c.visibility != "visible"]
    return dataclasses.replace(
        result,
        checks=shown,
        hidden_checks=result.hidden_checks + len(kept),
        hidden_points=result.hidden_points + sum(c.max_points for c in kept),
    )


def _footer(result: GradeResult) -> str:
    lines = []
    if result.hidden_checks:
        lines.append(
            f"{result.hidden_checks} further check(s) worth {result.hidden_points:g} point(s) are graded but not shown."
        )
    if result.report_id:
        lines.append(
            f"Report {result.report_id} (engine {result.engine_version}): re-run this spec to re-check the grade."
        )
    return "\n".join(lines)


def _output(result: GradeResult) -> str:
    return "\n".join(p for p in (result.summary, _footer(result)) if p)


def to_json(result: GradeResult) -> dict[str, Any]:
    out: dict[str, Any] = {
        "gradable": result.gradable,
        "score": result.score,
        "max_score": result.max_score,
        "fraction": result.fraction,
        "checks": [
            {
                "name": c.name,
                "kind": c.kind,
                "passed": c.passed,
                "points": c.points,
                "max_points": c.max_points,
                "visibility": c.visibility,
                "message": c.message,
            }
            for c in result.checks
        ],
        "summary": result.summary,
        "report": {"id": result.report_id, "engine_version": result.engine_version, "verdict": result.verdict},
        "hidden": {"checks": result.hidden_checks, "points": result.hidden_points},
    }
    if result.errors:
        out["errors"] = result.errors
    if result.cache_hit is not None:
        out["cache"] = {"hit": result.cache_hit}
    return out


def to_gradescope(result: GradeResult, execution_time: float, picture: Picture | None = None) -> dict[str, Any]:
    """results.json: the top-level score is the sum of the tests' (Gradescope would sum them too).

    With a picture the output is HTML (output_format "html"): the escaped text, then the plot as
    an <img> with a data URL, since Gradescope shows only what results.json carries."""
    output = _output(result)
    return {
        "score": result.score,
        "execution_time": round(execution_time, 3),
        "output": output if picture is None else f"<pre>{escape(output)}</pre>\n{picture.html()}",
        "output_format": "text" if picture is None else "html",
        "tests": [
            {
                "name": c.name,
                "score": c.points,
                "max_score": c.max_points,
                "status": "passed" if c.passed else "failed",
                "output": c.message,
                "visibility": c.visibility,
            }
            for c in result.checks
        ],
        "extra_data": {
            "report_id": result.report_id,
            "engine_version": result.engine_version,
            "gradable": result.gradable,
        },
    }


def to_prairielearn(result: GradeResult, picture: Picture | None = None) -> dict[str, Any]:
    """External-grader results; a refused spec is `gradable: false` (no attempt is used up).

    A picture goes to `images` as {"label", "url": data URL}, as PrairieLearn documents."""
    if not result.gradable:
        return {
            "gradable": False,
            "format_errors": result.errors,
            "message": result.summary,
            "output": _output(result),
            "tests": [],
        }
    out = {
        "gradable": True,
        "score": result.fraction,
        "points": result.score,
        "max_points": result.max_score,
        "message": f"{result.score:g} of {result.max_score:g} points.",
        "output": _output(result),
        "tests": [
            {"name": c.name, "points": c.points, "max_points": c.max_points, "message": c.message}
            for c in result.checks
        ],
    }
    if picture is not None:
        out["images"] = [{"label": picture.label, "url": picture.data_url}]
    return out


def render(
    result: GradeResult, fmt: str, execution_time: float = 0.0, picture: Picture | None = None
) -> dict[str, Any]:
    if fmt == "gradescope":
        return to_gradescope(result, execution_time, picture)
    if fmt == "prairielearn":
        return to_prairielearn(result, picture)
    return to_json(result)
