"""Per-layer numbers of the report gathered on the device and read once per group of like layers.

The CPU path of `analysis._layer_reports` reads each layer's σ' statistics and weight norm as it goes (a scalar
read costs nothing there, and its numbers are the ones the report ids pin). On a resident device
(`placement.resident`) each such read would wait for the device: these give the same numbers for every layer at
once, one host copy per group of layers of one shape and activation (tests/engine/test_placement.py compares
both paths).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from .activations import get as get_activation
from .reference import Reference
from .spec import ModelSpec

Tensor = torch.Tensor


@dataclass(frozen=True)
class SigmaPrimeStats:
    mean: float
    max: float
    mean_square: float
    dead_fraction: float | None  # relu-like activations with slope 0 below the kink
    saturated_fraction: float | None  # saturating and smooth activations: |σ'| < 1% of its peak


def sigma_prime_stats(spec: ModelSpec, ref: Reference) -> list[SigmaPrimeStats]:
    """Every layer's σ' statistics, computed where the reference is and read in one copy per group."""
    out: list[SigmaPrimeStats | None] = [None] * spec.depth
    groups: dict[tuple[tuple[int, ...], str], list[int]] = {}
    for i, (lr, name) in enumerate(zip(ref.layers, spec.activations, strict=True)):
        groups.setdefault((tuple(lr.sigma_prime.shape), name), []).append(i)
    for (_, name), idx in groups.items():
        act = get_activation(name)
        sp = torch.stack([ref.layers[i].sigma_prime for i in idx]).flatten(1)  # (k, B·n)
        dead = act.kind == "relu_like" and act.slopes[1] == 0
        saturating = act.kind in ("saturating", "smooth")
        cols = [sp.mean(dim=1), sp.amax(dim=1), (sp * sp).mean(dim=1)]
        if dead:
            cols.append((sp == 0).double().mean(dim=1))
        if saturating:
            cols.append((sp.abs() < 0.01 * act.peak_prime).double().mean(dim=1))
        for i, row in zip(idx, torch.stack(cols, dim=1).tolist(), strict=True):
            out[i] = SigmaPrimeStats(
                mean=row[0],
                max=row[1],
                mean_square=row[2],
                dead_fraction=row[3] if dead else None,
                saturated_fraction=row[3] if saturating else None,
            )
    return [s for s in out if s is not None]


def weight_norms(weights: list[Tensor]) -> list[float]:
    """‖W^t‖_F of every layer in float64, one host copy (the weights stay where they are, in their own dtype)."""
    return torch.stack([torch.linalg.vector_norm(w, dtype=torch.float64) for w in weights]).tolist()
