"""Every recommendation claimed as a fix holds when the changed spec is rerun at the user's own batch.

The rerun here is an ordinary analysis of the changed spec (its own batch, seed and the Jacobian method that
ran for the user), judged on what the recommendation addresses: the claim must hold there, not only on the
engine's cheap small-batch rerun.
"""

from __future__ import annotations

import dataclasses

import pytest

from service.engine import analyze

from .conftest import make_spec

GRID = [
    # the two claims the issue found false at the spec's own batch
    {"activation": "silu", "init": "kaiming_normal", "weight_scale": 0.25, "dtype": "float32", "seed": 32},
    {"activation": "identity", "init": "xavier_normal", "weight_scale": 0.25, "dtype": "bfloat16", "seed": 3},
    {"activation": "relu", "init": "xavier_normal", "weight_scale": 1.0, "dtype": "float16", "seed": 1},
    {"activation": "tanh", "init": "normal", "weight_scale": 0.5, "dtype": "float32", "seed": 2},
    {"activation": "sigmoid", "init": "xavier_normal", "weight_scale": 1.0, "dtype": "float16", "seed": 4},
    {"activation": "identity", "init": "orthogonal", "weight_scale": 1.2, "dtype": "float16", "seed": 5},
    {"activation": "elu", "init": "kaiming_normal", "weight_scale": 0.5, "dtype": "bfloat16", "seed": 6},
    {"activation": "leaky_relu", "init": "kaiming_uniform", "weight_scale": 1.6, "dtype": "float32", "seed": 7},
]


def _holds(addresses: str, report) -> bool:
    d = report.diagnosis
    over, under = d.overflow.by_quantity, d.underflow.by_quantity
    grad_over = any(q in over for q in ("output_grad", "weight_grad", "loss"))
    grad_under = any(q in under for q in ("output_grad", "weight_grad"))
    if addresses == "gradient_range":
        return not grad_over and not grad_under
    if addresses == "forward_range":
        return "forward_activation" not in over and "forward_activation" not in under
    if addresses == "range":
        return not d.overflow.occurred and not d.underflow.occurred
    return d.verdict == "stable" and not d.overflow.occurred and not d.underflow.occurred


@pytest.mark.parametrize("body", GRID, ids=lambda b: f"{b['activation']}-{b['dtype']}-{b['seed']}")
def test_every_claimed_fix_holds_at_the_full_batch(body: dict) -> None:
    spec = make_spec(layers={"depth": 50, "width": 16}, batch_size=8, **body, verify_recommendations=True)
    report = analyze(spec)
    claimed = [r for r in report.diagnosis.recommendations if r.fixes]
    for rec in claimed:
        assert rec.verified is not None and rec.verified.batch_size == spec.batch_size
        assert rec.verified.jacobian_method == report.runtime.jacobian_method
        rerun = analyze(dataclasses.replace(spec.with_changes(**rec.change), verify_recommendations=False))
        assert _holds(rec.addresses, rerun), (rec.code, rec.change)
        assert rerun.diagnosis.verdict == rec.verified.verdict
        assert rerun.diagnosis.log10_total_growth == pytest.approx(rec.verified.log10_total_growth, abs=1e-9)
