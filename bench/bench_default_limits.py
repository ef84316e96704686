"""Ordinary MLPs against the default limits on the CPU: admitted or not, the method auto picks, the analysis time
as a multiple of one forward+backward of the same network in the same run (issue target: within 50x).

    python bench/bench_default_limits.py [--threads N]
"""

from __future__ import annotations

import argparse
import time

import torch
from bench_engine import best_of, cpu_args, forward_backward
from marshmallow import ValidationError

from schemas.limits import Limits
from schemas.spec import ModelSpecSchema
from service.engine import analyze
from service.engine.cost import estimate_cost

CASES = [{"depth": 50, "width": 512}, {"depth": 100, "width": 512}, {"depth": 12, "width": 4096}]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    cpu_args(ap)
    print(f"{torch.get_num_threads()} torch threads; default limits: max_gflop={Limits().max_gflop:g}")
    for layers in CASES:
        body = {"layers": layers, "activation": "relu", "init": "kaiming_normal"}
        try:
            spec = ModelSpecSchema(limits=Limits()).load(body)
        except ValidationError as exc:
            print(f"{layers}: refused: {exc.messages}")
            continue
        cost = estimate_cost(spec)
        fb = best_of(forward_backward(spec))
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
