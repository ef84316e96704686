"""Sweep throughput on RQ with 1 and 2 workers, and the queue's overhead per point.

    REDIS_URL=redis://127.0.0.1:6379/0 .venv/bin/python bench/bench_jobs.py [--points 24]

Prints figures (never pass/fail): the engine's own time per point in this process, the sweep's
wall time per point with 1 and 2 worker processes, the 2-worker speed-up, and the queue's overhead
per point, (1-worker wall per point - engine time) / engine time.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def sweep_body(points: int, seed0: int) -> dict:
    return {
        "base": {"layers": {"depth": 40, "width": 128}, "batch_size": 8},
        "grid": {"seed": [seed0 + i for i in range(points)]},
    }


def run_sweep(service, body: dict) -> float:
    from schemas.jobs import SweepRequestSchema

    plan = SweepRequestSchema(jobs=service.settings).load(body)
    start = time.perf_counter()
    job, _ = service.submit(plan, owner="bench")
    while service.get(job.record.id).status not in ("succeeded", "failed", "cancelled"):
        time.sleep(0.02)
    return time.perf_counter() - start


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--points", type=int, default=24)
    args = parser.parse_args()
    url = os.environ.get("REDIS_URL")
    if not url:
        print("set REDIS_URL to a Redis this benchmark may use")
        return 2
    import torch

    torch.set_num_threads(1)
    from schemas.jobs import SweepRequestSchema
    from service.jobs.runner import compute_report
    from service.jobs.service import JobService
    from service.jobs.settings import JobSettings

    queue = f"bench-{uuid.uuid4().hex[:8]}"
    settings = JobSettings(redis_url=url, queue=queue, quota=0)
    service = JobService.from_settings(settings)

    # The engine alone, in this process, on the same kind of points.
    plan = SweepRequestSchema(jobs=settings).load(sweep_body(args.points, 10**6))
    compute_report(plan.points[0]["spec"], plan.auto_exact_gflop)
    start = time.perf_counter()
    for p in plan.points:
        compute_report(p["spec"], plan.auto_exact_gflop)
    engine = (time.perf_counter() - start) / args.points

    env = os.environ | {"GRADSTAB_JOB_QUEUE": queue, "GRADSTAB_TORCH_THREADS": "1", "GRADSTAB_LOG_LEVEL": "WARNING"}
    walls = {}
    for n_workers in (1, 2):
        procs = [
            subprocess.Popen([sys.executable, "-m", "service.jobs.worker"], cwd=ROOT, env=env) for _ in range(n_workers)
        ]
        try:
            run_sweep(service, sweep_body(2 * n_workers, uuid.uuid4().int % 2**31))  # workers warm
            walls[n_workers] = run_sweep(service, sweep_body(args.points, uuid.uuid4().int % 2**31)) / args.points
        finally:
            for p in procs:
                p.terminate()
                p.wait(30)
    print(f"points per sweep           {args.points} (relu, depth 40, width 128, batch 8)")
    print(f"engine alone, per point    {engine * 1e3:8.1f} ms")
    print(f"1 worker, wall per point   {walls[1] * 1e3:8.1f} ms")
    print(f"2 workers, wall per point  {walls[2] * 1e3:8.1f} ms")
    print(f"speed-up 2 vs 1 workers    {walls[1] / walls[2]:8.2f}x")
    print(f"queue overhead per point   {100 * (walls[1] - engine) / engine:8.1f} % of the engine's time")
    return 0


if __name__ == "__main__":
    sys.exit(main())
