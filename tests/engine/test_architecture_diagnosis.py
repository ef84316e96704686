"""Architectural causes and fixes: each fix verified by a rerun at the user's batch, as every recommendation is."""

from __future__ import annotations

import json

from schemas import ModelSpecSchema
from service.engine import analyze


def _report(body: dict):
    return analyze(ModelSpecSchema().load(body))


def _fixes(report) -> dict[str, list[dict]]:
    out: dict[str, list[dict]] = {}
    for rec in report.diagnosis.recommendations:
        if rec.fixes:
            assert rec.verified is not None and rec.verified.verdict == "stable"
            assert rec.verified.batch_size == report.layers[0].output_grad.numel // report.layers[0].out_features
            out.setdefault(rec.code, []).append(rec.change)
    return out


def test_unscaled_branches_compound_and_1_over_sqrt_blocks_fixes_them() -> None:
    report = _report({"layers": {"depth": 40, "width": 64}, "architecture": {"residual": {"every": 1}}})
    assert report.diagnosis.verdict == "exploding"
    assert report.diagnosis.causes[0].code == "residual_compound"
    fixes = _fixes(report)
    scaled = fixes["scale_branches"][0]["architecture"]["residual"]
    assert scaled == {"every": 1, "branch_scale": round(1 / 40**0.5, 4)}
    assert fixes["zero_branches"][0]["architecture"]["residual"]["branch_scale"] == 0.0


def test_batchnorm_is_named_as_the_cause_and_skips_around_it_fix_it() -> None:
    report = _report(
        {
            "layers": {"depth": 30, "width": 64},
            "batch_size": 16,
            "architecture": {"normalization": {"kind": "batchnorm", "position": "post"}},
        }
    )
    assert report.diagnosis.verdict == "exploding"
    assert "batchnorm_explodes" in [c.code for c in report.diagnosis.causes]
    fix = _fixes(report)["skip_batchnorm"][0]["architecture"]
    assert fix["residual"]["every"] == 2 and fix["normalization"]["kind"] == "batchnorm"


def test_a_deep_plain_network_gets_an_architectural_fix_among_its_verified_fixes() -> None:
    report = _report({"layers": {"depth": 50, "width": 64}, "activation": "sigmoid", "init": "xavier_normal"})
    assert report.diagnosis.verdict == "vanishing"
    changes = _fixes(report)["add_residual"]
    assert {"every": 2, "branch_scale": 0.2} in [c["architecture"]["residual"] for c in changes]
    json.dumps(changes)  # a change is plain JSON, as a client resubmits it


def test_normalisation_hides_the_weight_scale_from_the_forward_pass_only() -> None:
    report = _report(
        {
            "layers": {"depth": 40, "width": 64},
            "activation": "tanh",
            "init": "xavier_normal",
            "weight_scale": 3.0,
            "loss": "cross_entropy",
            "architecture": {"normalization": {"kind": "layernorm", "position": "post"}},
        }
    )
    assert report.diagnosis.verdict == "exploding"
    assert "normalization_hides_scale" in [c.code for c in report.diagnosis.causes]
    forward = [lr.activation.log10_pre_activation_rms for lr in report.layers]
    assert max(forward) < 1.0  # the forward pass looks healthy


def test_a_constant_loss_is_said_and_its_exact_zero_gradient_is_no_range_event() -> None:
    report = _report(
        {
            "layers": {"depth": 6, "width": 16},
            "activation": "tanh",
            "verify_recommendations": False,
            "architecture": {"normalization": {"kind": "layernorm", "position": "post"}},
        }
    )
    assert any("constant" in n for n in report.runtime.notes)
    assert all(lr.weight_grad.max_abs < 1e-5 for lr in report.layers)  # 0 in exact arithmetic, float32 rounding here
    assert not report.diagnosis.cancellation.occurred and not report.diagnosis.underflow.occurred
