"""What the product chains share (`jacobian`: the formed products; `estimate`: matrix-free; `blockchain`: residual
and normalised networks): rows renormalised to unit norm with their log scale kept apart, σ' scaled by its peak,
orthonormal probes and bases, block power steps and their Ritz values, svdvals summaries, and the statistics of a
product from its log-norms. Every product is renormalised to unit Frobenius norm per sample and its log-scale kept
in float64, so a product of norm 1e300 or 1e-300 is exact whatever the pass dtype.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TypedDict

import torch

from .cost import POWER_BLOCK
from .reference import Reference
from .report import JacobianStats

Tensor = torch.Tensor
LN10 = math.log(10.0)
# The formed product resolves σ_min only down to about this fraction of σ_max (rounding of
# the chain's arithmetic accumulated over the layers); below it the value is a bound.
RESOLUTION = {torch.float64: 1e-13, torch.float32: 1e-5}
# The block size of the power iterations.
BLOCK = POWER_BLOCK


@dataclass
class ChainResult:
    stats: list[JacobianStats]  # index t-1 for layer t
    method: str


def unit_rows(v: Tensor) -> tuple[Tensor, Tensor]:
    """Normalise each row (any trailing dims) to unit norm; returns (v̂, ln‖v‖) with -inf for zero rows."""
    norm = torch.linalg.vector_norm(v.reshape(v.shape[0], -1), dim=1)
    safe = torch.where(norm > 0, norm, torch.ones_like(norm))
    shape = (-1,) + (1,) * (v.dim() - 1)
    return v / safe.reshape(shape), torch.log(norm.double())


def scaled_sigma_prime(sp: Tensor) -> tuple[Tensor, Tensor]:
    """σ' (..., n) divided by its per-sample max over units (so float32 chains keep tiny σ'), and ln(max)."""
    peak = sp.abs().amax(dim=-1)
    safe = torch.where(peak > 0, peak, torch.ones_like(peak))
    return sp / safe[..., None], torch.log(peak.double())


def mean_log10(log_e: Tensor) -> float:
    """Batch mean of ln-values as log10 (the geometric mean over samples); -inf if any is -inf."""
    return float(log_e.mean()) / LN10


def identity_stats(n_d: int) -> JacobianStats:
    half_log_n = 0.5 * math.log10(n_d)
    return JacobianStats(
        log10_spectral_norm=0.0,
        log10_frobenius_norm=half_log_n,
        log10_rms_gain=0.0,
        log10_min_singular_value=0.0,
        log10_condition_number=0.0,
        min_singular_value_status="resolved",
        rank_bound=n_d,
        log10_frobenius_norm_min=half_log_n,
        log10_frobenius_norm_max=half_log_n,
        method="identity",
    )


class FrobStats(TypedDict):
    log10_frobenius_norm: float
    log10_rms_gain: float
    log10_frobenius_norm_min: float
    log10_frobenius_norm_max: float


def frob_stats(log_fro: Tensor, n_d: int) -> FrobStats:
    lf = log_fro / LN10
    return frob_stats_of(float(lf.mean()), float(lf.min()), float(lf.max()), n_d)


def frob_stats_of(mean: float, lo: float, hi: float, n_d: int) -> FrobStats:
    """From the batch mean, min and max of log10 ‖P‖_F, read from the device once for every layer."""
    return {
        "log10_frobenius_norm": mean,
        "log10_rms_gain": mean - 0.5 * math.log10(n_d),
        "log10_frobenius_norm_min": lo,
        "log10_frobenius_norm_max": hi,
    }


def power_steps(jac_prod: Tensor, basis: Tensor, v: Tensor, steps: int) -> tuple[Tensor, Tensor]:
    """Block power (subspace) iteration on P·Pᵀ from the basis U (B, r, n_d) with v = U·P: (new U, U·P).

    Each step reads P twice (v·Pᵀ, then U·P) as GEMMs with r rows, about what a matrix-vector product costs,
    and converges like (σ_{r+1}/σ_1)^k instead of (σ_2/σ_1)^k. Consecutive products share their top left
    singular subspace, so with the carried half-step one step per layer does what two did without it.
    """
    for _ in range(steps):
        basis = orthonormal_rows(torch.bmm(v, jac_prod.transpose(1, 2)))  # (B, r, n_d): (P vᵀ)ᵀ
        v = torch.bmm(basis, jac_prod)  # (B, r, n_t)
    return basis, v


def ritz_gram(v: Tensor) -> Tensor:
    """The Rayleigh–Ritz Gram matrix v·vᵀ of an orthonormal basis's image U·P: its top eigenvalue is a lower
    bound on σ_max². _summarise takes every layer's, relative to ‖P‖_F², in one call."""
    return torch.bmm(v, v.transpose(1, 2))


def prepare_sigma_prime(
    ref: Reference, precision: torch.dtype, device: torch.device
) -> tuple[list[Tensor], list[Tensor], list[Tensor]]:
    """Per layer: σ' over its per-sample peak (so float32 chains keep tiny σ'), ln peak, active units.

    Stacked into one set of operations where the layers have equal widths (the usual case), so
    deep narrow nets do not pay per-layer operation overhead for it.
    """
    sps = [lr.sigma_prime for lr in ref.layers]
    if len({sp.shape for sp in sps}) == 1:
        stacked = torch.stack(sps)  # (d, B, n)
        units, log_peak = scaled_sigma_prime(stacked)
        active = (stacked != 0).sum(dim=2)  # stays on the host: rank bounds are read there
        return list(units.to(device=device, dtype=precision)), list(log_peak.to(device)), list(active)
    out = [scaled_sigma_prime(sp) for sp in sps]
    return (
        [u.to(device=device, dtype=precision) for u, _ in out],
        [lp.to(device) for _, lp in out],
        [(sp != 0).sum(dim=1) for sp in sps],
    )


def svd_stats(jac_prod: Tensor, fro: Tensor) -> tuple[Tensor, Tensor]:
    """ln(σ_max/‖P‖_F) and σ_min/σ_max from svdvals in float64."""
    sv = torch.linalg.svdvals(jac_prod.double())  # (B, min(n_d, n_t)), descending
    top = torch.where(sv[:, 0] > 0, sv[:, 0], torch.ones_like(sv[:, 0]))
    return torch.log(sv[:, 0] / fro.double()), sv[:, -1] / top


def svd_summary(
    log_smax_rel: Tensor, rel_min: Tensor, log_scale: Tensor, resolution: float
) -> tuple[float, float, float, str]:
    """log10 σ_max, log10 σ_min, log10 κ and the σ_min status from one layer's svdvals (batch means).

    Below `resolution`·σ_max the formed product does not resolve σ_min: the value is then an upper
    bound on σ_min (and κ a lower bound).
    """
    log10_smax = mean_log10(log_smax_rel + log_scale)
    unresolved = rel_min < resolution
    rel = torch.where(unresolved, torch.full_like(rel_min, resolution), rel_min)
    log10_cond = mean_log10(-torch.log(rel))
    status = "upper_bound" if bool(unresolved.any()) else "resolved"
    return log10_smax, log10_smax - log10_cond, log10_cond, status


def structural_rank_bounds(active: list[Tensor], widths: tuple[int, ...]) -> list[int]:
    """rank(P_t) ≤ min(n_d, n_t, active units of every layer above t), min over the batch; index t-1."""
    n_d = widths[-1]
    rank = torch.cummin(torch.stack(active[1:]).flip(0), dim=0).values.flip(0)  # (d-1, B): min over layers above
    return [min(int(r), n_d, widths[t]) for t, r in enumerate(rank.min(dim=1).values.tolist(), start=1)]


def orthogonal_probes(batch: int, k: int, n_d: int, gen: torch.Generator) -> Tensor:
    """k ≤ n_d orthonormal rows per sample: the probes (E‖R P‖_F² = (k/n_d)‖P‖_F², with less variance
    than Gaussian rows) and the power iteration's starting block."""
    g = torch.randn(batch, n_d, k, generator=gen, dtype=torch.float64)
    q, _ = torch.linalg.qr(g)  # (B, n_d, k)
    return q.transpose(1, 2).contiguous()


def orthonormal_rows(rows: Tensor) -> Tensor:
    """An orthonormal basis of the row space of each (r, n) block: shifted Cholesky QR.

    The r×r Gram matrix, its Cholesky factor L (float64, a relative shift of 1e-12 keeping it positive
    definite when power steps make rows nearly parallel) and rows ← L⁻¹·rows as one small batched
    GEMM: a few tiny ops, where a Householder QR per layer (cuSOLVER on a GPU) cost most of the chain's
    time. Without a host synchronisation: cholesky_ex reports failure in a tensor, which the shift
    makes unreachable.
    """
    wide = rows.double()
    gram = torch.bmm(wide, wide.transpose(-1, -2))  # (B, r, r)
    diag = gram.diagonal(dim1=-2, dim2=-1)
    diag.add_((1e-12 * diag.sum(-1, keepdim=True)).clamp_min_(1e-300))  # the shift, in place
    chol, _ = torch.linalg.cholesky_ex(gram)
    return torch.linalg.solve_triangular(chol, wide, upper=False).to(rows.dtype)  # L⁻¹·rows
