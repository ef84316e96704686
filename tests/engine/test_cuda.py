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
    assert r.runtime.device == "cpu" and r.runtime.device_requested == "auto"
    if torch.cuda.is_available():  # a tiny spec is launch-bound on a GPU: auto keeps it on the CPU and says so
        assert any("device auto ran on the CPU" in n for n in r.runtime.notes)


@needs_cuda
@pytest.mark.cuda
def test_auto_runs_large_specs_on_the_gpu_and_names_it() -> None:
    r = analyze(make_spec(layers={"depth": 20, "width": 512}, device="auto", verify_recommendations=False))
    assert r.runtime.device == f"cuda:{torch.cuda.current_device()}"
    assert r.runtime.device_name == torch.cuda.get_device_name()


@needs_cuda
@pytest.mark.cuda
def test_no_host_synchronisation_inside_the_chain() -> None:
    """The per-layer loop of the exact chain queues work only: torch raises on any synchronising call."""
    from service.engine.analysis import chain_precision
    from service.engine.jacobian import exact_chain
    from service.engine.network import make_parameters
    from service.engine.reference import run_reference

    spec = make_spec(layers={"depth": 12, "width": 64}, device="cuda", jacobian={"singular_values": "none"})
    params = make_parameters(spec)
    ref = run_reference(spec, params)
    device = torch.device("cuda")
    prec = chain_precision(spec, "exact")
    weights = params.weights_as(prec, device)
    torch.cuda.synchronize()
    torch.cuda.set_sync_debug_mode("error")
    try:
        exact_chain(spec, weights, ref, prec, device, collect=False)
    finally:
        torch.cuda.set_sync_debug_mode("default")


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
