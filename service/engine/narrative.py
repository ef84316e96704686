"""The words: every sentence the diagnosis and the grader's feedback say, from plain numbers.

The lecture explains a deep net's gradient as a product of d−1 layer Jacobians: a factor g per
layer gives g^(d−1) from the top layer to the bottom one (1.5^100 ≈ 4e17 explodes, 0.8^100 ≈
2e-10 vanishes), sigmoid's σ' ≤ 1/4 makes that factor small, and float16 turns both into inf or 0
within a few dozen layers. The rules (`diagnosis.causes`, `diagnosis.advice`) decide what is true;
this module only says it, so the report's `causes`/`summary` and `service.grading.lecture`'s
feedback tell one story in one voice. Pure stdlib: no torch, no engine types.
"""

from __future__ import annotations

import math

QUANTITY_NAMES = {
    "forward_activation": "forward activations",
    "output_grad": "gradient ∂ℓ/∂h",
    "weight_grad": "weight gradient ∂ℓ/∂W",
    "loss": "loss",
}


def power_of_ten(log10_value: float) -> str:
    """10^x written as `4e-31` even where the float itself would underflow or overflow."""
    if -3 <= log10_value < 3:
        return f"{10**log10_value:.2g}"
    exponent = math.floor(log10_value)
    mantissa = round(10 ** (log10_value - exponent))
    if mantissa >= 10:  # rounding to one significant digit carried over
        mantissa, exponent = 1, exponent + 1
    return f"{mantissa}e{exponent}"


def factor(log10_value: float) -> str:
    """10^x as a plain number near 1, else as a power of ten (1e-31, 1e21)."""
    return f"{10.0**log10_value:.3g}" if abs(log10_value) < 3 else f"1e{log10_value:.0f}"


def num(x: float | None, digits: int = 3) -> str:
    return "n/a" if x is None else f"{x:.{digits}g}"


def quantity(name: str | None) -> str:
    return QUANTITY_NAMES.get(name or "", "values")


# --- the growth story (the lecture's 1.5^100 and 0.8^100) -------------------------------------------------


def growth_story(depth: int | None, log10_total: float | None, per_layer: float | None) -> str:
    """`your network's gradient shrinks by 0.24 per layer; after 49 layers ...` (the grader's voice)."""
    if not isinstance(depth, int) or log10_total is None:
        return "the analysis could not measure how the gradient changes from layer to layer"
    layers = max(depth - 1, 0)
    if layers == 0:
        return "your network has a single layer, so there is no product of Jacobians to grow or shrink"
    if per_layer is None:
        per_layer = 10 ** (log10_total / layers) if abs(log10_total / layers) < 300 else None
    step = f"{per_layer:.2g}" if per_layer is not None else f"10^{log10_total / layers:.2f}"
    ratio = power_of_ten(log10_total)
    if log10_total < 0:
        return (
            f"your network's gradient shrinks by {step} per layer; after {layers} layers the first "
            f"layer's gradient is {ratio} of the last one's (the lecture's vanishing case: 0.8^100 ≈ 2e-10)"
        )
    if log10_total > 0:
        return (
            f"your network's gradient grows by {step} per layer; after {layers} layers the first "
            f"layer's gradient is {ratio} times the last one's (the lecture's exploding case: "
            "1.5^100 ≈ 4e17)"
        )
    return f"your network's gradient keeps its size: a factor of {step} per layer over {layers} layers"


def range_story(dtype: str, kind: str, quantity_name: str | None, first_layer: int | None, span: str = "") -> str:
    """`in float16 (its normal range is …) values underflowed to 0 in output grad first at layer 7`."""
    what = {
        "overflow": "overflowed to inf/NaN",
        "underflow": "underflowed to 0 (below the normal range)",
        "cancellation": "rounded to exactly 0 inside the normal range (cancellation, not underflow)",
    }[kind]
    where = f" first at layer {first_layer}" if first_layer else ""
    q = f" in {quantity_name.replace('_', ' ')}" if quantity_name else ""
    return f"in {dtype}{span} values {what}{q}{where}"


# --- causes -----------------------------------------------------------------------------------------------


def weights_too_large(growth: str, sigma_w2: float, chi: float | None, layers: int, total: float) -> str:
    return (
        f"Each layer multiplies the backpropagated gradient by about {growth} (σ_w² = fan_in·Var(W) = "
        f"{sigma_w2:.3g}, χ = σ_w²·E[σ'²] = {num(chi)} > 1), so the product of the {layers} Jacobians "
        f"diag(σ')W grows like {growth}^{layers} ≈ 1e{total:.0f}: the weights are too large."
    )


def weights_too_small(growth: str, sigma_w2: float, chi: float | None, peak_prime: float) -> str:
    return (
        f"The weights are too small: σ_w² = fan_in·Var(W) = {sigma_w2:.3g} gives χ = σ_w²·E[σ'²] = {num(chi)} < 1 "
        f"(at σ's steepest slope σ' = {peak_prime:.3g}, a layer could pass at most √(σ_w²·max σ'²) = "
        f"{math.sqrt(sigma_w2) * peak_prime:.3g}); measured: about {growth} per layer."
    )


def small_derivative(act: str, mean_sq: float, peak_prime: float, sigma_w2: float, growth: str, layers: int) -> str:
    return (
        f"σ' is small: its measured mean square over the layers is {mean_sq:.3g} (σ' ≤ {peak_prime:.3g} for "
        f"{act}), so σ_w²·E[σ'²] = {sigma_w2 * mean_sq:.3g} < 1 and each of the {layers} factors diag(σ')W "
        f"shrinks the gradient, to {growth} per layer."
    )


def saturation(act: str, fraction: float, max_fraction: float, sides: str) -> str:
    return (
        f"{fraction:.0%} of the {act} units are saturated (σ' below 1% of its peak; {max_fraction:.0%} in the "
        f"worst layer): their pre-activations lie {sides}, where σ is flat, so those rows of each Jacobian "
        "diag(σ')W are nearly 0 and the paths through them are cut."
    )


def dead_units(fraction: float) -> str:
    return f"{fraction:.0%} of the ReLU units are dead (σ' = 0), so whole rows of each Jacobian are zero."


def finite_width(chi: float | None, predicted_gain: float | None, width: int, growth: str, layers: int, total: float):
    return (
        f"Mean-field theory (infinitely wide layers) predicts χ = {num(chi)}, a gain of {num(predicted_gain, 4)} "
        f"per layer, but at width {width} the measured gain is {growth}: the fluctuations of a finite net "
        f"compound over {layers} layers to 1e{total:.0f}."
    )


def dtype_overflow(dtype: str, dtype_max: float, quantity_name: str | None, first: int | None, from_top: int | None):
    return (
        f"{dtype} overflows: its largest finite value is {dtype_max:.4g}, and the {quantity(quantity_name)} "
        f"became inf/NaN from layer {first} ({from_top} layers from the top)."
    )


def dtype_underflow(dtype: str, smallest_normal: float, smallest_subnormal: float, quantity_name: str | None, first):
    return (
        f"{dtype} underflows: the {quantity(quantity_name)} at layer {first} is 0 where its exact value is below "
        f"{dtype}'s normal range (smallest normal {smallest_normal:.3g}; below half the smallest subnormal "
        f"{smallest_subnormal:.3g} a value rounds to 0)."
    )


def cancellation(dtype: str, quantity_name: str | None, first: int | None) -> str:
    return (
        f"In {dtype}, some of the {quantity(quantity_name)} at layer {first} rounded to exactly 0 although its exact "
        f"value lies inside {dtype}'s normal range: terms that cancel in {dtype}'s coarse rounding, not underflow."
    )


def loss_overflow(dtype: str, loss: str) -> str:
    return f"The loss itself overflows {dtype} (the top layer is finite, the {loss} loss of it is not)."


# --- recommendations --------------------------------------------------------------------------------------


def measured_weight_scale_why(act: str, scale_now: float, growth: float, scale: float) -> str:
    return (
        f"{act} is positively homogeneous: multiplying every W by c multiplies every Jacobian diag(σ')W by c and "
        f"leaves σ' as it is, so weight_scale {scale_now:g}/{growth:.4g} = {scale:g} makes this network's measured "
        "gain per layer 1."
    )


def critical_weight_scale_why(scale: float, init: str, act: str) -> str:
    return f"Mean-field theory puts χ = 1 at weight_scale {scale:g} for {init} and {act} (square layers)."


ORTHOGONAL_WHY = (
    "A product of orthogonal matrices is orthogonal: every singular value stays exactly 1, where random "
    "Gaussian layers of small width drift (the lecture's product of 4×4 matrices)."
)
NON_SATURATING_WHY = "relu has σ' = 1 on its active side instead of σ' ≤ 1/4, and kaiming_normal keeps the gain near 1."
TANH_XAVIER_WHY = "tanh has σ'(0) = 1 (sigmoid: 1/4), and xavier_normal keeps its gain near 1."
BFLOAT16_WHY = "bfloat16 has float32's range (to 3.4e38, down to 1.2e-38) in 16 bits."
FLOAT32_WHY = "float32 reaches 3.4e38 and resolves down to 1.2e-38."


def variance_preserving_why(init: str, act: str) -> str:
    return f"{init} keeps Var(W)·fan_in·E[σ'²] ≈ 1 for {act}, so the gain per layer stays near 1."


def loss_scale_why(scale: float) -> str:
    return (
        f"Multiplying the loss by {scale:g} shifts every gradient {scale:g}× up, out of float16's flush-to-zero "
        "range, while the largest stays 8× below 65504 (unscale before the update). It changes the gradients "
        "only: the forward pass and the verdict stay as they are."
    )


def input_scale_why(dtype: str, act: str, scale: float) -> str:
    return (
        f"{dtype}'s range is hit in the forward pass; {act} is positively homogeneous, so input_scale {scale:g} "
        f"shifts every activation by the same factor and centres them in {dtype}'s normal range."
    )


# --- the one-sentence summary -----------------------------------------------------------------------------


def _in(quantity_name: str | None) -> str:
    return f" ({quantity(quantity_name)})" if quantity_name else ""


def summary(
    verdict: str,
    depth: int,
    growth: float | None,
    total: float,
    first_cause: str | None,
    dtype: str,
    overflow_layer: int | None,
    underflow_layer: int | None,
    fix: tuple[dict, str, float | None] | None,
    overflow_quantity: str | None = None,
    underflow_quantity: str | None = None,
) -> str:
    """`Vanishing: the gradient shrinks by 0.24 per layer, … (small derivative); float16 flushes …. Fix: …`."""
    layers = f"{depth - 1} layer{'s' if depth != 2 else ''}"
    if verdict == "stable":
        text = "Stable: the gradient keeps its size through the net"
        if growth is not None:
            text += f" ({growth:.3g} per layer, ×{factor(total)} over {layers})"
    elif math.isfinite(total) and growth is not None:
        word = "grows" if verdict == "exploding" else "shrinks"
        text = (
            f"{verdict.capitalize()}: the gradient {word} by {growth:.3g} per layer, so after {layers} the "
            f"first layer's gradient is {factor(total)} times the last one's"
        )
    else:
        text = "Vanishing: the product of the Jacobians is exactly zero (every path through the net is cut)"
    if first_cause:
        text += f" ({first_cause.replace('_', ' ')})"
    if overflow_layer is not None:
        text += f"; {dtype} overflows to inf first at layer {overflow_layer}{_in(overflow_quantity)}"
    if underflow_layer is not None:
        text += f"; {dtype} flushes values to 0 first at layer {underflow_layer}{_in(underflow_quantity)}"
    if fix is not None:
        change, verified_verdict, gpl = fix
        text += f". Fix: {change_words(change)} (verified: {verified_verdict}"
        text += f", {gpl:.3g} per layer)" if gpl is not None else ")"
    return text + "."


def value_words(value: object) -> str:
    """A spec value in words: a nested member in parentheses, `(cell lstm, forget_bias 1.0)`, not a Python dict."""
    if isinstance(value, dict):
        return "(" + ", ".join(f"{k} {value_words(v)}" for k, v in value.items()) + ")"
    return str(value)


def change_words(change: dict) -> str:
    """A spec change in a sentence: `init: orthogonal, recurrent: (cell lstm, forget_bias 1.0)`."""
    return ", ".join(f"{k}: {value_words(v)}" for k, v in change.items())


# ---- residual and normalised networks ---------------------------------------------------------------------


def residual_compound(blocks: int, scale: float, gain: str, total: float) -> str:
    return (
        f"Unscaled residual branches compound: each of the {blocks} blocks passes the gradient through the skip and "
        f"adds its branch (branch_scale {scale:g}), a factor of about {gain} per block, {power_of_ten(total)} in all; "
        f"scaling the branches by 1/√{blocks} keeps the sum of their contributions bounded."
    )


def batchnorm_explodes(per_layer: str, predicted: str | None) -> str:
    theory = f" (mean-field theory: {predicted} for relu, Yang et al. 2019)" if predicted else ""
    return (
        "Batch normalisation itself explodes the gradient at initialisation, whatever the weight scale: the batch "
        f"statistics couple the samples, and the gradient grows by {per_layer} per layer{theory}."
    )


def normalization_hides_scale(kind: str, chi: float, growth: str) -> str:
    return (
        f"A {kind} layer keeps the forward activations at unit scale and hides the weight scale from them, but not "
        f"from every gradient path: χ = σ_w²·E[σ'²] = {chi:.3g} per weight layer, and the gradient still changes "
        f"by {growth} per layer."
    )


SCALE_BRANCHES_WHY = (
    "Branches scaled by 1/√(number of blocks) add a bounded total to the residual stream (the 1/√L scaling of deep "
    "ResNets and Transformers), so the product of (1 + s²χ) over the blocks stays near e^χ."
)
ZERO_BRANCHES_WHY = (
    "Branches that start switched off (SkipInit, ReZero, Fixup) make every block the identity at initialisation: the "
    "gradient reaches the bottom unchanged; the branch weights then only start learning once their scale moves."
)
ADD_PRENORM_WHY = (
    "Pre-normalisation (x + f(LayerNorm(x))) normalises each branch's input, so each branch adds O(1) to a stream "
    "that grows with depth and the gradient across a block tends to 1 (Xiong et al. 2020)."
)
REPLACE_BATCHNORM_WHY = (
    "layernorm normalises each sample on its own: without batchnorm's coupling through the batch statistics the "
    "gradient no longer explodes at initialisation."
)
SKIP_BATCHNORM_WHY = (
    "Skips around the batchnorm blocks give the gradient a path that the batch statistics do not scale."
)


def add_residual_why(blocks: int, scale: float, norm: bool) -> str:
    pre = " with pre-layernorm in each branch" if norm else ""
    return (
        f"Residual connections every 2 layers{pre}, branches scaled by 1/√{blocks} = {scale:.4g}: the gradient "
        "reaches the bottom through the identity paths whatever the layers do."
    )
