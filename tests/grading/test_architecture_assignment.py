"""The example assignment "architecture, not initialisation", graded through the API with the default limits."""

from __future__ import annotations

import pytest
from flask import Flask

from .example_assignments import assignments_app, submit
from .example_assignments import passed as passed_checks

STARTER = {"layers": {"depth": 100, "width": 32}, "activation": "sigmoid", "init": "xavier_normal"}


@pytest.fixture(scope="module")
def app() -> Flask:
    return assignments_app()


def _submit(app: Flask, spec: dict, answers: dict | None = None) -> dict:
    return submit(app, "architecture-depth-100", spec, answers or {"growth_per_layer": 1.0})


def test_the_starter_vanishes_and_has_no_skips(app: Flask) -> None:
    passed = passed_checks(_submit(app, STARTER))
    assert not passed["The gradient is stable"] and not passed["The network has residual blocks"]


def test_residual_blocks_with_scaled_branches_earn_the_visible_points(app: Flask) -> None:
    spec = {**STARTER, "architecture": {"residual": {"every": 2, "branch_scale": 0.1414}}}
    report = app.test_client().post("/v1/analyses", json=spec).get_json()
    growth = report["diagnosis"]["growth_per_layer"]
    result = _submit(app, spec, {"growth_per_layer": growth})
    passed = passed_checks(result)
    assert passed["Only the architecture changed"] and passed["The network has residual blocks"]
    assert passed["The gradient is stable"] and passed["Growth per layer"]
    assert result["score"] == result["max_score"]  # the hidden check (scaled branches) passes too


def test_changing_the_initialisation_instead_scores_nothing(app: Flask) -> None:
    result = _submit(app, {**STARTER, "init": "kaiming_normal", "activation": "sigmoid"})
    assert not passed_checks(result)["Only the architecture changed"] and result["score"] == 0


def test_a_rubric_can_require_or_forbid_architecture_members() -> None:
    from schemas.rubric import RubricSchema
    from schemas.spec import ModelSpecSchema
    from service.grading.constraints import equals_failures, spec_view

    rubric = RubricSchema().load(
        {
            "checks": [
                {
                    "kind": "constraint",
                    "name": "pre-layernorm residual blocks of 2",
                    "equals": {"architecture.residual.every": 2, "architecture.normalization.kind": "layernorm"},
                }
            ]
        }
    )
    equals = rubric.checks[0].equals
    plain = spec_view(ModelSpecSchema().load({"layers": [4, 4, 4]}))
    good = spec_view(
        ModelSpecSchema().load(
            {"layers": [4, 4, 4], "architecture": {"residual": {"every": 2}, "normalization": {"kind": "layernorm"}}}
        )
    )
    assert equals_failures(good, equals) == []
    assert len(equals_failures(plain, equals)) == 2
    # a whole architecture object compares as the schema normalises it (defaults filled in)
    assert (
        equals_failures(good, {"architecture": {"residual": {"every": 2}, "normalization": {"kind": "layernorm"}}})
        == []
    )
