"""Causes: one rule per function, each a small function of the Findings (None where it does not apply).

The growth rules follow what was measured: σ' (its mean square, the saturated and dead fractions)
from the float64 reference, and χ = σ_w²·E[σ'²] from theory, judged consistently — the weights are
only called too small where χ < 1 and even σ's steepest slope could not make up for them, too large
only where χ > 1; a vanishing net whose weights would suffice is explained by its σ'.
"""

from __future__ import annotations

import math
from collections.abc import Callable

from .. import narrative as say
from ..activations import get as get_activation
from ..report import Cause
from .architecture_rules import ARCHITECTURE_RULES
from .findings import Findings, dtype_limits, growth_evidence

Rule = Callable[[Findings], Cause | None]
SATURATED_FRACTION = 0.1  # a saturation cause needs this fraction of the units flat
DEAD_FRACTION = 0.6  # half the units of a ReLU net are dead at random init; a cause needs more


def _saturated(f: Findings) -> bool:
    """Many units flat, or half the units of some layer: in a narrow net one such layer cuts most paths."""
    return (f.saturated or 0.0) > SATURATED_FRACTION or (f.saturated_max or 0.0) >= 0.5


def _sigma_prime_small(f: Findings) -> bool:
    """σ' measured well below what it could be: the gradient shrinks because of σ', not of the weights."""
    m = f.sigma_prime_mean_square
    return m is not None and (m < 0.5 * f.peak_prime**2 or f.peak_prime < 1.0)


def finite_width(f: Findings) -> Cause | None:
    """Theory says the net is (near) critical, or says the opposite of what was measured, and σ' does not explain it."""
    if f.verdict == "stable" or f.chi is None:
        return None
    contradicts = (f.verdict == "exploding" and f.chi <= 1.0) or (
        f.verdict == "vanishing"
        and f.chi >= 1.0
        and not _sigma_prime_small(f)
        and not _saturated(f)
        and not (f.dead or 0) > DEAD_FRACTION
    )
    if not (f.near_critical or contradicts) or not math.isfinite(f.total):
        return None
    width = min(f.spec.widths[1:])
    text = say.finite_width(f.chi, f.theory.predicted_growth_per_layer, width, f.growth_text, f.depth - 1, f.total)
    return Cause("finite_width", text, evidence=growth_evidence(f))


def weights_too_large(f: Findings) -> Cause | None:
    if f.verdict != "exploding" or f.chi is None or f.chi <= 1.0 or f.near_critical:
        return None
    text = say.weights_too_large(f.growth_text, f.theory.sigma_w2, f.chi, f.depth - 1, f.total)
    return Cause("weights_too_large", text, evidence=growth_evidence(f))


def small_derivative(f: Findings) -> Cause | None:
    """Vanishing where the measured σ' of a smooth or sigmoid-like σ is small: σ_w²·E[σ'²] < 1, with E[σ'²]
    below half of max σ'² or σ' bounded below 1 (sigmoid's 1/4). ReLU's 0/1 slopes are dead_units' business."""
    m = f.sigma_prime_mean_square
    kinds = {get_activation(a).kind for a in f.spec.activations}
    if f.verdict != "vanishing" or m is None or not kinds & {"saturating", "smooth"}:
        return None
    if not _sigma_prime_small(f) or f.theory.sigma_w2 * m >= 1.0:
        return None
    name = f.act.name if f.act else "these activations"
    text = say.small_derivative(name, m, f.peak_prime, f.theory.sigma_w2, f.growth_text, f.depth - 1)
    return Cause("small_derivative", text, evidence=growth_evidence(f))


def saturation(f: Findings) -> Cause | None:
    """Units whose σ' is below 1 % of its peak: both sides for sigmoid/tanh, the negative side for smooth σ."""
    if f.verdict != "vanishing" or f.saturated is None or not _saturated(f):
        return None
    kind = f.act.kind if f.act else None
    sides = {"saturating": "far from 0 on either side", "smooth": "far on the negative side"}.get(
        kind or "", "far from 0 on the side where σ flattens"
    )
    text = say.saturation(f.act.name if f.act else "σ", f.saturated, f.saturated_max or 0.0, sides)
    evidence = {"saturated_fraction": f.saturated, "saturated_fraction_max": f.saturated_max, **growth_evidence(f)}
    return Cause("saturation", text, evidence=evidence)


def dead_units(f: Findings) -> Cause | None:
    if f.verdict != "vanishing" or f.dead is None or f.dead <= DEAD_FRACTION:
        return None
    return Cause("dead_units", say.dead_units(f.dead), evidence={"dead_fraction": f.dead})


def weights_too_small(f: Findings) -> Cause | None:
    """χ < 1 from the weights: σ' is about what theory expects for them (measured χ ≥ half of theory's χ), or
    σ_w²·max σ'² < 1, so that even at σ's steepest slope every layer would shrink the gradient."""
    if f.verdict != "vanishing" or f.chi is None or f.chi >= 1.0 or f.near_critical:
        return None
    steepest_short = f.theory.sigma_w2 * f.peak_prime**2 < 1.0
    as_expected = f.measured_chi is not None and f.measured_chi >= 0.5 * f.chi
    if not (steepest_short or as_expected):
        return None
    text = say.weights_too_small(f.growth_text, f.theory.sigma_w2, f.chi, f.peak_prime)
    return Cause("weights_too_small", text, evidence=growth_evidence(f))


def dtype_overflow(f: Findings) -> Cause | None:
    e = f.overflow
    if not e.occurred:
        return None
    lim = dtype_limits(f.spec.dtype)
    text = say.dtype_overflow(f.spec.dtype, lim.max, e.quantity, e.first_layer, e.layers_from_top)
    return Cause(
        "dtype_overflow",
        text,
        layers=[e.first_layer] if e.first_layer else [],
        evidence={"quantity": e.quantity, "fraction": e.fraction, "dtype_max": lim.max},
    )


def dtype_underflow(f: Findings) -> Cause | None:
    e = f.underflow
    if not e.occurred:
        return None
    lim = dtype_limits(f.spec.dtype)
    text = say.dtype_underflow(f.spec.dtype, lim.smallest_normal, lim.smallest_subnormal, e.quantity, e.first_layer)
    return Cause(
        "dtype_underflow",
        text,
        layers=[e.first_layer] if e.first_layer else [],
        evidence={"quantity": e.quantity, "fraction": e.fraction, "smallest_normal": lim.smallest_normal},
    )


def cancellation(f: Findings) -> Cause | None:
    e = f.cancellation
    if not e.occurred:
        return None
    return Cause(
        "cancellation",
        say.cancellation(f.spec.dtype, e.quantity, e.first_layer),
        layers=[e.first_layer] if e.first_layer else [],
        evidence={"quantity": e.quantity, "fraction": e.fraction},
    )


def loss_overflow(f: Findings) -> Cause | None:
    if math.isfinite(f.loss) or f.layers[-1].activation.output_nonfinite_fraction != 0:
        return None
    return Cause("loss_overflow", say.loss_overflow(f.spec.dtype, f.spec.loss), layers=[f.depth])


# In this order in the report: why the product grows or shrinks, then what the dtype did to it.
RULES: tuple[Rule, ...] = (
    finite_width,
    weights_too_large,
    small_derivative,
    saturation,
    dead_units,
    weights_too_small,
    dtype_overflow,
    dtype_underflow,
    cancellation,
    loss_overflow,
)


# The plain MLP's growth rules read χ of the layers alone; in a residual/normalised network the blocks decide
# (diagnosis.architecture_rules), so there they give way to the architectural rules.
PLAIN_GROWTH_RULES = (finite_width, weights_too_large, small_derivative, weights_too_small)


def causes(f: Findings) -> list[Cause]:
    if f.spec.architecture is None:
        return [c for rule in RULES if (c := rule(f)) is not None]
    rules = [*ARCHITECTURE_RULES, *(r for r in RULES if r not in PLAIN_GROWTH_RULES)]
    return [c for rule in rules if (c := rule(f)) is not None]
