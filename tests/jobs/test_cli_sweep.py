"""`python -m service sweep`: the example grid in-process, as CSV and JSON."""

from __future__ import annotations

import csv
import io
import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
GRID = ROOT / "examples" / "sweeps" / "relu_init_depth.json"


def run(*args: str) -> subprocess.CompletedProcess[str]:
    env = {"GRADSTAB_TORCH_THREADS": "1", "PATH": "/usr/bin:/bin"}
    return subprocess.run(
        [sys.executable, "-m", "service", "sweep", *args],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )


def test_sweep_cli_csv_and_json(tmp_path) -> None:
    out = run(str(GRID), "--format", "csv")
    assert out.returncode == 0, out.stderr
    rows = list(csv.DictReader(io.StringIO(out.stdout)))
    verdicts = {(r["init"], r["layers.depth"]): r["verdict"] for r in rows}
    assert verdicts[("xavier_normal", "50")] == "vanishing" and verdicts[("kaiming_normal", "50")] == "stable"
    target = tmp_path / "sweep.json"
    assert run(str(GRID), "-o", str(target)).returncode == 0
    job = json.loads(target.read_text())
    assert job["status"] == "succeeded" and len(job["result"]["points"]) == 4


def test_sweep_cli_refuses_a_bad_grid(tmp_path) -> None:
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps({"base": {"layers": [4, 4]}, "grid": {"nope": [1]}}))
    out = run(str(bad))
    assert out.returncode != 0 and "nope" in out.stderr
