"""The example assignment "trainable from the bottom up", graded through the API: its rubric reads the training
section (the first layer's distance from init against the last one's)."""

from __future__ import annotations

import pytest
from flask import Flask

from .example_assignments import assignments_app, submit
from .example_assignments import passed as passed_checks

STARTER = {
    "layers": {"depth": 16, "width": 32, "input_dim": 16},
    "activation": "sigmoid",
    "init": "xavier_normal",
    "batch_size": 16,
    "training": {"steps": 100, "learning_rate": 0.5, "examples": 512},
}


@pytest.fixture(scope="module")
def app() -> Flask:
    return assignments_app()


def _submit(app: Flask, spec: dict, answers: dict) -> dict:
    return submit(app, "sigmoid-training", spec, answers)


def test_the_starter_leaves_its_first_layer_behind(app: Flask) -> None:
    passed = passed_checks(_submit(app, STARTER, {"distance_ratio": 0.0}))
    assert passed["Same depth and training"]
    assert not passed["The first layer learns (at least 10% of the last layer's distance from init)"]
    assert not passed["The first layer is not flagged as not learning"]


def test_tanh_earns_every_point(app: Flask) -> None:
    spec = {**STARTER, "activation": "tanh"}  # the analysis's verified tanh_xavier fix
    report = app.test_client().post("/v1/analyses", json=spec).get_json()
    ratio = report["training"]["summary"]["first_to_last_distance_ratio"]
    assert ratio >= 0.1
    result = _submit(app, spec, {"distance_ratio": ratio})
    assert result["score"] == result["max_score"], result


def test_the_critical_scale_unflags_the_first_layer_but_moves_it_less_than_a_tenth(app: Flask) -> None:
    """weight_scale 10.15 (χ = 1) makes every layer learn past the 1 % flag, yet layer 1 moves ~2 % as far as the
    top one: the rubric's 10 % asks for more than the flag."""
    passed = passed_checks(_submit(app, {**STARTER, "weight_scale": 10.15}, {"distance_ratio": 0.02}))
    assert passed["The first layer is not flagged as not learning"]
    assert not passed["The first layer learns (at least 10% of the last layer's distance from init)"]


def test_changing_the_training_instead_is_caught(app: Flask) -> None:
    spec = {**STARTER, "training": {"steps": 100, "learning_rate": 0.5, "examples": 512, "optimizer": "adam"}}
    assert not passed_checks(_submit(app, spec, {"distance_ratio": 1.0}))["Same depth and training"]
