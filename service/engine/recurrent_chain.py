"""The products P_t = ∂h_T/∂S_t of a recurrent network (S_t: every stacked layer's state after step t; h_T: the top
layer's last output), walked back one step at a time from t = T with rows renormalised every step (log scale kept
in float64), and the exact loss gradient walked the same way (`exact_walk`).

exact: the rows are the identity on h_T (the formed product): Frobenius norms exact, σ_max and σ_min by svdvals on
the steps `cost_recurrent.svd_steps` picks, elsewhere σ_max by a warm-started block power iteration (a lower bound).
estimate: `probes` orthonormal rows per sample: the Frobenius norm from them, σ_max as their Ritz value (a lower
bound, free: the probes are the product's image already).
"""

from __future__ import annotations

import math
from collections.abc import Callable

import torch

from .cost import COLD_STEPS, POWER_BLOCK
from .cost_recurrent import svd_steps
from .network import top_gradient
from .products import (
    RESOLUTION,
    ChainResult,
    frob_stats,
    mean_log10,
    orthogonal_probes,
    orthonormal_rows,
    power_steps,
    ritz_gram,
    svd_stats,
    svd_summary,
)
from .recurrent import RecurrentParameters
from .recurrent_ref import RecurrentReference, Rows, cell_vjp, step_back
from .report import JacobianStats
from .spec import ModelSpec

Tensor = torch.Tensor


def _start_rows(spec: ModelSpec, method: str) -> tuple[Rows, int]:
    """Rows on S_T: the identity (exact) or orthonormal probes (estimate) on the top layer's h, 0 elsewhere."""
    rec = spec.recurrent
    assert rec is not None
    batch, h = spec.batch_size, rec.hidden
    if method == "exact":
        k = h
        top = torch.eye(h, dtype=torch.float64).expand(batch, h, h).contiguous()
    else:
        k = min(spec.jacobian.probes, h)
        top = orthogonal_probes(batch, k, h, torch.Generator(device="cpu").manual_seed(spec.seed + 1))
    zeros = torch.zeros(batch, k, h, dtype=torch.float64)
    hs = [zeros.clone() for _ in range(rec.stacked - 1)] + [top]
    cs = [zeros.clone() if rec.cell == "lstm" else None for _ in range(rec.stacked)]
    return Rows(hs, cs, torch.zeros(batch, dtype=torch.float64)).unit(), k


def _stats(
    rows: Tensor, log: Tensor, n_rows: int, k: int, method: str, svd: bool, basis: list[Tensor | None], steps: int
) -> JacobianStats:
    """One product's statistics from its rows (B, k, cols), unit Frobenius norm per sample, times e^log."""
    cols = rows.shape[-1]
    smax = smin = cond = None
    status, source, sstatus = "not_computed", None, "not_computed"
    if method == "exact" and svd:
        log_rel, rel_min = svd_stats(rows, torch.ones(rows.shape[0], dtype=torch.float64))
        smax, smin, cond, status = svd_summary(log_rel, rel_min, log, RESOLUTION[torch.float64])
        source, sstatus = "svd", "exact"
        if n_rows > cols:  # more rows than columns never happens (h ≤ state), kept for honesty
            smin, cond, status = None, None, "not_computed"
    elif method == "exact" and steps > 0:
        u = basis[0]
        if u is None:
            u = orthogonal_probes(rows.shape[0], min(POWER_BLOCK, n_rows), n_rows, torch.Generator().manual_seed(0))
            steps = max(steps, COLD_STEPS)
        v = torch.bmm(u, rows)
        first = ritz_gram(v)
        u, v = power_steps(rows, u, v, steps)
        basis[0] = orthonormal_rows(u)
        top = torch.linalg.eigvalsh(torch.stack([first, ritz_gram(v)], 1))[..., -1].amax(1).clamp_min(1e-300)
        smax, sstatus = mean_log10(0.5 * torch.log(top) + log), "lower_bound"
    elif method == "estimate":
        top = torch.linalg.eigvalsh(ritz_gram(rows))[:, -1].clamp_min(1e-300)
        smax, sstatus = mean_log10(0.5 * torch.log(top) + log), "lower_bound"
    cond_status = {"resolved": "resolved", "upper_bound": "lower_bound"}.get(status, "not_computed")
    return JacobianStats(
        log10_spectral_norm=smax,
        log10_min_singular_value=smin,
        log10_condition_number=cond,
        min_singular_value_status=status,
        rank_bound=min(n_rows, cols),
        method=method,
        condition_number_status=cond_status,
        singular_values_source=source,
        spectral_norm_status=sstatus,
        **frob_stats(log + 0.5 * math.log(n_rows / k), n_rows),
    )


def time_products(spec: ModelSpec, params: RecurrentParameters, ref: RecurrentReference, method: str) -> ChainResult:
    """P_t for t = 1..T (index t−1); P_T is [0 … I …]: only the top layer's h."""
    rec = spec.recurrent
    assert rec is not None
    rows, k = _start_rows(spec, method)
    picks = set(svd_steps(spec)) if method == "exact" else set()
    basis: list[Tensor | None] = [None]
    stats: list[JacobianStats] = []
    for t in range(rec.steps, 0, -1):  # rows are P_t
        stats.append(
            _stats(rows.flat(), rows.log, rec.hidden, k, method, t in picks, basis, spec.jacobian.power_iterations)
        )
        if t > 1:
            rows = step_back(spec, params, ref, rows, t - 1)[0].unit()
    stats.reverse()
    return ChainResult(stats, method)


def depth_products(
    spec: ModelSpec, params: RecurrentParameters, ref: RecurrentReference, method: str
) -> list[JacobianStats]:
    """∂h^L_T/∂h^l_T for l = 1..L at the last step (the path up through the layers within step T)."""
    rec = spec.recurrent
    assert rec is not None
    rows, k = _start_rows(spec, method)
    g, log = rows.h[-1], rows.log
    out: list[JacobianStats] = []
    act = spec.activations[0]
    for layer in range(rec.stacked - 1, -1, -1):
        out.append(_stats(g, log, rec.hidden, k, method, method == "exact", [None], spec.jacobian.power_iterations))
        if layer > 0:
            c = ref.steps[-1][layer].cache
            g = cell_vjp(rec.cell, act, c, params.w_hh[layer], params.w_ih[layer], g, None)[2]
            r = Rows([g], [None], log).unit()
            g, log = r.h[0], r.log
    out.reverse()
    return out


def loss_rows(spec: ModelSpec, params: RecurrentParameters, ref: RecurrentReference, t: int) -> tuple[Tensor, Tensor]:
    """∂ℓ_t/∂h_t of the loss on the top layer's h at step t (0-based) as a unit direction (B, 1, h) and its ln norm."""
    h_dir, h_log = ref.top_h[t], ref.top_log[t]
    batch, n = h_dir.shape
    if spec.loss == "mse":
        g, extra = h_dir, h_log + math.log(2.0 / (batch * n))
    else:
        labels = params.labels
        if labels is not None and labels.dim() == 2:
            labels = labels[t]
        true = h_dir * torch.exp(h_log.clamp(max=700.0))[:, None]
        g, extra = top_gradient(spec.loss, true, labels), torch.zeros(batch, dtype=torch.float64)
    r = Rows([g[:, None, :]], [None], extra).unit()
    return r.h[0], r.log


Visit = Callable[[int, Tensor, Tensor, Tensor, Tensor], None]


def _add_top(rows: Rows, top: Tensor, top_log: Tensor) -> Rows:
    """rows + (top on the top layer's h), in the log domain per sample."""
    m = torch.maximum(rows.log, top_log)
    m = torch.where(torch.isfinite(m), m, torch.zeros_like(m))
    a = torch.exp(rows.log - m)[:, None, None]
    b = torch.exp(top_log - m)[:, None, None]
    hs = [v * a for v in rows.h]
    hs[-1] = hs[-1] + top * b
    return Rows(hs, [None if v is None else v * a for v in rows.c], m).unit()


def exact_walk(spec: ModelSpec, params: RecurrentParameters, ref: RecurrentReference, visit: Visit) -> None:
    """The exact ∂ℓ/∂h_t of the top layer and its step's share of ∂ℓ/∂W_hh, for t = T … 1, each as a direction and
    ln of its scale per sample: visit(t, ∂ℓ/∂h_t (B, h), its ln scale (B,), share (G·h, h), its ln scale (scalar))."""
    rec = spec.recurrent
    assert rec is not None
    top, top_log = loss_rows(spec, params, ref, rec.steps - 1)
    rows, _ = _start_rows(spec, "estimate")  # shapes only; replaced by the loss rows
    rows = Rows(
        [torch.zeros_like(v[:, :1]) for v in rows.h],
        [None if v is None else torch.zeros_like(v[:, :1]) for v in rows.c],
        torch.full((spec.batch_size,), -math.inf, dtype=torch.float64),
    )
    rows = _add_top(rows, top, top_log)
    for t in range(rec.steps - 1, -1, -1):
        if rec.loss_at == "every" and t < rec.steps - 1:
            top, top_log = loss_rows(spec, params, ref, t)
            rows = _add_top(rows, top, top_log)
        back, g_hh = step_back(spec, params, ref, rows, t)
        cache = ref.steps[t][-1]
        w = rows.log + cache.h_prev_log
        finite = torch.isfinite(w)
        scale = float(w[finite].max()) if bool(finite.any()) else -math.inf
        weights = (
            torch.where(finite, torch.exp(w - scale), torch.zeros_like(w))
            if math.isfinite(scale)
            else torch.zeros_like(w)
        )
        share = torch.einsum("bg,bh->gh", g_hh[:, 0, :] * weights[:, None], cache.h_prev)
        visit(t + 1, rows.h[-1][:, 0, :], rows.log, share, torch.tensor(scale, dtype=torch.float64))
        rows = back.unit()
