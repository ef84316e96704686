"""Per-request work limits: the schemas refuse a spec beyond them with a 4xx naming the limit.

Each limit has a default and an environment variable (`env_name`: GRADSTAB_MAX_DEPTH …, read by
service.config.Settings.from_env), so an operator can raise or lower them without code changes.
No torch (the gunicorn master imports this module): the budget default comes from engine.spec.
"""

from __future__ import annotations

from dataclasses import dataclass, fields

from service.engine.spec import AUTO_EXACT_GFLOP

ENV_PREFIX = "GRADSTAB_"


@dataclass(frozen=True)
class Limits:
    max_depth: int = 2000
    max_width: int = 8192
    max_batch_size: int = 1024
    max_parameters: int = 256_000_000
    max_gflop: float = 5000.0  # estimated GEMM-equivalent work of the whole analysis (CPU: ~60 s on one core)
    max_memory_mib: float = 3584.0  # estimated peak tensor memory of the analysis
    auto_exact_gflop: float = AUTO_EXACT_GFLOP  # jacobian.method=auto picks exact up to this much chain work
    max_steps: int = 10_000  # recurrent.steps (T = 1000 at hidden 256 runs in a request; longer: a job)
    max_hidden: int = 4096  # recurrent.hidden
    max_stacked: int = 16  # recurrent.stacked
    max_probes: int = 256
    max_power_iterations: int = 100
    max_body_bytes: int = 1_000_000
    max_training_steps: int = 10_000  # training.steps
    max_training_examples: int = 65_536  # training.examples
    max_training_histograms: int = 16  # training.histograms: steps with per-layer histograms
    # Predicted seconds of one analysis (service.engine.cost.predict_time, times cost_scale); 0: no time limit
    # (the CLI). The server sets it to its request deadline × ADMIT_MARGIN unless GRADSTAB_MAX_SECONDS is set.
    max_seconds: float = 0.0
    # This machine's time over the reference machine's for the same analysis: bench/bench_cost.py prints it. The
    # prediction is for one torch thread (more only speed up the GEMMs): a worker with several may set it lower.
    cost_scale: float = 1.0
    # An analysis that runs on a GPU (device cuda, or auto where CUDA is present and the work passes the GPU's
    # break-even: schemas.device_budget) is admitted by these instead of max_parameters, max_gflop, max_memory_mib
    # and cost_scale: a GPU host accepts depth 100 × width 8192 at batch 8, the CPU keeps the limits above. The
    # memory is the device plan's (service.engine.memory_plan: 57-65 GB for that spec), under an 80 GB card less
    # 10 %; the cost scale is the GPU's time over the reference CPU thread's, provisional (a fp32 GEMM rate of
    # ~50 TFLOP/s against the reference thread's 60 GFLOP/s, the analysis ~4x its chain) until bench/bench_gpu.py
    # measures it on a lent device.
    cuda_max_parameters: int = 8_000_000_000
    cuda_max_gflop: float = 2_500_000.0
    cuda_max_memory_mib: float = 68_000.0
    cuda_cost_scale: float = 0.005

    @staticmethod
    def env_name(name: str) -> str:
        return ENV_PREFIX + name.upper()

    def as_dict(self) -> dict[str, float | int]:
        return {f.name: getattr(self, f.name) for f in fields(self)}


# A spec is admitted when its predicted time is at most this fraction of the request deadline: the prediction
# errs long on the reference machine (bench/bench_cost.py: measured/predicted at most 1), and the other half
# absorbs a machine shared with other work, or slower than the reference, before the deadline stops a request.
ADMIT_MARGIN = 0.5

OVER_LIMIT = "is over the limit"


def limit_message(what: str, value: float | int, name: str, limit: float | int) -> str:
    """One wording for every refused-by-limit message, so clients and metrics can tell them apart."""
    return f"{what} {value:g} {OVER_LIMIT} {name}={limit:g} (set by {Limits.env_name(name)})"
