"""Mean-field theory of residual and normalised networks against wide-network measurements (blocktheory)."""

from __future__ import annotations

import math

import pytest

from service.engine import analyze

from .conftest import make_spec

WIDE = {"layers": {"depth": 12, "width": 256}, "batch_size": 16}


@pytest.mark.parametrize(
    ("body", "tolerance"),
    [
        ({"activation": "tanh", "architecture": {"residual": {"every": 1, "branch_scale": 0.5}}}, 0.05),
        ({"activation": "relu", "architecture": {"residual": {"every": 2, "branch_scale": 1.0}}}, 0.1),
        (
            {
                "activation": "relu",
                "architecture": {
                    "residual": {"every": 2, "branch_scale": 1.0},
                    "normalization": {"kind": "layernorm", "position": "pre"},
                },
            },
            0.05,
        ),
        ({"activation": "tanh", "architecture": {"normalization": {"kind": "layernorm", "position": "post"}}}, 0.05),
        ({"activation": "tanh", "architecture": {"normalization": {"kind": "rmsnorm", "position": "pre"}}}, 0.05),
    ],
    ids=["tanh-residual", "relu-residual2", "relu-prenorm-residual", "tanh-postnorm", "tanh-rmsnorm"],
)
def test_prediction_within_its_tolerance_of_the_wide_measurement(body: dict, tolerance: float) -> None:
    report = analyze(make_spec(**WIDE, **body))
    th = report.theory.architecture
    assert th is not None and th.status == "approximation"
    assert th.measured_log10_total_growth == pytest.approx(report.diagnosis.log10_total_growth)
    assert th.log10_error == pytest.approx(th.predicted_log10_total_growth - th.measured_log10_total_growth)
    assert abs(th.log10_error) < tolerance * max(1.0, abs(th.measured_log10_total_growth))
    assert report.theory.predicted_log10_total_growth == th.predicted_log10_total_growth


def test_batchnorm_relu_explodes_at_the_mean_field_rate_whatever_the_weight_scale() -> None:
    """Yang et al. 2019: π/(π−1) per layer on the squared norm, in the wide, large-batch limit."""
    rates = []
    for scale in (0.5, 1.0, 3.0):
        spec = make_spec(
            layers={"depth": 8, "width": 256},
            batch_size=64,
            weight_scale=scale,
            jacobian={"method": "estimate", "probes": 64, "power_iterations": 0},
            architecture={"normalization": {"kind": "batchnorm", "position": "pre"}},
        )
        report = analyze(spec)
        rates.append(report.diagnosis.log10_total_growth / (spec.depth - 1))
        predicted = report.theory.architecture.predicted_log10_total_growth / (spec.depth - 1)
        assert predicted == pytest.approx(0.5 * math.log10(math.pi / (math.pi - 1)))
    for rate in rates:  # finite batch and width: within 15 % of the limit
        assert rate == pytest.approx(predicted, rel=0.15)
    assert max(rates) - min(rates) < 0.01  # the weight scale does not matter


def test_batchnorm_theory_is_null_with_a_reason_beyond_relu() -> None:
    spec = make_spec(
        layers={"depth": 4, "width": 16},
        activation="tanh",
        architecture={"normalization": {"kind": "batchnorm", "position": "post"}},
    )
    th = analyze(spec).theory
    assert th.architecture.status == "unavailable" and th.predicted_log10_total_growth is None
    assert "relu" in th.architecture.reason and th.architecture.references


@pytest.mark.parametrize("position", ["pre", "post"])
def test_layernorm_makes_a_homogeneous_network_independent_of_the_weight_scale(position: str) -> None:
    totals = []
    for scale in (0.3, 1.0, 5.0):
        spec = make_spec(
            layers={"depth": 10, "width": 64},
            weight_scale=scale,
            dtype="float64",
            architecture={"normalization": {"kind": "layernorm", "position": position}},
        )
        totals.append(analyze(spec).diagnosis.log10_total_growth)
    assert max(totals) - min(totals) < 1e-4  # ε = 1e-5 against variances of order 1 is all that is left
