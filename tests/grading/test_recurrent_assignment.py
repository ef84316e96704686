"""The example assignment "make a 300-step RNN's gradient reach the first step", graded through the API."""

from __future__ import annotations

from pathlib import Path

import pytest
from flask import Flask

from service.api.app import create_app
from service.config import Settings

EXAMPLES = Path(__file__).resolve().parents[2] / "examples" / "assignments"
URL = "/v1/assignments/rnn-300-steps/submissions"
STARTER = {
    "recurrent": {"cell": "rnn", "steps": 300, "hidden": 32, "input_dim": 8},
    "activation": "tanh",
    "init": "xavier_normal",
    "input_scale": 0.1,
    "batch_size": 4,
}


@pytest.fixture(scope="module")
def app() -> Flask:
    settings = Settings.from_env({"GRADSTAB_RATE_LIMIT": "off", "GRADSTAB_ASSIGNMENTS_DIR": str(EXAMPLES)})
    return create_app({"TESTING": True, "GRADSTAB_SETTINGS": settings})


def _submit(app: Flask, spec: dict, answers: dict | None = None) -> dict:
    r = app.test_client().post(URL, json={"spec": spec, "answers": answers or {"growth_per_layer": 1.0}})
    assert r.status_code == 200, r.get_json()
    return r.get_json()


def _passed(result: dict) -> dict[str, bool]:
    return {c["name"]: c["passed"] for c in result["checks"]}


def test_the_starter_vanishes(app: Flask) -> None:
    passed = _passed(_submit(app, STARTER))
    assert passed["300 steps of 32 hidden units"] and not passed["The gradient reaches the first step"]


def test_a_gru_with_an_open_update_gate_earns_every_point(app: Flask) -> None:
    spec = {**STARTER, "recurrent": {**STARTER["recurrent"], "cell": "gru", "forget_bias": 5.0}}
    report = app.test_client().post("/v1/analyses", json=spec).get_json()
    result = _submit(app, spec, {"growth_per_layer": report["diagnosis"]["growth_per_layer"]})
    assert all(_passed(result).values()) and result["score"] == result["max_score"]


def test_shortening_the_horizon_is_refused(app: Flask) -> None:
    spec = {**STARTER, "recurrent": {**STARTER["recurrent"], "steps": 20}, "init": "orthogonal"}
    assert not _passed(_submit(app, spec))["300 steps of 32 hidden units"]
