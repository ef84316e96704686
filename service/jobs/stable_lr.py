"""A learning-rate sweep's answer: the largest learning rate whose training did not diverge and whose loss fell.

Pure data over the sweep's points (their `training` member, service/jobs/summary.py): the points are grouped by
the values of the other axes (one answer per weight scale, say), and within a group the largest
training.learning_rate with `stable` true wins. A learning rate above a diverging one can still be stable (a
non-monotone response); the answer is the largest stable one all the same, and `monotone` says whether every
rate below it was stable too.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

KIND = "largest_stable_learning_rate"  # the sweep request's `summary` entry that asks for it
AXIS = "training.learning_rate"


def training_point(training: Mapping[str, Any]) -> dict[str, Any]:
    """What a sweep point keeps of its report's training section."""
    summary = training["summary"]
    ratio = summary["loss_ratio"]
    return {
        "learning_rate": training["learning_rate"],
        "diverged": summary["diverged"],
        "divergence_step": summary["divergence_step"],
        "loss_ratio": ratio,
        "stable": not summary["diverged"] and ratio is not None and ratio < 1.0,
        "skipped_steps": len(summary["skipped_steps"]),
        "not_learning_layers": summary["not_learning_layers"],
    }


def largest_stable(points: Sequence[Mapping[str, Any]], axes: Mapping[str, Sequence[Any]]) -> list[dict[str, Any]]:
    """Per combination of the other axes: the largest stable learning rate (null: none was stable)."""
    others = [k for k in axes if k != AXIS]
    groups: dict[str, dict[str, Any]] = {}
    for p in points:
        tr = p.get("training")
        if tr is None:  # a failed point, or one without training
            continue
        params = p.get("params") or {}
        fixed = {k: params.get(k) for k in others}
        group = groups.setdefault(repr(sorted(fixed.items())), {"params": fixed, "tried": []})
        group["tried"].append((tr["learning_rate"], tr["stable"]))
    out = []
    for group in groups.values():
        tried = sorted(group["tried"])
        stable = [lr for lr, ok in tried if ok]
        best = max(stable) if stable else None
        out.append(
            {
                "params": group["params"],
                KIND: best,
                "learning_rates": [lr for lr, _ in tried],
                "stable": [ok for _, ok in tried],
                "monotone": best is not None and all(ok for lr, ok in tried if lr <= best),
            }
        )
    return out
