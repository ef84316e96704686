"""The CUDA path: native float16 on the GPU agrees with the CPU's emulation; skipped without CUDA."""

from __future__ import annotations

import pytest
import torch

from service.engine import analyze
from service.engine.errors import SpecError

from .conftest import make_spec

needs_cuda = pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA device on this machine")


def test_cuda_is_refused_with_the_field_named_where_absent() -> None:
    if torch.cuda.is_available():
        pytest.skip("this machine has CUDA")
    with pytest.raises(SpecError) as err:
        analyze(make_spec(layers=[4, 4], device="cuda"))
    assert err.value.field == "device"


def test_auto_falls_back_to_cpu_where_cuda_is_absent() -> None:
    r = analyze(make_spec(layers=[4, 4, 4], device="auto"))
    assert r.runtime.device == ("cuda:0" if torch.cuda.is_available() else "cpu")


@needs_cuda
@pytest.mark.cuda
@pytest.mark.parametrize("dtype", ["float16", "bfloat16", "float32"])
def test_cuda_matches_cpu(dtype: str) -> None:
    body = {
        "layers": {"depth": 40, "width": 32},
        "activation": "identity",
        "init": "normal",
        "weight_scale": 0.3,
        "dtype": dtype,
        "batch_size": 4,
    }
    cpu = analyze(make_spec(**body, device="cpu"))
    gpu = analyze(make_spec(**body, device="cuda"))
    assert gpu.runtime.device.startswith("cuda") and not gpu.runtime.float16_emulated
    # the exact products come from the same float64 reference: equal up to GEMM rounding
    assert gpu.diagnosis.log10_total_growth == pytest.approx(cpu.diagnosis.log10_total_growth, abs=1e-6)
    # the pass: same overflow and underflow layers, gradient norms within the dtype's rounding
    for key in ("overflow", "underflow"):
        a, b = getattr(cpu.diagnosis, key), getattr(gpu.diagnosis, key)
        assert a.occurred == b.occurred
        if a.occurred:
            assert abs(a.first_layer - b.first_layer) <= 1
    tol = {"float16": 2e-2, "bfloat16": 5e-2, "float32": 1e-4}[dtype]
    for la, lb in zip(cpu.layers, gpu.layers, strict=True):
        if la.output_grad.norm and lb.output_grad.norm:
            assert lb.output_grad.norm == pytest.approx(la.output_grad.norm, rel=tol)
