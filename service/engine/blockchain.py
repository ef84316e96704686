"""The products ∂h^d/∂h^t of a residual/normalised network: the backward walk (`blockref.walk`) of the identity
(exact) or of random orthonormal probes (estimate), renormalised at every operation.

Per sample (S = B groups of n_d rows) without batchnorm; with batchnorm the whole batch's product, one group of
B·n_d rows over B·n_t columns (see `blockref`): its RMS gain ‖P‖_F/√(B·n_d) is the factor by which a gradient
arriving at the top of the whole batch in a random direction grows on its way down, the coupling through the
batch statistics included; the batch statistics (min/max over samples) are then that one number.

exact: Frobenius norms exact; σ_max and σ_min from svdvals on the layers `cost.svd_layers` picks (as for the
plain MLP: all where affordable, else t = 1 and log-spaced layers; or as jacobian.singular_values says), else
σ_max by warm-started block power iteration on the formed product (σ_min not computed). estimate: Frobenius norms
from the probes; σ_max by a matrix-free block power iteration, walks down to h^t and back up per step, the basis
carried from the product above (the top one gets COLD_STEPS). Normalisation layers cut the rank: layernorm's Jacobian
removes the mean and y directions (rank ≤ n − 2), rmsnorm's the y direction (n − 1), batchnorm's two directions
per unit over the batch (n·(B − 2)); a product through one on the main stream (not bypassed by a skip) is
rank-deficient, reported as such (σ_min exactly 0).
"""

from __future__ import annotations

import math

import torch

from .architecture import Op
from .blockref import ArchReference, Operators, Rows, walk, walk_up
from .cost import COLD_STEPS, POWER_BLOCK, svd_layers
from .cost_architecture import product_widths
from .products import (
    RESOLUTION,
    ChainResult,
    frob_stats,
    identity_stats,
    mean_log10,
    orthogonal_probes,
    orthonormal_rows,
    power_steps,
    ritz_gram,
    svd_stats,
    svd_summary,
)
from .report import JacobianStats
from .spec import ModelSpec

Tensor = torch.Tensor


def _rank_cap(kind: str, width: int, batch: int) -> int:
    if kind == "layernorm":
        return width - 2
    if kind == "rmsnorm":
        return width - 1
    return width * (batch - 2)


def block_chain(
    spec: ModelSpec, ref: ArchReference, weights: list[Tensor], precision: torch.dtype, method: str
) -> ChainResult:
    operators = Operators(spec, ref, weights, precision)
    device = weights[0].device
    batch, n_d = spec.batch_size, spec.widths[-1]
    groups, per_group = (1, batch) if ref.batch_coupled else (batch, 1)
    n_rows = per_group * n_d
    if method == "exact":
        k = n_rows
        eye = torch.eye(n_rows, dtype=precision, device=device).reshape(1, n_rows, per_group, n_d)
        x = eye.expand(groups, -1, -1, -1).contiguous()
    else:
        k = min(spec.jacobian.probes, n_rows)
        gen = torch.Generator(device="cpu").manual_seed(spec.seed + 1)
        x = orthogonal_probes(groups, k, n_rows, gen).reshape(groups, k, per_group, n_d).to(device, precision)
    rows = Rows(x, torch.zeros(groups, dtype=torch.float64, device=device)).unit()
    extra = 0.5 * math.log(n_rows / k)  # ‖P‖_F = √(n_rows/k)·‖R P‖_F for k orthonormal probes (exact: k = n_rows)
    stats: dict[int, JacobianStats] = {}
    caps = {"main": n_rows, "branch": n_rows}
    steps = spec.jacobian.power_iterations
    svd_at = set(svd_layers(product_widths(spec), spec.jacobian.singular_values, groups))
    basis: list[Tensor | None] = [None]
    resolution = RESOLUTION.get(precision, 1e-5)
    kind = operators.kind

    def visit(op: Op, r: Rows, in_branch: bool) -> None:
        # rank caps: a main-stream normalisation bounds every product below it, a branch's own only those inside
        if op.kind == "add":
            caps["branch"] = caps["main"]
        elif op.kind == "norm":
            cap = _rank_cap(kind, op.width, batch) * (1 if kind == "batchnorm" else per_group)
            key = "branch" if in_branch else "main"
            caps[key] = min(caps[key], cap)
        elif op.kind == "mark" and op.layer < spec.depth:
            cap = caps["branch"] if in_branch else caps["main"]
            stats[op.layer] = _mark_stats(r, op.layer, cap)

    def _mark_stats(r: Rows, t: int, cap: int) -> JacobianStats:
        """P_t's statistics from its rows (unit Frobenius norm per group: a linear, normalisation or skip's sum
        renormalised them last), rank-bounded by the normalisations above it."""
        cols = per_group * spec.widths[t]
        bound = min(n_rows, cols, cap)
        status = "rank_deficient" if bound < min(n_rows, cols) else "not_computed"
        smax = smin = cond = None
        source = None
        if method == "exact":
            prod = r.x.reshape(groups, n_rows, cols)
            if t in svd_at:
                ones = torch.ones(groups, dtype=torch.float64, device=device)
                log_rel, rel_min = svd_stats(prod, ones)
                smax, s_min, s_cond, s_status = svd_summary(log_rel.cpu(), rel_min.cpu(), r.log.cpu(), resolution)
                source = "svd"
                if status != "rank_deficient":
                    smin, cond, status = s_min, s_cond, s_status
            elif steps > 0:
                smax = _power_smax(prod, r.log, basis, steps)
        return JacobianStats(
            log10_spectral_norm=smax,
            log10_min_singular_value=smin,
            log10_condition_number=cond,
            min_singular_value_status=status,
            rank_bound=bound,
            method=method,
            singular_values_source=source,
            **frob_stats(r.log + extra, n_rows),
        )

    walk(operators, rows, visit)
    if method == "estimate" and steps > 0:
        _matrix_free_smax(operators, stats, spec, groups, n_rows, steps)
    out = [stats[t] for t in range(1, spec.depth)]
    out.append(identity_stats(n_rows))
    return ChainResult(out, method)


def _power_smax(prod: Tensor, log: Tensor, basis: list[Tensor | None], steps: int) -> float:
    """log10 σ_max of the formed product (S, R, C) with unit Frobenius norm per group, times e^log: block power
    iteration on P·Pᵀ from the basis the layer above ended with (a Ritz value: a lower bound)."""
    groups, n_rows, _ = prod.shape
    u = basis[0]
    if u is None or u.shape[-1] != n_rows:
        gen = torch.Generator(device="cpu").manual_seed(0)
        u = orthogonal_probes(groups, min(POWER_BLOCK, n_rows), n_rows, gen).to(prod.device, prod.dtype)
        steps = max(steps, COLD_STEPS)
    v = torch.bmm(u, prod)
    first = ritz_gram(v)
    u, v = power_steps(prod, u, v, steps)
    basis[0] = orthonormal_rows(u)
    grams = torch.stack([first, ritz_gram(v)], dim=1).double()  # (S, 2, r, r)
    top = torch.linalg.eigvalsh(grams)[..., -1].amax(dim=1).clamp_min(1e-300)
    return mean_log10(0.5 * torch.log(top) + log)


def _matrix_free_smax(
    operators: Operators, stats: dict[int, JacobianStats], spec: ModelSpec, groups: int, n_rows: int, steps: int
) -> None:
    """σ_max of every P_t (a Ritz value: a lower bound) without forming it: U·P_t by `walk`, P_t·Vᵀ by `walk_up`."""
    device = operators.device
    dtype = operators.weights[0].dtype
    per_group = n_rows // spec.widths[-1]
    gen = torch.Generator(device="cpu").manual_seed(spec.seed + 2)
    r = min(POWER_BLOCK, n_rows)
    basis = orthogonal_probes(groups, r, n_rows, gen).to(device, dtype)
    marks = {op.layer: i for i, op in enumerate(operators.ops) if op.kind == "mark"}
    zero = torch.zeros(groups, dtype=torch.float64, device=device)
    first = True
    for t in range(spec.depth - 1, 0, -1):
        for _ in range(max(steps, COLD_STEPS) if first else steps):
            image = walk(operators, Rows(basis.reshape(groups, r, per_group, -1), zero), until=marks[t])
            up = walk_up(operators, image, marks[t])
            basis = orthonormal_rows(up.x.reshape(groups, r, n_rows))
        first = False
        image = walk(operators, Rows(basis.reshape(groups, r, per_group, -1), zero), until=marks[t])
        flat = image.x.reshape(groups, r, -1)
        top = torch.linalg.eigvalsh(ritz_gram(flat).double())[:, -1].clamp_min(1e-300)
        stats[t].log10_spectral_norm = mean_log10(0.5 * torch.log(top) + image.log)
