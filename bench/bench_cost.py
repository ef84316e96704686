"""The cost model against measured times: predicted GEMM-equivalent GFLOP over the same run's torch.mm rate,
next to the analysis's wall time. Prints measured/predicted per spec; the documented band is 0.3-2.5 (the
model must neither refuse what runs fast nor accept what runs past the request timeout). Exact ReLU chains
sit at the low end on purpose: they multiply only the live units (about half), which the model cannot know
before the pass, so it charges the dense GEMM.

    python bench/bench_cost.py [--threads N]
"""

from __future__ import annotations

import argparse
import time

import torch
from bench_engine import cpu_args, mm_gflops

from service.engine import analyze
from service.engine.cost import estimate_cost
from service.engine.spec import Architecture, JacobianOptions, ModelSpec, Normalization, Residual

BAND = (0.3, 2.5)
RES_LN = Architecture(Residual(2, 1.0), Normalization("layernorm", "pre"))
BN = Architecture(None, Normalization("batchnorm", "pre"))
CASES: list[tuple] = [  # depth, width, batch, method, power_iterations, activation[, architecture]
    (50, 256, 8, "exact", 2, "relu"),
    (50, 256, 8, "estimate", 2, "relu"),
    (20, 512, 8, "exact", 2, "relu"),
    (20, 512, 8, "estimate", 2, "relu"),
    (50, 128, 8, "exact", 20, "tanh"),
    (30, 64, 8, "exact", 2, "sigmoid"),
    (100, 256, 8, "auto", 2, "relu"),
    (8, 2048, 4, "auto", 2, "relu"),
    # residual/normalised networks (issue 18): the block walk, and batchnorm's whole-batch products
    (50, 256, 8, "exact", 2, "relu", RES_LN),
    (50, 256, 8, "estimate", 2, "relu", RES_LN),
    (20, 128, 8, "exact", 2, "relu", BN),
    (50, 256, 8, "estimate", 1, "relu", BN),
]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    cpu_args(ap)
    rate = mm_gflops(torch.float32, 1024)
    print(f"torch.mm float32: {rate:.1f} GFLOP/s on {torch.get_num_threads()} threads; band {BAND}")
    outside = 0
    for d, n, batch, method, steps, act, *arch in CASES:
        spec = ModelSpec(
            architecture=arch[0] if arch else None,
            widths=(n,) * (d + 1),
            activations=(act,) * d,
            batch_size=batch,
            verify_recommendations=False,
            jacobian=JacobianOptions(method=method, power_iterations=steps),
        )
        cost = estimate_cost(spec)
        analyze(spec)
        start = time.perf_counter()
        analyze(spec)
        seconds = time.perf_counter() - start
        ratio = seconds / (cost.gflop / rate)
        outside += not BAND[0] <= ratio <= BAND[1]
        print(
            f"d={d:4d} n={n:5d} B={batch:3d} {method:8s}({cost.jacobian_method:8s}) steps={steps:3d} {act:7s}"
            f"{' ' + _name(arch[0]) if arch else ''}: "
            f"predicted {cost.gflop:8.1f} GFLOP = {cost.gflop / rate:6.2f} s, measured {seconds:6.2f} s, "
            f"ratio {ratio:.2f}"
        )
    print(f"{outside} of {len(CASES)} outside the band")


def _name(arch: Architecture) -> str:
    res = f"residual{arch.residual.every}" if arch.residual else ""
    norm = arch.normalization.kind if arch.normalization.kind != "none" else ""
    return "+".join(p for p in (res, norm) if p)


if __name__ == "__main__":
    main()
