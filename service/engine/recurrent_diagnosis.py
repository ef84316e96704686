"""Verdict, onset, causes and verified recommendations of a recurrent network, in its own terms: the recurrent
matrix against the activation's γ (Pascanu), saturating gates, the horizon; fixes as spec changes rerun at the
user's batch (orthogonal or identity W_hh, a weight scale from the bound, an lstm or gru cell, a forget bias, a
wider dtype or loss scale). Gradient clipping is reported beside it (RecurrentInfo.clipping), never as a fix."""

from __future__ import annotations

import math
from typing import Any

from . import diagnosis as diagnosis_mod
from .diagnosis import dtype_limits, fixes_problem, thresholds_of, verdict_of
from .narrative import change_words
from .report import Cause, Diagnosis, LayerReport, RangeEvent, Recommendation, Theory
from .spec import ModelSpec

Candidate = tuple[str, dict[str, Any], str, str]


def _causes(
    spec: ModelSpec,
    verdict: str,
    th: Theory,
    overflow: RangeEvent,
    underflow: RangeEvent,
    cancellation: RangeEvent,
    layers: list[LayerReport],
) -> list[Cause]:
    rec, rt = spec.recurrent, th.recurrent
    assert rec is not None and rt is not None
    steps = list(range(1, rec.steps + 1))
    out: list[Cause] = []
    smax = rt.sigma_max_recurrent[-1]
    if rec.cell == "rnn" and rt.gamma is not None:
        ev = {"sigma_max_recurrent": smax, "threshold": rt.pascanu_threshold, "gamma": rt.gamma}
        if verdict == "exploding" and rt.pascanu_condition == "exploding_possible":
            out.append(
                Cause(
                    "recurrent_too_large",
                    f"σ_max(W_hh) = {smax:.3g} is above 1/γ = {1 / rt.gamma:.3g}, "
                    "the necessary condition for exploding gradients (Pascanu et al. 2013), and the product "
                    "through time grows",
                    steps,
                    ev,
                )
            )
        if verdict == "vanishing" and rt.pascanu_condition == "vanishing_guaranteed":
            out.append(
                Cause(
                    "recurrent_too_small",
                    f"σ_max(W_hh) = {smax:.3g} is below 1/γ = {1 / rt.gamma:.3g}: "
                    "every step shrinks the gradient at least by γ·σ_max, so it vanishes (sufficient "
                    "condition, Pascanu et al. 2013)",
                    steps,
                    ev,
                )
            )
        sat = [lr.index for lr in layers if (lr.activation.saturated_fraction or 0.0) > 0.5]
        if verdict == "vanishing" and sat:
            out.append(
                Cause(
                    "saturation",
                    f"more than half the units are saturated (σ' < 1% of its peak) at {len(sat)} steps",
                    sat,
                    {"steps": len(sat)},
                )
            )
    elif verdict == "vanishing" and rt.mean_keep_gate is not None:
        gate = statistics_mean(rt.mean_keep_gate)
        out.append(
            Cause(
                "saturating_gates",
                f"the {'forget' if rec.cell == 'lstm' else 'update'} gate is {gate:.3g} on "
                "average: the cell path decays by that factor every step",
                steps,
                {"mean_keep_gate": gate},
            )
        )
    if verdict != "stable" and rec.steps > 1:
        growth = layers[0].jacobian_product.log10_rms_gain
        if growth is not None and abs(growth) / (rec.steps - 1) < 0.05:
            out.append(
                Cause(
                    "long_horizon",
                    f"each step changes the gradient by less than 10^0.05, yet over "
                    f"{rec.steps} steps it adds up to 10^{growth:.3g}",
                    steps,
                    {"steps": rec.steps},
                )
            )
    for event, code in ((overflow, "dtype_overflow"), (underflow, "dtype_underflow"), (cancellation, "cancellation")):
        if event.occurred:
            out.append(
                Cause(
                    code,
                    f"{event.quantity} in {spec.dtype}: first at step {event.first_layer}",
                    [event.first_layer] if event.first_layer else [],
                    {"fraction": event.fraction},
                )
            )
    return out


def statistics_mean(values: list[float]) -> float:
    return sum(values) / len(values)


def _scale_candidate(spec: ModelSpec, code: str, scale: float, why: str) -> list[Candidate]:
    """A weight_scale change (4 significant digits), unless it is the spec's own."""
    rounded = float(f"{scale:.4g}")
    return (
        []
        if rounded == spec.weight_scale
        else [(code, {"weight_scale": rounded}, f"weight_scale {rounded:g} {why}", "growth")]
    )


def _candidates(
    spec: ModelSpec, verdict: str, th: Theory, overflow: RangeEvent, underflow: RangeEvent
) -> list[Candidate]:
    rec, rt = spec.recurrent, th.recurrent
    assert rec is not None and rt is not None
    out: list[Candidate] = []
    if verdict != "stable":
        if spec.init != "orthogonal" or spec.weight_scale != 1.0:
            out.append(
                (
                    "orthogonal_recurrent",
                    {"init": "orthogonal", "weight_scale": 1.0},
                    "an orthogonal W_hh has every singular value 1: the product keeps the gradient's norm as far "
                    "as σ' allows (Saxe et al. 2014)",
                    "growth",
                )
            )
        if rec.cell == "rnn" and spec.activations[0] in ("relu", "identity", "leaky_relu") and spec.init != "identity":
            out.append(
                (
                    "identity_recurrent",
                    {"init": "identity", "weight_scale": 1.0},
                    "W_hh = I with relu (Le, Jaitly & Hinton 2015): the state carries over unchanged",
                    "growth",
                )
            )
        if rec.cell == "rnn" and th.critical_weight_scale is not None:
            why = "puts the mean-field χ = σ_w²·E[σ'²] at 1 (" + th.critical_note + ")"
            out += _scale_candidate(spec, "critical_scale", th.critical_weight_scale, why)
        if rec.cell == "rnn" and rt.pascanu_weight_scale is not None and verdict == "exploding":
            why = "puts σ_max(W_hh) at 1/γ, the edge of Pascanu's condition"
            out += _scale_candidate(spec, "scale_from_bound", rt.pascanu_weight_scale, why)
        if rec.cell == "rnn":
            for cell in ("lstm", "gru"):
                out.append(
                    (
                        f"cell_{cell}",
                        {"recurrent": {"cell": cell, "forget_bias": 1.0}},
                        f"a {cell} cell carries the gradient along its gated state path, opened by a forget bias of 1",
                        "growth",
                    )
                )
        elif verdict == "vanishing" and rec.forget_bias < 1.0:
            out.append(
                (
                    "forget_bias",
                    {"recurrent": {"forget_bias": 1.0}},
                    "a forget bias of 1 opens the keep gate at init (Jozefowicz et al. 2015)",
                    "growth",
                )
            )
    grad = any(q in e.by_quantity for e in (overflow, underflow) for q in ("output_grad", "weight_grad", "loss"))
    if spec.dtype in ("float16", "bfloat16") and (overflow.occurred or underflow.occurred):
        out.append(("wider_dtype", {"dtype": "float32"}, f"float32 holds what {spec.dtype} lost", "range"))
    if spec.dtype == "float16" and grad and "output_grad" in underflow.by_quantity:
        out.append(
            (
                "loss_scale",
                {"loss_scale": 1024.0},
                "scaling the loss by 1024 lifts small gradients into float16's range (unscaled before the update)",
                "gradient_range",
            )
        )
    return out


def _recommend(
    spec: ModelSpec, cands: list[Candidate], overflow: RangeEvent, underflow: RangeEvent, verify: Any
) -> list[Recommendation]:
    recs: list[Recommendation] = []
    for code, change, why, addresses in cands:
        changed = spec.with_changes(**change)
        outcome = verify(changed, False) if verify is not None else None
        fixes = None if outcome is None else fixes_problem(addresses, outcome, overflow, underflow)
        if fixes and verify is not None:  # confirm at the user's batch, seed and method before claiming it
            outcome = verify(changed, True)
            fixes = None if outcome is None else fixes_problem(addresses, outcome, overflow, underflow)
        recs.append(Recommendation(code, change, why, outcome, fixes, addresses, [code]))
    recs.sort(key=lambda r: not r.fixes)
    return recs


def diagnose_recurrent(
    spec: ModelSpec,
    layers: list[LayerReport],
    th: Theory,
    overflow: RangeEvent,
    underflow: RangeEvent,
    cancellation: RangeEvent,
    verify: Any,
) -> Diagnosis:
    rec = spec.recurrent
    assert rec is not None
    total = layers[0].jacobian_product.log10_rms_gain
    total = float("nan") if total is None else total
    verdict = "vanishing" if total == -math.inf else verdict_of(total, spec)
    onset = diagnosis_mod._onset(layers, verdict, spec)
    per_step = total / (rec.steps - 1) if rec.steps > 1 and math.isfinite(total) else None
    found = _causes(spec, verdict, th, overflow, underflow, cancellation, layers)
    recs = _recommend(spec, _candidates(spec, verdict, th, overflow, underflow), overflow, underflow, verify)
    fix = next((r for r in recs if r.fixes and (verdict == "stable" or r.addresses == "growth")), None)
    text = (
        f"The gradient through time is {verdict}: ‖∂h_T/∂h_1‖ changes the RMS gradient by 10^{total:.3g} over "
        f"{rec.steps - 1} steps"
        if math.isfinite(total)
        else f"The gradient through time is {verdict}"
    )
    if per_step is not None:
        text += f" ({10**per_step:.4g}× per step)"
    if onset is not None and verdict != "stable":
        text += f", out of the stable band {rec.steps - onset} steps back from the last"
    text += "."
    if found:
        text += f" Cause: {found[0].message}."
    if fix is not None and fix.verified is not None:
        text += f" Verified fix: {change_words(fix.change)} gives {fix.verified.verdict}."
    return Diagnosis(
        verdict=verdict,
        log10_total_growth=total if math.isfinite(total) else None,
        growth_per_layer=10**per_step if per_step is not None else None,
        log10_growth_per_layer=per_step,
        onset_layer=onset,
        overflow=overflow,
        underflow=underflow,
        dtype_limits=dtype_limits(spec.dtype),
        causes=found,
        recommendations=recs,
        summary=text,
        thresholds=thresholds_of(spec),
        cancellation=cancellation,
        growth_from_layer=1,
    )
