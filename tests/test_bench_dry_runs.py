"""The GPU benchmark only runs where a device is lent, months apart: its dry run on the CPU (toy sizes, the same
calls) keeps a change of an engine signature from surfacing only on the next GPU machine (issue 9, item 5)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def test_the_gpu_benchmark_runs_dry_on_the_cpu() -> None:
    run = subprocess.run(
        [sys.executable, "bench/bench_gpu.py", "--dry-run"], cwd=ROOT, capture_output=True, text=True, timeout=300
    )
    assert run.returncode == 0, run.stderr[-3000:]
    out = run.stdout
    assert "dry run on the CPU" in out
    assert out.count("of mm;") == 2 and "carried power steps" in out  # both precisions, both power iterations
    assert out.count("the whole analysis by stage:") == 2 and out.count("tiny ") == 2
