"""Same spec, same report: `python -m service analyze` in two separate processes gives identical
JSON once the fields that describe the run (elapsed time) are set aside."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
SPEC = {
    "layers": [6, 8, 8, 8, 8, 4],
    "activation": "tanh",
    "init": "normal",
    "weight_scale": 0.7,
    "batch_size": 4,
    "seed": 3,
    "verify_recommendations": False,
}
RUN_DEPENDENT = ("elapsed_ms",)


def analyse_in_a_new_process(spec_path: Path) -> dict:
    env = os.environ | {"OMP_NUM_THREADS": "1"}
    done = subprocess.run(
        [sys.executable, "-m", "service", "analyze", str(spec_path)],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=True,
    )
    report = json.loads(done.stdout)
    for key in RUN_DEPENDENT:
        report["runtime"].pop(key, None)
    return report


def test_identical_reports_across_processes(tmp_path: Path) -> None:
    path = tmp_path / "spec.json"
    path.write_text(json.dumps(SPEC))
    first, second = analyse_in_a_new_process(path), analyse_in_a_new_process(path)
    assert json.dumps(first, sort_keys=True) == json.dumps(second, sort_keys=True)
    assert len(first["id"]) == 64 and first["engine_version"]
