"""The lecture's cases (README.md and the lecture), each against a closed form or an independent float64 product."""

from __future__ import annotations

import math

import pytest
import torch

from service.engine import analyze
from service.engine.network import make_parameters

from .conftest import make_spec


def lecture_identity(dtype: str, seed: int = 0) -> dict:
    return {
        "layers": {"depth": 100, "width": 4},
        "activation": "identity",
        "init": "normal",
        "weight_scale": 1.0,
        "dtype": dtype,
        "seed": seed,
        "batch_size": 2,
    }


def test_identity_depth100_norm_matches_direct_float64_product() -> None:
    spec = make_spec(**lecture_identity("float32"))
    report = analyze(spec)
    ws = make_parameters(spec).weights
    direct = torch.linalg.multi_dot(ws[:0:-1]) if len(ws) > 2 else ws[1]  # W^d ··· W^2 = ∂h^d/∂h^1 for identity
    expected = math.log10(float(torch.linalg.matrix_norm(direct, ord="fro")))
    assert report.layers[0].jacobian_product.log10_frobenius_norm == pytest.approx(expected, abs=1e-9)
    assert report.diagnosis.verdict == "exploding"


def test_identity_depth100_norm_is_around_1e24_over_seeds() -> None:
    """E ln‖Wx‖/‖x‖ = ½(ψ(2) + ln 2) per 4×4 Gaussian factor: 99 factors ≈ 1e24 (the lecture's 1e24–1e25)."""
    logs = [
        analyze(make_spec(**lecture_identity("float32", seed))).layers[0].jacobian_product.log10_frobenius_norm
        for seed in range(8)
    ]
    mean = sum(logs) / len(logs)
    assert 22.5 < mean < 25.5


def test_identity_depth100_float16_overflows_within_about_20_layers_float32_does_not() -> None:
    """The forward pass first (about 20 layers up), the gradient about 20 layers down from the top."""
    r16 = analyze(make_spec(**lecture_identity("float16")))
    r32 = analyze(make_spec(**lecture_identity("float32")))
    over = r16.diagnosis.overflow
    assert over.occurred and over.quantity == "forward_activation"
    assert over.first_layer is not None and 10 <= over.first_layer <= 30
    grad = over.by_quantity["output_grad"].first_layer
    assert grad is not None and 10 <= 100 - grad + 1 <= 30
    assert not r32.diagnosis.overflow.occurred
    assert any(c.code == "dtype_overflow" for c in r16.diagnosis.causes)
    # the exact product does not depend on the pass dtype beyond the rounding of the weights
    assert r16.diagnosis.log10_total_growth == pytest.approx(r32.diagnosis.log10_total_growth, abs=0.1)


@pytest.mark.parametrize("gain,verdict", [(1.5, "exploding"), (0.8, "vanishing")])
def test_lecture_growth_factors_from_orthogonal_layers(gain: float, verdict: str) -> None:
    """Orthogonal W scaled by g: every Jacobian is g·Q, so 100 of them give exactly g^100 (4e17, 2e-10)."""
    spec = make_spec(
        layers={"depth": 101, "width": 16},
        activation="identity",
        init="orthogonal",
        weight_scale=gain,
        dtype="float64",
        batch_size=1,
    )
    d = analyze(spec).diagnosis
    assert d.growth_per_layer == pytest.approx(gain, rel=1e-9)
    assert d.log10_total_growth == pytest.approx(100 * math.log10(gain), abs=1e-8)
    assert d.verdict == verdict
    assert 10**d.log10_total_growth == pytest.approx(4.065611775e17 if gain == 1.5 else 2.037035976e-10, rel=1e-6)


def test_sigmoid_vanishes_because_sigma_prime_is_at_most_a_quarter() -> None:
    r = analyze(make_spec(layers={"depth": 30, "width": 64}, activation="sigmoid", init="xavier_normal"))
    d = r.diagnosis
    assert d.verdict == "vanishing"
    assert all(lr.activation.sigma_prime_max <= 0.25 for lr in r.layers)
    assert d.causes[0].code == "small_derivative"
    assert d.onset_layer is not None and d.onset_layer > 1


@pytest.mark.parametrize("init,gain", [("kaiming_normal", 1.0), ("xavier_normal", 1 / math.sqrt(2))])
def test_relu_width512_growth_matches_mean_field_theory(init: str, gain: float) -> None:
    r = analyze(make_spec(layers={"depth": 20, "width": 512}, activation="relu", init=init, batch_size=2))
    assert r.diagnosis.growth_per_layer == pytest.approx(gain, rel=0.03)
    assert r.theory.predicted_growth_per_layer == pytest.approx(gain, rel=0.01)


@pytest.mark.parametrize("gain,expected", [(1e4, 396.0), (1e-4, -396.0)])
def test_products_beyond_float64_range_keep_their_log10(gain: float, expected: float) -> None:
    """1e4^99 = 1e396 and 1e-396 are outside float64; the renormalised chain reports them exactly."""
    spec = make_spec(
        layers={"depth": 100, "width": 8},
        activation="identity",
        init="orthogonal",
        weight_scale=gain,
        dtype="float64",
        batch_size=1,
    )
    r = analyze(spec)
    assert r.diagnosis.log10_total_growth == pytest.approx(expected, abs=1e-8)
    assert r.layers[0].jacobian_product.log10_spectral_norm == pytest.approx(expected, abs=1e-6)
    # orthogonal products: all singular values equal, condition number 1
    assert r.layers[0].jacobian_product.log10_condition_number == pytest.approx(0.0, abs=1e-6)
    assert r.diagnosis.overflow.occurred == (gain > 1)


def test_float16_gradient_underflows_where_the_closed_form_says() -> None:
    """Orthogonal 0.5: the gradient at k layers below the top is 0.5^k·1ᵀQ; float16 flushes below ~3e-8 (k ≈ 25)."""
    spec = make_spec(
        layers={"depth": 40, "width": 16},
        activation="identity",
        init="orthogonal",
        weight_scale=0.5,
        dtype="float16",
        batch_size=2,
    )
    u = analyze(spec).diagnosis.underflow
    grad = u.by_quantity["output_grad"].first_layer
    assert u.occurred and grad is not None and 20 <= 40 - grad + 1 <= 30
    # h^t = 0.5^t·Q…x flushes too, about as far up: the forward pass is reached first, so it is the headline
    assert u.quantity == "forward_activation" and u.first_layer == u.by_quantity["forward_activation"].first_layer


def test_relu_products_with_dead_units_are_rank_deficient_not_noise() -> None:
    r = analyze(
        make_spec(
            layers={"depth": 6, "width": 32},
            activation="relu",
            batch_size=2,
            jacobian={"method": "exact", "singular_values": "all"},
        )
    )
    jp = r.layers[0].jacobian_product
    assert jp.min_singular_value_status == "rank_deficient"
    assert jp.log10_min_singular_value is None
    assert jp.rank_bound is not None and jp.rank_bound < 32


def test_same_spec_same_numbers() -> None:
    spec = make_spec(layers=[8, 16, 16, 4], activation="gelu", dtype="bfloat16", seed=7)
    a, b = analyze(spec), analyze(spec)
    a.runtime.elapsed_ms = b.runtime.elapsed_ms = 0.0
    assert a == b
    assert a.id == b.id
