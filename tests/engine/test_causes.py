"""Causes follow what was measured, one test per activation family, and never contradict χ.

Each case checks its premise from the report's own measurements (χ, the measured σ' fractions) before the
cause, so a case whose premise stops holding fails loudly instead of testing nothing.
"""

from __future__ import annotations

import pytest

from service.engine import analyze

from .conftest import make_spec

NARROW = {"layers": {"depth": 120, "width": 4}, "init": "orthogonal", "weight_scale": 3.0, "batch_size": 2}


def _codes(report) -> list[str]:
    return [c.code for c in report.diagnosis.causes]


def _consistent_with_chi(report) -> None:
    chi = report.theory.chi_mean
    codes = _codes(report)
    if "weights_too_small" in codes:
        assert chi is not None and chi < 1
    if "weights_too_large" in codes:
        assert chi is not None and chi > 1


@pytest.mark.parametrize(
    "scale,verdict,code", [(0.5, "vanishing", "weights_too_small"), (1.5, "exploding", "weights_too_large")]
)
def test_linear_weights_too_small_or_too_large(scale: float, verdict: str, code: str) -> None:
    r = analyze(
        make_spec(layers={"depth": 20, "width": 16}, activation="identity", init="orthogonal", weight_scale=scale)
    )
    assert r.diagnosis.verdict == verdict and r.theory.chi_mean == pytest.approx(scale**2)
    assert _codes(r) == [code]
    _consistent_with_chi(r)


def test_relu_with_xavier_weights_too_small_not_dead_units() -> None:
    """Half the ReLU units are off at random init: that is relu, not dead units; χ = σ_w²/2 = 1/2 is the weights."""
    r = analyze(make_spec(layers={"depth": 40, "width": 64}, activation="relu", init="xavier_normal"))
    assert r.diagnosis.verdict == "vanishing" and r.theory.chi_mean == pytest.approx(0.5)
    assert 0.4 < r.layers[10].activation.dead_fraction < 0.6
    assert _codes(r) == ["weights_too_small"]


def test_relu_dead_units() -> None:
    # width 2: a unit whose inputs are all negative stays off for every sample (seeds 0-3 all measured > 0.96)
    r = analyze(
        make_spec(layers={"depth": 30, "width": 2}, activation="relu", init="normal", weight_scale=0.2, batch_size=4)
    )
    dead = [lr.activation.dead_fraction for lr in r.layers[1:]]
    assert sum(dead) / len(dead) > 0.6  # the premise, measured
    assert "dead_units" in _codes(r)
    _consistent_with_chi(r)


def test_sigmoid_small_derivative_first() -> None:
    r = analyze(make_spec(layers={"depth": 30, "width": 64}, activation="sigmoid", init="xavier_normal"))
    assert max(lr.activation.sigma_prime_max for lr in r.layers) <= 0.25
    assert _codes(r)[0] == "small_derivative"
    _consistent_with_chi(r)


def test_tanh_saturated_on_both_sides_is_saturation_not_weights() -> None:
    r = analyze(make_spec(**{**NARROW, "layers": {"depth": 40, "width": 4}}, activation="tanh", dtype="float64"))
    assert r.diagnosis.verdict == "vanishing" and r.theory.chi_mean > 1  # theory alone would not predict it
    assert "saturation" in _codes(r) and "weights_too_small" not in _codes(r)


@pytest.mark.parametrize("activation", ["elu", "selu", "gelu", "softplus", "silu"])
def test_smooth_activations_saturating_on_the_negative_side(activation: str) -> None:
    """The issue's cases: σ_w² = 9, χ > 1, yet the product vanishes because units sit far on σ's flat negative
    side (σ' ≈ 0). Before, the engine said "the weights are too small: χ = 4.53 < 1"."""
    layers = {"depth": 40, "width": 4} if activation == "elu" else NARROW["layers"]
    r = analyze(make_spec(**{**NARROW, "layers": layers}, activation=activation, dtype="float64"))
    assert r.diagnosis.verdict == "vanishing" and r.theory.chi_mean > 1
    assert max(lr.activation.saturated_fraction for lr in r.layers) >= 0.5
    assert "saturation" in _codes(r)
    assert "weights_too_small" not in _codes(r) and "weights_too_large" not in _codes(r)
    assert "negative side" in next(c.message for c in r.diagnosis.causes if c.code == "saturation")
