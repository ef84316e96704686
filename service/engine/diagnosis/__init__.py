"""Verdict, onset, causes in the lecture's terms, and recommendations verified by rerunning.

The verdict reads the exact product ∂h^d/∂h^1 (log domain), not the pass: a float16 pass that
overflows is flagged beside the verdict, as the lecture separates "the product explodes" from
"float16 turns it into inf". Cockpit-style: `findings.gather` collects what was measured once;
`causes.RULES` and `advice.ADVISORS` are small functions of it, one per cause or advice; the words
come from `..narrative`.
"""

from __future__ import annotations

import math

from .. import narrative as say
from ..architecture import boundary_layers, growth_from_layer
from ..report import Diagnosis, LayerReport, RangeEvent, Recommendation, Theory
from ..spec import ModelSpec
from .advice import Verifier, fixes_problem, recommendations
from .causes import causes
from .findings import Findings, dtype_limits, gather

__all__ = [
    "Findings",
    "Verifier",
    "diagnose",
    "dtype_limits",
    "fixes_problem",
    "gather",
    "thresholds_of",
    "verdict_of",
]


def thresholds_of(spec: ModelSpec) -> dict[str, float]:
    """The thresholds the diagnosis applied, as the report lists them."""
    th = spec.thresholds
    return {
        "exploding_log10": th.exploding_log10,
        "vanishing_log10": th.vanishing_log10,
        "flag_fraction": th.flag_fraction,
        "flag_min_count": th.flag_min_count,
    }


def verdict_of(log10_growth: float, spec: ModelSpec) -> str:
    if math.isnan(log10_growth):
        return "stable"
    if log10_growth > spec.thresholds.exploding_log10:
        return "exploding"
    if log10_growth < spec.thresholds.vanishing_log10:
        return "vanishing"
    return "stable"


def _onset(layers: list[LayerReport], verdict: str, spec: ModelSpec) -> int | None:
    """The top-most t whose product ∂h^d/∂h^t already leaves the stable band (block outputs only, in a residual
    network: inside a branch the product carries the branch's own scale)."""
    compared = set(boundary_layers(spec)) if spec.architecture is not None else None
    for lr in reversed(layers):
        if compared is not None and lr.index not in compared:
            continue
        g = lr.jacobian_product.log10_rms_gain
        if g is None:
            continue
        if (verdict == "exploding" and g > spec.thresholds.exploding_log10) or (
            verdict == "vanishing" and g < spec.thresholds.vanishing_log10
        ):
            return lr.index
    return None


def _fix_for_summary(f: Findings, recs: list[Recommendation]) -> tuple[dict, str, float | None] | None:
    """The fix the summary names: one that fixes the verdict where it is not stable, else any verified fix."""
    fixes = [r for r in recs if r.fixes and r.verified is not None]
    if f.verdict != "stable":
        fixes = [r for r in fixes if r.addresses == "growth"]
    if not fixes:
        return None
    best = fixes[0]
    assert best.verified is not None
    return best.change, best.verified.verdict, best.verified.growth_per_layer


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
    start = growth_from_layer(spec)
    total = layers[start - 1].jacobian_product.log10_rms_gain
    total = float("nan") if total is None else total
    verdict = "vanishing" if total == -math.inf else verdict_of(total, spec)
    cancellation = cancellation or RangeEvent(False, None, None, None, None)
    f = gather(spec, layers, th, overflow, underflow, cancellation, loss, verdict)
    found = causes(f)
    recs = recommendations(f, verify)
    growth_causes = [c.code for c in found if c.code not in ("dtype_overflow", "dtype_underflow", "cancellation")]
    text = say.summary(
        verdict,
        spec.depth - start + 1,  # the layers the verdict's product spans, d − start of them, as "depth − 1"
        f.growth,
        total,
        growth_causes[0] if growth_causes else None,
        spec.dtype,
        overflow.first_layer if overflow.occurred else None,
        underflow.first_layer if underflow.occurred else None,
        _fix_for_summary(f, recs),
        overflow.quantity,
        underflow.quantity,
    )
    d = spec.depth
    return Diagnosis(
        verdict=verdict,
        log10_total_growth=total if math.isfinite(total) else None,
        growth_per_layer=f.growth,
        log10_growth_per_layer=total / (d - start) if d > start and math.isfinite(total) else None,
        onset_layer=_onset(layers, verdict, spec),
        overflow=overflow,
        underflow=underflow,
        dtype_limits=dtype_limits(spec.dtype),
        causes=found,
        recommendations=recs,
        summary=text,
        thresholds=thresholds_of(spec),
        cancellation=cancellation,
        growth_from_layer=start,
    )
