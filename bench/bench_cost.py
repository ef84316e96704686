"""The cost model against measured times, in the same run.

For each case it prints the predicted GEMM-equivalent GFLOP over this run's torch.mm rate (the GFLOP model's
ratio; documented band 0.3-2.5) and the predicted seconds on this many threads (`cost.predict_time`: GFLOP at
the GEMM rate plus the per-layer, per-power-step and per-statistic fixed costs that admission by the request
deadline reads) next to the measured CPU time of one analysis. measured/predicted should stay at or below 1:
admission allows a documented margin on top (schemas.limits.ADMIT_MARGIN), but the prediction itself is meant
to err long. The last line is the largest ratio: a machine slower than the reference sets GRADSTAB_COST_SCALE
to it. CPU time, not wall time, so that other processes on a shared machine do not move the figures.

    python bench/bench_cost.py [--threads N] [--quick] [--recurrent]
"""

from __future__ import annotations

import argparse
import time

import torch
from bench_engine import cpu_args, mm_gflops

from service.engine import analyze
from service.engine.cost import estimate_cost, predict_time
from service.engine.spec import (
    Architecture,
    JacobianOptions,
    ModelSpec,
    Normalization,
    Recurrent,
    Residual,
    recurrent_widths,
)

BAND = (0.3, 2.5)
RES_LN = Architecture(Residual(2, 1.0), Normalization("layernorm", "pre"))
BN = Architecture(None, Normalization("batchnorm", "pre"))
RES = Architecture(Residual(2, 1.0))
# depth, width, batch, method, power_iterations, singular_values, activation, dtype, verify, what it stands for
# [, architecture]
CASES: list[tuple] = [
    (50, 256, 8, "exact", 2, "auto", "relu", "float32", False, "GEMM-bound"),
    (50, 256, 8, "estimate", 2, "auto", "relu", "float32", False, "GEMM-bound"),
    (20, 512, 8, "exact", 2, "auto", "relu", "float32", False, "GEMM-bound"),
    (20, 512, 8, "estimate", 2, "auto", "relu", "float32", False, "GEMM-bound"),
    (50, 128, 8, "exact", 20, "auto", "tanh", "float32", False, "power steps"),
    (30, 64, 8, "exact", 2, "auto", "sigmoid", "float32", False, "small"),
    (100, 256, 8, "auto", 2, "auto", "relu", "float32", False, "default"),
    (8, 2048, 4, "auto", 2, "auto", "relu", "float32", False, "wide-shallow"),
    (2, 4096, 16, "auto", 2, "auto", "tanh", "float32", True, "wide-shallow"),
    (2000, 1, 1, "auto", 100, "all", "relu", "float32", True, "deep-narrow (issue 20, first spec)"),
    (2000, 1, 1, "auto", 100, "all", "tanh", "float32", True, "deep-narrow"),
    (200, 2, 1024, "exact", 100, "auto", "relu", "float32", True, "deep-narrow, large batch (issue 20, 1/10)"),
    (300, 8, 64, "exact", 100, "auto", "tanh", "float32", True, "many power steps"),
    (20, 64, 1024, "exact", 2, "auto", "relu", "float32", True, "large batch"),
    (50, 32, 256, "exact", 2, "all", "tanh", "float32", True, "singular_values all"),
    (100, 64, 16, "exact", 2, "all", "relu", "float64", True, "singular_values all, float64"),
    (100, 4, 8, "estimate", 10, "auto", "relu", "float32", True, "estimate, deep-narrow"),
    (300, 8, 16, "auto", 2, "auto", "sigmoid", "float16", True, "float16, reruns"),
    # residual/normalised networks (issue 18): the block walk, and batchnorm's whole-batch products
    (50, 256, 8, "exact", 2, "auto", "relu", "float32", False, "residual+layernorm", RES_LN),
    (50, 256, 8, "estimate", 2, "auto", "relu", "float32", False, "residual+layernorm", RES_LN),
    (20, 128, 8, "exact", 2, "auto", "relu", "float32", False, "batchnorm, whole batch", BN),
    (50, 256, 8, "estimate", 1, "auto", "relu", "float32", False, "batchnorm, matrix-free", BN),
    (30, 64, 8, "auto", 1, "auto", "sigmoid", "float32", True, "residual, reruns", RES),
]
QUICK = [c for c in CASES if c[0] * c[2] <= 20000 and c[4] <= 20]
# recurrent specs (issue 21): cell, steps, hidden, batch, method, verify, what it stands for
RECURRENT_CASES: list[tuple] = [
    ("rnn", 200, 64, 8, "exact", False, "rnn, exact"),
    ("lstm", 200, 64, 8, "auto", True, "lstm, reruns"),
    ("gru", 300, 128, 8, "estimate", False, "gru, estimate"),
    ("rnn", 1000, 256, 8, "auto", True, "T=1000 hidden 256 (the issue's request-sized case)"),
]
QUICK_RECURRENT = [c for c in RECURRENT_CASES if c[1] * c[2] <= 20000]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true", help="the cases that take a second or less")
    ap.add_argument("--recurrent", action="store_true", help="only the recurrent specs' cases (issue 21)")
    args = cpu_args(ap)
    threads = torch.get_num_threads()
    rate = mm_gflops(torch.float32, 1024)
    print(f"torch.mm float32: {rate:.1f} GFLOP/s on {threads} threads; GFLOP band {BAND}")
    outside, worst = 0, 0.0
    for d, n, batch, method, steps, sv, act, dtype, verify, what, *arch in (
        [] if args.recurrent else (QUICK if args.quick else CASES)
    ):
        spec = ModelSpec(
            architecture=arch[0] if arch else None,
            widths=(n,) * (d + 1),
            activations=(act,) * d,
            batch_size=batch,
            dtype=dtype,
            verify_recommendations=verify,
            jacobian=JacobianOptions(method=method, power_iterations=steps, singular_values=sv),
        )
        cost = estimate_cost(spec)
        timing = predict_time(spec, threads)
        analyze(spec)
        start = time.process_time()
        analyze(spec)
        seconds = time.process_time() - start
        ratio = seconds / (cost.gflop / rate)
        outside += not BAND[0] <= ratio <= BAND[1]
        worst = max(worst, seconds / timing.seconds)
        print(
            f"d={d:4d} n={n:4d} B={batch:4d} {method:8s}({cost.jacobian_method:8s}) steps={steps:3d} sv={sv:4s} "
            f"{act:7s} {dtype:8s} verify={verify!s:5s}: {cost.gflop:7.1f} GFLOP ratio {ratio:5.2f}; predicted "
            f"{timing.seconds:7.2f} s ({timing.largest()}), measured {seconds:6.2f} s CPU, "
            f"measured/predicted {seconds / timing.seconds:.2f}  [{what}]",
            flush=True,
        )
    for cell, steps, hidden, batch, method, verify, what in QUICK_RECURRENT if args.quick else RECURRENT_CASES:
        rec = Recurrent(cell=cell, steps=steps, hidden=hidden)
        spec = ModelSpec(
            widths=recurrent_widths(rec),
            activations=("tanh",) * steps,
            recurrent=rec,
            batch_size=batch,
            verify_recommendations=verify,
            jacobian=JacobianOptions(method=method),
        )
        cost, timing = estimate_cost(spec), predict_time(spec, threads)
        start = time.process_time()
        analyze(spec)
        seconds = time.process_time() - start
        worst = max(worst, seconds / timing.seconds)
        print(
            f"{cell:4s} T={steps:4d} h={hidden:4d} B={batch:3d} {method:8s}({cost.jacobian_method:8s}) verify="
            f"{verify!s:5s}: {cost.gflop:7.1f} GFLOP, {cost.memory_mib:6.0f} MiB; predicted {timing.seconds:7.2f} s "
            f"({timing.largest()}), measured {seconds:6.2f} s CPU, measured/predicted {seconds / timing.seconds:.2f}"
            f"  [{what}]",
            flush=True,
        )
    print(f"{outside} outside the GFLOP band; largest measured/predicted {worst:.2f}")


if __name__ == "__main__":
    main()
