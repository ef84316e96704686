"""A-priori cost of an analysis (floating-point work and peak tensor memory).

Used twice: by `jacobian.method=auto` to choose exact or estimate, and by the request
schema to refuse work beyond the configured limits before any tensor is allocated.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from itertools import pairwise

from .cost_architecture import architecture_cost, block_ops_at, product_widths
from .cost_recurrent import recurrent_cost, recurrent_seconds
from .cost_training import training_fixed_seconds, training_flops, training_memory_bytes
from .spec import AUTO_EXACT_GFLOP, ModelSpec

_BYTES = {"float16": 2, "bfloat16": 2, "float32": 4, "float64": 8}
# svdvals of an m×k matrix (k ≤ m) costs about this many flops per m·k² (bidiagonalisation + QR sweeps).
_SVD_FLOPS_PER_MK2 = 40.0  # in GEMM-equivalent flops: measured 18 (n=1024) to 78 (n=64) on 2 cores
# svdvals on every layer where they cost no more than this (GEMM-equivalent, ~0.1 s on 2 cores).
SVD_ALWAYS_GFLOP = 10.0
# Recommendations are verified on cheap reruns (at most this many, at this batch size), and those that pass
# are confirmed at the spec's own batch before they are claimed.
VERIFY_RUNS = 4
# ... and at most this many more for architectural changes (diagnosis.architecture_rules)
ARCHITECTURE_VERIFY_RUNS = 2
VERIFY_BATCH = 4
VERIFY_PROBES = 16
# The reruns share a budget: this multiple of the analysis's own work, at least VERIFY_MIN_GFLOP.
VERIFY_SHARE = 1.0
VERIFY_MIN_GFLOP = 50.0
# Resident memory an analysis adds beyond its tensors (allocator slack, autograd's bookkeeping): measured 50-60 MiB
# for small nets (bench/bench_memory.py).
BASE_MIB = 64.0
# A sweep through a layer with fewer rows than this is bound by reading W, not by arithmetic:
# it costs what a GEMM with this many rows costs.
MIN_EFFECTIVE_ROWS = 32
# Gradient statistics and range events read every weight gradient about ten times in float64: measured at
# about 3000 GEMM-equivalent flops per weight on 2 CPU cores (bench/bench_cost.py, d=8, n=2048, B=4).
BOOKKEEPING_FLOPS_PER_WEIGHT = 3000.0
# Measured time per predicted flop of the matrix-free sweeps over that of the formed chain (bench/bench_cost.py:
# 1.4-1.6x before this factor on 2 CPU cores).
SWEEP_OVERHEAD = 2.0
POWER_BLOCK = 8  # rows of the block power iteration (jacobian.BLOCK)
COLD_STEPS = 8  # power steps on the top product, which has no warm start (jacobian.COLD_STEPS)
# device=auto runs analyses of less estimated work than this on the CPU even where a GPU is present:
# below it the GPU's per-kernel latency outweighs its arithmetic. Measured on one H200 against its 16-core
# host (bench/bench_gpu.py, BENCHMARKS.md): d=100 n=256 (158 GFLOP here) ran 0.8x as fast on the GPU,
# d=100 n=1024 (4069) 2.8x faster, sigmoid 64x41 (7) 4x slower.
AUTO_CUDA_MIN_GFLOP = 500.0
# jacobian.precision=auto keeps a float64 chain up to this much chain work (about 20 ms on one core).
FLOAT64_CHAIN_MAX_GFLOP = 1.0
# auto never forms products whose state would take more than this.
AUTO_EXACT_MAX_MIB = 1024.0
# auto takes the exact method up to this multiple of the estimate's predicted work: it gives more (σ_min, rank,
# exact norms), and its GEMMs run nearer the predicted rate than the estimate's skinny sweeps (measured over
# predicted time on 2 CPU cores, d=50 and 100, n=512, relu: exact 0.36-0.41, estimate 0.57-0.61).
EXACT_PREFERENCE = 1.5


@dataclass(frozen=True)
class Cost:
    gflop: float
    memory_mib: float
    jacobian_method: str  # the method that will run: exact or estimate
    verify_gflop: float = 0.0  # the share of gflop the recommendation reruns may spend


def parameters(widths: tuple[int, ...], bias: bool) -> int:
    return sum(a * b + (b if bias else 0) for a, b in pairwise(widths))


def _pass_flops(widths: tuple[int, ...], batch: int) -> float:
    """Forward + backward in the pass dtype, the float64 reference forward, and the bookkeeping per weight
    (statistics of every weight gradient, the range events' exact masks): for a small batch the last dominates."""
    weights = parameters(widths, bias=False)
    return (8.0 * batch + BOOKKEEPING_FLOPS_PER_WEIGHT) * weights


def exact_chain_flops(widths: tuple[int, ...], batch: int) -> float:
    """One (B·n_d, n_t) @ (n_t, n_{t-1}) GEMM per layer."""
    n_d = widths[-1]
    return sum(2.0 * batch * n_d * a * b for a, b in pairwise(widths[1:]))


def _svd_flops_at(widths: tuple[int, ...], t: int) -> float:
    m, k = max(widths[-1], widths[t]), min(widths[-1], widths[t])
    return _SVD_FLOPS_PER_MK2 * m * k * k


def svd_flops(widths: tuple[int, ...], batch: int, layers: list[int]) -> float:
    return batch * sum(_svd_flops_at(widths, t) for t in layers)


def svd_layers(widths: tuple[int, ...], mode: str, batch: int = 1) -> list[int]:
    """Layers t < d whose formed product gets svdvals (for σ_min and the condition number).

    all: every layer; none: no layer; auto: every layer where that costs at most half the chain
    or SVD_ALWAYS_GFLOP in all, else t = 1 (the bottom layer, where the lecture says it matters
    most) and log-spaced layers above it, within a quarter of the chain.
    """
    d = len(widths) - 1
    every = list(range(1, d))
    if mode == "none" or not every:
        return []
    chain = exact_chain_flops(widths, 1)
    all_svd = svd_flops(widths, 1, every)
    if mode == "all" or all_svd <= 0.5 * chain or batch * all_svd <= SVD_ALWAYS_GFLOP * 1e9:
        return every
    chosen: list[int] = []
    spent = 0.0
    step = 1.0
    t = 1.0
    while int(t) < d:
        layer = int(t)
        cost = _svd_flops_at(widths, layer)
        if chosen and spent + cost > 0.25 * chain:
            break
        if layer not in chosen:
            chosen.append(layer)
            spent += cost
        t += step
        step *= 2.0
    return chosen


def _sweep_flops(rows: int, weights: float) -> float:
    """GEMM-equivalent work of pushing `rows` vectors through layers holding `weights` entries: each layer's
    step is a skinny GEMM plus renormalisation and σ' scaling, SWEEP_OVERHEAD times its bare flops."""
    return SWEEP_OVERHEAD * 2.0 * max(rows, MIN_EFFECTIVE_ROWS) * weights


def estimate_flops(widths: tuple[int, ...], batch: int, probes: int, power_iterations: int) -> float:
    """One probe sweep for every Frobenius norm, plus warm-started block power iteration per layer.

    The products use W^2..W^d only. The power iteration for layer t sweeps down and up through the
    layers above t, so its work grows like d²: it pays where k·d < n.
    """
    layer_w = [a * b for a, b in pairwise(widths)][1:]
    probe = _sweep_flops(batch * probes, sum(layer_w))
    above = 0.0  # Σ over t of the weights above t
    running = 0
    for w in reversed(layer_w):
        running += w
        above += running
    power = 2.0 * power_iterations * _sweep_flops(batch * POWER_BLOCK, above)
    return probe + power


def _exact_extra_flops(widths: tuple[int, ...], batch: int, power_iterations: int) -> float:
    """The exact chain's work beyond its GEMMs: passes over each product P_t (n_d × n_t, t = 1..d-1): σ'
    scaling and its norm, two per power step (the top product, which has no warm start, COLD_STEPS). Each
    pass is bound by reading the product, so it costs what a GEMM with MIN_EFFECTIVE_ROWS rows costs; the
    power iteration's carried image adds a skinny GEMM with each W."""
    n_d, d = widths[-1], len(widths) - 1
    total = 0.0
    for t in range(1, d):
        steps = 0 if power_iterations == 0 else (max(power_iterations, COLD_STEPS) if t == d - 1 else power_iterations)
        total += (2 + 2 * steps) * 2.0 * MIN_EFFECTIVE_ROWS * batch * n_d * widths[t]
        if power_iterations:  # the basis's image carried down a layer: a skinny GEMM with W^{t+1}
            total += 2.0 * max(batch * POWER_BLOCK, MIN_EFFECTIVE_ROWS) * widths[t + 1] * widths[t]
    return total


@lru_cache(maxsize=64)  # one request asks up to four times (plan, admission, work budget): issue 20 item 7
def estimate_cost(spec: ModelSpec, auto_exact_gflop: float = AUTO_EXACT_GFLOP) -> Cost:
    """Work in GEMM-equivalent GFLOP and peak memory, counting every option that changes them (batch,
    method, power_iterations, probes, singular_values, verification reruns)."""
    if spec.recurrent is not None:  # its own model (cost_recurrent)
        gflop, mib, method, verify = recurrent_cost(spec, auto_exact_gflop)
        gflop, mib = gflop + training_flops(spec) / 1e9, mib + training_memory_bytes(spec) / 2**20
        return Cost(gflop=gflop, memory_mib=mib, jacobian_method=method, verify_gflop=verify)
    widths, batch = spec.widths, spec.batch_size
    jac = spec.jacobian
    n_params = parameters(widths, spec.bias)
    chain = exact_chain_flops(widths, batch)
    chain_extra = _exact_extra_flops(widths, batch, jac.power_iterations)
    chain_extra += svd_flops(widths, batch, svd_layers(widths, jac.singular_values, batch))
    if jac.singular_values == "all" and len(set(widths[1:])) == 1:  # qr_spectrum: a QR and two svdvals per layer
        chain_extra += 2.0 * svd_flops(widths, batch, svd_layers(widths, "all", batch))
    approx = estimate_flops(widths, batch, jac.probes, jac.power_iterations)
    arch = architecture_cost(spec)
    if arch is not None:  # residual/normalised: the block walk; its estimate is charged as the plain one's
        chain *= arch.chain_factor
        shape = product_widths(spec)
        chain_extra = arch.exact_extra_flops + svd_flops(
            shape, arch.groups, svd_layers(shape, jac.singular_values, arch.groups)
        )
        approx += arch.estimate_extra_flops
    exact = chain + chain_extra
    n_d, n_max = widths[-1], max(widths)
    elem = _BYTES[spec.dtype]
    chain_elem = 8 if jac.precision == "float64" or jac.singular_values == "all" else 4
    weights_mem = n_params * _bytes_per_weight(spec.dtype, chain_elem) + 2 * 16 * max(
        a * b for a, b in pairwise(widths)
    )  # + float64 copies of the largest layer's gradient while its statistics are taken
    acts_mem = batch * sum(widths) * (4 * elem + 3 * 8)
    # the product, its σ'-scaled copy and the GEMM's output; nothing is formed for a single layer
    exact_mem = 3 * batch * n_d * n_max * chain_elem if spec.depth > 1 else 0
    if arch is not None:
        exact_mem *= arch.chain_factor  # B·n_d rows × B·n_t columns per group, one group: B-fold
    exact_fits = exact_mem / 2**20 <= AUTO_EXACT_MAX_MIB and (
        exact <= auto_exact_gflop * 1e9 or exact <= EXACT_PREFERENCE * approx
    )
    if jac.method == "exact" or (jac.method == "auto" and exact_fits):
        method = "exact"
        jac_mem = exact_mem
        work = exact
    else:
        method = "estimate"
        jac_mem = 4 * batch * max(jac.probes, 2) * n_max * 8
        work = approx
    verify = 0.0
    if spec.verify_recommendations:
        vb = min(batch, VERIFY_BATCH)
        runs = VERIFY_RUNS + ARCHITECTURE_VERIFY_RUNS
        verify = runs * (_pass_flops(widths, vb) + estimate_flops(widths, vb, VERIFY_PROBES, 0))
        # every claimed fix is confirmed at the user's batch with the user's method (Frobenius norms only)
        confirm = chain * 1.15 if method == "exact" else estimate_flops(widths, batch, jac.probes, 0)
        verify += runs * (_pass_flops(widths, batch) + confirm)
    own = _pass_flops(widths, batch) + work
    verify = min(verify, verify_budget_flops(own))
    return Cost(
        gflop=(own + verify + training_flops(spec)) / 1e9,
        memory_mib=(weights_mem + acts_mem + jac_mem + training_memory_bytes(spec)) / 2**20 + BASE_MIB,
        jacobian_method=method,
        verify_gflop=verify / 1e9,
    )


def _bytes_per_weight(dtype: str, chain_elem: int) -> int:
    """Bytes held per weight at the peak: the compact draws (float32; float64 for a float64 pass), the pass's
    own copy where its compute dtype differs, the trainable clone and its gradient, float16's rounded
    gradients (emulated on the CPU in float64) and the chain's copy where its dtype differs from the draws'.
    bench/bench_memory.py checks the total against the peak resident memory an analysis adds."""
    compact = 8 if dtype == "float64" else 4
    compute = 8 if dtype == "float16" else _BYTES[dtype]  # float16: float64 arithmetic rounded once
    pass_copy = 0 if compute == compact else compute
    rounded = 2 * compute if dtype == "float16" else 0  # the rounded gradients and rounding temporaries
    chain_copy = 0 if chain_elem == compact else chain_elem
    return compact + pass_copy + 2 * compute + rounded + chain_copy


def verify_budget_flops(own: float) -> float:
    """What the recommendation reruns may spend: VERIFY_SHARE of the analysis itself, at least
    VERIFY_MIN_GFLOP (which covers every rerun of a small net). Past it a recommendation stays unverified."""
    return max(VERIFY_SHARE * own, VERIFY_MIN_GFLOP * 1e9)


# --------------------------------------------------------------------------- predicted time
# What admission by the request deadline reads (schemas.spec.check_limits) and the work budget charges: seconds
# on one CPU thread of the reference machine (2-core x86, torch 2.13 CPU build), GEMM work at a GEMM rate plus
# the fixed costs that dominate narrow networks (kernel calls per layer and per power step, batched small
# matrices per sample, svdvals per layer). Calibrated by bench/bench_cost.py, whose cases include deep-narrow,
# wide-shallow, large-batch, many-power-step and singular_values=all specs: each constant is an upper envelope
# of what it measured there, so the prediction errs long (measured/predicted 0.2-1.0 on that machine).
GEMM_GFLOPS_PER_THREAD = 60.0  # GEMM-equivalent rate: torch.mm runs ~100 GFLOP/s, the analysis's mix 0.6x that
ANALYSIS_S = 0.05  # per analysis: theory, diagnosis, the report (and a first call's lazy initialisation)
LAYER_S = 4e-4  # per layer: the pass, the float64 reference, the chain step and the statistics (tanh, worst)
LAYER_SAMPLE_S = 6e-7  # ... and per sample of the batch (the chain's batched small products)
STEP_S = 3e-5  # per power step on one layer's product: its handful of kernel calls
STEP_SAMPLE_UNIT_S = 2e-7  # ... per sample and unit of the layer (small bmm), up to STEP_UNITS units
STEP_UNITS = 16  # wider, the step's batched GEMMs run near the GEMM rate (counted in the GFLOP)
SVD_S = 2e-4  # per layer given svdvals: the LAPACK call
SVD_SAMPLE_UNIT_S = 8e-7  # ... per sample and singular value, up to SVD_UNITS (small matrices run far below
SVD_UNITS = 32  # the GEMM rate; larger ones near what the GFLOP count charges them)
SWEEP_S = 2e-5  # estimate: per layer crossed by one matrix-free sweep (the power sweeps: d² of them per step)
SWEEP_ELEM_S = 3e-9  # ... per element of the swept rows at the layer's input and output (σ', renormalisation)
ORTHO_ELEM_S = 6e-9  # estimate: per element of the (batch, POWER_BLOCK, n_d) block orthonormalised per power step
PROBE_ELEM_S = 5e-8  # estimate: per element of the (batch, probes, n_d) orthogonal probes drawn (randn and QR)
RERUN_LAYER_S = 2.5e-4  # per layer of a verification rerun (no power steps, no svdvals)
BLOCK_OP_S = 3e-5  # residual/normalised networks: per operation of a walk through the blocks (a few small kernels)


@dataclass(frozen=True)
class Timing:
    """Predicted seconds, by part: `gemm` (the GFLOP at the GEMM rate), then the fixed costs: `layers`,
    `power_steps`, `singular_values`, `sweeps` (the estimate's power iteration) and `reruns` (verification)."""

    parts: dict[str, float]

    @property
    def seconds(self) -> float:
        return sum(self.parts.values())

    def largest(self) -> str:
        return max(self.parts, key=lambda k: self.parts[k])


def layer_fixed_seconds(spec: ModelSpec, t: int, method: str, svd: bool) -> dict[str, float]:
    """Layer t's fixed costs (beyond its GFLOP), by part. The one place they are summed per layer: a layer
    kind with its own fixed cost adds its term here."""
    widths, batch, jac = spec.widths, spec.batch_size, spec.jacobian
    d = spec.depth
    parts = {"layers": LAYER_S + LAYER_SAMPLE_S * batch}
    # a layer given svdvals skips its power steps, unless dead ReLU units cut its rank (then it takes both)
    if method == "exact" and t < d and jac.power_iterations and (not svd or "relu" in spec.activations):
        steps = max(jac.power_iterations, COLD_STEPS) if t == d - 1 else jac.power_iterations
        parts["power_steps"] = steps * (STEP_S + STEP_SAMPLE_UNIT_S * batch * min(widths[t], STEP_UNITS))
    elems = widths[t - 1] + widths[t]  # a swept row's elements at layer t's input and output
    n_d = widths[-1]
    probes = batch * jac.probes * n_d if t == d else 0  # the probes are drawn once, at the top
    if method == "estimate":  # one probe sweep, and the power sweeps of the t - 1 products below, down and up
        parts["sweeps"] = SWEEP_S + SWEEP_ELEM_S * batch * jac.probes * elems + PROBE_ELEM_S * probes
        parts["sweeps"] += 2.0 * jac.power_iterations * (t - 1) * (SWEEP_S + SWEEP_ELEM_S * batch * POWER_BLOCK * elems)
        if t < d:  # product t's power steps orthonormalise its (batch, r, n_d) block
            parts["sweeps"] += jac.power_iterations * ORTHO_ELEM_S * batch * min(POWER_BLOCK, n_d) * n_d
    if svd:
        calls = 3 if _qr_spectrum(spec) else 1  # qr_spectrum: a QR and two svdvals per layer
        parts["singular_values"] = calls * (SVD_S + SVD_SAMPLE_UNIT_S * batch * min(widths[t], widths[-1], SVD_UNITS))
    if spec.architecture is not None:  # the block walks: reference, exact gradients, products (and power sweeps)
        walks = 3.0 + ((2 * jac.power_iterations + 1) * (t - 1) if method == "estimate" else 0.0)
        parts["blocks"] = walks * (2 + block_ops_at(spec, t)) * BLOCK_OP_S
    if spec.verify_recommendations:  # VERIFY_RUNS cheap reruns (probe sweeps) and as many at the spec's batch
        rows = min(batch, VERIFY_BATCH) * VERIFY_PROBES + (batch * jac.probes if method == "estimate" else 0)
        drawn = min(batch, VERIFY_BATCH) * VERIFY_PROBES * n_d + (probes if method == "estimate" else 0)
        parts["reruns"] = VERIFY_RUNS * (
            2 * RERUN_LAYER_S
            + LAYER_SAMPLE_S * (min(batch, VERIFY_BATCH) + batch)
            + SWEEP_ELEM_S * rows * elems
            + PROBE_ELEM_S * (drawn if t == d else 0)
        )
    return parts


def _qr_spectrum(spec: ModelSpec) -> bool:
    return spec.jacobian.singular_values == "all" and len(set(spec.widths[1:])) == 1


@lru_cache(maxsize=64)
def predict_time(spec: ModelSpec, threads: int = 1, auto_exact_gflop: float = AUTO_EXACT_GFLOP) -> Timing:
    """Predicted seconds of the analysis on `threads` torch threads: the GEMM work divides among them, the fixed
    costs (summed over layers by layer_fixed_seconds) do not."""
    cost = estimate_cost(spec, auto_exact_gflop)
    if spec.recurrent is not None:
        parts = recurrent_seconds(spec, cost.jacobian_method, GEMM_GFLOPS_PER_THREAD, threads)
        if spec.training is not None:  # the probe's GEMM work and its per-cell-step fixed costs
            gemm = training_flops(spec) / 1e9 / (GEMM_GFLOPS_PER_THREAD * max(1, threads))
            parts["training"] = gemm + training_fixed_seconds(spec)
        return Timing(parts)
    method = cost.jacobian_method
    svd = set(svd_layers(spec.widths, spec.jacobian.singular_values, spec.batch_size)) if method == "exact" else ()
    parts = {"gemm": cost.gflop / (GEMM_GFLOPS_PER_THREAD * max(1, threads)), "layers": ANALYSIS_S}
    for t in range(1, spec.depth + 1):
        for name, seconds in layer_fixed_seconds(spec, t, method, t in svd).items():
            parts[name] = parts.get(name, 0.0) + seconds
    if spec.training is not None:
        parts["training"] = training_fixed_seconds(spec)
    return Timing(parts)


def charged_gflop(spec: ModelSpec, auto_exact_gflop: float = AUTO_EXACT_GFLOP) -> float:
    """What the work budget charges: the predicted time on one thread in GEMM-equivalent GFLOP (the GFLOP
    estimate itself for GEMM-bound specs; more where fixed per-layer and per-step costs dominate)."""
    return predict_time(spec, 1, auto_exact_gflop).seconds * GEMM_GFLOPS_PER_THREAD
