"""Recommendations: one advisor per function over the Findings, each change rerun before it is claimed.

An advisor proposes spec changes with what they address (`Recommendation.addresses`): growth (the
verdict), gradient_range (loss_scale: the gradients' range only), forward_range (input_scale) or range
(a wider dtype). Verification reruns each change cheaply, and every change that passes is rerun at the
user's own batch, seed and Jacobian method; only that rerun can mark it `fixes: true`.
"""

from __future__ import annotations

import math
from collections.abc import Callable

from .. import narrative as say
from ..cost import ARCHITECTURE_VERIFY_RUNS, VERIFY_RUNS
from ..report import Outcome, RangeEvent, Recommendation
from ..spec import ModelSpec
from .architecture_rules import ARCHITECTURE_ADVISORS
from .findings import Candidate, Findings, dtype_limits

# (changed spec, full) → what the rerun measured, or None where the reruns' budget is spent (not run)
Verifier = Callable[[ModelSpec, bool], Outcome | None]


Advisor = Callable[[Findings], list[Candidate]]


def measured_weight_scale(f: Findings) -> list[Candidate]:
    """Homogeneous σ: W → cW scales every Jacobian by c, so s/g makes the measured gain 1."""
    if f.verdict == "stable" or f.act is None or not f.act.homogeneous or not f.growth or f.growth <= 0:
        return []
    scale = float(f"{f.spec.weight_scale / f.growth:.4g}")
    if not 0 < scale <= 1e6:
        return []
    why = say.measured_weight_scale_why(f.act.name, f.spec.weight_scale, f.growth, scale)
    return [Candidate("measured_weight_scale", {"weight_scale": scale}, why, "growth")]


def critical_weight_scale(f: Findings) -> list[Candidate]:
    crit = f.theory.critical_weight_scale
    if f.verdict == "stable" or crit is None or f.act is None:
        return []
    scale = float(f"{crit:.4g}")
    if abs(scale - f.spec.weight_scale) <= 1e-3 * f.spec.weight_scale:
        return []
    why = say.critical_weight_scale_why(scale, f.spec.init, f.act.name)
    return [Candidate("critical_weight_scale", {"weight_scale": scale}, why, "growth")]


def orthogonal_init(f: Findings) -> list[Candidate]:
    if f.verdict == "stable" or f.act is None or f.act.kind != "linear":
        return []
    if (f.spec.init, f.spec.weight_scale) == ("orthogonal", 1.0):
        return []
    return [Candidate("orthogonal_init", {"init": "orthogonal", "weight_scale": 1.0}, say.ORTHOGONAL_WHY, "growth")]


def variance_preserving_init(f: Findings) -> list[Candidate]:
    if f.verdict == "stable" or f.act is None or f.act.kind not in ("relu_like", "linear", "smooth"):
        return []
    init = "kaiming_normal" if f.act.kind != "linear" else "xavier_normal"
    if (f.spec.init, f.spec.weight_scale) == (init, 1.0):
        return []
    why = say.variance_preserving_why(init, f.act.name)
    return [Candidate("variance_preserving_init", {"init": init, "weight_scale": 1.0}, why, "growth")]


def other_activation(f: Findings) -> list[Candidate]:
    """A vanishing net of sigmoid-like σ: relu (σ' = 1 where active), or tanh (σ'(0) = 1) with xavier."""
    if f.verdict != "vanishing" or (f.act is not None and f.act.kind != "saturating"):
        return []
    out = [
        Candidate(
            "non_saturating_activation",
            {"activation": "relu", "init": "kaiming_normal", "weight_scale": 1.0},
            say.NON_SATURATING_WHY,
            "growth",
        )
    ]
    if f.act is None or f.act.name != "tanh":
        change = {"activation": "tanh", "init": "xavier_normal", "weight_scale": 1.0}
        out.append(Candidate("tanh_xavier", change, say.TANH_XAVIER_WHY, "growth"))
    return out


def loss_scale(f: Findings) -> list[Candidate]:
    """float16 gradients (not the forward pass) flushed to 0, none overflowed: scale the loss up."""
    if f.spec.dtype != "float16" or f.peak_grad <= 0 or f.gradient_hit(f.overflow):
        return []
    if not any(q in f.underflow.by_quantity for q in ("output_grad", "weight_grad")):
        return []
    # the largest power of two that keeps the largest gradient 8× below float16's max
    scale = 2.0 ** math.floor(math.log2(65504.0 / 8.0 / f.peak_grad))
    if not f.spec.loss_scale < scale <= 2.0**24:
        return []
    return [Candidate("loss_scale", {"loss_scale": scale}, say.loss_scale_why(scale), "gradient_range")]


def input_scale(f: Findings) -> list[Candidate]:
    """Homogeneous σ without bias: the input scale that centres the forward pass in the dtype's normal range."""
    hit = f.forward_hit(f.overflow) or f.forward_hit(f.underflow)
    if not hit or f.act is None or not f.act.homogeneous or f.spec.bias or f.forward_rms is None:
        return []
    lo, hi = f.forward_rms
    lim = dtype_limits(f.spec.dtype)
    if hi - lo > lim.log10_max - lim.log10_smallest_normal - 4.0:  # two decades each side for the elements
        return []
    shift = 0.5 * (lim.log10_max + lim.log10_smallest_normal) - 0.5 * (lo + hi)
    scale = float(f"{f.spec.input_scale * 10.0**shift:.3g}")
    # the inputs themselves stay 8 standard deviations below the largest finite value
    if not 0 < scale <= lim.max / 8.0 or abs(math.log10(scale / f.spec.input_scale)) < 0.5:
        return []
    why = say.input_scale_why(f.spec.dtype, f.act.name, scale)
    return [Candidate("input_scale", {"input_scale": scale}, why, "forward_range")]


def wider_range_dtype(f: Findings) -> list[Candidate]:
    if not (f.overflow.occurred or f.underflow.occurred) or f.spec.dtype not in ("float16", "bfloat16"):
        return []
    out = []
    if f.spec.dtype == "float16":
        out.append(Candidate("wider_range_dtype", {"dtype": "bfloat16"}, say.BFLOAT16_WHY, "range"))
    out.append(Candidate("wider_range_dtype", {"dtype": "float32"}, say.FLOAT32_WHY, "range"))
    return out


ADVISORS: tuple[Advisor, ...] = (
    measured_weight_scale,
    critical_weight_scale,
    orthogonal_init,
    variance_preserving_init,
    other_activation,
    loss_scale,
    input_scale,
    wider_range_dtype,
)


# What a merged recommendation is judged on: the strictest of its reasons' (growth asks for no range problem too).
_STRICTNESS = {"growth": 0, "range": 1, "forward_range": 2, "gradient_range": 2}


def merge_duplicates(spec: ModelSpec, candidates: list[Candidate]) -> list[Candidate]:
    """One candidate per resulting spec, in first-proposed order: two advisors can propose the same network
    (measured and critical weight scale both 1.0; orthogonal_init's {init: orthogonal, weight_scale: 1} on a net
    that is already orthogonal). The merged one keeps every code and reason, the smallest change that gives
    that spec, and the strictest `addresses`."""
    groups: dict[ModelSpec, list[Candidate]] = {}
    for c in candidates:
        groups.setdefault(spec.with_changes(**c.change), []).append(c)
    merged = []
    for same in groups.values():
        reasons = list(dict.fromkeys(c.rationale for c in same))
        merged.append(
            Candidate(
                code=same[0].code,
                change=min((c.change for c in same), key=len),
                rationale=" ".join(reasons),
                addresses=min((c.addresses for c in same), key=_STRICTNESS.__getitem__),
                codes=tuple(dict.fromkeys(c.code for c in same)),
            )
        )
    return merged


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


def recommendations(f: Findings, verify: Verifier | None) -> list[Recommendation]:
    """The advisors' changes, one per resulting spec (at most VERIFY_RUNS), verified; those that fix, else the
    closest one."""
    candidates = merge_duplicates(f.spec, [c for advisor in ADVISORS for c in advisor(f)])[:VERIFY_RUNS]
    # architectural changes have their own share of reruns, so a plain net's lecture fixes keep theirs
    arch = [c for advisor in ARCHITECTURE_ADVISORS for c in advisor(f)]
    candidates += merge_duplicates(f.spec, arch)[:ARCHITECTURE_VERIFY_RUNS]
    recs: list[Recommendation] = []
    for code, change, why, addresses, codes in candidates:
        changed = f.spec.with_changes(**change)
        outcome = verify(changed, False) if verify is not None else None
        fixes = None if outcome is None else fixes_problem(addresses, outcome, f.overflow, f.underflow)
        if fixes and verify is not None:  # the cheap rerun passed: confirm at the user's batch, seed and method
            confirmed = verify(changed, True)
            outcome = confirmed or outcome
            fixes = None if confirmed is None else fixes_problem(addresses, confirmed, f.overflow, f.underflow)
        recs.append(Recommendation(code, change, why, outcome, fixes, addresses, list(codes)))
    if verify is None:
        return recs
    working = [r for r in recs if r.fixes]
    if working:
        return working
    unverified = [r for r in recs if r.fixes is None]  # the reruns' budget ran out before these
    if unverified:
        return [r for r in recs if r.fixes is False][:1] + unverified

    # Nothing fixed it alone: keep the one that came closest, marked fixes=false.
    def distance(r: Recommendation) -> float:
        g = r.verified.log10_total_growth if r.verified else None
        return abs(g) if g is not None else math.inf

    return sorted(recs, key=distance)[:1]
