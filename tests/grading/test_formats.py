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
        "name": "stable",
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
        assert '"stable"' not in text and '"late"' not in text
        assert "after_due_date" not in text and 'hidden"' not in text.replace('"hidden": {', "")
    body = to_json(view)
    assert [c["name"] for c in body["checks"]] == ["vanishing"]
    assert body["hidden"] == {"checks": 2, "points": 4.0}
    assert (body["score"], body["max_score"]) == (2, 2)
    assert body["cache"] == {"hit": False}
    jsonschema.validate(render(view, "gradescope"), GRADESCOPE_RESULTS)
    jsonschema.validate(render(view, "prairielearn"), PRAIRIELEARN_RESULTS)


def test_zero_point_rubric_scores_one_when_all_pass() -> None:
    rubric = RubricSchema().load(
        {"checks": [{"kind": "value", "name": "d", "points": 0, "pointer": "/depth", "expected": 50}]}
    )
    view = spec_view(ModelSpecSchema().load({"layers": {"depth": 50, "width": 16}}))
    result = grade(rubric, Context(report=make_report(), view=view))
    assert result.fraction == 1.0
    jsonschema.validate(to_prairielearn(result), PRAIRIELEARN_RESULTS)
