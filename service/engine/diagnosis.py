"""Verdict, onset, causes in the lecture's terms, and recommendations verified by rerunning.

The verdict reads the exact product ∂h^d/∂h^1 (log domain), not the pass: a float16 pass
that overflows is flagged beside the verdict, as the lecture separates "the product
explodes" from "float16 turns it into inf".
"""

from __future__ import annotations

import math
from collections.abc import Callable

import torch

from .activations import get as get_activation
from .cost import VERIFY_RUNS
from .network import TORCH_DTYPES
from .report import Cause, Diagnosis, DtypeLimits, LayerReport, Outcome, RangeEvent, Recommendation, Theory
from .spec import ModelSpec

Verifier = Callable[[ModelSpec, bool], Outcome]  # (changed spec, full) → what the rerun measured


def dtype_limits(name: str) -> DtypeLimits:
    fi = torch.finfo(TORCH_DTYPES[name])
    sub = float(fi.tiny) * float(fi.eps)
    return DtypeLimits(
        dtype=name,
        max=float(fi.max),
        smallest_normal=float(fi.tiny),
        smallest_subnormal=sub,
        eps=float(fi.eps),
        log10_max=math.log10(float(fi.max)),
        log10_smallest_normal=math.log10(float(fi.tiny)),
    )


def verdict_of(log10_growth: float, spec: ModelSpec) -> str:
    if math.isnan(log10_growth):
        return "stable"
    if log10_growth > spec.thresholds.exploding_log10:
        return "exploding"
    if log10_growth < spec.thresholds.vanishing_log10:
        return "vanishing"
    return "stable"


def _onset(layers: list[LayerReport], verdict: str, spec: ModelSpec) -> int | None:
    """The top-most t whose product ∂h^d/∂h^t already leaves the stable band."""
    for lr in reversed(layers):
        g = lr.jacobian_product.log10_rms_gain
        if g is None:
            continue
        if (verdict == "exploding" and g > spec.thresholds.exploding_log10) or (
            verdict == "vanishing" and g < spec.thresholds.vanishing_log10
        ):
            return lr.index
    return None


def diagnose(
    spec: ModelSpec,
    layers: list[LayerReport],
    th: Theory,
    overflow: RangeEvent,
    underflow: RangeEvent,
    loss: float,
    verify: Verifier | None,
    cancellation: RangeEvent | None = None,
) -> Diagnosis:
    d = spec.depth
    total = layers[0].jacobian_product.log10_rms_gain
    total = float("nan") if total is None else total
    verdict = "vanishing" if total == -math.inf else verdict_of(total, spec)
    per_layer_log = total / (d - 1) if d > 1 and math.isfinite(total) else None
    growth = 10.0**per_layer_log if per_layer_log is not None else None
    causes = _causes(spec, layers, th, verdict, growth, total, overflow, underflow, loss)
    peaks = [g.max_abs for lr in layers for g in (lr.weight_grad, lr.output_grad) if g.max_abs is not None]
    rms = [lr.activation.log10_pre_activation_rms for lr in layers]
    rms = [v for v in rms if v is not None and math.isfinite(v)]
    forward_rms = (min(rms), max(rms)) if len(rms) == len(layers) else None
    recs = _recommendations(
        spec, th, verdict, overflow, underflow, growth, max(peaks, default=0.0), verify, forward_rms
    )
    return Diagnosis(
        verdict=verdict,
        log10_total_growth=total if math.isfinite(total) else None,
        growth_per_layer=growth,
        log10_growth_per_layer=per_layer_log,
        onset_layer=_onset(layers, verdict, spec),
        overflow=overflow,
        underflow=underflow,
        dtype_limits=dtype_limits(spec.dtype),
        causes=causes,
        recommendations=recs,
        summary=_summary(spec, verdict, growth, total, overflow, underflow, causes, recs),
        thresholds={
            "exploding_log10": spec.thresholds.exploding_log10,
            "vanishing_log10": spec.thresholds.vanishing_log10,
            "flag_fraction": spec.thresholds.flag_fraction,
            "flag_min_count": spec.thresholds.flag_min_count,
        },
        cancellation=cancellation or RangeEvent(False, None, None, None, None),
    )


def _mean(values: list[float | None]) -> float | None:
    vals = [v for v in values if v is not None and math.isfinite(v)]
    return sum(vals) / len(vals) if vals else None


def _causes(
    spec: ModelSpec,
    layers: list[LayerReport],
    th: Theory,
    verdict: str,
    growth: float | None,
    total: float,
    overflow: RangeEvent,
    underflow: RangeEvent,
    loss: float,
) -> list[Cause]:
    causes: list[Cause] = []
    d = spec.depth
    kinds = {get_activation(a).kind for a in spec.activations}
    sp_mean = _mean([lr.activation.sigma_prime_mean for lr in layers[1:]] or [layers[0].activation.sigma_prime_mean])
    dead = _mean([lr.activation.dead_fraction for lr in layers])
    saturated = _mean([lr.activation.saturated_fraction for lr in layers])
    g = f"{growth:.3g}" if growth is not None else "n/a"
    growth_ev = {
        "growth_per_layer": growth,
        "log10_total_growth": total if math.isfinite(total) else None,
        "sigma_w2": th.sigma_w2,
        "chi_mean": th.chi_mean,
        "mean_sigma_prime": sp_mean,
    }
    if verdict == "exploding" and _near_critical(th):
        causes.append(_finite_width_cause(spec, th, g, total, growth_ev))
    elif verdict == "exploding":
        causes.append(
            Cause(
                "weights_too_large",
                f"Each layer multiplies the backpropagated gradient by about {g} (σ_w² = fan_in·Var(W) = "
                f"{th.sigma_w2:.3g}, χ = σ_w²·E[σ'²] = {_fmt(th.chi_mean)} > 1), so the product of the {d - 1} "
                f"Jacobians diag(σ')W grows like {g}^{d - 1} ≈ 1e{total:.0f}: the weights are too large.",
                evidence=growth_ev,
            )
        )
    elif verdict == "vanishing":
        if "saturating" in kinds and sp_mean is not None:
            peak = max(get_activation(a).peak_prime for a in spec.activations)
            causes.append(
                Cause(
                    "small_derivative",
                    f"σ' is small: its mean over the layers is {sp_mean:.3g} (σ' ≤ {peak:g} for this activation), so "
                    f"each of the {d - 1} factors diag(σ')W shrinks the gradient, to {g} per layer and 1e{total:.0f} "
                    "over the net.",
                    evidence=growth_ev,
                )
            )
            if saturated is not None and saturated > 0.1:
                causes.append(
                    Cause(
                        "saturation",
                        f"{saturated:.0%} of the units are saturated (σ' below 1% of its peak): their pre-activations "
                        "are far from 0, where σ is flat.",
                        evidence={"saturated_fraction": saturated},
                    )
                )
        if dead is not None and dead > 0.6:
            causes.append(
                Cause(
                    "dead_units",
                    f"{dead:.0%} of the ReLU units are dead (σ' = 0), so whole rows of each Jacobian are zero.",
                    evidence={"dead_fraction": dead},
                )
            )
        if not causes and _near_critical(th):
            causes.append(_finite_width_cause(spec, th, g, total, growth_ev))
        elif not causes or (th.chi_mean is not None and th.sigma_w2 * _max_prime_sq(spec) < 1):
            causes.append(
                Cause(
                    "weights_too_small",
                    f"The weights are too small: σ_w² = {th.sigma_w2:.3g}, χ = {_fmt(th.chi_mean)} < 1, so each layer "
                    f"multiplies the gradient by about {g}.",
                    evidence=growth_ev,
                )
            )
    lim = dtype_limits(spec.dtype)
    if overflow.occurred:
        causes.append(
            Cause(
                "dtype_overflow",
                f"{spec.dtype} overflows: its largest finite value is {lim.max:.4g}, and the {_q(overflow.quantity)} "
                f"became inf/NaN from layer {overflow.first_layer} ({overflow.layers_from_top} layers from the top).",
                layers=[overflow.first_layer] if overflow.first_layer else [],
                evidence={"quantity": overflow.quantity, "fraction": overflow.fraction, "dtype_max": lim.max},
            )
        )
    if underflow.occurred:
        causes.append(
            Cause(
                "dtype_underflow",
                f"{spec.dtype} underflows: values below its smallest subnormal {lim.smallest_subnormal:.3g} "
                "become 0, and "
                f"the {_q(underflow.quantity)} at layer {underflow.first_layer} is 0 where exact arithmetic is not.",
                layers=[underflow.first_layer] if underflow.first_layer else [],
                evidence={
                    "quantity": underflow.quantity,
                    "fraction": underflow.fraction,
                    "smallest_normal": lim.smallest_normal,
                },
            )
        )
    if not math.isfinite(loss) and layers[-1].activation.output_nonfinite_fraction == 0:
        causes.append(
            Cause(
                "loss_overflow",
                f"The loss itself overflows {spec.dtype} (the top layer is finite, the {spec.loss} loss of it is not).",
                layers=[d],
            )
        )
    return causes


def _near_critical(th: Theory) -> bool:
    """Mean-field theory says the gain per layer is within 1 % of 1 (the edge of chaos)."""
    return th.predicted_growth_per_layer is not None and abs(math.log(th.predicted_growth_per_layer)) < 0.01


def _finite_width_cause(spec: ModelSpec, th: Theory, g: str, total: float, evidence: dict[str, object]) -> Cause:
    width = min(spec.widths[1:])
    return Cause(
        "finite_width",
        f"The initialisation is right for infinitely wide layers (χ = {_fmt(th.chi_mean)}, a predicted gain of "
        f"{th.predicted_growth_per_layer:.4f} per layer), but at width {width} the measured gain is {g}: the "
        f"fluctuations of a finite net compound over {spec.depth - 1} layers to 1e{total:.0f}.",
        evidence=evidence,
    )


def _max_prime_sq(spec: ModelSpec) -> float:
    return max(get_activation(a).peak_prime for a in spec.activations) ** 2


def _fmt(x: float | None) -> str:
    return "n/a" if x is None else f"{x:.3g}"


def _q(quantity: str | None) -> str:
    return {
        "forward_activation": "forward activations",
        "output_grad": "gradient ∂ℓ/∂h",
        "weight_grad": "weight gradient ∂ℓ/∂W",
        "loss": "loss",
    }.get(quantity or "", "values")


def _candidates(
    spec: ModelSpec,
    th: Theory,
    verdict: str,
    growth: float | None,
    overflow: RangeEvent,
    underflow: RangeEvent,
    peak_grad: float,
    forward_rms: tuple[float, float] | None = None,
) -> list[tuple[str, dict[str, object], str, str]]:
    out: list[tuple[str, dict[str, object], str, str]] = []
    names = set(spec.activations)
    act = get_activation(next(iter(names))) if len(names) == 1 else None
    if verdict != "stable" and act is not None and act.homogeneous and growth is not None and growth > 0:
        scale = float(f"{spec.weight_scale / growth:.4g}")
        if 0 < scale <= 1e6:
            out.append(
                (
                    "measured_weight_scale",
                    {"weight_scale": scale},
                    f"{act.name} is positively homogeneous: multiplying every W by c multiplies every Jacobian "
                    f"diag(σ')W by c and leaves σ' as it is, so weight_scale {spec.weight_scale:g}/{growth:.4g} = "
                    f"{scale:g} makes this network's measured gain per layer 1.",
                    "growth",
                )
            )
    if verdict != "stable":
        if th.critical_weight_scale is not None and act is not None:
            scale = float(f"{th.critical_weight_scale:.4g}")
            if abs(scale - spec.weight_scale) > 1e-3 * spec.weight_scale:
                out.append(
                    (
                        "critical_weight_scale",
                        {"weight_scale": scale},
                        f"Mean-field theory puts χ = 1 at weight_scale {scale:g} for {spec.init} and {act.name}.",
                        "growth",
                    )
                )
        if act is not None and act.kind == "linear" and (spec.init, spec.weight_scale) != ("orthogonal", 1.0):
            out.append(
                (
                    "orthogonal_init",
                    {"init": "orthogonal", "weight_scale": 1.0},
                    "A product of orthogonal matrices is orthogonal: every singular value stays exactly 1, "
                    "where random Gaussian layers of small width drift (the lecture's product of 4×4 matrices).",
                    "growth",
                )
            )
        if act is not None and act.kind in ("relu_like", "linear", "smooth"):
            init = "kaiming_normal" if act.kind != "linear" else "xavier_normal"
            if (spec.init, spec.weight_scale) != (init, 1.0):
                out.append(
                    (
                        "variance_preserving_init",
                        {"init": init, "weight_scale": 1.0},
                        f"{init} keeps Var(W)·fan_in·E[σ'²] ≈ 1 for {act.name}, so the gain per layer stays near 1.",
                        "growth",
                    )
                )
        if verdict == "vanishing" and (act is None or act.kind == "saturating"):
            out.append(
                (
                    "non_saturating_activation",
                    {"activation": "relu", "init": "kaiming_normal", "weight_scale": 1.0},
                    "relu has σ' = 1 on its active side instead of σ' ≤ 1/4, and kaiming_normal keeps the gain near 1.",
                    "growth",
                )
            )
            if act is None or act.name != "tanh":
                out.append(
                    (
                        "tanh_xavier",
                        {"activation": "tanh", "init": "xavier_normal", "weight_scale": 1.0},
                        "tanh has σ'(0) = 1 (sigmoid: 1/4), and xavier_normal keeps its gain near 1.",
                        "growth",
                    )
                )
    grad_under = any(q in underflow.by_quantity for q in ("output_grad", "weight_grad"))
    grad_over = any(q in overflow.by_quantity for q in ("output_grad", "weight_grad", "loss"))
    if spec.dtype == "float16" and grad_under and not grad_over and peak_grad > 0:
        # the largest power of two that keeps the largest gradient 8× below float16's max
        scale = 2.0 ** math.floor(math.log2(65504.0 / 8.0 / peak_grad))
        if scale > spec.loss_scale and scale <= 2.0**24:
            out.append(
                (
                    "loss_scale",
                    {"loss_scale": scale},
                    f"Multiplying the loss by {scale:g} shifts every gradient {scale:g}× up, out of float16's "
                    "flush-to-zero range, while the largest stays 8× below 65504 (unscale before the update). "
                    "It changes the gradients only: the forward pass and the verdict stay as they are.",
                    "gradient_range",
                )
            )
    forward_scale = _forward_input_scale(spec, act, overflow, underflow, forward_rms)
    if forward_scale is not None:
        out.append(
            (
                "input_scale",
                {"input_scale": forward_scale},
                f"{spec.dtype}'s range is hit in the forward pass; {act.name if act else 'σ'} is positively "
                f"homogeneous, so input_scale {forward_scale:g} shifts every activation by the same factor and "
                f"centres them in {spec.dtype}'s normal range.",
                "forward_range",
            )
        )
    if (overflow.occurred or underflow.occurred) and spec.dtype in ("float16", "bfloat16"):
        if spec.dtype == "float16":
            out.append(
                (
                    "wider_range_dtype",
                    {"dtype": "bfloat16"},
                    "bfloat16 has float32's range (to 3.4e38, down to 1.2e-38) in 16 bits.",
                    "range",
                )
            )
        out.append(
            (
                "wider_range_dtype",
                {"dtype": "float32"},
                "float32 reaches 3.4e38 and resolves down to 1.2e-38.",
                "range",
            )
        )
    return out


def _forward_input_scale(
    spec: ModelSpec,
    act,
    overflow: RangeEvent,
    underflow: RangeEvent,
    forward_rms: tuple[float, float] | None,
) -> float | None:
    """For a homogeneous σ without bias, the input scale that centres the forward pass in the dtype's range."""
    hit = "forward_activation" in overflow.by_quantity or "forward_activation" in underflow.by_quantity
    if not hit or act is None or not act.homogeneous or spec.bias or forward_rms is None:
        return None
    lo, hi = forward_rms  # log10 of the smallest and largest per-layer RMS of the pre-activations
    lim = dtype_limits(spec.dtype)
    room = lim.log10_max - lim.log10_smallest_normal
    if hi - lo > room - 4.0:  # the spread itself does not fit (with two decades each side for the elements)
        return None
    shift = 0.5 * (lim.log10_max + lim.log10_smallest_normal) - 0.5 * (lo + hi)
    scale = float(f"{spec.input_scale * 10.0**shift:.3g}")
    # the inputs themselves must stay 8 standard deviations below the largest finite value
    if not 0 < scale <= lim.max / 8.0 or abs(math.log10(scale / spec.input_scale)) < 0.5:
        return None
    return scale


def _recommendations(
    spec: ModelSpec,
    th: Theory,
    verdict: str,
    overflow: RangeEvent,
    underflow: RangeEvent,
    growth: float | None,
    peak_grad: float,
    verify: Verifier | None,
    forward_rms: tuple[float, float] | None = None,
) -> list[Recommendation]:
    candidates = _candidates(spec, th, verdict, growth, overflow, underflow, peak_grad, forward_rms)[:VERIFY_RUNS]
    recs: list[Recommendation] = []
    for code, change, why, addresses in candidates:
        changed = spec.with_changes(**change)
        outcome = verify(changed, False) if verify is not None else None
        fixes = None if outcome is None else fixes_problem(addresses, outcome, overflow, underflow)
        if fixes and verify is not None:  # cheap rerun passed: confirm at the user's batch, seed and method
            outcome = verify(changed, True)
            fixes = fixes_problem(addresses, outcome, overflow, underflow)
        recs.append(Recommendation(code, change, why, outcome, fixes, addresses))
    if verify is None:
        return recs
    working = [r for r in recs if r.fixes]
    if working:
        return working

    # Nothing fixed it alone: keep the one that came closest, marked fixes=false.
    def distance(r: Recommendation) -> float:
        g = r.verified.log10_total_growth if r.verified else None
        return abs(g) if g is not None else math.inf

    return sorted(recs, key=distance)[:1]


def fixes_problem(addresses: str, outcome: Outcome, overflow: RangeEvent, underflow: RangeEvent) -> bool:
    """Whether a rerun shows the problem a recommendation addresses gone (see Recommendation)."""
    if addresses == "gradient_range":
        return not outcome.gradient_overflow and not outcome.gradient_underflow
    if addresses == "forward_range":
        grad_before = any(q in e.by_quantity for e in (overflow, underflow) for q in ("output_grad", "weight_grad"))
        new_grad = (outcome.gradient_overflow or outcome.gradient_underflow) and not grad_before
        return not outcome.forward_overflow and not outcome.forward_underflow and not new_grad
    if addresses == "range":
        return not outcome.overflow and not outcome.underflow
    return outcome.verdict == "stable" and not outcome.overflow and not outcome.underflow


def _factor(log10_value: float) -> str:
    """10^x as a plain number near 1, else as a power of ten (1e-31, 1e21)."""
    return f"{10.0**log10_value:.3g}" if abs(log10_value) < 3 else f"1e{log10_value:.0f}"


def _summary(
    spec: ModelSpec,
    verdict: str,
    growth: float | None,
    total: float,
    overflow: RangeEvent,
    underflow: RangeEvent,
    causes: list[Cause],
    recs: list[Recommendation],
) -> str:
    d = spec.depth
    layers = f"{d - 1} layer{'s' if d != 2 else ''}"
    if verdict == "stable":
        text = "Stable: the gradient keeps its size through the net"
        if growth is not None:
            text += f" ({growth:.3g} per layer, ×{_factor(total)} over {layers})"
    elif math.isfinite(total):
        word = "grows" if verdict == "exploding" else "shrinks"
        text = (
            f"{verdict.capitalize()}: the gradient {word} by {growth:.3g} per layer, so after {layers} the "
            f"first layer's gradient is {_factor(total)} times the last one's"
        )
    else:
        text = "Vanishing: the product of the Jacobians is exactly zero (every path through the net is cut)"
    if causes and causes[0].code not in ("dtype_overflow", "dtype_underflow"):
        text += f" ({causes[0].code.replace('_', ' ')})"
    if overflow.occurred:
        text += f"; {spec.dtype} overflows to inf at layer {overflow.first_layer}"
    if underflow.occurred:
        text += f"; {spec.dtype} flushes values to 0 at layer {underflow.first_layer}"
    fix = next((r for r in recs if r.fixes), None)
    if fix is not None and fix.verified is not None:
        change = ", ".join(f"{k}: {v}" for k, v in fix.change.items())
        gpl = fix.verified.growth_per_layer
        text += f". Fix: {change} (verified: {fix.verified.verdict}"
        text += f", {gpl:.3g} per layer)" if gpl is not None else ")"
    return text + "."
