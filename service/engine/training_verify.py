"""Recommendations judged by training: the probe rerun on each verified recommendation's changed spec.

Only where the spec's own probe found something to fix (layers that did not learn, or divergence). The reruns share
a budget (cost_training.training_verify_budget_flops, counted at admission); a rerun past it is not run and its
recommendation's training check says not_verified, never claimed. Identical changed specs run once.
"""

from __future__ import annotations

import dataclasses

import torch

from .cost_training import probe_flops, training_verify_budget_flops
from .network import Parameters, make_parameters
from .progress import training_steps
from .recurrent import RecurrentParameters, make_recurrent_parameters
from .report import Recommendation
from .spec import ModelSpec
from .training import train
from .training_report import TrainingCheck, TrainingReport


def run_probe(
    spec: ModelSpec,
    params: Parameters | RecurrentParameters,
    device: torch.device,
    recommendations: list[Recommendation],
) -> TrainingReport | None:
    """The spec's own training probe (None without `training`), reporting its steps to the caller's progress hook
    (service.engine.progress), then the verified recommendations judged by training: what both spines (the
    feed-forward and the recurrent analysis) run after their diagnosis."""
    if spec.training is None:
        return None
    probe = train(spec, params, device, progress=training_steps.get())
    if spec.verify_recommendations:
        judge_by_training(spec, probe, recommendations, device)
    return probe


def needs_judging(probe: TrainingReport) -> bool:
    return bool(probe.summary.not_learning_layers) or probe.summary.diverged


def judge_by_training(
    spec: ModelSpec, probe: TrainingReport, recommendations: list[Recommendation], device: torch.device
) -> None:
    """Sets `verified.training` of every recommendation that was rerun (in place, on a copy of the outcome)."""
    if not needs_judging(probe):
        return
    before = set(probe.summary.not_learning_layers)
    budget, spent = training_verify_budget_flops(spec), 0.0
    done: dict[ModelSpec, TrainingCheck] = {}
    for rec in recommendations:
        if rec.verified is None:
            continue
        changed = dataclasses.replace(spec.with_changes(**rec.change), verify_recommendations=False)
        if "loss_scale" in rec.change and changed.training and changed.training.loss_scaling == "none":
            # a loss scale trains only where it is applied: the probe runs it as static loss scaling
            changed = dataclasses.replace(
                changed, training=dataclasses.replace(changed.training, loss_scaling="static")
            )
        if changed not in done:
            cost = probe_flops(changed)
            if spent + cost > budget:
                done[changed] = TrainingCheck("not_verified", "past the training reruns' shared budget: not run")
            else:
                spent += cost
                params = (
                    make_recurrent_parameters(changed) if changed.recurrent is not None else make_parameters(changed)
                )
                run = train(changed, params, device)
                now = run.summary.not_learning_layers
                done[changed] = TrainingCheck(
                    "verified",
                    f"the training probe rerun on the changed spec: {run.summary.sentence}",
                    not_learning_layers=now,
                    now_learning_layers=sorted(before - set(now)),
                    all_learn=not now,
                    diverged=run.summary.diverged,
                    loss_ratio=run.summary.loss_ratio,
                )
        rec.verified = dataclasses.replace(rec.verified, training=done[changed])
