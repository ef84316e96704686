"""The training section's summary: divergence, skipped steps, which layers did not learn, and one sentence.

A step diverges where its batch loss is non-finite or more than DIVERGENCE_FACTOR times step 0's. A layer did not
learn where its relative distance from init ‖W_k − W_0‖/‖W_0‖ is below NOT_LEARNED_FRACTION of the largest layer's
(the best-learning layer): under SGD a vanishing gradient leaves the bottom layers orders of magnitude behind the
top ones, while healthy layers stay within a small factor of each other. Non-finite weights count as not learned.
"""

from __future__ import annotations

import math

from .spec import ModelSpec
from .training_report import TrainingLayer, TrainingStep, TrainingSummary

DIVERGENCE_FACTOR = 10.0
NOT_LEARNED_FRACTION = 0.01


def divergence_step(steps: list[TrainingStep]) -> int | None:
    if not steps:
        return None
    start = steps[0].loss
    for s in steps:
        if s.loss is None or (start is not None and s.loss > DIVERGENCE_FACTOR * start):
            return s.index
    return None


def summarize(
    spec: ModelSpec,
    steps: list[TrainingStep],
    layers: list[TrainingLayer],
    initial: float,
    final: float,
    final_scale: float,
) -> TrainingSummary:
    """Flags each layer's did_not_learn (in place) and sums the run up."""
    finite = [(ly.distance_from_init, ly.index) for ly in layers if ly.distance_from_init is not None]
    best_distance, best = max(finite) if finite else (0.0, None)
    for ly in layers:
        d = ly.distance_from_init
        ly.did_not_learn = d is None or d < NOT_LEARNED_FRACTION * best_distance or best_distance == 0.0
    not_learning = [ly.index for ly in layers if ly.did_not_learn]
    diverged_at = divergence_step(steps)
    ok = math.isfinite(initial) and math.isfinite(final)
    ratio = final / initial if ok and initial != 0 else None
    skipped = [s.index for s in steps if s.skipped]
    return TrainingSummary(
        initial_loss=initial if math.isfinite(initial) else None,
        final_loss=final if math.isfinite(final) else None,
        loss_ratio=ratio,
        diverged=diverged_at is not None,
        divergence_step=diverged_at,
        skipped_steps=skipped,
        final_loss_scale=final_scale,
        not_learning_layers=not_learning,
        best_learning_layer=best,
        not_learned_fraction=NOT_LEARNED_FRACTION,
        first_to_last_distance_ratio=_ratio(layers[0].distance_from_init, layers[-1].distance_from_init),
        sentence=_sentence(spec, len(steps), ratio, diverged_at, skipped, not_learning, best, len(layers)),
    )


def _ratio(a: float | None, b: float | None) -> float | None:
    return a / b if a is not None and b else None


def _sentence(
    spec: ModelSpec,
    k: int,
    ratio: float | None,
    diverged_at: int | None,
    skipped: list[int],
    not_learning: list[int],
    best: int | None,
    depth: int,
) -> str:
    assert spec.training is not None
    tr = spec.training
    parts = [f"{k} {tr.optimizer} steps at learning rate {tr.learning_rate:g} on the {tr.task} task"]
    if diverged_at is not None:
        parts.append(f"diverged at step {diverged_at}")
    if ratio is None:
        parts.append("the loss is not finite at the end")
    else:
        parts.append(f"the loss {'fell' if ratio < 1 else 'rose'} to {ratio:.3g}× its start")
    if skipped:
        parts.append(f"{len(skipped)} of {k} steps skipped by dynamic loss scaling (non-finite gradients)")
    if not_learning and len(not_learning) < depth:
        parts.append(
            f"layers {_ranges(not_learning)} did not learn (moved less than {NOT_LEARNED_FRACTION:.0%} as far from "
            f"init, relative to their size, as layer {best})"
        )
    elif not_learning:
        parts.append("no layer learned")
    return "; ".join(parts) + "."


def _ranges(indices: list[int]) -> str:
    """[1, 2, 3, 7] → "1–3, 7"."""
    out, start, prev = [], indices[0], indices[0]
    for i in [*indices[1:], None]:
        if i is not None and i == prev + 1:
            prev = i
            continue
        out.append(f"{start}–{prev}" if prev > start else f"{start}")
        if i is not None:
            start = prev = i
    return ", ".join(out)
