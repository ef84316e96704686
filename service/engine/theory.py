"""Mean-field theory beside the measurement: χ^t = σ_w² E[σ'(z)²], z ~ N(0, q^t).

σ_w² = fan_in·Var(W) and q^t is the measured pre-activation variance of layer t. The
backpropagated squared norm is multiplied by χ^t per layer, so the predicted RMS gain of
∂h^d/∂h^1 is Π_{t=2}^{d} √χ^t. For relu and identity χ does not depend on q.
"""

from __future__ import annotations

import functools
import math
import statistics

import torch

from .activations import Activation
from .activations import get as get_activation
from .network import weight_variance
from .reference import Reference
from .report import LayerTheory, Theory
from .spec import ModelSpec


@functools.cache
def _quadrature() -> tuple[torch.Tensor, torch.Tensor]:
    """Gaussian expectations on a fixed, symmetric grid without a point at 0 (so the steps of relu's
    σ' at 0 integrate exactly): deterministic, and accurate to ~1e-8 for these σ.

    Built on first use, not at import: a tensor op at import time would start torch's OpenMP pool
    in whichever process imports this module (a forking server's master must not have one)."""
    grid = torch.linspace(-12.0, 12.0, 4800, dtype=torch.float64)
    weights = torch.exp(-0.5 * grid**2)
    return grid, weights / weights.sum()


def gaussian_mean(fn, q: float) -> float:
    """E[fn(z)] for z ~ N(0, q)."""
    grid, weights = _quadrature()
    z = grid * math.sqrt(max(q, 0.0))
    return float((fn(z) * weights).sum())


def chi(act: Activation, sigma_w2: float, q: float) -> float:
    return sigma_w2 * gaussian_mean(lambda z: act.prime(z) ** 2, q)


def _fixed_point_q(act: Activation, sigma_w2: float, q0: float = 1.0) -> float:
    """The length map's fixed point q* = σ_w² E[σ(z)²] (no bias), iterated from q0."""
    q = q0
    for _ in range(200):
        q_next = sigma_w2 * gaussian_mean(lambda z: act.fn(z) ** 2, q)
        if not math.isfinite(q_next) or q_next > 1e12:
            return math.inf
        if abs(q_next - q) <= 1e-12 * max(q, 1e-300):
            return q_next
        q = q_next
    return q


@functools.cache
def critical_sigma_w2(name: str) -> float | None:
    """σ_w² with χ = 1 at the length map's fixed point (the edge of chaos), by bisection.

    A constant of the activation (cached: the bisection costs ~0.2 s of Gaussian integrals).
    """
    act = get_activation(name)
    if act.homogeneous:
        c = gaussian_mean(lambda z: act.prime(z) ** 2, 1.0)
        return 1.0 / c
    lo, hi = math.log(1e-4), math.log(1e4)

    def excess(log_s2: float) -> float:
        s2 = math.exp(log_s2)
        q = _fixed_point_q(act, s2)
        return (chi(act, s2, q) if math.isfinite(q) else chi(act, s2, 1e6)) - 1.0

    if excess(lo) > 0 or excess(hi) < 0:
        return None
    for _ in range(60):
        mid = 0.5 * (lo + hi)
        if excess(mid) > 0:
            hi = mid
        else:
            lo = mid
    return math.exp(0.5 * (lo + hi))


def theory(spec: ModelSpec, ref: Reference) -> Theory:
    widths = spec.widths
    layers: list[LayerTheory] = []
    log_gain = 0.0
    finite = True
    chis: list[float] = []
    sw2_all: list[float] = []
    for t in range(1, spec.depth + 1):
        act = get_activation(spec.activations[t - 1])
        fan_in, fan_out = widths[t - 1], widths[t]
        sw2 = fan_in * weight_variance(spec.init, spec.weight_scale, fan_in, fan_out)
        sw2_all.append(sw2)
        lr = ref.layers[t - 1]
        q = lr.z_std**2 + lr.z_mean**2 if math.isfinite(lr.z_std) and math.isfinite(lr.z_mean) else math.inf
        c = chi(act, sw2, q) if math.isfinite(q) else sw2 * (act.slopes[0] ** 2 + act.slopes[1] ** 2) / 2.0
        layers.append(LayerTheory(index=t, chi=c, predicted_gain=math.sqrt(c) if c >= 0 else None))
        if t >= 2:
            chis.append(c)
            if c > 0:
                log_gain += 0.5 * math.log10(c)
            else:
                finite = False
    chi_mean = math.exp(statistics.fmean(math.log(c) for c in chis)) if chis and all(c > 0 for c in chis) else None
    depth_scale = None
    if chi_mean is not None and chi_mean != 1.0:
        depth_scale = -1.0 / math.log(chi_mean)
    crit_scale, note = _critical_scale(spec)
    return Theory(
        sigma_w2=statistics.median(sw2_all),
        chi_mean=chi_mean,
        predicted_growth_per_layer=math.sqrt(chi_mean) if chi_mean is not None else None,
        predicted_log10_total_growth=log_gain if (finite and chis) else (0.0 if not chis else None),
        depth_scale=depth_scale,
        critical_weight_scale=crit_scale,
        critical_note=note,
        layers=layers,
    )


def _critical_scale(spec: ModelSpec) -> tuple[float | None, str]:
    names = set(spec.activations)
    if len(names) != 1:
        return None, "the activations differ between layers, so no single weight scale makes χ = 1 everywhere"
    act = get_activation(next(iter(names)))
    fan_in = int(statistics.median(spec.widths[1:-1] or spec.widths[:1]))
    unit_var = weight_variance(spec.init, 1.0, fan_in, fan_in)
    s2 = critical_sigma_w2(act.name)
    if s2 is None:
        return None, f"no weight scale between 1e-2 and 1e2 (σ_w) makes χ = 1 for {act.name}"
    scale = math.sqrt(s2 / (fan_in * unit_var))
    return scale, (
        f"χ = 1 at σ_w² = {s2:.4g} for {act.name} (fan_in {fan_in}): weight_scale {scale:.4g} with init {spec.init}"
    )
