"""Rubric, grade-request and assignment-file schemas: mistakes refused at load, naming the field."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from marshmallow import ValidationError

from schemas.errors import error_lines
from schemas.grading import GradeRequestSchema, RubricSchema
from schemas.limits import Limits
from service.application.assignments import AssignmentError, load_directory, load_file, public_view
from service.grading.model import ConstraintCheck, ValueCheck

EXAMPLES = Path(__file__).resolve().parents[2] / "examples" / "assignments"


def errors_of(schema: Any, data: Any) -> list[str]:
    with pytest.raises(ValidationError) as info:
        schema.load(data)
    return error_lines(info.value.messages)


@pytest.mark.parametrize(
    ("check", "words"),
    [
        ({"kind": "magic", "name": "x"}, "checks[0].kind: 'magic' is not a check kind"),
        ({"kind": "verdict", "name": "x", "expected": "fine"}, "checks[0].expected: Give one of exploding"),
        ({"kind": "value", "name": "x", "pointer": "diagnosis"}, "checks[0].pointer: a JSON pointer starts"),
        ({"kind": "value", "name": "x", "pointer": "/depth"}, "checks[0].expected: Give expected, or min"),
        ({"kind": "value", "name": "x", "pointer": "/depth", "min": 3, "max": 1}, "min 3 is above max 1"),
        ({"kind": "value", "name": "x", "pointer": "/a", "expected": "s", "abs_tol": 1}, "numeric expected"),
        ({"kind": "value", "name": "x", "pointer": "/a", "expected": 1, "tol": 1}, "checks[0].tol: Unknown field"),
        ({"kind": "verdict", "name": "x", "expected": "stable", "visibility": "secret"}, "checks[0].visibility"),
        ({"kind": "verdict", "name": "x", "expected": "stable", "feedback": "{grwth}"}, "unknown placeholder {grwth}"),
        ({"kind": "constraint", "name": "x", "equals": {"deepness": 3}}, "Unknown spec fields ['deepness']"),
        ({"kind": "constraint", "name": "x", "may_change": ["depth"]}, "Unknown spec fields ['depth']"),
        ({"kind": "constraint", "name": "x", "equals": {"depth": 3}, "starter": {"layers": []}}, "starter.layers"),
        ({"kind": "answer", "name": "x", "answer": "1bad", "pointer": "/a"}, "checks[0].answer"),
        ({"kind": "verdict", "name": "x", "expected": "stable", "points": -1}, "checks[0].points"),
    ],
)
def test_bad_checks_are_named(check: dict[str, Any], words: str) -> None:
    lines = errors_of(RubricSchema(), {"checks": [check]})
    assert any(words in line for line in lines), lines


def test_rubric_level_errors() -> None:
    assert any("at least 1" in e or "Length" in e or "Shorter" in e for e in errors_of(RubricSchema(), {"checks": []}))
    dup = {"kind": "verdict", "name": "same", "expected": "stable"}
    assert any("repeated: ['same']" in e for e in errors_of(RubricSchema(), {"checks": [dup, dup]}))


def test_grade_request_defaults_and_starter_rule() -> None:
    check = {"kind": "value", "name": "v", "pointer": "/depth", "min": 1}
    req = GradeRequestSchema().load({"submission": {"spec": {"layers": [4, 4]}}, "rubric": {"checks": [check]}})
    assert req.format == "json" and req.submission.answers == {}
    assert isinstance(req.rubric.checks[0], ValueCheck) and req.rubric.checks[0].target.rel_tol == 1e-9
    bad = {"kind": "constraint", "name": "c", "may_change": ["init"]}
    lines = errors_of(GradeRequestSchema(), {"submission": {"spec": {}}, "rubric": {"checks": [bad]}})
    assert any("rubric.checks[0].starter: may_change needs the starter" in e for e in lines)
    lines = errors_of(
        GradeRequestSchema(),
        {"submission": {"spec": {}, "answers": {"a": True}}, "rubric": {"checks": [check]}, "format": "canvas"},
    )
    assert any(e.startswith("format:") for e in lines) and any("answers" in e for e in lines)


def test_constraint_defaults_to_required() -> None:
    rubric = RubricSchema().load(
        {
            "checks": [
                {"kind": "constraint", "name": "c", "equals": {"depth": 2}},
                {"kind": "verdict", "name": "v", "expected": "stable"},
            ]
        }
    )
    assert isinstance(rubric.checks[0], ConstraintCheck) and rubric.checks[0].required
    assert not rubric.checks[1].required


def test_example_assignments_load_and_hide_the_rubric() -> None:
    found = load_directory(EXAMPLES)
    assert {"sigmoid-depth-30", "identity-float16"} <= set(found)
    public = public_view(found["sigmoid-depth-30"])
    assert set(public) == {"id", "title", "instructions", "starter", "may_change", "answers", "max_score"}
    assert public["may_change"] == ["init", "weight_scale"] and public["max_score"] == 10
    assert "rubric" not in str(public) and "/diagnosis" not in str(public)


def write(tmp_path: Path, name: str, text: str) -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


GOOD = """id: a1
title: T
starter: {layers: [4, 4, 4]}
rubric: {checks: [{kind: verdict, name: v, expected: stable}]}
"""


def test_bad_file_names_file_and_field(tmp_path: Path) -> None:
    write(tmp_path, "good.yaml", GOOD)
    bad = write(tmp_path, "bad.yml", GOOD.replace("id: a1", "id: a2").replace("expected: stable", "expected: ok"))
    write(tmp_path, "notes.txt", "ignored")
    with pytest.raises(AssignmentError) as info:
        load_directory(tmp_path)
    assert info.value.problems == [
        f"{bad}: rubric.checks[0].expected: Give one of exploding, vanishing, stable or a list of them."
    ]


def test_duplicate_ids_and_unreadable_files(tmp_path: Path) -> None:
    write(tmp_path, "a.yaml", GOOD)
    write(tmp_path, "b.yaml", GOOD)
    write(tmp_path, "c.json", "{not json")
    with pytest.raises(AssignmentError) as info:
        load_directory(tmp_path)
    text = str(info.value)
    assert "b.yaml: id 'a1' is already used by" in text and "c.json: cannot be read as JSON" in text


def test_starter_must_fit_the_servers_limits(tmp_path: Path) -> None:
    path = write(tmp_path, "a.yaml", GOOD)
    with pytest.raises(AssignmentError, match=r"starter.layers: depth 2 is over the limit max_depth=1"):
        load_file(path, Limits(max_depth=1))


def test_missing_directory(tmp_path: Path) -> None:
    with pytest.raises(AssignmentError, match="is not a directory"):
        load_directory(tmp_path / "nope")
