"""Evaluate a rubric against one analysed submission: pure functions of the report dict.

The report is the dumped JSON dict (what clients see), so a rubric's pointers read exactly
the contract's field names. Failure messages restate the numbers in the lecture's terms.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

from .compare import describe, fmt, is_number, meets, tolerance_text, within
from .constraints import changed_fields, equals_failures
from .lecture import explain, growth_sentence, power_of_ten
from .model import (
    AnswerCheck,
    Check,
    CheckResult,
    ConstraintCheck,
    GradeResult,
    Rubric,
    ValueCheck,
    VerdictCheck,
)
from .pointer import PointerError, resolve
from .template import render


@dataclass
class Context:
    """Everything a check may look at: the report, the student's spec view and answers."""

    report: dict[str, Any]
    view: dict[str, Any]
    answers: dict[str, Any] = field(default_factory=dict)
    starter_view: dict[str, Any] | None = None  # assignment defaults for constraint checks
    may_change: tuple[str, ...] | None = None
    story: str = ""

    def values(self) -> dict[str, Any]:
        diag = self.report.get("diagnosis") or {}
        total = diag.get("log10_total_growth")
        return {
            "verdict": diag.get("verdict"),
            "depth": self.report.get("depth"),
            "growth_per_layer": diag.get("growth_per_layer"),
            "log10_total_growth": total,
            "total_growth": power_of_ten(total) if total is not None else None,
            "story": self.story,
            "report_id": self.report.get("id"),
        }


@dataclass
class Outcome:
    passed: bool
    message: str
    actual: Any = None
    expected: Any = None


def _verdict(check: VerdictCheck, ctx: Context) -> Outcome:
    verdict = (ctx.report.get("diagnosis") or {}).get("verdict")
    want = " or ".join(check.expected)
    if verdict in check.expected:
        return Outcome(True, f"The gradient is {verdict}, as required.", verdict, want)
    return Outcome(False, f"Expected the gradient to be {want}, but it is {verdict}: {ctx.story}", verdict, want)


def _lookup(pointer: str, ctx: Context) -> tuple[Any, str | None]:
    try:
        return resolve(ctx.report, pointer), None
    except PointerError as exc:
        return None, f"The report has no value at {pointer} ({exc})."


def _value(check: ValueCheck, ctx: Context) -> Outcome:
    actual, missing = _lookup(check.pointer, ctx)
    expected = describe(check.target)
    if missing:
        return Outcome(False, missing, None, expected)
    ok, why = meets(actual, check.target)
    if ok:
        return Outcome(True, f"{check.pointer} is {fmt(actual)}, as required ({expected}).", actual, expected)
    story = f" In the lecture's terms: {ctx.story}" if check.pointer.startswith("/diagnosis") else ""
    return Outcome(False, f"{check.pointer}: {why}.{story}", actual, expected)


def _answer(check: AnswerCheck, ctx: Context) -> Outcome:
    if check.answer not in ctx.answers:
        given = ", ".join(sorted(ctx.answers)) or "none"
        return Outcome(False, f"You did not give an answer named {check.answer!r} (answers given: {given}).")
    answer = ctx.answers[check.answer]
    actual, missing = _lookup(check.pointer, ctx)
    if missing:
        return Outcome(False, missing, answer)
    if isinstance(actual, str):
        ok = isinstance(answer, str) and answer.strip().lower() == actual.lower()
        text = f"Your answer {check.answer} = {fmt(answer)}"
        if ok:
            return Outcome(True, f"{text} is right.", answer, actual)
        return Outcome(False, f"{text}, but the analysis says {fmt(actual)}: {ctx.story}", answer, actual)
    if not is_number(answer):
        return Outcome(False, f"Your answer {check.answer} must be a number, got {fmt(answer)}.", answer)
    if actual is None or not is_number(actual):
        return Outcome(False, f"The report has no finite number at {check.pointer} to compare with.", answer)
    if check.scale == "log10":
        if answer <= 0:
            return Outcome(
                False,
                f"Your answer {check.answer} = {fmt(answer)} must be positive (it is a magnitude).",
                answer,
                power_of_ten(actual),
            )
        mine, theirs, shown = math.log10(answer), actual, power_of_ten(actual)
        unit = " decades"
    else:
        mine, theirs, shown, unit = answer, actual, fmt(actual), ""
    tol = tolerance_text(theirs, check.abs_tol, check.rel_tol)
    if within(mine, theirs, check.abs_tol, check.rel_tol):
        return Outcome(
            True, f"Your answer {check.answer} = {fmt(answer)} matches the analysis ({shown}).", answer, shown
        )
    return Outcome(
        False,
        f"Your answer {check.answer} = {fmt(answer)} differs from the analysis' {shown} "
        f"(allowed {tol}{unit}). {ctx.story[0].upper() + ctx.story[1:]}",
        answer,
        shown,
    )


def _constraint(check: ConstraintCheck, ctx: Context) -> Outcome:
    problems = equals_failures(ctx.view, check.equals)
    may_change = check.may_change if check.may_change is not None else ctx.may_change
    starter = check.starter if check.starter is not None else ctx.starter_view
    if may_change is not None and starter is not None:
        changed = changed_fields(ctx.view, starter, may_change)
        if changed:
            allowed = ", ".join(may_change) or "nothing"
            problems.append(f"only {allowed} may differ from the starter spec; you changed {', '.join(changed)}")
    if problems:
        return Outcome(False, "Your spec does not meet the assignment's constraints: " + "; ".join(problems) + ".")
    return Outcome(True, "Your spec meets the assignment's constraints.")


EVALUATORS = {"verdict": _verdict, "value": _value, "answer": _answer, "constraint": _constraint}


def _result(check: Check, outcome: Outcome, ctx: Context, gate: Check | None) -> CheckResult:
    values = ctx.values() | {
        "actual": outcome.actual,
        "expected": outcome.expected,
        "answer": ctx.answers.get(getattr(check, "answer", ""), None),
    }
    message = outcome.message
    template = check.feedback_pass if outcome.passed else check.feedback
    if template:
        message = f"{message}\n{render(template, values, ctx.report)}"
    gated = gate is not None and outcome.passed
    passed = outcome.passed and gate is None
    return CheckResult(
        name=check.name,
        kind=check.kind,
        passed=passed,
        points=check.points if passed else 0.0,
        max_points=check.points,
        visibility=check.visibility,
        message=message,
        gated_by=gate.name if gated and gate else None,
        gate_visibility=gate.visibility if gated and gate else "visible",
    )


def grade(rubric: Rubric, ctx: Context) -> GradeResult:
    """Run every check; when a required check fails, the others earn no points (but still report).

    A check that passed but lost its points to a failed required check says which one in `gated_by`;
    how much of that a reader may see (the gate may be hidden from them) is service.grading.formats'.
    """
    if not ctx.story:
        ctx.story = growth_sentence(ctx.report)
    outcomes = [(c, EVALUATORS[c.kind](c, ctx)) for c in rubric.checks]  # type: ignore[operator]
    failed_required = next((c for c, o in outcomes if c.required and not o.passed), None)
    results = [
        _result(c, o, ctx, None if c.required or failed_required is None else failed_required) for c, o in outcomes
    ]
    diag = ctx.report.get("diagnosis") or {}
    return GradeResult(
        checks=results,
        summary=explain(ctx.report),
        report_id=ctx.report.get("id"),
        engine_version=ctx.report.get("engine_version"),
        verdict=diag.get("verdict"),
    )


def not_gradable(rubric: Rubric, errors: list[str]) -> GradeResult:
    """Every check failed with no points because the spec itself was refused."""
    reason = "Not graded: your spec was refused (" + "; ".join(errors) + ")."
    checks = [CheckResult(c.name, c.kind, False, 0.0, c.points, c.visibility, reason) for c in rubric.checks]
    return GradeResult(checks=checks, gradable=False, errors=errors, summary=reason)
