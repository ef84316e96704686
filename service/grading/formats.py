"""A GradeResult written for its reader: the service's JSON, Gradescope, or PrairieLearn.

Gradescope: https://gradescope-autograders.readthedocs.io/en/latest/specs/ (results.json).
PrairieLearn: https://prairielearn.readthedocs.io/en/latest/externalGrading/ (grading results).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from html import escape
from typing import Any, Protocol

from .model import CheckResult, GradeResult


class Picture(Protocol):
    """A plot that travels inside a result (service.plots.picture.Picture): the grading domain only reads it."""

    @property
    def label(self) -> str: ...
    @property
    def data_url(self) -> str: ...
    def html(self) -> str: ...


FORMATS: tuple[str, ...] = ("json", "gradescope", "prairielearn")


HIDDEN_KIND = "hidden"  # the kind a student view gives a non-visible check


def gate_note(check: CheckResult, name_it: bool) -> str:
    """The message of a check that passed but lost its points to a failed required check."""
    who = f"the required check {check.gated_by!r}" if name_it else "a hidden required check"
    return f"No points: {who} failed. ({check.message})"


def _in_full(check: CheckResult) -> CheckResult:
    """The instructor's view of one check: the gate named."""
    if check.gated_by is None:
        return check
    return dataclasses.replace(check, message=gate_note(check, True))


def _shown_no_later(gate: str, check: str) -> bool:
    """Whether whoever sees a check with visibility `check` may also see one with visibility `gate`."""
    return gate == "visible" or gate == check or check == "hidden"


def _on_the_platform(check: CheckResult) -> CheckResult:
    """A Gradescope test as the platform will show it (it hides each test by its own visibility).

    A test shows a gate only where the gate is shown no later than the test; otherwise the test shows
    its own outcome and the gate's effect stays in the top-level score, which Gradescope hides while
    any test is hidden, so a student never learns a hidden check's outcome from a visible test."""
    if check.gated_by is None:
        return check
    if _shown_no_later(check.gate_visibility, check.visibility):
        return _in_full(check)
    return dataclasses.replace(check, passed=True, points=check.max_points, gated_by=None)


def student_view(result: GradeResult) -> GradeResult:
    """What a student may read: every check counts; a non-visible one only as "Hidden check k".

    A hidden check keeps its points and passed/failed (the score would give them away anyway), never
    its name, kind, message or bounds; a visible check that lost its points to a hidden required check
    says "a hidden required check failed", never which. PrairieLearn shows its results as they are, so
    `to_prairielearn` always writes this view; student keys get it in every format."""
    if result.audience == "student":
        return result
    checks: list[CheckResult] = []
    hidden = 0
    for c in result.checks:
        if c.visibility == "visible":
            named = c.gated_by is not None and c.gate_visibility == "visible"
            message = c.message if c.gated_by is None else gate_note(c, named)
            checks.append(dataclasses.replace(c, message=message, gated_by=None))
            continue
        hidden += 1
        status = "No points: a required check failed." if c.gated_by else ("Passed." if c.passed else "Failed.")
        checks.append(
            CheckResult(f"Hidden check {hidden}", HIDDEN_KIND, c.passed, c.points, c.max_points, c.visibility, status)
        )
    return dataclasses.replace(
        result,
        checks=checks,
        hidden_checks=hidden,
        hidden_points=sum(c.max_points for c in checks if c.kind == HIDDEN_KIND),
        audience="student",
    )


def _footer(result: GradeResult) -> str:
    lines = []
    if result.hidden_checks:
        lines.append(
            f"{result.hidden_checks} hidden check(s) worth {result.hidden_points:g} point(s) count in the score; "
            "they are shown only as passed or failed."
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
            for c in map(_in_full, result.checks)
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


def to_gradescope(result: GradeResult, execution_time: float, pictures: Sequence[Picture] = ()) -> dict[str, Any]:
    """results.json: every test with its visibility, for Gradescope to hide; the top-level score is the
    true total (it overrides the tests' sum where a hidden required check took visible tests' points).

    With pictures the output is HTML (output_format "html"): the escaped text, then each plot as
    an <img> with a data URL, since Gradescope shows only what results.json carries."""
    output = _output(result)
    images = "\n".join(p.html() for p in pictures)
    return {
        "score": result.score,
        "execution_time": round(execution_time, 3),
        "output": f"<pre>{escape(output)}</pre>\n{images}" if pictures else output,
        "output_format": "html" if pictures else "text",
        "tests": [
            {
                "name": c.name,
                "score": c.points,
                "max_score": c.max_points,
                "status": "passed" if c.passed else "failed",
                "output": c.message,
                "visibility": c.visibility,
            }
            for c in map(_on_the_platform, result.checks)
        ],
        "extra_data": {
            "report_id": result.report_id,
            "engine_version": result.engine_version,
            "gradable": result.gradable,
        },
    }


def to_prairielearn(result: GradeResult, pictures: Sequence[Picture] = ()) -> dict[str, Any]:
    """External-grader results; a refused spec is `gradable: false` (no attempt is used up).

    PrairieLearn shows the whole file to the student, so it is always the student view. Pictures go
    to `images` as {"label", "url": data URL}, as PrairieLearn documents."""
    result = student_view(result)
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
    if pictures:
        out["images"] = [{"label": p.label, "url": p.data_url} for p in pictures]
    return out


def render(
    result: GradeResult, fmt: str, execution_time: float = 0.0, pictures: Sequence[Picture] = ()
) -> dict[str, Any]:
    if fmt == "gradescope":
        return to_gradescope(result, execution_time, pictures)
    if fmt == "prairielearn":
        return to_prairielearn(result, pictures)
    return to_json(result)
