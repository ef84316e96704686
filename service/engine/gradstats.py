"""Statistics of a tensor as computed in the pass dtype (moments in float64)."""

from __future__ import annotations

import math

import torch

from .report import TensorStats

Tensor = torch.Tensor


def smallest_normal(dtype: torch.dtype) -> float:
    return float(torch.finfo(dtype).tiny)


def tensor_stats(values: Tensor, dtype: torch.dtype, scale: float = 1.0) -> TensorStats:
    """norm, log10 norm, mean, std, max |g| and the fractions of zero, subnormal and non-finite values.

    `dtype` is the requested pass dtype (float16 emulated in float32 is still float16 here),
    which sets what counts as subnormal. `values` are as the pass held them (multiplied by the
    loss scale); the fractions are of those, the moments of values / scale.
    """
    v = values.detach().reshape(-1)
    numel = v.numel()
    absv = v.abs()  # in the pass's own dtype: the counts need no float64 copy
    n_finite = int(torch.isfinite(absv).sum())
    nonfinite_fraction = 1.0 - n_finite / numel
    if n_finite < numel:
        absv = absv[torch.isfinite(absv)]
        v = v[torch.isfinite(v)]
    zero_fraction = float((absv == 0).sum()) / numel
    subnormal_fraction = float(((absv > 0) & (absv < smallest_normal(dtype))).sum()) / numel
    if n_finite == 0:
        return TensorStats(
            None, None, None, None, None, zero_fraction, subnormal_fraction, nonfinite_fraction, numel, "nonfinite"
        )
    fv = v.double() / scale if scale != 1.0 else v.double()
    std, mean = torch.std_mean(fv) if n_finite > 1 else (torch.zeros(()), fv.mean())
    peak = float(absv.max()) / scale
    # scaled by the peak so that squares of float64 values near 1e308 cannot overflow
    norm = peak * float(torch.linalg.vector_norm(fv / peak)) if peak > 0 else 0.0
    status = "nonfinite" if n_finite < numel else ("zero" if peak == 0 else "ok")
    return TensorStats(
        norm=norm if n_finite == numel else None,
        log10_norm=math.log10(norm) if norm > 0 and n_finite == numel else None,
        mean=float(mean),
        std=float(std),
        max_abs=peak,
        zero_fraction=zero_fraction,
        subnormal_fraction=subnormal_fraction,
        nonfinite_fraction=nonfinite_fraction,
        numel=numel,
        status=status,
    )
