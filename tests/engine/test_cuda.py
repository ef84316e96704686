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
    r = analyze(make_spec(layers={"depth": 100, "width": 1024}, device="auto", verify_recommendations=False))
    assert r.runtime.device == f"cuda:{torch.cuda.current_device()}"
    assert r.runtime.device_name == torch.cuda.get_device_name()


@needs_cuda
@pytest.mark.cuda
def test_no_host_synchronisation_inside_the_chain() -> None:
    """The per-layer loop of the exact chain queues work only: torch raises on any synchronising call."""
    from service.engine.jacobian import _chain_loop, _orthogonal_probes, _prepare_sigma_prime
    from service.engine.network import make_parameters
    from service.engine.reference import run_reference

    spec = make_spec(layers={"depth": 12, "width": 64}, device="cuda")
    params = make_parameters(spec)
    ref = run_reference(spec, params)
    device, prec = torch.device("cuda"), torch.float32
    weights = params.weights_as(prec, device)
    sp_units, _, _ = _prepare_sigma_prime(ref, prec, device)
    gen = torch.Generator().manual_seed(0)
    u = _orthogonal_probes(spec.batch_size, 8, 64, gen).to(device=device, dtype=prec)
    torch.cuda.synchronize()
    torch.cuda.set_sync_debug_mode("error")
    try:
        state = _chain_loop(spec, weights, sp_units, u, svd_at=set())
    finally:
        torch.cuda.set_sync_debug_mode("default")
    assert len(state.log_fros) == spec.depth - 1 and len(state.grams) == spec.depth - 1
