"""What residual blocks and normalisation layers add to the cost of an analysis (`cost.estimate_cost` calls it).

With batchnorm the products are the whole batch's (`blockchain`): B·n_d rows over B·n_t columns instead of B
groups of n_d × n_t, so the exact chain's GEMMs and its memory grow B-fold; the probes' sweeps do not. Every
normalisation and addition is a few elementwise passes over the product, each costing what a GEMM with
MIN_EFFECTIVE_ROWS rows costs (bound by reading the product); the svdvals (on the layers `cost.svd_layers` picks
for the products' shape, `product_widths`) are counted in `cost.estimate_cost`.
"""

from __future__ import annotations

import functools
from collections import Counter
from dataclasses import dataclass

from .architecture import ops
from .spec import ModelSpec

# Elementwise passes over the product per operation of the backward walk (the unit renormalisation included).
PASSES = {"norm": 8, "add": 2, "fork": 3, "scale": 1, "act": 3}
MIN_EFFECTIVE_ROWS = 32  # as cost.MIN_EFFECTIVE_ROWS


@dataclass(frozen=True)
class ArchitectureCost:
    chain_factor: float  # multiplies the exact chain's GEMM work and memory
    exact_extra_flops: float  # elementwise passes beyond the GEMMs (cost.py adds the svdvals)
    estimate_extra_flops: float  # the probes' elementwise passes
    groups: int  # products per analysis: B, or 1 where batchnorm couples the samples


def architecture_cost(spec: ModelSpec) -> ArchitectureCost | None:
    if spec.architecture is None:
        return None
    coupled = spec.architecture.normalization.kind == "batchnorm"
    batch, n_d = spec.batch_size, spec.widths[-1]
    groups, per_group = (1, batch) if coupled else (batch, 1)
    rows = per_group * n_d
    passes = 0.0
    probe_passes = 0.0
    for op in ops(spec):
        k = PASSES.get(op.kind, 0) * (2 if coupled and op.kind == "norm" else 1)  # batchnorm reduces a strided dim
        passes += k * 2.0 * max(rows, MIN_EFFECTIVE_ROWS) * groups * per_group * op.width
        probe_passes += k * 2.0 * max(spec.jacobian.probes, MIN_EFFECTIVE_ROWS) * groups * per_group * op.width
    return ArchitectureCost(float(per_group), passes, probe_passes, groups)


def product_widths(spec: ModelSpec) -> tuple[int, ...]:
    """The widths the products have per group: the network's own, or B times them where batchnorm couples the
    samples into one (B·n_d) × (B·n_t) product."""
    arch = spec.architecture
    factor = spec.batch_size if arch is not None and arch.normalization.kind == "batchnorm" else 1
    return tuple(factor * n for n in spec.widths)


def block_ops_at(spec: ModelSpec, t: int) -> int:
    """Operations layer t adds beyond its weights and σ: normalisations, the skip's fork, scale and sum."""
    return _block_ops(spec).get(t, 0)


@functools.lru_cache(maxsize=64)
def _block_ops(spec: ModelSpec) -> dict[int, int]:
    """block_ops_at of every layer, counted in one pass (the cost model asks per layer)."""
    return dict(Counter(op.layer for op in ops(spec) if op.kind in ("norm", "fork", "scale", "add")))
