"""GPU benchmark: ratios measured in the same run, never pass/fail on time.

For each case (depth d, width n, batch B; relu, kaiming_normal, exact method) and chain precision it
prints the exact chain's effective rate (2·B·n³·(d−1) flops over its time) as a fraction of a
same-run torch.mm of the same precision (TF32 off), the whole analysis over the chain, and the
CPU's time for the same analysis where that is affordable, and the chain with one power step per layer (the
CPU's carried iteration) against the GPU's chunked one, the whole analysis less the weight draws over the chain
(issue 23's target: at most 1.5 for n >= 1024) and its time over the reference CPU thread's prediction
(GRADSTAB_CUDA_COST_SCALE: set the largest). Then tiny specs on cuda, cpu and auto, the host synchronisations of
one analysis (torch.cuda.set_sync_debug_mode), and the device memory plan of depth 100 × width 8192 at batch 8
(service/engine/memory_plan.py); with --memory that analysis runs and its torch.cuda.max_memory_allocated is
printed beside the plan.

    python bench/bench_gpu.py [--quick] [--memory]
    python bench/bench_gpu.py --dry-run   (no GPU: the same code on the CPU at toy sizes, measuring nothing;
                                           tests/test_bench_dry_runs.py keeps it from rotting between GPU runs)
"""

from __future__ import annotations

import argparse
import dataclasses
import time
import warnings
from collections.abc import Callable

import torch
from bench_engine import chunked_power_on, format_stages, stage_times

from service.engine import analyze, jacobian
from service.engine.cost import predict_time
from service.engine.draws import set_cache_mib
from service.engine.jacobian import exact_chain
from service.engine.memory_plan import device_plan, fits
from service.engine.network import make_parameters
from service.engine.reference import run_reference
from service.engine.spec import JacobianOptions, ModelSpec

PREC = {"float32": torch.float32, "float64": torch.float64}
DEVICE = "cuda"  # "cpu" for --dry-run


def sync() -> None:
    if DEVICE == "cuda":
        torch.cuda.synchronize()


def timed(fn: Callable[[], object], repeat: int = 2) -> float:
    """Best of `repeat` after one warm-up, with the device drained before and after each."""
    fn()
    best = float("inf")
    for _ in range(repeat):
        sync()
        start = time.perf_counter()
        fn()
        sync()
        best = min(best, time.perf_counter() - start)
    return best


def mm_tflops(dtype: torch.dtype, n: int = 8192) -> float:
    a = torch.randn(n, n, dtype=dtype, device=DEVICE)
    b = torch.randn(n, n, dtype=dtype, device=DEVICE)
    return 2 * n**3 / timed(lambda: a @ b, repeat=5) / 1e12


def spec_for(d: int, n: int, batch: int, device: str, **jac: object) -> ModelSpec:
    return ModelSpec(
        widths=(n,) * (d + 1),
        activations=("relu",) * d,
        init="kaiming_normal",
        batch_size=batch,
        device=device,
        verify_recommendations=False,
        jacobian=JacobianOptions(method="exact", **jac),  # type: ignore[arg-type]
    )


def case(d: int, n: int, batch: int, mm: dict[str, float], cpu_too: bool) -> None:
    cuda = torch.device(DEVICE)
    flops = 2.0 * batch * n**3 * (d - 1)
    base = spec_for(d, n, batch, DEVICE)
    start = time.perf_counter()
    params = make_parameters(base)
    draws = time.perf_counter() - start
    ref = run_reference(base, params)
    for pname, prec in PREC.items():
        spec = dataclasses.replace(base, jacobian=dataclasses.replace(base.jacobian, precision=pname))
        weights = params.weights_as(prec, cuda)
        chain = timed(lambda spec=spec, w=weights, p=prec, r=ref: exact_chain(spec, w, r, p, cuda))
        with stage_times(sync) as stages:
            start = time.perf_counter()
            analyze(spec)
            whole = time.perf_counter() - start
        frac = flops / chain / 1e12 / mm[pname]
        undrawn = whole - stages.get("make_parameters", 0.0)
        line = (
            f"d={d:4d} n={n:5d} B={batch} {pname}: chain {chain:7.3f} s = {frac:.2f} of mm; "
            f"whole analysis {whole:7.3f} s = {whole / chain:.2f}x chain, without the draws "
            f"{undrawn / chain:.2f}x (weight draws on the CPU {draws:.2f} s); "
            f"over the reference thread's prediction {whole / predict_time(spec, 1).seconds:.4f}"
        )
        if jacobian.layers_per_chunk(spec, cuda, prec):  # the same chain with one power step per layer, the CPU's way
            with chunked_power_on():
                carried = timed(lambda spec=spec, w=weights, p=prec, r=ref: exact_chain(spec, w, r, p, cuda))
            line += f"; carried power steps {carried:7.3f} s = {carried / chain:.2f}x the chunked chain"
        if cpu_too and pname == "float32":
            cpu_spec = dataclasses.replace(spec, device="cpu")
            analyze(cpu_spec)
            start = time.perf_counter()
            analyze(cpu_spec)
            cpu = time.perf_counter() - start
            line += f"; CPU ({torch.get_num_threads()} threads) {cpu:.3f} s = {cpu / whole:.1f}x the GPU's"
        print(line + f"\n  the whole analysis by stage: {format_stages(stages, whole)}", flush=True)
    del params, ref
    if DEVICE == "cuda":
        torch.cuda.empty_cache()


def tiny(body: dict[str, object]) -> None:
    times = {}
    for device in dict.fromkeys(("cpu", DEVICE, "auto")):
        spec = dataclasses.replace(ModelSpec(**body), device=device)  # type: ignore[arg-type]
        analyze(spec)
        start = time.perf_counter()
        rep = analyze(spec)
        times[device] = (time.perf_counter() - start, rep.runtime.device)
    print(
        "tiny "
        + str({k: v for k, v in body.items() if k in ("widths", "activations", "dtype")})[:90]
        + ": "
        + ", ".join(f"{k} {t * 1e3:.0f} ms ({dev})" for k, (t, dev) in times.items())
        + f"; {DEVICE}/cpu {times[DEVICE][0] / times['cpu'][0]:.2f}",
        flush=True,
    )


def syncs(d: int, n: int, batch: int) -> None:
    spec = dataclasses.replace(spec_for(d, n, batch, DEVICE), verify_recommendations=True)
    analyze(spec)
    if DEVICE != "cuda":
        return
    torch.cuda.set_sync_debug_mode("warn")
    try:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            analyze(spec)
    finally:
        torch.cuda.set_sync_debug_mode("default")
    n_sync = sum("synchroniz" in str(w.message) for w in caught)
    print(f"host synchronisations in one whole analysis (d={d}, n={n}, B={batch}, verify on): {n_sync}", flush=True)


BIG = {"widths": (8192,) * 101, "activations": ("relu",) * 100, "batch_size": 8, "verify_recommendations": False}
CARD = 80 * 10**9


def memory(run: bool) -> None:
    """The device plan of depth 100 × width 8192 at batch 8 on an 80 GB card; run: that analysis, its peak."""
    for method in ("auto", "exact"):
        spec = ModelSpec(**BIG, device=DEVICE, jacobian=JacobianOptions(method=method))  # type: ignore[arg-type]
        plan = device_plan(spec)
        print(
            f"memory plan d=100 n=8192 B=8 method {method}: {plan.peak_bytes / 1e9:.1f} GB "
            f"({'fits' if fits(spec, CARD) else 'does not fit'} an 80 GB card less 10 %): " + "; ".join(plan.lines()),
            flush=True,
        )
        if run and DEVICE == "cuda":
            torch.cuda.empty_cache()
            torch.cuda.reset_peak_memory_stats()
            start = time.perf_counter()
            analyze(spec)
            peak = torch.cuda.max_memory_allocated()
            print(
                f"  measured: {time.perf_counter() - start:.1f} s, torch.cuda.max_memory_allocated "
                f"{peak / 1e9:.1f} GB = {peak / plan.peak_bytes:.2f} of the plan",
                flush=True,
            )


def main() -> None:
    global DEVICE
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--dry-run", action="store_true", help="on the CPU at toy sizes: checks the script, not the GPU")
    ap.add_argument("--memory", action="store_true", help="run depth 100 × width 8192 at batch 8 and print its peak")
    args = ap.parse_args()
    set_cache_mib(0)  # every analysis draws its weights, as for a network the worker has not seen
    if args.dry_run:
        DEVICE = "cpu"
        jacobian.CHUNKED_DEVICES = frozenset({"cpu"})  # the GPU's chunked power iteration, here
        mm_n, cases, tiny_depth, sync_case = 256, [(8, 64, 2, True)], 8, (8, 32, 2)
        print(f"dry run on the CPU, torch {torch.__version__}: the figures below mean nothing")
    else:
        torch.backends.cuda.matmul.allow_tf32 = False
        print(
            f"device: {torch.cuda.get_device_name()}, torch {torch.__version__}, CPU threads {torch.get_num_threads()}"
        )
        mm_n, tiny_depth, sync_case = 8192, 100, (100, 256, 8)
        cases = [(100, 256, 8, True), (100, 1024, 8, True)]
        if not args.quick:
            cases += [(100, 2048, 8, False), (50, 4096, 8, False), (20, 8192, 4, False)]
    mm = {name: mm_tflops(p, mm_n) for name, p in PREC.items()}
    print(f"same-run torch.mm ({mm_n}³, TF32 off): " + ", ".join(f"{k} {v:.1f} TFLOP/s" for k, v in mm.items()))
    for d, n, b, cpu_too in cases:
        case(d, n, b, mm, cpu_too)
    tiny(
        {
            "widths": (4,) * (tiny_depth + 1),
            "activations": ("identity",) * tiny_depth,
            "init": "normal",
            "dtype": "float16",
        }
    )
    tiny({"widths": (64,) * 42, "activations": ("sigmoid",) * 41, "init": "xavier_normal", "dtype": "float16"})
    syncs(*sync_case)
    memory(args.memory)


if __name__ == "__main__":
    main()
