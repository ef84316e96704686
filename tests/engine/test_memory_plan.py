"""Item 3 of issue 23 on the CPU: the device memory plan (memory_plan.device_plan) against the live tensor bytes
an analysis holds at its peak, counted with the GPU's rules forced on the CPU (placement.RESIDENT_DEVICES), and the
plan's promises: a product state that does not grow with the depth, depth 100 × width 8192 at batch 8 on an
80 GB card."""

from __future__ import annotations

import pytest

from schemas.limits import Limits
from schemas.spec import ModelSpecSchema
from service.engine import analysis, analyze, draws, gradstats, jacobian, memory_plan, placement
from service.engine.draws import set_cache_mib
from service.engine.memory_plan import chain_dtype, device_plan, fits

from .conftest import chunked_power_here, make_spec
from .tensor_bytes import tensor_bytes

# measured peak / planned peak: the plan counts the tensors each stage holds, not the allocator's rounding or
# every temporary of a composite op (README, "Memory plan"); measured 0.84-1.14 on these specs
BAND = (0.75, 1.25)
GB80 = 80 * 10**9


def _big(**body) -> object:
    """A spec past the CPU's limits (the plan is for a GPU's budget)."""
    return ModelSpecSchema(limits=Limits(max_parameters=10**12, max_gflop=1e12, max_memory_mib=1e12)).load(
        {"verify_recommendations": False, **body}
    )


def test_the_mirrored_constants_are_the_engines() -> None:
    assert memory_plan.SVD_CHUNK_BYTES == jacobian.SVD_CHUNK_BYTES
    assert memory_plan.POWER_CHUNK_BYTES == jacobian.CHUNK_BYTES
    assert memory_plan.POWER_CHUNK_LAYERS == jacobian.CHUNK_MAX_LAYERS
    assert memory_plan.POWER_CHUNK_MIN_LAYERS == jacobian.CHUNK_MIN_LAYERS
    assert memory_plan.STATS_CHUNK_ELEMENTS == gradstats.CHUNK_ELEMENTS


@pytest.mark.parametrize(
    "body",
    [
        {"layers": {"depth": 3, "width": 64}},
        {"layers": {"depth": 30, "width": 512}, "batch_size": 8},
        {"layers": {"depth": 30, "width": 512}, "jacobian": {"singular_values": "all"}},
        {"layers": {"depth": 30, "width": 512}, "jacobian": {"method": "estimate"}},
        {"layers": {"depth": 30, "width": 512}, "jacobian": {"precision": "float64"}},
    ],
)
def test_chain_dtype_is_analysis_chain_precision(body: dict) -> None:
    spec = make_spec(**body)
    method = analysis.plan(spec).jacobian_method
    assert chain_dtype(spec, method) == str(analysis.chain_precision(spec, method)[0]).removeprefix("torch.")


@pytest.mark.parametrize(
    "body",
    [
        {"layers": {"depth": 6, "width": 512}, "batch_size": 4},
        {"layers": {"depth": 6, "width": 512}, "batch_size": 4, "jacobian": {"method": "exact"}},
        {"layers": {"depth": 12, "width": 256}, "batch_size": 8, "dtype": "float64"},
        {"layers": {"depth": 20, "width": 128}, "batch_size": 64},
        {"layers": {"depth": 8, "width": 256}, "batch_size": 4, "dtype": "bfloat16", "activation": "tanh"},
    ],
    ids=["estimate", "exact", "float64", "batch64-chunked", "bfloat16"],
)
def test_the_plan_matches_the_counted_peak(monkeypatch: pytest.MonkeyPatch, body: dict) -> None:
    monkeypatch.setattr(placement, "RESIDENT_DEVICES", frozenset({"cpu", "cuda"}))
    chunked_power_here(monkeypatch)
    limit = draws.CACHE.limit
    set_cache_mib(0)  # the worker's draw cache is not the analysis's memory
    try:
        spec = make_spec(**body)
        analyze(spec)
        with tensor_bytes() as counted:
            analyze(spec)
    finally:
        draws.CACHE.resize(limit)
    ratio = counted.peak / device_plan(spec).peak_bytes
    assert BAND[0] <= ratio <= BAND[1], (ratio, device_plan(spec).lines())


def test_the_product_state_does_not_grow_with_the_depth() -> None:
    """The product, its scaled copy and the GEMM's output, the power chunk and the svdvals chunk (capped): B·n², not
    B·n²·d."""
    batch, n = 8, 2048
    for sv in ("none", "auto", "all"):
        jac = {"method": "exact", "singular_values": sv}
        shallow, deep = (_big(layers={"depth": d, "width": n}, jacobian=jac) for d in (200, 2000))
        product = batch * n * n * memory_plan._BYTES[chain_dtype(deep, "exact")]
        bound = 3 * product + memory_plan.SVD_CHUNK_BYTES + batch * n * n * 8 + 2 * memory_plan.POWER_CHUNK_BYTES
        shallow, deep = device_plan(shallow), device_plan(deep)
        assert shallow.working["exact_chain"] == deep.working["exact_chain"] <= bound, sv
        assert deep.parts["weights"] == pytest.approx(10 * shallow.parts["weights"], rel=0.01)  # the weights do


def test_depth_100_width_8192_batch_8_fits_an_80_gb_card() -> None:
    for method in ("auto", "exact"):
        spec = _big(layers={"depth": 100, "width": 8192}, batch_size=8, jacobian={"method": method})
        plan = device_plan(spec)
        assert fits(spec, GB80), plan.lines()
        weights = 100 * 8192 * 8192 * 4
        assert plan.parts["weights"] == weights and plan.parts["weight_grads"] == weights
        assert "pass_weights" not in plan.parts and "chain_weights" not in plan.parts  # shared, not copied
    # a float64 chain needs its own copy of every weight: 100 GiB does not fit
    exact64 = {"method": "exact", "precision": "float64"}
    assert not fits(_big(layers={"depth": 100, "width": 8192}, batch_size=8, jacobian=exact64), GB80)
