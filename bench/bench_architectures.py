"""Residual and normalised networks: one analysis as a multiple of one forward+backward of the same network,
measured in the same run on the CPU (never pass/fail on time), with the analysis's stages and the plain MLP of the
same shape beside them.

The forward+backward is the pass the analysis itself runs in float32 (`run_pass` / `run_block_pass`: torch's
layer_norm / batch_norm / the residual sums, autograd's backward), timed alone.

    python bench/bench_architectures.py [--threads N] [--depth 50] [--width 512] [--batch 8] [--repeat 3]
"""

from __future__ import annotations

import argparse
import time

import torch
from bench_engine import best_of, cpu_args, format_stages, stage_times

from service.engine import analyze
from service.engine.blockpass import run_block_pass
from service.engine.network import make_parameters, run_pass
from service.engine.spec import Architecture, ModelSpec, Normalization, Residual

CPU = torch.device("cpu")
CASES = {
    "plain": None,
    "residual+layernorm(pre)": Architecture(Residual(2, 1.0), Normalization("layernorm", "pre")),
    "batchnorm(pre)": Architecture(None, Normalization("batchnorm", "pre")),
}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--depth", type=int, default=50)
    ap.add_argument("--width", type=int, default=512)
    ap.add_argument("--batch", type=int, default=8)
    ap.add_argument("--repeat", type=int, default=3, help="analyses timed (the least counts), after a warm-up")
    args = cpu_args(ap)
    print(f"d={args.depth} n={args.width} B={args.batch}, float32, {torch.get_num_threads()} threads")
    analyze(ModelSpec(widths=(64,) * 5, activations=("relu",) * 4, verify_recommendations=False))  # warm-up
    for name, arch in CASES.items():
        spec = ModelSpec(
            widths=(args.width,) * (args.depth + 1),
            activations=("relu",) * args.depth,
            batch_size=args.batch,
            loss="mse",
            verify_recommendations=False,
            architecture=arch,
        )
        params = make_parameters(spec)
        passes = run_pass if arch is None else run_block_pass
        fwd_bwd = best_of(lambda spec=spec, params=params, passes=passes: passes(spec, params, CPU))
        total = best_of(lambda spec=spec: analyze(spec), repeat=args.repeat)  # the least of the repeats
        with stage_times() as times:
            start = time.perf_counter()
            report = analyze(spec)
            staged = time.perf_counter() - start
        print(
            f"{name:24s}: forward+backward {fwd_bwd * 1e3:8.1f} ms, analysis {total * 1e3:8.1f} ms "
            f"({report.runtime.jacobian_method}, chain {report.runtime.jacobian_precision}) = "
            f"{total / fwd_bwd:6.1f}x forward+backward\n    stages of one more run: {format_stages(times, staged)}"
        )


if __name__ == "__main__":
    main()
