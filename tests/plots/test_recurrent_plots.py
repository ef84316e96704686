"""A recurrent report everywhere it is drawn: time on the x-axis, the HTML section, the CLI's text, phase diagrams of
a sweep over recurrent.steps × weight_scale."""

from __future__ import annotations

import io
import json
import subprocess
import sys
from pathlib import Path

import pytest
from rich.console import Console

from schemas.report import dump_report
from schemas.spec import ModelSpecSchema
from service.cli_text import print_summary
from service.engine.analysis import analyze
from service.plots import phase_figures, report_page
from service.plots.figures import activation_figure, gradient_figure

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def report() -> dict:
    spec = {
        "recurrent": {"cell": "rnn", "steps": 30, "hidden": 8, "input_dim": 4},
        "init": "orthogonal",
        "weight_scale": 0.5,
        "batch_size": 2,
    }
    return dump_report(analyze(ModelSpecSchema().load(spec)))


def test_time_on_the_x_axis(report: dict) -> None:
    for fig in (gradient_figure(report), activation_figure(report)):
        assert fig.xlabel.startswith("step t") and "per step" in fig.title
    markers = [m.label for m in gradient_figure(report).markers]
    assert any(label.startswith("onset: step") for label in markers)


def test_html_has_the_recurrent_section(report: dict) -> None:
    page = report_page(report)
    assert '<section id="recurrent">' in page and "Per step" in page
    assert "vanishing_guaranteed" in page and "training time, not a fix" in page


def test_cli_text_counts_steps(report: dict) -> None:
    out = io.StringIO()
    print_summary(report, Console(file=out, width=120))
    text = out.getvalue()
    assert "steps 30" in text and "per step" in text and "Per step (t = 1 is the first)" in text


def test_a_sweep_over_steps_and_weight_scale_gives_phase_diagrams(tmp_path) -> None:
    grid = {
        "base": {
            "recurrent": {"cell": "rnn", "steps": 10, "hidden": 8, "input_dim": 4},
            "init": "orthogonal",
            "input_scale": 0.05,
            "batch_size": 2,
            "verify_recommendations": False,
        },
        "grid": {"weight_scale": [0.5, 1.0, 2.0], "recurrent.steps": [10, 40], "recurrent.cell": ["rnn", "gru"]},
    }
    path = tmp_path / "grid.json"
    path.write_text(json.dumps(grid))
    run = subprocess.run(
        [sys.executable, "-m", "service", "sweep", str(path)],
        cwd=ROOT,
        env={"GRADSTAB_TORCH_THREADS": "1", "PATH": "/usr/bin:/bin"},
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert run.returncode == 0, run.stderr
    result = json.loads(run.stdout)["result"]
    verdicts = {
        (p["params"]["weight_scale"], p["params"]["recurrent.steps"], p["params"]["recurrent.cell"]): p["verdict"]
        for p in result["points"]
    }
    assert verdicts[(0.5, 40, "rnn")] == "vanishing" and verdicts[(1.0, 10, "rnn")] == "stable"
    figures = phase_figures(result, "verdict", "recurrent.steps", "weight_scale")
    assert len(figures) == 2  # one per cell
