"""Item 4 of issue 23: separate CPU and GPU budgets. A spec that will run on a GPU is admitted by the cuda_*
limits (depth 100 × width 8192 at batch 8 by default), every other by the CPU's, which keep today's values."""

from __future__ import annotations

import pytest
from marshmallow import ValidationError

from schemas import device_budget
from schemas.limits import Limits
from schemas.spec import ModelSpecSchema

BIG = {"layers": {"depth": 100, "width": 8192}, "batch_size": 8}
SERVER = Limits(max_seconds=54.0)  # a server's default admission: half its 108 s request deadline


@pytest.fixture
def gpu_host(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(device_budget, "cuda_present", lambda: True)


@pytest.fixture
def cpu_host(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(device_budget, "cuda_present", lambda: False)


DEFAULT = Limits()


def _load(body: dict, limits: Limits = DEFAULT):
    return ModelSpecSchema(limits=limits).load(body)


def _refusal(body: dict, limits: Limits = DEFAULT) -> str:
    with pytest.raises(ValidationError) as err:
        _load(body, limits)
    return str(err.value.messages)


def test_the_cpu_keeps_todays_limits(cpu_host: None) -> None:
    assert Limits().max_parameters == 256_000_000 and Limits().max_gflop == 5000.0
    assert Limits().max_memory_mib == 3584.0 and Limits().cost_scale == 1.0
    for device in ("auto", "cpu"):
        assert "GRADSTAB_MAX_PARAMETERS" in _refusal({**BIG, "device": device})


@pytest.mark.parametrize("device", ["cuda", "auto"])
def test_a_gpu_host_accepts_depth_100_width_8192_by_default(gpu_host: None, device: str) -> None:
    spec = _load({**BIG, "device": device})
    assert spec.depth == 100 and max(spec.widths) == 8192
    assert device_budget.budget_device(spec, Limits()) == "cuda"
    _load({**BIG, "device": device}, SERVER)  # and within a server's time admission (the estimate, verify on)


def test_cpu_on_a_gpu_host_keeps_the_cpus_budget(gpu_host: None) -> None:
    assert "GRADSTAB_MAX_PARAMETERS" in _refusal({**BIG, "device": "cpu"})


def test_auto_below_the_gpus_break_even_keeps_the_cpus_budget(gpu_host: None) -> None:
    spec = _load({"layers": {"depth": 4, "width": 64}, "device": "auto"})
    assert device_budget.budget_device(spec, Limits()) == "cpu"


def test_a_gpu_refusal_names_the_gpus_limit(gpu_host: None) -> None:
    """A float64 chain needs a float64 copy of every weight: the device plan is over the GPU's memory limit."""
    body = {**BIG, "device": "cuda", "jacobian": {"method": "exact", "precision": "float64"}}
    message = _refusal(body)
    assert "GRADSTAB_CUDA_MAX_MEMORY_MIB" in message and "cuda_max_memory_mib" in message
    exact = {**BIG, "device": "cuda", "jacobian": {"method": "exact"}}
    _load(exact)  # admitted by the static budget ...
    assert "GRADSTAB_CUDA_MAX_SECONDS" not in _refusal(exact, SERVER)  # ... past a server's time (its own limit)
    assert "predicted time" in _refusal(exact, SERVER)


def test_the_gpus_time_scale_applies_to_the_gpu_only(gpu_host: None) -> None:
    body = {"layers": {"depth": 100, "width": 1024}, "batch_size": 8}
    _load({**body, "device": "cuda"}, SERVER)
    assert "GRADSTAB_MAX_GFLOP" in _refusal({**body, "device": "cpu"}, SERVER)  # the CPU's budget
    assert "predicted time" in _refusal({**body, "device": "cuda"}, Limits(max_seconds=54.0, cuda_cost_scale=1.0))


def test_limit_names() -> None:
    assert device_budget.limit_name("max_gflop", "cuda") == "cuda_max_gflop"
    assert device_budget.limit_name("max_gflop", "cpu") == "max_gflop"
    assert device_budget.limit_name("max_depth", "cuda") == "max_depth"  # shared by both devices
    assert all(hasattr(Limits(), f"cuda_{name}") for name in device_budget.CUDA_BUDGETED)
