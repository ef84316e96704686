"""The matrix-free estimate of the products P_t = ∂h^d/∂h^t, for widths where the formed product is too big:
random orthogonal probes pushed down once give every Frobenius norm; a block power iteration of VJP/JVP sweeps,
warm-started from the layer above, gives each spectral norm (a Ritz value: a lower bound).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch

from .cost import COLD_STEPS
from .products import (
    BLOCK,
    ChainResult,
    frob_stats_of,
    identity_stats,
    orthogonal_probes,
    orthonormal_rows,
    prepare_sigma_prime,
    structural_rank_bounds,
    unit_rows,
)
from .reference import Reference
from .report import JacobianStats
from .spec import ModelSpec

Tensor = torch.Tensor
LN10 = math.log(10.0)


def estimate_chain(
    spec: ModelSpec, weights: list[Tensor], ref: Reference, precision: torch.dtype, device: torch.device
) -> ChainResult:
    widths, d = spec.widths, spec.depth
    n_d, batch = widths[-1], spec.batch_size
    if d == 1:
        return ChainResult([identity_stats(n_d)], "estimate")
    k = min(spec.jacobian.probes, n_d)  # n_d orthonormal probes are the identity: exact
    steps = spec.jacobian.power_iterations
    gen = torch.Generator(device="cpu").manual_seed(spec.seed + 1)
    probes = orthogonal_probes(batch, k, n_d, gen).to(device=device, dtype=precision)  # (B, k, n_d)
    sp_units, log_peaks, active = prepare_sigma_prime(ref, precision, device)
    rank_bounds = structural_rank_bounds(active, widths)
    ws = [w.to(device=device, dtype=precision) for w in weights]
    u = orthogonal_probes(batch, min(BLOCK, n_d), n_d, gen).to(device=device, dtype=precision)  # (B, r, n_d)
    peaks_above = torch.zeros(batch, dtype=torch.float64, device=device)  # Σ ln max σ' over the layers above
    log_scale = torch.zeros(batch, dtype=torch.float64, device=device)
    carried: _Carried | None = None
    no_smax = torch.full((), math.nan, dtype=torch.float64, device=device)
    pending: list[Tensor] = []  # per product, top first: log10 ‖P‖_F mean, min, max and ln σ_max's mean (nan: none)
    for t in range(d, 1, -1):  # the products P_{t-1}
        n_t, n_prev = ws[t - 1].shape
        probes = (probes * sp_units[t - 1][:, None, :]).reshape(batch * k, n_t) @ ws[t - 1]
        probes, log_fro = unit_rows(probes.reshape(batch, k, n_prev))
        peaks_above = peaks_above + log_peaks[t - 1]
        log_scale = log_scale + log_peaks[t - 1] + log_fro
        # ‖P‖_F² ≈ (n_d/k)·Σ_i ‖r_i P‖² for orthonormal r_i; the block has unit norm, so ‖P‖_F = e^s·√(n_d/k)
        log_fro_est = log_scale + 0.5 * math.log(n_d / k)
        smax_mean = no_smax
        if steps > 0:  # power_iterations=0: Frobenius only (the cheap reruns that verify advice)
            carried, log_smax = _matrix_free_power(carried, u, sp_units, ws, t - 1, d, steps)
            smax_mean = (log_smax + peaks_above).mean()
        lf = log_fro_est / LN10
        pending.append(torch.stack([lf.mean(), lf.min(), lf.max(), smax_mean]))
    stats: list[JacobianStats] = [identity_stats(n_d)]
    # every layer's numbers in one host read (each reduced as before: the same numbers as reads per layer)
    for t, (mean, lo, hi, smax) in zip(range(d, 1, -1), torch.stack(pending).tolist(), strict=True):
        rank_bound = rank_bounds[t - 2]
        stats.insert(
            0,
            JacobianStats(
                log10_spectral_norm=smax / LN10 if steps > 0 else None,
                log10_min_singular_value=None,
                log10_condition_number=None,
                min_singular_value_status="rank_deficient" if rank_bound < min(n_d, widths[t - 1]) else "not_computed",
                rank_bound=rank_bound,
                method="estimate",
                **frob_stats_of(mean, lo, hi, n_d),
            ),
        )
    return ChainResult(stats, "estimate")


def _vjp_down(v: Tensor, sps: list[Tensor], ws: list[Tensor], top: int, bottom: int) -> tuple[Tensor, Tensor]:
    """Rows v (B, r, n_d) times P_bottom, renormalised per sample: (v̂, ln‖v P‖_F)."""
    log_s = torch.zeros(v.shape[0], dtype=torch.float64, device=v.device)
    for t in range(top, bottom, -1):
        v, ls = unit_rows((v * sps[t - 1][:, None, :]) @ ws[t - 1])
        log_s = log_s + ls
    return v, log_s


def _jvp_up(v: Tensor, sps: list[Tensor], ws: list[Tensor], bottom: int, top: int) -> Tensor:
    """P_bottom times the rows of v (B, r, n_bottom), as rows (B, r, n_d), renormalised per sample."""
    for t in range(bottom + 1, top + 1):
        v, _ = unit_rows((v @ ws[t - 1].T) * sps[t - 1][:, None, :])
    return v


@dataclass
class _Carried:
    """The matrix-free power iteration's basis U and its image U·P_t (unit Frobenius norm per sample, and the
    ln of that norm), carried from one product to the next."""

    basis: Tensor  # (B, r, n_d)
    image: Tensor  # (B, r, n_t)
    log_norm: Tensor  # (B,)


def _ritz_log(image: Tensor, log_norm: Tensor) -> Tensor:
    """ln of the Ritz estimate of σ_max from an orthonormal basis's image: a lower bound."""
    gram = torch.bmm(image, image.transpose(1, 2)).double()
    return log_norm + 0.5 * torch.log(torch.linalg.eigvalsh(gram)[:, -1].clamp_min(1e-300))


def _matrix_free_power(
    carried: _Carried | None, start: Tensor, sps: list[Tensor], ws: list[Tensor], t: int, d: int, steps: int
) -> tuple[_Carried, Tensor]:
    """Block power iteration on P_t = ∂h^d/∂h^t by VJP/JVP sweeps: (the carried state, ln σ_max Ritz estimate).

    A block of r rows costs about what one vector costs (each sweep reads every W once either way) and
    converges like (σ_{r+1}/σ_1)^k; the estimate is a lower bound on σ_max. The image U·P_{t+1} of the layer
    above extends to U·P_t through one more layer, so each product starts from the basis above with its
    first half-step already taken; the first product starts from `start` with at least COLD_STEPS steps.
    """
    if carried is None:
        basis, steps = start, max(steps, COLD_STEPS)
        image, log_norm = _vjp_down(basis, sps, ws, d, t)  # (B, r, n_t), U P / ‖U P‖_F
        log_smax = torch.full_like(log_norm, -math.inf)
    else:
        basis = carried.basis
        image, ls = unit_rows((carried.image * sps[t][:, None, :]) @ ws[t])
        log_norm = carried.log_norm + ls
        log_smax = _ritz_log(image, log_norm)
    for _ in range(steps):
        basis = orthonormal_rows(_jvp_up(image, sps, ws, t, d))  # (B, r, n_d)
        image, log_norm = _vjp_down(basis, sps, ws, d, t)
        log_smax = torch.maximum(log_smax, _ritz_log(image, log_norm))
    return _Carried(basis, image, log_norm), log_smax
