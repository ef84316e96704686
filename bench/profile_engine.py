"""Where one analysis spends its time: cProfile's top entries (device work drained at the end).

python bench/profile_engine.py --depth 50 --width 4096 --batch 8 --device cuda [--top 25]
"""

from __future__ import annotations

import argparse
import cProfile
import pstats
import time

import torch

from service.engine import analyze
from service.engine.spec import JacobianOptions, ModelSpec


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--depth", type=int, default=100)
    ap.add_argument("--width", type=int, default=256)
    ap.add_argument("--batch", type=int, default=8)
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--method", default="exact")
    ap.add_argument("--activation", default="relu")
    ap.add_argument("--top", type=int, default=25)
    args = ap.parse_args()
    spec = ModelSpec(
        widths=(args.width,) * (args.depth + 1),
        activations=(args.activation,) * args.depth,
        init="kaiming_normal" if args.activation == "relu" else "xavier_normal",
        batch_size=args.batch,
        device=args.device,
        verify_recommendations=False,
        jacobian=JacobianOptions(method=args.method),
    )
    analyze(spec)  # warm-up: library loads, kernels, allocator
    prof = cProfile.Profile()
    start = time.perf_counter()
    prof.enable()
    report = analyze(spec)
    if torch.cuda.is_available():
        torch.cuda.synchronize()
    prof.disable()
    print(f"{args}: {time.perf_counter() - start:.3f} s on {report.runtime.device} ({report.runtime.jacobian_method})")
    pstats.Stats(prof).sort_stats("tottime").print_stats(args.top)


if __name__ == "__main__":
    main()
