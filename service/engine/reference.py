"""The exact-arithmetic reference: float64 forward and top gradient, in the log domain.

The pass in the requested dtype may already be inf; the Jacobians need σ'(z^t) of the
network as it is in exact arithmetic. Each h^t is kept as exp(s_b)·ĥ_b per sample b with
‖ĥ_b‖ = 1, so nothing overflows: for positively homogeneous σ (identity, relu,
leaky_relu) σ'(z) depends on the direction only; for the others z is formed at its true
scale while that fits float64, and past it σ' is the slope of σ's asymptote.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import torch

from .activations import get as get_activation
from .activations import limit_prime
from .network import Parameters, top_gradient
from .spec import ModelSpec

Tensor = torch.Tensor
LN10 = math.log(10.0)
# z is formed at its true size only while |z| < 1e100 (exp(230)): far from float64's 1e308, so
# squares and norms of it stay finite too. Beyond, σ' is the asymptote's slope (exact there).
MAX_LOG_SCALE = 230.0
MAX_TRUE_Z = 1e100


@dataclass
class LayerReference:
    """Layer t of the reference forward (float64)."""

    sigma_prime: Tensor  # (batch, n_t) σ'(z^t)
    h_dir: Tensor  # (batch, n_t) h^t / ‖h^t‖ (zero rows where h^t = 0)
    h_log_scale: Tensor  # (batch,) ln ‖h^t‖ (-inf where h^t = 0)
    z_mean: float
    z_std: float
    log10_z_rms: float
    asymptotic: bool  # σ' taken from the asymptote for some sample


@dataclass
class Reference:
    layers: list[LayerReference]
    top_grad_dir: Tensor  # (batch, n_d) ∂ℓ/∂h^d / ‖·‖
    top_grad_log_scale: Tensor  # (batch,)
    notes: list[str] = field(default_factory=list)


def _normalise(v: Tensor) -> tuple[Tensor, Tensor]:
    """v = exp(s)·v̂ per row; rows of zeros keep v̂ = 0 and s = -inf."""
    norm = torch.linalg.vector_norm(v, dim=1)
    safe = torch.where(norm > 0, norm, torch.ones_like(norm))
    return v / safe[:, None], torch.log(norm)


def run_reference(spec: ModelSpec, params: Parameters) -> Reference:
    h_dir, s = _normalise(params.x)
    layers: list[LayerReference] = []
    asym_flags: dict[int, Tensor] = {}  # layer → whether σ' came from the asymptote: read once, after the loop
    z_dirs: list[Tensor] = []
    z_scales: list[Tensor] = []
    for t, (w, b, name) in enumerate(zip(params.weights, params.biases, spec.activations, strict=True), start=1):
        act = get_activation(name)
        z_dir = h_dir @ w.T  # (batch, n_t): z^t = exp(s)·z_dir (+ b)
        if act.homogeneous and b is None:  # σ' and the direction of h need only z's direction
            sp = act.prime(z_dir)
            h_new, s_new = act.fn(z_dir), s
        else:
            scale = torch.exp(torch.clamp(s, max=MAX_LOG_SCALE))
            z_true = z_dir * scale[:, None]
            if b is not None:
                z_true = z_true + b
            fits = (s < MAX_LOG_SCALE) & (z_true.abs() < MAX_TRUE_Z).all(dim=1)
            if b is not None:
                z_dir = torch.where(fits[:, None], z_true / torch.where(scale > 0, scale, 1.0)[:, None], z_dir)
            sp = torch.where(fits[:, None], act.prime(z_true), limit_prime(act, z_dir))
            h_lin = limit_prime(act, z_dir) * z_dir  # the asymptote, in direction coordinates
            h_new = torch.where(fits[:, None], act.fn(z_true), h_lin)
            s_new = torch.where(fits, torch.zeros_like(s), s)
            asym_flags[t] = (~fits).any()
        z_dirs.append(z_dir)
        z_scales.append(s)
        h_dir, ds = _normalise(h_new)
        s = s_new + ds
        layers.append(LayerReference(sp, h_dir, s, 0.0, 0.0, 0.0, False))  # z statistics, asymptotic: set below
    asym_layers = []
    if asym_flags:  # one host read for every layer (a per-layer read would wait for the device each time)
        for t, flag in zip(asym_flags, torch.stack(list(asym_flags.values())).tolist(), strict=True):
            layers[t - 1].asymptotic = flag
            if flag:
                asym_layers.append(t)
    _set_pre_activation_stats(layers, z_dirs, z_scales)
    notes = []
    if asym_layers:
        notes.append(
            f"the exact pre-activations pass 1e299 from layer {asym_layers[0]} on; σ' there is the slope of "
            "σ's asymptote (exact in the limit)"
        )
    top_grad_dir, top_grad_s = _top_gradient(spec, params, layers[-1])
    return Reference(layers, top_grad_dir, top_grad_s, notes)


def _set_pre_activation_stats(layers: list[LayerReference], z_dirs: list[Tensor], z_scales: list[Tensor]) -> None:
    """Mean, std and log10 RMS of z = exp(s)·z_dir over batch and units (RMS in the log domain), per layer:
    for every layer of one width at once (per-layer reductions cost more in overhead than in arithmetic)."""
    groups: dict[tuple[int, ...], list[int]] = {}
    for i, z in enumerate(z_dirs):
        groups.setdefault(tuple(z.shape), []).append(i)
    for idx in groups.values():
        z_dir = torch.stack([z_dirs[i] for i in idx])  # (k, batch, n)
        s = torch.stack([z_scales[i] for i in idx])  # (k, batch)
        z = z_dir * torch.exp(s)[..., None]
        flat = z.flatten(1)
        mean = flat.mean(dim=1)
        std = flat.std(dim=1) if flat.shape[1] > 1 else torch.zeros_like(mean)
        log_ms = torch.log((z_dir * z_dir).mean(dim=2)) + 2.0 * s  # (k, batch)
        log_rms = 0.5 * (torch.logsumexp(log_ms, dim=1) - math.log(z_dir.shape[1]))
        for i, m, sd, lr in zip(idx, mean.tolist(), std.tolist(), (log_rms / LN10).tolist(), strict=True):
            layers[i].z_mean, layers[i].z_std, layers[i].log10_z_rms = m, sd, lr


def _top_gradient(spec: ModelSpec, params: Parameters, top: LayerReference) -> tuple[Tensor, Tensor]:
    """∂ℓ/∂h^d in exact arithmetic as direction and log scale per sample."""
    if spec.loss in ("sum", "mean"):
        g = top_gradient(spec.loss, top.h_dir, None)
        return _normalise(g)
    if spec.loss == "mse":  # 2h/N: the direction of h, scaled
        g_dir = top.h_dir
        n = top.h_dir.numel()
        return g_dir, top.h_log_scale + math.log(2.0 / n)
    h_top = top.h_dir * torch.exp(torch.clamp(top.h_log_scale, max=MAX_LOG_SCALE))[:, None]
    return _normalise(top_gradient("cross_entropy", h_top, params.labels))
