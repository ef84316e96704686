"""Ordinary MLPs against the default limits on the CPU: admitted or not, the method auto picks, the analysis time
as a multiple of one forward+backward of the same network in the same run (issue target: within 50x).

    python bench/bench_default_limits.py [--threads N]
"""

from __future__ import annotations

import argparse
import time

import torch
from marshmallow import ValidationError

from schemas.limits import Limits
from schemas.spec import ModelSpecSchema
from service.engine import analyze
from service.engine.cost import estimate_cost
from service.engine.network import make_parameters

CASES = [{"depth": 50, "width": 512}, {"depth": 100, "width": 512}, {"depth": 12, "width": 4096}]


def forward_backward_seconds(spec) -> float:  # type: ignore[no-untyped-def]
    params = make_parameters(spec)
    ws = [w.float().requires_grad_(True) for w in params.weights]
    x = params.x.float()

    def run() -> None:
        h = x
        for w in ws:
            h = torch.relu(h @ w.T)
        h.sum().backward()

    run()
    times = []
    for _ in range(3):
        start = time.perf_counter()
        run()
        times.append(time.perf_counter() - start)
    return min(times)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--threads", type=int, default=None)
    args = ap.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    print(f"{torch.get_num_threads()} torch threads; default limits: max_gflop={Limits().max_gflop:g}")
    for layers in CASES:
        body = {"layers": layers, "activation": "relu", "init": "kaiming_normal"}
        try:
            spec = ModelSpecSchema(limits=Limits()).load(body)
        except ValidationError as exc:
            print(f"{layers}: refused: {exc.messages}")
            continue
        cost = estimate_cost(spec)
        fb = forward_backward_seconds(spec)
        start = time.perf_counter()
        report = analyze(spec)
        seconds = time.perf_counter() - start
        print(
            f"{layers} B={spec.batch_size}: admitted ({cost.gflop:.0f} GFLOP estimated), "
            f"{report.runtime.jacobian_method} in {report.runtime.jacobian_precision}: {seconds:.2f} s = "
            f"{seconds / fb:.1f}x one forward+backward ({fb * 1e3:.0f} ms); verdict {report.diagnosis.verdict}"
        )


if __name__ == "__main__":
    main()
