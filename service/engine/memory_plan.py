"""The device memory of one analysis, part by part, where every stage after the draws runs on the device
(`placement`): what a CUDA budget admits by (`schemas.spec.check_limits`) and what bench/bench_gpu.py prints for
depth 100 × width 8192.

Persistent through the analysis: the weights once in their compact dtype (the pass and a chain of the same dtype
read those very tensors), a copy in the pass's dtype or the chain's where either differs, the weight gradients,
and the per-layer vectors (activations and their gradients, the float64 reference and its perturbed rerun, σ').
On top of them, one at a time, the largest stage's working set: the exact chain's product state — the product,
its σ'-scaled copy and the GEMM's output, B·n_d·n_max each, whatever the depth — plus its svdvals chunk and power
chunk; or the estimate's probe blocks; or the statistics' float64 chunk of one layer's gradient and the range
events' mask. tests/engine/test_memory_plan.py checks the total against the peak of the live tensor bytes an
analysis holds, counted on the CPU with the GPU's rules forced.

Torch-free (the schemas import it in the gunicorn master); byte counts only, no device query.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from itertools import pairwise

from .cost import FLOAT64_CHAIN_MAX_GFLOP, estimate_cost, exact_chain_flops, parameters, svd_layers
from .cost_training import training_memory_bytes
from .spec import AUTO_EXACT_GFLOP, ModelSpec

_BYTES = {"float16": 2, "bfloat16": 2, "float32": 4, "float64": 8}
# jacobian.SVD_CHUNK_BYTES, jacobian.CHUNK_BYTES, jacobian.CHUNK_MAX_LAYERS and CHUNK_MIN_LAYERS,
# gradstats.CHUNK_ELEMENTS (mirrored: this module is torch-free;
# tests/engine/test_memory_plan.py checks they agree)
SVD_CHUNK_BYTES = 256 * 2**20
POWER_CHUNK_BYTES = 64 * 2**20
POWER_CHUNK_LAYERS = 16
POWER_CHUNK_MIN_LAYERS = 4
STATS_CHUNK_ELEMENTS = 1 << 25
# Bytes per unit of the batch's per-layer vectors: the pass's h^t, ∂ℓ/∂h^t and autograd's saved inputs (three in
# the pass dtype), and in float64 the reference's σ', h direction and z direction, twice (the fidelity rerun).
PASS_VECTORS, REFERENCE_VECTORS = 3, 6
# The allocator's and the runtime's own share on a GPU (CUDA context, cuBLAS workspaces, fragmentation): the
# admission budget leaves this fraction of the card's memory free (README, "Budgets per device").
DEVICE_HEADROOM = 0.1


@dataclass(frozen=True)
class MemoryPlan:
    parts: dict[str, int] = field(default_factory=dict)  # persistent parts, bytes
    working: dict[str, int] = field(default_factory=dict)  # each stage's working set, bytes (one at a time)

    @property
    def peak_bytes(self) -> int:
        return sum(self.parts.values()) + max(self.working.values(), default=0)

    @property
    def peak_mib(self) -> float:
        return self.peak_bytes / 2**20

    def lines(self) -> list[str]:
        """Human-readable parts, largest first (bench output)."""
        items = [(f"{k}", v) for k, v in self.parts.items()] + [(f"{k} (working)", v) for k, v in self.working.items()]
        return [f"{k}: {v / 2**30:.2f} GiB" for k, v in sorted(items, key=lambda kv: -kv[1])]


def chain_dtype(spec: ModelSpec, method: str) -> str:
    """analysis.chain_precision's dtype without torch (a test keeps the two in step)."""
    if method != "exact":
        return "float32"
    if spec.jacobian.precision != "auto":
        return spec.jacobian.precision
    if exact_chain_flops(spec.widths, spec.batch_size) / 1e9 <= FLOAT64_CHAIN_MAX_GFLOP:
        return "float64"
    return "float64" if spec.jacobian.singular_values == "all" else "float32"


def device_plan(spec: ModelSpec, auto_exact_gflop: float = AUTO_EXACT_GFLOP) -> MemoryPlan:
    """The plan of `spec` run on a resident device (float16 native, as on a GPU)."""
    method = estimate_cost(spec, auto_exact_gflop).jacobian_method
    widths, batch = spec.widths, spec.batch_size
    n_params = parameters(widths, spec.bias)
    biggest = max(a * b for a, b in pairwise(widths))
    compact = 8 if spec.dtype == "float64" else 4  # the draws' dtype (network.Parameters.compact_weights)
    compute = _BYTES[spec.dtype]
    chain = _BYTES[chain_dtype(spec, method)]
    parts = {"weights": n_params * compact, "weight_grads": n_params * compute}
    if compute != compact:
        parts["pass_weights"] = n_params * compute
    if chain not in (compact, compute):
        parts["chain_weights"] = n_params * chain
    parts["vectors"] = batch * sum(widths) * (PASS_VECTORS * compute + REFERENCE_VECTORS * 8)
    n_d, n_max = widths[-1], max(widths)
    # the statistics reduce a chunk of equal-shape gradients at once (at least one layer, at most
    # STATS_CHUNK_ELEMENTS beyond it): its stacked copy, |g|, a finite mask and |g| where finite in the pass dtype,
    # and four float64 temporaries (the values, where finite, their deviations and squares)
    chunk = min(n_params, max(biggest, STATS_CHUNK_ELEMENTS))
    working = {"statistics": chunk * (3 * compute + 1 + 4 * 8)}
    if method == "exact" and spec.depth > 1:
        product = batch * n_d * n_max * chain
        # svdvals wait for a chunk of float64 copies (flushed once past SVD_CHUNK_BYTES); the power steps of a chunk
        # of layers hold their products (at most POWER_CHUNK_LAYERS, POWER_CHUNK_BYTES)
        copies = len(svd_layers(widths, spec.jacobian.singular_values, batch)) * batch * n_d * n_max * 8
        svd = min(copies, SVD_CHUNK_BYTES + batch * n_d * n_max * 8)
        per_chunk = min(POWER_CHUNK_BYTES // product, POWER_CHUNK_LAYERS, spec.depth - 1)
        power = 2 * per_chunk * product if per_chunk >= POWER_CHUNK_MIN_LAYERS else 0  # the chunk and its stack
        working["exact_chain"] = 3 * product + svd + power
    elif spec.depth > 1:
        working["estimate_sweeps"] = 4 * batch * max(spec.jacobian.probes, 2) * n_max * 8
    if spec.training is not None:  # the training probe runs as a stage of its own (cost_training counts it)
        working["training"] = training_memory_bytes(spec)
    return MemoryPlan(parts, working)


def fits(spec: ModelSpec, device_bytes: int, auto_exact_gflop: float = AUTO_EXACT_GFLOP) -> bool:
    """Whether the plan's peak fits a card of `device_bytes`, DEVICE_HEADROOM of it left to the runtime."""
    return device_plan(spec, auto_exact_gflop).peak_bytes <= (1.0 - DEVICE_HEADROOM) * device_bytes
