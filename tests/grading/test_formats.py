"""Results written for Gradescope and PrairieLearn validate against what those platforms document."""

from __future__ import annotations

import json

import jsonschema
import pytest

from schemas.grading import RubricSchema
from schemas.spec import ModelSpecSchema
from service.grading.constraints import spec_view
from service.grading.formats import render, student_view, to_gradescope, to_json, to_prairielearn
from service.grading.grader import Context, grade, not_gradable

from .platform_schemas import GRADESCOPE_RESULTS, PRAIRIELEARN_RESULTS
from .reports import make_report

CHECKS = [
    {"kind": "verdict", "name": "vanishing", "points": 2, "expected": "vanishing"},
    {"kind": "verdict", "name": "stable", "points": 3, "expected": "stable", "visibility": "hidden"},
    {"kind": "value", "name": "late", "points": 1, "pointer": "/depth", "expected": 50, "visibility": "after_due_date"},
]


@pytest.fixture
def result():
    rubric = RubricSchema().load({"checks": CHECKS})
    view = spec_view(ModelSpecSchema().load({"layers": {"depth": 50, "width": 16}}))
    out = grade(rubric, Context(report=make_report(), view=view))
    out.cache_hit = False
    return out


def test_gradescope(result) -> None:
    body = to_gradescope(result, execution_time=1.25)
    jsonschema.validate(body, GRADESCOPE_RESULTS)
    assert body["score"] == 3 and body["execution_time"] == 1.25
    assert [(t["name"], t["status"], t["score"], t["max_score"], t["visibility"]) for t in body["tests"]] == [
        ("vanishing", "passed", 2, 2, "visible"),
        ("stable", "failed", 0, 3, "hidden"),
        ("late", "passed", 1, 1, "after_due_date"),
    ]
    assert "abab" in body["output"]  # the report id, to re-check the grade later
    json.dumps(body, allow_nan=False)


def test_prairielearn(result) -> None:
    body = to_prairielearn(result)
    jsonschema.validate(body, PRAIRIELEARN_RESULTS)
    assert body["gradable"] is True and body["score"] == pytest.approx(0.5)
    assert (body["points"], body["max_points"]) == (3, 6)
    assert body["tests"][1] == {
        "name": "Hidden check 1",
        "points": 0.0,
        "max_points": 3.0,
        "message": body["tests"][1]["message"],
    }


def test_not_gradable_in_each_format() -> None:
    rubric = RubricSchema().load({"checks": CHECKS})
    result = not_gradable(rubric, ["layers: Missing data for required field."])
    gs = to_gradescope(result, 0.0)
    jsonschema.validate(gs, GRADESCOPE_RESULTS)
    assert gs["score"] == 0 and all(t["status"] == "failed" for t in gs["tests"])
    assert "layers: Missing data" in gs["output"]
    pl = to_prairielearn(result)
    jsonschema.validate(pl, PRAIRIELEARN_RESULTS)
    assert pl["gradable"] is False and pl["format_errors"] == ["layers: Missing data for required field."]


def test_student_view_never_describes_hidden_checks(result) -> None:
    view = student_view(result)
    for body in (render(view, "json"), render(view, "gradescope"), render(view, "prairielearn")):
        text = json.dumps(body)
        assert '"stable"' not in text and '"late"' not in text and "/depth" not in text
    body = to_json(view)
    assert [(c["name"], c["kind"], c["passed"], c["message"]) for c in body["checks"]] == [
        ("vanishing", "verdict", True, body["checks"][0]["message"]),
        ("Hidden check 1", "hidden", False, "Failed."),
        ("Hidden check 2", "hidden", True, "Passed."),
    ]
    assert body["hidden"] == {"checks": 2, "points": 4.0}
    assert (body["score"], body["max_score"]) == (3, 6)  # hidden checks count in the score
    assert body["cache"] == {"hit": False}
    assert student_view(view) is view
    jsonschema.validate(render(view, "gradescope"), GRADESCOPE_RESULTS)
    jsonschema.validate(render(view, "prairielearn"), PRAIRIELEARN_RESULTS)


def test_prairielearn_counts_hidden_checks_but_never_names_them(result) -> None:
    """PrairieLearn shows results.json to the student as it is: even the instructor's result is safe."""
    body = to_prairielearn(result)
    assert body["score"] == pytest.approx(0.5) and (body["points"], body["max_points"]) == (3, 6)
    assert [t["name"] for t in body["tests"]] == ["vanishing", "Hidden check 1", "Hidden check 2"]
    assert [t["message"] for t in body["tests"][1:]] == ["Failed.", "Passed."]
    assert all({"points", "max_points"} <= set(t) for t in body["tests"])  # PL's per-test display needs both
    assert '"stable"' not in json.dumps(body) and "/depth" not in json.dumps(body)


GATED = [
    {"kind": "verdict", "name": "vanishing", "points": 2, "expected": "vanishing"},
    {
        "kind": "value",
        "name": "depth",
        "points": 1,
        "pointer": "/depth",
        "expected": 50,
        "visibility": "after_due_date",
    },
    {
        "kind": "value",
        "name": "SECRET band",
        "points": 3,
        "visibility": "hidden",
        "required": True,
        "pointer": "/diagnosis/log10_total_growth",
        "min": 123.5,
        "max": 124.5,
    },
]


@pytest.mark.parametrize("secret_passes", [False, True])
def test_a_hidden_required_check_never_leaks_through_visible_checks(secret_passes: bool) -> None:
    checks = [dict(c) for c in GATED]
    if secret_passes:
        checks[2] |= {"min": -100, "max": 100}
    rubric = RubricSchema().load({"checks": checks})
    view = spec_view(ModelSpecSchema().load({"layers": {"depth": 50, "width": 16}}))
    result = grade(rubric, Context(report=make_report(), view=view))
    assert result.score == (6 if secret_passes else 0)

    # Gradescope (the course's key): the platform hides tests by visibility; a visible test must then
    # show the same thing whatever the hidden check did, and the total (hidden by Gradescope) is true.
    gs = to_gradescope(result, 0.1)
    jsonschema.validate(gs, GRADESCOPE_RESULTS)
    visible = [t for t in gs["tests"] if t["visibility"] == "visible"]
    assert visible == [
        {
            "name": "vanishing",
            "score": 2,
            "max_score": 2,
            "status": "passed",
            "output": visible[0]["output"],
            "visibility": "visible",
        }
    ]
    assert "SECRET" not in visible[0]["output"] and "No points" not in visible[0]["output"]
    assert "SECRET" not in gs["output"]
    late = next(t for t in gs["tests"] if t["visibility"] == "after_due_date")
    assert late["status"] == "passed" and "SECRET" not in late["output"]  # shown after the due date
    assert gs["score"] == result.score

    # What reaches a student (PrairieLearn always; student keys in every format): no name, no bounds.
    for body in (to_prairielearn(result), to_json(student_view(result)), to_gradescope(student_view(result), 0.1)):
        text = json.dumps(body)
        assert "SECRET" not in text and "123.5" not in text and "124.5" not in text
    if not secret_passes:
        first = to_json(student_view(result))["checks"][0]
        assert first["points"] == 0 and first["message"].startswith("No points: a hidden required check failed.")
        assert "SECRET band" in to_json(result)["checks"][0]["message"]  # the instructor's json names it


def test_zero_point_rubric_scores_one_when_all_pass() -> None:
    rubric = RubricSchema().load(
        {"checks": [{"kind": "value", "name": "d", "points": 0, "pointer": "/depth", "expected": 50}]}
    )
    view = spec_view(ModelSpecSchema().load({"layers": {"depth": 50, "width": 16}}))
    result = grade(rubric, Context(report=make_report(), view=view))
    assert result.fraction == 1.0
    jsonschema.validate(to_prairielearn(result), PRAIRIELEARN_RESULTS)
