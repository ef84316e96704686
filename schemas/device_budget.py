"""Which device's budget admits a spec: the CPU's limits, or the GPU's (`Limits.cuda_*`) where the analysis will
run on a GPU. The decision is the engine's own (network.resolve_device): device cpu never, cuda always (a server
without CUDA then refuses it with 422, naming the device), auto where CUDA is present and the estimated work passes
AUTO_CUDA_MIN_GFLOP.

torch is asked about CUDA only for device auto past that work, in the process that validates specs (an API or
jobs worker, the CLI); the gunicorn master never validates one, and never loads torch.
"""

from __future__ import annotations

from service.engine.cost import AUTO_CUDA_MIN_GFLOP, estimate_cost
from service.engine.memory_plan import device_plan
from service.engine.spec import ModelSpec

from .limits import Limits

# The limits a GPU's budget replaces (each by cuda_<name>).
CUDA_BUDGETED = ("max_parameters", "max_gflop", "max_memory_mib", "cost_scale")


def cuda_present() -> bool:
    # imported here: only where a spec with device auto is validated (a worker), never in the master
    import torch

    return bool(torch.cuda.is_available())


def budget_device(spec: ModelSpec, limits: Limits) -> str:
    """'cuda' where the analysis will run on a GPU, else 'cpu'."""
    if spec.device == "cuda":
        return "cuda"
    if spec.device == "auto" and estimate_cost(spec, limits.auto_exact_gflop).gflop >= AUTO_CUDA_MIN_GFLOP:
        return "cuda" if cuda_present() else "cpu"
    return "cpu"


def limit_name(name: str, device: str) -> str:
    """The Limits field that bounds `name` on `device` (its own name on the CPU, cuda_<name> on a GPU)."""
    return f"cuda_{name}" if device == "cuda" and name in CUDA_BUDGETED else name


def memory_mib(spec: ModelSpec, limits: Limits, device: str, cpu_estimate_mib: float) -> float:
    """The estimate the memory limit is checked against: the cost model's (host) on the CPU, the device plan's on a
    GPU (the weights once, shared by the pass; service.engine.memory_plan)."""
    if device != "cuda":
        return cpu_estimate_mib
    return device_plan(spec, limits.auto_exact_gflop).peak_mib
