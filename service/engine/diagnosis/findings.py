"""What the rules read: one Findings object, gathered once from the report's own measurements.

Every cause rule and every advisor is a small function of a Findings, so each can be read and
tested alone. σ' figures are measured (the float64 reference forward), χ is mean-field theory's;
the rules compare them instead of assuming one from the other.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import NamedTuple

import torch

from ..activations import Activation
from ..activations import get as get_activation
from ..architecture import growth_from_layer
from ..network import TORCH_DTYPES
from ..report import DtypeLimits, LayerReport, RangeEvent, Theory
from ..spec import ModelSpec

GRADIENT_QUANTITIES = ("output_grad", "weight_grad")
FORWARD = "forward_activation"


@dataclass(frozen=True)
class Findings:
    spec: ModelSpec
    layers: list[LayerReport]
    theory: Theory
    overflow: RangeEvent
    underflow: RangeEvent
    cancellation: RangeEvent
    loss: float
    verdict: str
    total: float  # log10 ‖P_1‖_F/√n_d; nan where unknown, -inf where the product is exactly 0
    growth: float | None  # per layer
    act: Activation | None  # the activation when every layer has the same, else None
    peak_prime: float  # max σ' of the activations used
    sigma_prime_mean_square: float | None  # measured E[σ'²] over units, samples and layers 2..d
    saturated: float | None  # measured fraction of units with σ' < 1% of its peak (sigmoid-like and smooth σ)
    saturated_max: float | None  # the largest such fraction of one layer
    dead: float | None  # measured fraction of ReLU units with σ' = 0
    peak_grad: float  # largest |gradient| the pass held (for the loss scale)
    forward_rms: tuple[float, float] | None  # (min, max) over layers of log10 RMS of the pre-activations

    @property
    def depth(self) -> int:
        return self.spec.depth

    @property
    def chi(self) -> float | None:
        return self.theory.chi_mean

    @property
    def measured_chi(self) -> float | None:
        m = self.sigma_prime_mean_square
        return None if m is None else self.theory.sigma_w2 * m

    @property
    def near_critical(self) -> bool:
        """Mean-field theory says the gain per layer is within 1 % of 1 (the edge of chaos)."""
        g = self.theory.predicted_growth_per_layer
        return g is not None and g > 0 and abs(math.log(g)) < 0.01

    @property
    def growth_text(self) -> str:
        return f"{self.growth:.3g}" if self.growth is not None else "n/a"

    def gradient_hit(self, event: RangeEvent) -> bool:
        return any(q in event.by_quantity for q in (*GRADIENT_QUANTITIES, "loss"))

    def forward_hit(self, event: RangeEvent) -> bool:
        return FORWARD in event.by_quantity


class Candidate(NamedTuple):
    """A spec change an advisor proposes, before it is verified: what it addresses (Recommendation.addresses)."""

    code: str
    change: dict[str, object]
    rationale: str
    addresses: str
    codes: tuple[str, ...] = ()  # every advisor that proposed this resulting spec (advice.merge_duplicates), code first


def growth_evidence(f: Findings) -> dict[str, object]:
    """The figures behind every growth cause."""
    return {
        "growth_per_layer": f.growth,
        "log10_total_growth": f.total if math.isfinite(f.total) else None,
        "sigma_w2": f.theory.sigma_w2,
        "chi_mean": f.chi,
        "measured_chi": f.measured_chi,
        "sigma_prime_mean_square": f.sigma_prime_mean_square,
    }


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


def _mean(values: list[float | None]) -> float | None:
    vals = [v for v in values if v is not None and math.isfinite(v)]
    return sum(vals) / len(vals) if vals else None


def gather(
    spec: ModelSpec,
    layers: list[LayerReport],
    theory: Theory,
    overflow: RangeEvent,
    underflow: RangeEvent,
    cancellation: RangeEvent,
    loss: float,
    verdict: str,
) -> Findings:
    start = growth_from_layer(spec)
    total = layers[start - 1].jacobian_product.log10_rms_gain
    total = float("nan") if total is None else total
    d = spec.depth
    per_layer_log = total / (d - start) if d > start and math.isfinite(total) else None
    names = set(spec.activations)
    act = get_activation(next(iter(names))) if len(names) == 1 else None
    above = layers[1:] or layers  # the Jacobians diag(σ'(z^t))W^t of the product are those of t = 2..d
    peaks = [g.max_abs for lr in layers for g in (lr.weight_grad, lr.output_grad) if g.max_abs is not None]
    rms = [lr.activation.log10_pre_activation_rms for lr in layers]
    finite_rms = [v for v in rms if v is not None and math.isfinite(v)]
    return Findings(
        spec=spec,
        layers=layers,
        theory=theory,
        overflow=overflow,
        underflow=underflow,
        cancellation=cancellation,
        loss=loss,
        verdict=verdict,
        total=total,
        growth=10.0**per_layer_log if per_layer_log is not None else None,
        act=act,
        peak_prime=max(get_activation(a).peak_prime for a in spec.activations),
        sigma_prime_mean_square=_mean([lr.activation.sigma_prime_mean_square for lr in above]),
        saturated=_mean([lr.activation.saturated_fraction for lr in above]),
        saturated_max=max((v for lr in above if (v := lr.activation.saturated_fraction) is not None), default=None),
        dead=_mean([lr.activation.dead_fraction for lr in above]),
        peak_grad=max(peaks, default=0.0),
        forward_rms=(min(finite_rms), max(finite_rms)) if len(finite_rms) == len(layers) else None,
    )
