"""The CUDA path: native float16 on the GPU agrees with the CPU's emulation; skipped without CUDA."""

from __future__ import annotations

import pytest
import torch

from service.engine import analyze, jacobian
from service.engine.errors import SpecError

from .conftest import chunked_power_here, make_spec

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


DEVICES = [
    pytest.param("cpu", id="cpu"),  # the same calls, so that a change of signature shows on machines without CUDA
    pytest.param("cuda", id="cuda", marks=[needs_cuda, pytest.mark.cuda]),
]


@pytest.mark.parametrize("chunked", [True, False], ids=["chunked", "carried"])
@pytest.mark.parametrize("device", DEVICES)
def test_no_host_synchronisation_inside_the_chain(monkeypatch: pytest.MonkeyPatch, device: str, chunked: bool) -> None:
    """The exact chain's loop queues work only: on CUDA, torch raises on any synchronising call in it."""
    from service.engine.jacobian import _chain_loop, _live_units
    from service.engine.network import make_parameters
    from service.engine.products import orthogonal_probes as _orthogonal_probes
    from service.engine.products import prepare_sigma_prime as _prepare_sigma_prime
    from service.engine.reference import run_reference

    monkeypatch.setattr(jacobian, "CHUNKED_DEVICES", frozenset({device} if chunked else ()))
    monkeypatch.setitem(jacobian.LIVE_MIN_UNITS, device, 128)  # the live-unit gathers at this width, on CUDA too
    spec = make_spec(layers={"depth": 40, "width": 160}, activation="relu", device=device)
    params = make_parameters(spec)
    ref = run_reference(spec, params)
    dev, prec = torch.device(device), torch.float32
    weights = params.weights_as(prec, dev)
    sp_units, _, _ = _prepare_sigma_prime(ref, prec, dev)
    live = _live_units(ref, spec.widths, dev)
    assert any(idx is not None for idx in live)  # the live-unit GEMMs run too
    gen = torch.Generator().manual_seed(0)
    u = _orthogonal_probes(spec.batch_size, 8, 160, gen).to(device=dev, dtype=prec)
    strategy = jacobian._power_strategy(spec, u, {})
    assert isinstance(strategy, jacobian._ChunkedPower if chunked else jacobian._CarriedPower)
    if device == "cuda":
        torch.cuda.synchronize()
        torch.cuda.set_sync_debug_mode("error")
    try:
        state = _chain_loop(spec, weights, sp_units, u, set(), live)
    finally:
        if device == "cuda":
            torch.cuda.set_sync_debug_mode("default")
    assert len(state.log_fros) == spec.depth - 1 and len(state.grams) == spec.depth - 1


@pytest.mark.parametrize(
    "body",
    [  # the kinds of spec the one GPU run compared: overflow, underflow, each activation family, dtype
        {"layers": {"depth": 100, "width": 4}, "activation": "identity", "dtype": "float16"},
        {"layers": {"depth": 100, "width": 4}, "activation": "identity", "dtype": "float32"},
        {"layers": {"depth": 41, "width": 64}, "activation": "sigmoid", "dtype": "float16"},  # underflows
        {"layers": {"depth": 30, "width": 64}, "activation": "relu", "dtype": "float16", "weight_scale": 2.0},
        {"layers": {"depth": 30, "width": 64}, "activation": "relu", "dtype": "bfloat16", "weight_scale": 0.5},
        {"layers": {"depth": 20, "width": 48}, "activation": "tanh", "dtype": "float64", "loss": "mse"},
        {
            "layers": {"depth": 20, "width": 48},
            "activation": "gelu",
            "dtype": "float16",
            "loss": "cross_entropy",
            "weight_scale": 0.5,
        },  # underflows
        {"layers": {"depth": 60, "width": 256}, "activation": "relu", "dtype": "float32"},  # chunked on CUDA
    ],
)
@pytest.mark.parametrize("device", DEVICES)
def test_the_device_gives_the_cpus_diagnosis(monkeypatch: pytest.MonkeyPatch, device: str, body: dict) -> None:
    """Same verdict and onset, the same overflow and underflow (in float16 and bfloat16 the first layer may move
    by one: cuBLAS sums in its own order, README), and total growth to the chain's precision on the device as on
    the CPU; spectral norms within the power iteration's accuracy (the GPU runs it in chunks).
    Without CUDA: the CPU against itself running the GPU's chunked power iteration."""
    cpu = analyze(make_spec(**body, device="cpu", verify_recommendations=False))
    chunked_power_here(monkeypatch)
    dev = analyze(make_spec(**body, device=device, verify_recommendations=False))
    assert dev.runtime.device.startswith(device)
    a, b = cpu.diagnosis, dev.diagnosis
    assert (a.verdict, a.onset_layer) == (b.verdict, b.onset_layer)
    slack = 1 if device != "cpu" and body["dtype"] in ("float16", "bfloat16") else 0
    for ea, eb in ((a.overflow, b.overflow), (a.underflow, b.underflow)):
        assert (ea.occurred, ea.quantity) == (eb.occurred, eb.quantity)
        assert ea.first_layer == eb.first_layer or abs(ea.first_layer - eb.first_layer) <= slack
    growth_tol = 1e-9 if cpu.runtime.jacobian_precision == "float64" else 1e-5  # float32: ≤ 3e-7 each (README)
    if a.log10_total_growth is None:
        assert b.log10_total_growth is None
    else:
        assert b.log10_total_growth == pytest.approx(a.log10_total_growth, abs=growth_tol)
    for la, lb in zip(cpu.layers, dev.layers, strict=True):
        sa, sb = la.jacobian_product.log10_spectral_norm, lb.jacobian_product.log10_spectral_norm
        if sa is not None and sb is not None:
            assert sb == pytest.approx(sa, abs=0.05)


ARCHITECTURES = [
    {"residual": {"every": 2, "branch_scale": 0.5}, "normalization": {"kind": "layernorm", "position": "pre"}},
    {"normalization": {"kind": "batchnorm", "position": "post"}},
    {"residual": {"every": 1, "branch_scale": 1.0}, "normalization": {"kind": "rmsnorm", "position": "post"}},
]


@pytest.mark.parametrize("arch", ARCHITECTURES, ids=["res-ln-pre", "bn-post", "res-rms-post"])
@pytest.mark.parametrize("dtype", ["float32", "float16"])
@needs_cuda
@pytest.mark.cuda
def test_architectures_agree_between_cpu_and_cuda(arch: dict, dtype: str) -> None:
    """The products come from the same float64 reference on both devices; the pass differs only in its arithmetic
    (float16 native on the GPU, emulated on the CPU)."""
    body = {"layers": {"depth": 12, "width": 64}, "dtype": dtype, "architecture": arch, "loss": "mse"}
    cpu = analyze(make_spec(**body, device="cpu"))
    gpu = analyze(make_spec(**body, device="cuda"))
    assert gpu.runtime.device.startswith("cuda")
    for lc, lg in zip(cpu.layers, gpu.layers, strict=True):
        assert lg.jacobian_product.log10_frobenius_norm == pytest.approx(
            lc.jacobian_product.log10_frobenius_norm, abs=1e-5
        )
        assert lg.weight_grad.log10_norm == pytest.approx(lc.weight_grad.log10_norm, abs=0.05)
    assert gpu.diagnosis.verdict == cpu.diagnosis.verdict
