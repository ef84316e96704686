"""The example assignment "make a 300-step RNN's gradient reach the first step", graded through the API."""

from __future__ import annotations

import pytest
from flask import Flask

from .example_assignments import assignments_app, submit
from .example_assignments import passed as passed_checks

STARTER = {
    "recurrent": {"cell": "rnn", "steps": 300, "hidden": 32, "input_dim": 8},
    "activation": "tanh",
    "init": "xavier_normal",
    "input_scale": 0.1,
    "batch_size": 4,
}


@pytest.fixture(scope="module")
def app() -> Flask:
    return assignments_app()


def _submit(app: Flask, spec: dict, answers: dict | None = None) -> dict:
    return submit(app, "rnn-300-steps", spec, answers or {"growth_per_layer": 1.0})


def test_the_starter_vanishes(app: Flask) -> None:
    passed = passed_checks(_submit(app, STARTER))
    assert passed["300 steps of 32 hidden units"] and not passed["The gradient reaches the first step"]


def test_a_gru_with_an_open_update_gate_earns_every_point(app: Flask) -> None:
    spec = {**STARTER, "recurrent": {**STARTER["recurrent"], "cell": "gru", "forget_bias": 5.0}}
    report = app.test_client().post("/v1/analyses", json=spec).get_json()
    result = _submit(app, spec, {"growth_per_layer": report["diagnosis"]["growth_per_layer"]})
    assert all(passed_checks(result).values()) and result["score"] == result["max_score"]


def test_shortening_the_horizon_is_refused(app: Flask) -> None:
    spec = {**STARTER, "recurrent": {**STARTER["recurrent"], "steps": 20}, "init": "orthogonal"}
    assert not passed_checks(_submit(app, spec))["300 steps of 32 hidden units"]
