"""Rubrics evaluated against hand-written reports: pass/fail, points, messages in the lecture's terms."""

from __future__ import annotations

from typing import Any

import pytest

from schemas.grading import RubricSchema
from schemas.spec import ModelSpecSchema
from service.grading.constraints import spec_view
from service.grading.grader import Context, grade, not_gradable
from service.grading.lecture import explain, power_of_ten

from .reports import make_report

SIGMOID_50 = {"layers": {"depth": 50, "width": 16}, "activation": "sigmoid", "init": "normal", "weight_scale": 0.25}


def run(
    checks: list[dict[str, Any]],
    report: dict[str, Any] | None = None,
    spec: dict[str, Any] | None = None,
    answers: dict[str, Any] | None = None,
    **ctx: Any,
):
    rubric = RubricSchema().load({"checks": checks})
    view = spec_view(ModelSpecSchema().load(spec or SIGMOID_50))
    return grade(rubric, Context(report=report or make_report(), view=view, answers=answers or {}, **ctx))


def test_verdict_failure_speaks_the_lectures_language() -> None:
    result = run([{"kind": "verdict", "name": "stable", "points": 3, "expected": "stable"}])
    check = result.checks[0]
    assert (check.passed, check.points, check.max_points) == (False, 0.0, 3.0)
    assert "but it is vanishing" in check.message
    assert "shrinks by 0.24 per layer; after 49 layers the first layer's gradient is 4e-31" in check.message
    assert result.score == 0 and result.max_score == 3


def test_verdict_accepts_a_list() -> None:
    result = run([{"kind": "verdict", "name": "v", "expected": ["vanishing", "exploding"]}])
    assert result.checks[0].passed and result.score == 1


def test_exploding_story() -> None:
    text = explain(make_report(depth=101, growth_per_layer=1.5, dtype="float16", overflow_layer=20))
    assert "grows by 1.5 per layer; after 100 layers" in text and "4e17 times" in text
    assert "float16" in text and "overflowed to inf/NaN" in text and "layer 20" in text


@pytest.mark.parametrize(("x", "text"), [(-30.37, "4e-31"), (17.6, "4e17"), (-0.2, "0.63"), (-400.2, "6e-401")])
def test_power_of_ten(x: float, text: str) -> None:
    assert power_of_ten(x) == text


def test_value_check_range_and_missing_pointer() -> None:
    result = run(
        [
            {"kind": "value", "name": "band", "pointer": "/diagnosis/log10_total_growth", "min": -2, "max": 2},
            {
                "kind": "value",
                "name": "top",
                "pointer": "/layers/49/weight_grad/norm",
                "expected": 1.0,
                "rel_tol": 1e-6,
            },
            {"kind": "value", "name": "typo", "pointer": "/diagnosis/nope", "expected": 1},
            {"kind": "value", "name": "no overflow", "pointer": "/diagnosis/overflow/occurred", "expected": False},
        ]
    )
    band, top, typo, flag = result.checks
    assert not band.passed and "between -2 and 2" in band.message and "lecture's terms" in band.message
    assert top.passed and flag.passed
    assert not typo.passed and "no field 'nope'" in typo.message
    assert result.score == 2


def test_answer_checks() -> None:
    checks = [
        {"kind": "answer", "name": "g", "answer": "g", "pointer": "/diagnosis/growth_per_layer", "abs_tol": 0.01},
        {
            "kind": "answer",
            "name": "ratio",
            "answer": "ratio",
            "pointer": "/diagnosis/log10_total_growth",
            "scale": "log10",
            "abs_tol": 0.5,
        },
        {"kind": "answer", "name": "verdict", "answer": "verdict", "pointer": "/diagnosis/verdict"},
        {"kind": "answer", "name": "missing", "answer": "other", "pointer": "/diagnosis/verdict"},
    ]
    good = run(checks, answers={"g": 0.245, "ratio": 4e-31, "verdict": " Vanishing "})
    assert [c.passed for c in good.checks] == [True, True, True, False]
    assert "did not give an answer named 'other'" in good.checks[3].message
    bad = run(checks, answers={"g": 0.5, "ratio": 1e-10, "verdict": "stable"})
    assert [c.passed for c in bad.checks] == [False, False, False, False]
    assert "differs from the analysis' 0.24 (allowed ±0.01)" in bad.checks[0].message
    assert "4e-31" in bad.checks[1].message and "decades" in bad.checks[1].message
    assert "the analysis says 'vanishing'" in bad.checks[2].message


def test_constraints_and_required_gating() -> None:
    checks = [
        {
            "kind": "constraint",
            "name": "shape",
            "equals": {"depth": 50, "activation": "sigmoid"},
            "may_change": ["init", "weight_scale"],
            "starter": SIGMOID_50,
        },
        {"kind": "verdict", "name": "stable", "points": 5, "expected": "vanishing"},
    ]
    ok = run(checks, spec={**SIGMOID_50, "init": "xavier_normal", "weight_scale": 1.0})
    assert [c.passed for c in ok.checks] == [True, True] and ok.score == 6
    cheat = run(checks, spec={**SIGMOID_50, "layers": {"depth": 3, "width": 16}, "activation": "relu"})
    shape, verdict = cheat.checks
    assert not shape.passed and "depth must be 50, yours is 3" in shape.message
    assert "activation must be 'sigmoid', yours is 'relu'" in shape.message
    assert "you changed layers" in shape.message and "activation ('sigmoid' → 'relu')" in shape.message
    assert not verdict.passed and verdict.points == 0 and verdict.gated_by == "shape"
    assert verdict.message == "The gradient is vanishing, as required."  # the gate is worded per reader
    assert cheat.score == 0


def test_constraint_uses_assignment_starter() -> None:
    checks = [{"kind": "constraint", "name": "only init", "required": False, "may_change": ["init"]}]
    starter = spec_view(ModelSpecSchema().load(SIGMOID_50))
    result = run(checks, spec={**SIGMOID_50, "weight_scale": 2.0}, starter_view=starter)
    assert not result.checks[0].passed and "weight_scale (0.25 → 2)" in result.checks[0].message


def test_feedback_templates() -> None:
    checks = [
        {
            "kind": "verdict",
            "name": "v",
            "expected": "stable",
            "feedback": "Per layer {growth_per_layer:.2f}, total {total_growth}, at {/diagnosis/verdict}; "
            "{/diagnosis/missing} {{literal}}",
            "feedback_pass": "unused",
        }
    ]
    msg = run(checks).checks[0].message
    assert msg.endswith("Per layer 0.24, total 4e-31, at vanishing; n/a {literal}")


def test_not_gradable_gives_zero_with_reasons() -> None:
    rubric = RubricSchema().load({"checks": [{"kind": "verdict", "name": "v", "expected": "stable"}]})
    result = not_gradable(rubric, ["layers: Missing data for required field."])
    assert not result.gradable and result.score == 0 and result.max_score == 1
    assert "layers: Missing data" in result.checks[0].message
