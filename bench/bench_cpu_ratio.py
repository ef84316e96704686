"""The whole default analysis against the same-run float32 torch.mm rate on the CPU (issue target: d=100, n=256,
B=8, relu at ≥ 0.47 of mm), and its parts. Ratios from one run; never pass/fail on time.

"whole" draws every weight (the unit-draw cache off: a network the worker has not seen); "rerun" is the same
analysis with the cache on and warm (a recommendation rerun, a sweep point or a variation of one network).

    python bench/bench_cpu_ratio.py [--threads N] [--repeat R]
"""

from __future__ import annotations

import argparse
import time

import torch
from bench_engine import best_of, cpu_args, format_stages, stage_times

from service.engine import analyze
from service.engine.analysis import chain_precision
from service.engine.draws import DEFAULT_CACHE_MIB, set_cache_mib
from service.engine.jacobian import exact_chain
from service.engine.network import make_parameters
from service.engine.reference import run_reference
from service.engine.spec import ModelSpec

CPU = torch.device("cpu")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--repeat", type=int, default=3)
    args = cpu_args(ap)
    a, b = torch.randn(2048, 256), torch.randn(256, 256)
    mm = 2 * 2048 * 256 * 256 / best_of(lambda: a @ b, 20) / 1e9  # the chain's own GEMM shape
    print(f"torch.mm float32 (2048x256 @ 256x256): {mm:.1f} GFLOP/s, {torch.get_num_threads()} threads")
    for d, n, act in ((100, 256, "relu"), (100, 256, "tanh"), (100, 64, "relu")):
        spec = ModelSpec(widths=(n,) * (d + 1), activations=(act,) * d, batch_size=8)
        flops = 2.0 * 8 * n**3 * (d - 1)
        set_cache_mib(0)  # cpu_args turned it off; the rerun below turns it on
        whole = best_of(lambda spec=spec: analyze(spec), args.repeat)
        set_cache_mib(DEFAULT_CACHE_MIB)
        rerun = best_of(lambda spec=spec: analyze(spec), args.repeat)
        params = make_parameters(spec)
        ref = run_reference(spec, params)
        prec, _ = chain_precision(spec, "exact")
        ws = params.weights_as(prec, CPU)
        chain = best_of(lambda spec=spec, ws=ws, ref=ref, prec=prec: exact_chain(spec, ws, ref, prec, CPU), args.repeat)
        set_cache_mib(0)
        with stage_times() as stages:  # one more cold analysis, by stage
            start = time.perf_counter()
            analyze(spec)
            total = time.perf_counter() - start
        print(
            f"d={d} n={n} {act}: whole {whole * 1e3:.0f} ms = {flops / whole / 1e9 / mm:.2f} of mm "
            f"(rerun {rerun * 1e3:.0f} ms = {flops / rerun / 1e9 / mm:.2f}); exact chain "
            f"({str(prec).removeprefix('torch.')}) {chain * 1e3:.0f} ms = {flops / chain / 1e9 / mm:.2f} of mm; "
            f"whole/chain {whole / chain:.2f}\n"
            f"  one more cold analysis, {total * 1e3:.0f} ms: {format_stages(stages, total)}"
        )


if __name__ == "__main__":
    main()
