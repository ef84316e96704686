"""Recommendations judged by training: the reruns' claims match the probe run by hand on the changed spec, and past
the shared budget nothing is claimed."""

from __future__ import annotations

import dataclasses

import torch

from schemas.spec import ModelSpecSchema
from service.engine import training_verify
from service.engine.analysis import analyze
from service.engine.network import make_parameters
from service.engine.training import train

BODY = {
    "layers": {"depth": 12, "width": 16, "input_dim": 8},
    "activation": "sigmoid",
    "init": "xavier_normal",
    "batch_size": 8,
    "training": {"steps": 40, "learning_rate": 0.5, "examples": 64},
}


def test_verified_recommendations_say_whether_the_stuck_layers_now_learn() -> None:
    spec = ModelSpecSchema().load(BODY)
    rep = analyze(spec)
    stuck = set(rep.training.summary.not_learning_layers)
    assert 1 in stuck
    checked = [r for r in rep.diagnosis.recommendations if r.verified and r.verified.training]
    verified = [r for r in checked if r.verified.training.status == "verified"]
    assert verified
    for rec in verified:
        changed = dataclasses.replace(spec.with_changes(**rec.change), verify_recommendations=False)
        by_hand = train(changed, make_parameters(changed), torch.device("cpu"))
        check = rec.verified.training
        assert check.not_learning_layers == by_hand.summary.not_learning_layers
        assert check.now_learning_layers == sorted(stuck - set(by_hand.summary.not_learning_layers))
        assert check.all_learn == (not by_hand.summary.not_learning_layers)
    assert any(r.verified.training.all_learn for r in verified)  # some fix does make the bottom layers learn


def test_past_the_budget_nothing_is_claimed(monkeypatch) -> None:
    monkeypatch.setattr(training_verify, "training_verify_budget_flops", lambda spec: 0.0)
    rep = analyze(ModelSpecSchema().load(BODY))
    checks = [r.verified.training for r in rep.diagnosis.recommendations if r.verified and r.verified.training]
    assert checks and all(c.status == "not_verified" and c.all_learn is None for c in checks)


def test_a_healthy_run_is_not_judged() -> None:
    body = BODY | {"activation": "relu", "init": "kaiming_normal", "layers": [8, 16, 16, 4]}
    rep = analyze(ModelSpecSchema().load(body | {"training": BODY["training"] | {"learning_rate": 0.01}}))
    assert not rep.training.summary.not_learning_layers and not rep.training.summary.diverged
    assert all(r.verified is None or r.verified.training is None for r in rep.diagnosis.recommendations)
