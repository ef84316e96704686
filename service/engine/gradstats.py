"""Statistics of gradient tensors as computed in the pass dtype (moments in float64).

On a GPU, tensors of equal shape are reduced together, in chunks of bounded size, and every
number comes back in one device-to-host copy per chunk: per-layer scalar reads would synchronise
the device several times per layer. Both paths give the same numbers (tests/engine/test_gradstats.py).
"""

from __future__ import annotations

import math
from collections import defaultdict

import torch

from .report import TensorStats

Tensor = torch.Tensor
# At most this many elements reduced at once (their float64 copy is 8 bytes each).
CHUNK_ELEMENTS = 1 << 25
# Squares of float64 values up to this stay far inside float64's range.
_SQUARE_SAFE = 1e150


def smallest_normal(dtype: torch.dtype) -> float:
    return float(torch.finfo(dtype).tiny)


def tensor_stats(values: Tensor, dtype: torch.dtype, scale: float = 1.0) -> TensorStats:
    """norm, log10 norm, mean, std, max |g| and the fractions of zero, subnormal and non-finite values.

    `dtype` is the requested pass dtype (float16 emulated in float32 is still float16 here),
    which sets what counts as subnormal. `values` are as the pass held them (multiplied by the
    loss scale); the fractions are of those, the moments of values / scale.
    """
    return tensor_stats_many([values], dtype, scale)[0]


def tensor_stats_many(
    values: list[Tensor], dtype: torch.dtype, scale: float = 1.0, batched: bool | None = None
) -> list[TensorStats]:
    """`tensor_stats` of each tensor: one at a time on the CPU (where reading a scalar costs nothing),
    tensors of the same shape reduced together elsewhere (where each read would synchronise)."""
    if batched is None:
        batched = any(v.device.type != "cpu" for v in values)
    if not batched:
        return [_single_stats(v, dtype, scale) for v in values]
    out: list[TensorStats | None] = [None] * len(values)
    groups: dict[tuple[int, ...], list[int]] = defaultdict(list)
    for i, v in enumerate(values):
        groups[tuple(v.shape)].append(i)
    for shape, idx in groups.items():
        per_chunk = max(1, CHUNK_ELEMENTS // max(1, math.prod(shape)))
        for start in range(0, len(idx), per_chunk):
            chunk = idx[start : start + per_chunk]
            stacked = torch.stack([values[i].detach().reshape(-1) for i in chunk])  # (k, numel)
            for i, st in zip(chunk, _rows_stats(stacked, dtype, scale), strict=True):
                out[i] = st
    return [s for s in out if s is not None]


def _rows_stats(v: Tensor, dtype: torch.dtype, scale: float) -> list[TensorStats]:
    """Statistics of each row of v (k, numel), gathered on the device and copied to the host once."""
    numel = v.shape[1]
    absv = v.abs()  # in the pass's own dtype: the counts need no float64 copy
    finite = torch.isfinite(absv)
    n_finite = finite.sum(dim=1)
    zeros = ((absv == 0) & finite).sum(dim=1)
    subnormal = ((absv > 0) & (absv < smallest_normal(dtype))).sum(dim=1)
    absf = torch.where(finite, absv, torch.zeros_like(absv))
    peak = absf.amax(dim=1).double() / scale
    fv = torch.where(finite, v.double() / scale, torch.zeros((), dtype=torch.float64, device=v.device))
    count = n_finite.double()
    mean = fv.sum(dim=1) / count.clamp_min(1)
    dev = torch.where(finite, fv - mean[:, None], torch.zeros((), dtype=torch.float64, device=v.device))
    var = (dev * dev).sum(dim=1) / (count - 1).clamp_min(1)
    # scaled by the peak so that squares of float64 values near 1e308 cannot overflow
    safe_peak = torch.where(peak > 0, peak, torch.ones_like(peak))
    norm = peak * torch.linalg.vector_norm(fv / safe_peak[:, None], dim=1)
    table = torch.stack([n_finite.double(), zeros.double(), subnormal.double(), peak, mean, var.sqrt(), norm]).T
    return [_stats_from_row(row, numel) for row in table.cpu().tolist()]


def _stats_from_row(row: list[float], numel: int) -> TensorStats:
    n_finite, zeros, subnormal, peak, mean, std, norm = row
    zero_fraction, subnormal_fraction = zeros / numel, subnormal / numel
    nonfinite_fraction = 1.0 - n_finite / numel
    if n_finite == 0:
        return TensorStats(
            None, None, None, None, None, zero_fraction, subnormal_fraction, nonfinite_fraction, numel, "nonfinite"
        )
    complete = n_finite == numel
    status = "nonfinite" if not complete else ("zero" if peak == 0 else "ok")
    return TensorStats(
        norm=norm if complete else None,
        log10_norm=math.log10(norm) if norm > 0 and complete else None,
        mean=mean,
        std=std if n_finite > 1 else 0.0,
        max_abs=peak,
        zero_fraction=zero_fraction,
        subnormal_fraction=subnormal_fraction,
        nonfinite_fraction=nonfinite_fraction,
        numel=numel,
        status=status,
    )


def _single_stats(values: Tensor, dtype: torch.dtype, scale: float = 1.0) -> TensorStats:
    """One tensor with scalar reads as it goes: fewer passes over memory, the faster path on the CPU.

    max |v| propagates inf and NaN, so a finite peak proves every value finite, and min |v| ≥ the smallest
    normal proves there are no zeros or subnormals, each without a counting pass. The standard deviation
    is two-pass (mean, then the norm of the deviations), which is as exact as Welford's and several
    times faster than torch.std_mean on the CPU.
    """
    v = values.detach().reshape(-1)
    numel = v.numel()
    absv = v.abs()  # in the pass's own dtype: the counts need no float64 copy
    peak = float(absv.max()) if numel else 0.0
    n_finite = numel
    if not math.isfinite(peak):
        finite = torch.isfinite(absv)
        n_finite = int(finite.sum())
        absv, v = absv[finite], v[finite]
        peak = float(absv.max()) if n_finite else 0.0
    tiny = smallest_normal(dtype)
    zeros = subnormal = 0
    if n_finite and float(absv.min()) < tiny:
        zeros = n_finite - int(torch.count_nonzero(absv))
        subnormal = int(torch.count_nonzero(absv < tiny)) - zeros
    mean = std = norm = 0.0
    if n_finite > 0:
        fv = v.double() / scale if scale != 1.0 else v.double()
        peak /= scale
        # squares of values past 1e150 would overflow float64: those are taken relative to the peak
        unit = peak if peak > _SQUARE_SAFE else 1.0
        mean_t = fv.mean()
        mean = float(mean_t)
        if n_finite > 1:
            dev = fv - mean_t if unit == 1.0 else (fv - mean_t) / unit
            std = unit * float(torch.linalg.vector_norm(dev)) / math.sqrt(n_finite - 1)
        norm = unit * float(torch.linalg.vector_norm(fv / unit if unit != 1.0 else fv))
    return _stats_from_row([float(n_finite), float(zeros), float(subnormal), peak, mean, std, norm], numel)
