"""Mean-field theory beside the measurement: χ^t = σ_w² E[σ'(z)²], z ~ N(0, q^t).

σ_w² = fan_in·Var(W) and q^t = E[(z^t)²] is the measured second moment of layer t's
pre-activations. The squared norm of the backpropagated gradient is multiplied by χ per layer, so
it changes by a factor e over depth_scale = −1/ln χ layers (the norm itself over −2/ln χ). The
critical weight scale puts χ = 1 at the length map's fixed point q* = σ_w² E[σ(z)²] reached from
q = 1 (q* = 0 and q* = ∞ included), for square layers. The
backpropagated squared norm is multiplied by χ^t per layer, so the predicted RMS gain of
∂h^d/∂h^1 is Π_{t=2}^{d} √χ^t. For relu and identity χ does not depend on q.
"""

from __future__ import annotations

import functools
import math
import statistics
from dataclasses import dataclass

import torch

from .activations import Activation
from .activations import get as get_activation
from .network import weight_variance
from .reference import Reference
from .report import LayerTheory, Theory
from .spec import ModelSpec

Tensor = torch.Tensor


# The quadrature's nodes: u = e^s on a uniform grid in s on each half-line (see _quadrature).
QUAD_LOG_MIN, QUAD_LOG_MAX, QUAD_STEP = -40.0, 3.0, 0.04


@functools.cache
def _quadrature() -> tuple[torch.Tensor, torch.Tensor]:
    """Nodes and weights for E[f(z)], z ~ N(0, 1), where f may have a kink or jump at 0 (relu, selu) and change
    on a scale of 1 in z·√q whatever q: each half-line in its own right, through u = e^s with s uniform on
    [QUAD_LOG_MIN, QUAD_LOG_MAX]. f(√q·e^s) is then the same smooth step shifted by ½ ln q, so the trapezoid
    rule converges geometrically for every q from ~1e-30 to ~1e34 (mpmath agrees to ~1e-14 from q = 1e-6
    to 1e8, tests/engine/test_theory.py). The fixed ±12σ grid this replaced stepped over σ' near 0 once
    √q·(grid step) passed 1 (q ≳ 1e5: χ off by 1e-3). No node at 0; the weights sum to 1 exactly.

    Built on first use, not at import: a tensor op at import time would start torch's OpenMP pool
    in whichever process imports this module (a forking server's master must not have one)."""
    s = torch.arange(QUAD_LOG_MIN, QUAD_LOG_MAX + QUAD_STEP / 2, QUAD_STEP, dtype=torch.float64)
    u = torch.exp(s)
    half = u * torch.exp(-0.5 * u * u)  # the density in s (φ(u)·du/ds, up to the constant)
    half = half / (2.0 * half.sum())  # each half-line holds exactly 1/2
    return torch.cat([-u.flip(0), u]), torch.cat([half.flip(0), half])


def gaussian_mean(fn, q: float) -> float:
    """E[fn(z)] for z ~ N(0, q)."""
    grid, weights = _quadrature()
    z = grid * math.sqrt(max(q, 0.0))
    return float((fn(z) * weights).sum())


def chi(act: Activation, sigma_w2: float, q: float) -> float:
    return sigma_w2 * gaussian_mean(lambda z: act.prime(z) ** 2, q)


def _gaussian_means(fn, qs: Tensor) -> Tensor:
    """E[fn(z)] for z ~ N(0, q), for every q in qs at once."""
    grid, weights = _quadrature()
    z = grid[None, :] * torch.sqrt(qs.clamp_min(0.0))[:, None]
    return (fn(z) * weights).sum(dim=1)


# The length map q ↦ σ_w² E[σ(z)²] is scanned on this q grid; below Q_MIN the fixed point is taken as
# q* = 0, above Q_MAX as q* = ∞ (σ' then takes its limits, which the grid reaches to ~1e-6).
Q_MIN, Q_MAX = 1e-14, 1e14


@functools.cache
def _q_scan() -> Tensor:
    """Half decades from Q_MIN to Q_MAX (built on first use: no tensor op at import time)."""
    return torch.logspace(math.log10(Q_MIN), math.log10(Q_MAX), 57, dtype=torch.float64)


def _length_excess(act: Activation, sigma_w2: float, qs: Tensor) -> Tensor:
    """ln(σ_w² E[σ(z)²] / q): > 0 where the length map pushes q up, < 0 where down (no bias)."""
    return torch.log(sigma_w2 * _gaussian_means(lambda z: act.fn(z) ** 2, qs) / qs)


def fixed_point_q(act: Activation, sigma_w2: float, q0: float = 1.0) -> float:
    """The fixed point q* = σ_w² E[σ(z)²] that the length map reaches from q0 (0 and ∞ included).

    The map is increasing in q, so the iterates move monotonically from q0 to the nearest fixed point in
    the direction the map pushes: found by bracketing the sign change of ln(f(q)/q) on a log grid and
    bisecting in ln q — not by iterating, which crawls near marginal fixed points (tanh at σ_w² ≈ 1).
    """
    q0_t = torch.tensor([q0], dtype=torch.float64)
    up = float(_length_excess(act, sigma_w2, q0_t)[0])
    if up == 0.0:
        return q0
    scan = _q_scan()
    grid = scan[q0 < scan] if up > 0 else scan[q0 > scan].flip(0)
    ex = _length_excess(act, sigma_w2, grid)
    cross = torch.nonzero(torch.sign(ex) != math.copysign(1.0, up)).flatten()
    if cross.numel() == 0:
        return math.inf if up > 0 else 0.0
    i = int(cross[0])
    a = math.log(q0 if i == 0 else float(grid[i - 1]))
    b = math.log(float(grid[i]))
    for _ in range(8):  # each round narrows the bracket in ln q 32-fold: 8 rounds, ~1e-12 of it
        ln_qs = torch.linspace(a, b, 33, dtype=torch.float64)
        pushed = (_length_excess(act, sigma_w2, torch.exp(ln_qs)) > 0) == (up > 0)
        j = int(torch.nonzero(~pushed).flatten()[0]) if bool((~pushed).any()) else 32
        a, b = float(ln_qs[max(j - 1, 0)]), float(ln_qs[j])
    return math.exp(0.5 * (a + b))


def chi_at_fixed_point(act: Activation, sigma_w2: float) -> tuple[float, float]:
    """(q*, χ(q*)) with the limits σ_w²·(σ'(0⁺)² + σ'(0⁻)²)/2 at q* = 0 and σ_w²·(σ'(+∞)² + σ'(−∞)²)/2 at ∞."""
    q = fixed_point_q(act, sigma_w2)
    if q == 0.0:
        eps = torch.tensor([1e-300], dtype=torch.float64)
        return q, sigma_w2 * 0.5 * float(act.prime(eps)[0] ** 2 + act.prime(-eps)[0] ** 2)
    if math.isinf(q):
        return q, sigma_w2 * 0.5 * (act.slopes[0] ** 2 + act.slopes[1] ** 2)
    return q, chi(act, sigma_w2, q)


JUMP = 1e-3  # χ(q*) changing by more than this across the bisection's last bracket is a jump


@dataclass(frozen=True)
class Critical:
    """σ_w² with χ(q*) = 1 (the edge of chaos), or None and why; q* at it (0 or inf for the limits)."""

    sigma_w2: float | None
    q_star: float | None
    reason: str


@functools.cache
def critical_point(name: str) -> Critical:
    """Bisection in ln σ_w² on χ(q*(σ_w²)) − 1, where q* is the fixed point reached from q = 1.

    A constant of the activation (cached). Where χ jumps across 1 instead of passing through it (gelu,
    silu: q* leaves 0 for ∞ in one step), no σ_w² gives χ = 1, and the reason says so.
    """
    act = get_activation(name)
    if act.homogeneous:
        c = gaussian_mean(lambda z: act.prime(z) ** 2, 1.0)
        return Critical(1.0 / c, None, "χ does not depend on q for a positively homogeneous σ")
    lo, hi = math.log(1e-4), math.log(1e4)
    chi_lo, chi_hi = chi_at_fixed_point(act, math.exp(lo))[1], chi_at_fixed_point(act, math.exp(hi))[1]
    if chi_lo > 1 or chi_hi < 1:
        return Critical(None, None, f"χ(q*) stays on one side of 1 for σ_w² from 1e-4 to 1e4 ({name})")
    for _ in range(48):  # ln σ_w² to ~1e-13
        mid = 0.5 * (lo + hi)
        c = chi_at_fixed_point(act, math.exp(mid))[1]
        if c > 1:
            hi, chi_hi = mid, c
        else:
            lo, chi_lo = mid, c
    # A jump (gelu, silu: χ from σ_w²/4 to σ_w²/2) stays ~0.5 wide; a steep approach does not: softplus reaches
    # χ = 1 only as q* → ∞, and 1 − χ(q*) ~ q*^(-1/2) is still 6e-5 at the bisection's last step.
    if chi_hi - chi_lo > JUMP:
        q_lo, q_hi = fixed_point_q(act, math.exp(lo)), fixed_point_q(act, math.exp(hi))
        return Critical(
            None,
            None,
            f"no weight scale makes χ = 1 for {name}: at σ_w² = {math.exp(hi):.4g} the fixed point of the "
            f"length map jumps from q* = {q_lo:.3g} (χ = {chi_lo:.3g}) to q* = {q_hi:.3g} (χ = {chi_hi:.3g})",
        )
    s2 = math.exp(0.5 * (lo + hi))
    return Critical(s2, fixed_point_q(act, s2), "")


def critical_sigma_w2(name: str) -> float | None:
    """σ_w² with χ = 1 at the length map's fixed point, or None where none exists."""
    return critical_point(name).sigma_w2


def _layer_q(log10_z_rms: float) -> float:
    """q = E[z²] over batch and units (the mean-field q; not the unbiased variance plus mean²), from the log-domain
    RMS so it stays right where z itself leaves float64's range."""
    if log10_z_rms == -math.inf:
        return 0.0
    return 10.0 ** (2.0 * log10_z_rms) if math.isfinite(log10_z_rms) and log10_z_rms < 150 else math.inf


def _chis_on(spec: ModelSpec, ref: Reference, device: torch.device) -> dict[int, float]:
    """χ^t of every layer of finite q, computed on `device` for every layer of one activation at once and read in
    one copy (a resident device, placement: the per-layer quadrature would read the host once per layer)."""
    grid, weights = (v.to(device) for v in _quadrature())
    groups: dict[str, list[int]] = {}
    qs = [_layer_q(lr.log10_z_rms) for lr in ref.layers]
    for i, (name, q) in enumerate(zip(spec.activations, qs, strict=True)):
        if math.isfinite(q):
            groups.setdefault(name, []).append(i)
    order: list[int] = []
    parts: list[Tensor] = []
    w = spec.widths
    for name, idx in groups.items():
        act = get_activation(name)
        q_t = torch.tensor([qs[i] for i in idx], dtype=torch.float64, device=device)
        sw2 = torch.tensor(
            [w[i] * weight_variance(spec.init, spec.weight_scale, w[i], w[i + 1]) for i in idx],
            dtype=torch.float64,
            device=device,
        )
        z = grid[None, :] * torch.sqrt(q_t.clamp_min(0.0))[:, None]
        parts.append(sw2 * (act.prime(z) ** 2 * weights).sum(dim=1))
        order += idx
    if not parts:
        return {}
    return dict(zip(order, torch.cat(parts).tolist(), strict=True))


def theory(spec: ModelSpec, ref: Reference, device: torch.device | None = None) -> Theory:
    """The mean-field χ per layer and what it predicts; `device`: χ computed there for every layer at once."""
    widths = spec.widths
    on_device = _chis_on(spec, ref, device) if device is not None else None
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
        q = _layer_q(ref.layers[t - 1].log10_z_rms)
        if not math.isfinite(q):
            c = sw2 * (act.slopes[0] ** 2 + act.slopes[1] ** 2) / 2.0
        else:
            c = on_device[t - 1] if on_device is not None else chi(act, sw2, q)
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
    crit = critical_point(act.name)
    if crit.sigma_w2 is None:
        return None, crit.reason
    s2 = crit.sigma_w2
    scale = math.sqrt(s2 / (fan_in * unit_var))
    where = ""
    if crit.q_star is not None:
        where = " (q* → 0)" if crit.q_star < 1e-6 else (" (approached from below, q* → ∞)" if crit.q_star > 1e6 else "")
        where = where or f" (q* = {crit.q_star:.4g})"
    return scale, (
        f"χ = 1 at σ_w² = {s2:.4g}{where} for {act.name}: weight_scale {scale:.4g} with init {spec.init}, "
        f"assuming square layers of the median hidden width {fan_in} (fan_in = fan_out)"
    )
