"""The GPU's batched gradient statistics agree with the one-tensor-at-a-time path, special values included."""

from __future__ import annotations

import math

import pytest
import torch

from service.engine.gradstats import tensor_stats_many


def _tensors(dtype: torch.dtype) -> list[torch.Tensor]:
    gen = torch.Generator().manual_seed(0)
    out = []
    for k in range(12):
        v = torch.randn(7, 5, generator=gen, dtype=torch.float64) * 10.0 ** float(
            torch.randint(-30, 30, (1,), generator=gen)
        )
        if k % 3 == 0:
            v[0, 0] = float("inf")
        if k % 4 == 1:
            v[1, :] = 0
        if k == 5:
            v[:] = float("nan")
        if k == 7:
            v[:] = 0
        out.append(v.to(torch.float32 if dtype == torch.float16 else dtype))
    out.append(torch.full((3, 3), 3e-6, dtype=out[0].dtype))  # subnormal in float16
    return out


@pytest.mark.parametrize("dtype", [torch.float16, torch.float32, torch.float64])
@pytest.mark.parametrize("scale", [1.0, 4096.0])
def test_batched_statistics_equal_the_single_tensor_path(dtype: torch.dtype, scale: float) -> None:
    values = _tensors(dtype)
    single = tensor_stats_many(values, dtype, scale, batched=False)
    batched = tensor_stats_many(values, dtype, scale, batched=True)
    assert [s.status for s in single] == [b.status for b in batched]
    for s, b in zip(single, batched, strict=True):
        for name in s.__dataclass_fields__:
            x, y = getattr(s, name), getattr(b, name)
            if isinstance(x, float) and isinstance(y, float):
                assert math.isclose(x, y, rel_tol=1e-12, abs_tol=1e-300), (name, x, y)
            else:
                assert x == y, (name, x, y)
