"""Exact vs estimate vs svd, float16 emulation vs native, and the verified recommendations."""

from __future__ import annotations

import dataclasses

import pytest
import torch

from service.engine import analyze
from service.engine.network import make_parameters, run_pass

from .conftest import make_spec


@pytest.mark.parametrize("activation", ["relu", "tanh"])
def test_power_iteration_spectral_norm_matches_svd(activation: str) -> None:
    body = {
        "layers": {"depth": 12, "width": 48},
        "activation": activation,
        "batch_size": 3,
        "init": "xavier_normal" if activation == "tanh" else "kaiming_normal",
    }
    power = analyze(make_spec(**body, jacobian={"method": "exact", "singular_values": "none"}))
    svd = analyze(make_spec(**body, jacobian={"method": "exact", "singular_values": "all"}))
    for a, b in zip(power.layers, svd.layers, strict=True):
        assert a.jacobian_product.log10_spectral_norm == pytest.approx(b.jacobian_product.log10_spectral_norm, abs=0.01)
        assert a.jacobian_product.log10_spectral_norm <= b.jacobian_product.log10_spectral_norm + 1e-9  # a lower bound
        assert a.jacobian_product.log10_frobenius_norm == pytest.approx(
            b.jacobian_product.log10_frobenius_norm, abs=1e-9
        )


@pytest.mark.parametrize("activation", ["relu", "sigmoid"])
def test_estimate_is_within_its_error_bounds_of_exact(activation: str) -> None:
    body = {"layers": {"depth": 10, "width": 128}, "activation": activation, "batch_size": 2, "init": "kaiming_normal"}
    exact = analyze(make_spec(**body, jacobian={"method": "exact", "singular_values": "none", "power_iterations": 8}))
    est = analyze(make_spec(**body, jacobian={"method": "estimate"}))
    assert est.runtime.jacobian_method == "estimate" and exact.runtime.jacobian_method == "exact"
    for a, b in zip(est.layers, exact.layers, strict=True):
        assert a.jacobian_product.log10_frobenius_norm == pytest.approx(
            b.jacobian_product.log10_frobenius_norm, abs=0.15
        )
        assert a.jacobian_product.log10_spectral_norm == pytest.approx(b.jacobian_product.log10_spectral_norm, abs=0.1)


def test_auto_picks_estimate_where_the_formed_product_is_too_big() -> None:
    r = analyze(make_spec(layers=[4096, 4096, 4096], activation="relu", batch_size=1), auto_exact_gflop=0.01)
    assert r.runtime.jacobian_method == "estimate"
    assert r.layers[0].jacobian_product.min_singular_value_status in ("not_computed", "rank_deficient")


def test_float16_emulation_matches_native_float16() -> None:
    """Same inf layers and same zero layers, values within float16 rounding."""
    spec = make_spec(
        layers={"depth": 30, "width": 8},
        activation="identity",
        init="normal",
        weight_scale=0.9,
        dtype="float16",
        batch_size=2,
    )
    params = make_parameters(spec)
    emulated = run_pass(spec, params, torch.device("cpu"))
    assert emulated.emulated
    native = _native_float16_pass(spec, params)
    for a, b in zip(emulated.output_grads, native, strict=True):
        assert torch.equal(torch.isfinite(a), torch.isfinite(b.float()))
        assert torch.equal(a == 0, b.float() == 0)
        fin = torch.isfinite(a) & (a != 0)
        rel = ((a[fin] - b.float()[fin]).abs() / a[fin].abs()).max() if bool(fin.any()) else torch.tensor(0.0)
        assert float(rel) < 2e-2


def _native_float16_pass(spec, params) -> list[torch.Tensor]:
    ws = [w.to(torch.float16).requires_grad_(True) for w in params.weights]
    h = params.x.to(torch.float16)
    outs = []
    for w in ws:
        h = h @ w.T
        h.retain_grad()
        outs.append(h)
    h.sum().backward()
    return [o.grad for o in outs]


def test_recommendations_are_verified_by_rerunning_the_changed_spec() -> None:
    spec = make_spec(
        layers={"depth": 30, "width": 32}, activation="sigmoid", init="xavier_normal", verify_recommendations=True
    )
    d = analyze(spec).diagnosis
    assert d.verdict == "vanishing"
    assert d.recommendations, "a vanishing sigmoid net must get advice"
    for rec in d.recommendations:
        assert rec.fixes is True and rec.verified is not None and rec.verified.verdict == "stable"
        # the verification is real: analysing the changed spec gives a stable verdict too
        changed = analyze(dataclasses.replace(spec.with_changes(**rec.change), verify_recommendations=False))
        assert changed.diagnosis.verdict == "stable"
    assert "Fix:" in d.summary


def test_float16_overflow_gets_a_dtype_recommendation_that_works() -> None:
    spec = make_spec(
        layers={"depth": 40, "width": 16},
        activation="identity",
        init="orthogonal",
        weight_scale=1.3,
        dtype="float16",
        verify_recommendations=True,
        thresholds={"exploding_log10": 10.0},
    )
    d = analyze(spec).diagnosis
    assert d.overflow.occurred and d.verdict == "stable"
    assert any(r.change.get("dtype") in ("bfloat16", "float32") and r.fixes for r in d.recommendations)


# Sigmoid in float16, depth 12: σ' ≤ 1/4 flushes the bottom layers' gradients to zero.
SIGMOID_FLOAT16 = {
    "layers": {"depth": 12, "width": 16},
    "activation": "sigmoid",
    "init": "xavier_normal",
    "dtype": "float16",
    "batch_size": 4,
}


def test_loss_scale_lifts_float16_gradients_out_of_underflow() -> None:
    """Sigmoid, xavier_normal, depth 12: σ' ≤ 1/4 shrinks the gradient to ~1e-7 at the bottom, where float16
    flushes it, while the forward pass (sigmoid outputs in (0, 1)) stays in float16's normal range — checked
    here, on this machine, so the premise cannot silently fail."""
    body = {**SIGMOID_FLOAT16, "thresholds": {"vanishing_log10": -20.0}}
    spec = make_spec(**body)
    forward = torch.cat([h.reshape(-1) for h in run_pass(spec, make_parameters(spec), torch.device("cpu")).outputs])
    tiny = torch.finfo(torch.float16).tiny
    assert bool(torch.isfinite(forward).all()) and float(forward.abs().min()) >= 8 * tiny  # the premise
    plain = analyze(make_spec(**body, verify_recommendations=True))
    under = plain.diagnosis.underflow
    assert under.occurred and "forward_activation" not in under.by_quantity
    rec = next(r for r in plain.diagnosis.recommendations if r.code == "loss_scale")
    assert rec.fixes is True and rec.addresses == "gradient_range"
    assert rec.verified is not None and not rec.verified.gradient_underflow
    scale = rec.change["loss_scale"]
    scaled = analyze(make_spec(**body, loss_scale=scale))
    assert not scaled.diagnosis.underflow.occurred and not scaled.diagnosis.overflow.occurred
    # statistics are unscaled: the same gradient norms as the exact float64 pass, within float16 rounding
    exact = analyze(make_spec(**{**body, "dtype": "float64"}))
    for a, b in zip(scaled.layers, exact.layers, strict=True):
        assert a.output_grad.norm == pytest.approx(b.output_grad.norm, rel=2e-2)


def test_a_single_stray_value_is_not_an_underflow() -> None:
    """flag_min_count: one flushed value in a layer is below the minimum count, however large its fraction."""
    body = SIGMOID_FLOAT16
    loose = analyze(make_spec(**body, thresholds={"flag_fraction": 1e-6, "flag_min_count": 1}))
    counts = {
        t: round(lr.output_grad.zero_fraction * lr.output_grad.numel) for t, lr in enumerate(loose.layers, start=1)
    }
    first = loose.diagnosis.underflow.by_quantity["output_grad"].first_layer
    strict = analyze(make_spec(**body, thresholds={"flag_fraction": 1e-6, "flag_min_count": counts[first] + 1}))
    event = strict.diagnosis.underflow.by_quantity.get("output_grad")
    assert event is None or event.first_layer < first


def test_estimate_with_as_many_probes_as_outputs_is_exact() -> None:
    body = {"layers": {"depth": 20, "width": 16}, "activation": "tanh", "init": "xavier_normal", "batch_size": 2}
    exact = analyze(make_spec(**body, jacobian={"method": "exact", "singular_values": "none"}))
    est = analyze(make_spec(**body, jacobian={"method": "estimate", "probes": 64}))
    for a, b in zip(est.layers, exact.layers, strict=True):
        assert a.jacobian_product.log10_frobenius_norm == pytest.approx(
            b.jacobian_product.log10_frobenius_norm, abs=1e-5
        )


def test_finite_width_drift_is_explained_and_fixed_by_the_measured_weight_scale() -> None:
    """kaiming_normal is exact for infinitely wide relu layers; a narrow deep net still drifts."""
    spec = make_spec(
        layers={"depth": 300, "width": 16},
        activation="relu",
        init="kaiming_normal",
        batch_size=4,
        verify_recommendations=True,
    )
    report = analyze(spec)
    d = report.diagnosis
    assert report.theory.predicted_growth_per_layer == pytest.approx(1.0, abs=1e-9)
    assert d.verdict != "stable" and d.causes[0].code == "finite_width"
    rec = next(r for r in d.recommendations if r.code == "measured_weight_scale")
    # homogeneous σ: scaling W by c scales every Jacobian by c, so the new scale is s / g exactly
    assert rec.change["weight_scale"] == pytest.approx(1.0 / d.growth_per_layer, rel=1e-3)
    assert rec.fixes is True


def test_estimate_keeps_saturated_sigma_prime_that_float32_cannot_hold() -> None:
    """Saturated sigmoid units: σ' below 1e-45 (under float32's smallest subnormal) in some layer. The
    float32 sweeps use σ' over its per-sample peak and keep the peaks in float64, like the exact chain."""
    body = {
        "layers": {"depth": 8, "width": 2},
        "activation": "sigmoid",
        "init": "normal",
        "weight_scale": 100.0,
        "batch_size": 2,
        "seed": 0,
    }
    exact = analyze(make_spec(**body, jacobian={"method": "exact", "singular_values": "none", "power_iterations": 8}))
    est = analyze(make_spec(**body, jacobian={"method": "estimate", "probes": 32}))
    assert min(lr.activation.sigma_prime_max for lr in exact.layers) < 1e-45
    assert exact.diagnosis.log10_total_growth < -100
    for a, b in zip(est.layers, exact.layers, strict=True):
        assert a.jacobian_product.log10_frobenius_norm == pytest.approx(
            b.jacobian_product.log10_frobenius_norm, abs=1e-5
        )
        assert a.jacobian_product.log10_spectral_norm == pytest.approx(b.jacobian_product.log10_spectral_norm, abs=1e-3)


def test_cancellation_to_zero_inside_the_range_is_not_underflow() -> None:
    """bfloat16 weight-gradient entries whose products sum to an exact 0 although the exact sum is ~1e-2: rounding,
    not range. The engine must not call them underflow; it reports them as cancellation."""
    spec = make_spec(
        layers={"depth": 50, "width": 16},
        activation="identity",
        init="orthogonal",
        dtype="bfloat16",
        seed=3,
    )
    report = analyze(spec)
    d = report.diagnosis
    assert not d.underflow.occurred
    assert d.cancellation.occurred and d.cancellation.quantity == "weight_grad"
    t = d.cancellation.first_layer
    # independently: the flushed entries' exact values (float64 pass) are far inside bfloat16's normal range
    params = make_parameters(spec)
    pass_grad = run_pass(spec, params, torch.device("cpu")).weight_grads[t - 1]
    exact_spec = dataclasses.replace(spec, dtype="float64")
    exact_grad = run_pass(exact_spec, params, torch.device("cpu")).weight_grads[t - 1]  # same (rounded) weights
    lost = (pass_grad == 0) & (exact_grad != 0)
    assert int(lost.sum()) >= 2
    assert float(exact_grad[lost].abs().min()) > 1e6 * torch.finfo(torch.bfloat16).tiny


@pytest.mark.parametrize(
    "layers,jac,precision,says",
    [
        # the chain's GEMMs: 2·B·n³ per product, for the d−1 products below the top (B = 8)
        (
            {"depth": 30, "width": 256},
            {"method": "exact"},
            "float32",
            f"in float32 ({2 * 8 * 256**3 * 29 / 1e9:.3g} GFLOP",
        ),
        ({"depth": 30, "width": 256}, {"method": "exact", "singular_values": "all"}, "float64", "singular_values all"),
        ({"depth": 10, "width": 32}, {"method": "exact"}, "float64", None),  # cheap: float64 needs no reason
        ({"depth": 30, "width": 256}, {"method": "exact", "precision": "float32"}, "float32", None),  # asked for
        ({"depth": 30, "width": 256}, {"method": "estimate"}, "float32", None),  # statistical: nothing to say
    ],
)
def test_runtime_says_why_auto_chose_the_chain_precision(layers, jac, precision: str, says: str | None) -> None:
    r = analyze(make_spec(layers=layers, jacobian=jac, verify_recommendations=False))
    assert r.runtime.jacobian_precision == precision
    notes = [n for n in r.runtime.notes if n.startswith("jacobian.precision auto")]
    assert (notes == []) if says is None else (len(notes) == 1 and says in notes[0])
