"""The cost model counts every option that changes the work, so a refusal (or acceptance) follows what
would run. Its agreement with measured times is a benchmark (bench/bench_cost.py), not a test."""

from __future__ import annotations

import dataclasses

import pytest

from schemas.limits import Limits
from service.engine.cost import VERIFY_SHARE, estimate_cost
from service.engine.spec import JacobianOptions, ModelSpec


def _spec(**jac: object) -> ModelSpec:
    return ModelSpec(
        widths=(128,) * 51,
        activations=("relu",) * 50,
        batch_size=8,
        jacobian=JacobianOptions(**jac),  # type: ignore[arg-type]
    )


@pytest.mark.parametrize("method", ["exact", "estimate"])
def test_power_iterations_are_counted(method: str) -> None:
    few = estimate_cost(_spec(method=method, power_iterations=2)).gflop
    many = estimate_cost(_spec(method=method, power_iterations=100)).gflop
    assert many > 2 * few


def test_the_spec_that_ran_past_the_timeout_is_now_priced_as_such() -> None:
    """d=200, n=128, B=128, float64, exact, 100 power steps: once priced like 2 steps (149.8 GFLOP) and
    accepted, it ran 168 s. Its power steps read every product 200 times more."""
    spec = ModelSpec(
        widths=(128,) * 201,
        activations=("relu",) * 200,
        batch_size=128,
        dtype="float64",
        jacobian=JacobianOptions(method="exact", power_iterations=100),
    )
    two = dataclasses.replace(spec, jacobian=dataclasses.replace(spec.jacobian, power_iterations=2))
    default_budget = Limits().max_gflop
    assert estimate_cost(two).gflop < default_budget < estimate_cost(spec).gflop


def test_every_option_that_adds_work_is_counted() -> None:
    base = estimate_cost(_spec(method="exact", singular_values="none")).gflop
    assert estimate_cost(_spec(method="exact", singular_values="all")).gflop > base
    # the batch multiplies the analysis's own work (the reruns' budget has a floor, VERIFY_MIN_GFLOP, so compare that)
    own = estimate_cost(_spec(method="exact", singular_values="none"))
    big = estimate_cost(dataclasses.replace(_spec(method="exact", singular_values="none"), batch_size=64))
    assert big.gflop - big.verify_gflop > 2 * (own.gflop - own.verify_gflop)
    assert big.gflop > base
    probes = [estimate_cost(_spec(method="estimate", probes=k)).gflop for k in (16, 128)]
    assert probes[1] > probes[0]
    verify_off = estimate_cost(dataclasses.replace(_spec(method="exact"), verify_recommendations=False)).gflop
    assert estimate_cost(_spec(method="exact")).gflop > verify_off


def test_recommendation_reruns_are_bounded_by_their_budget() -> None:
    """The reruns may spend at most the analysis's own work (at least VERIFY_MIN_GFLOP): what is admitted is
    what runs; a recommendation past the budget stays unverified."""
    wide = ModelSpec(widths=(4096,) * 13, activations=("relu",) * 12)
    cost = estimate_cost(wide)
    assert cost.verify_gflop <= (cost.gflop - cost.verify_gflop) * VERIFY_SHARE + 1e-6
    assert cost.gflop < Limits().max_gflop


def test_auto_takes_the_cheaper_method_past_its_budget() -> None:
    """d=100, n=512: exact (width³) fits; d=12, n=4096: the matrix-free estimate (width²) does."""
    mid = ModelSpec(widths=(512,) * 101, activations=("relu",) * 100)
    wide = ModelSpec(widths=(4096,) * 13, activations=("relu",) * 12)
    assert estimate_cost(mid).jacobian_method == "exact"
    assert estimate_cost(wide).jacobian_method == "estimate"


def test_past_the_budget_a_recommendation_is_unverified_never_claimed(monkeypatch: pytest.MonkeyPatch) -> None:
    import service.engine.cost as cost_mod
    from service.engine import analyze

    monkeypatch.setattr(cost_mod, "VERIFY_SHARE", 0.0)
    monkeypatch.setattr(cost_mod, "VERIFY_MIN_GFLOP", 0.0)
    spec = ModelSpec(widths=(32,) * 31, activations=("sigmoid",) * 30, init="xavier_normal", batch_size=4)
    report = analyze(spec)
    assert report.diagnosis.verdict == "vanishing" and report.diagnosis.recommendations
    assert all(r.fixes is None and r.verified is None for r in report.diagnosis.recommendations)
