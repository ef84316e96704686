"""The command line for people: `analyze --format text`, stage progress on a terminal's stderr, and --help
naming the command the user typed. JSON stays the default (tests/test_cli.py)."""

from __future__ import annotations

import io
import json
import os
import pty
import re
import subprocess
import sys
from pathlib import Path

import pytest
from rich.console import Console

from service.cli_text import TABLE_ROWS, change_text, print_summary, rows_to_show

ROOT = Path(__file__).resolve().parent.parent
LECTURE = ROOT / "examples" / "specs" / "lecture_identity_depth100.json"
ENV = os.environ | {"OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}


@pytest.fixture(scope="module")
def lecture_report() -> dict:
    done = subprocess.run(
        [sys.executable, "-m", "service", "analyze", str(LECTURE)], capture_output=True, text=True, env=ENV, timeout=300
    )
    assert done.returncode == 0, done.stderr
    assert done.stderr == ""  # stderr is a pipe here: no progress, nothing else
    return json.loads(done.stdout)


def render(report: dict) -> str:
    out = io.StringIO()
    print_summary(report, Console(file=out, width=120, color_system=None))
    return out.getvalue()


def test_text_summary_says_what_the_json_says(lecture_report: dict) -> None:
    text = render(lecture_report)
    d = lecture_report["diagnosis"]
    assert d["verdict"].upper() in text
    assert f"{10 ** d['log10_total_growth']:.2g}" in text and f"{d['log10_total_growth']:.2f}" in text
    assert f"{d['growth_per_layer']:.3f}" in text
    assert f"layer {d['onset_layer']}" in text
    assert f"overflow: yes from layer {d['overflow']['first_layer']}" in text
    for cause in d["causes"]:
        assert " ".join(cause["message"].split()[:6]) in " ".join(text.split())
    for fix in (r for r in d["recommendations"] if r["fixes"]):
        assert change_text(fix["change"]) in text


def test_layer_table_is_compact_and_keeps_the_layers_that_matter(lecture_report: dict) -> None:
    d = lecture_report["diagnosis"]
    shown = rows_to_show(lecture_report)
    assert len(shown) <= TABLE_ROWS and shown == sorted(set(shown))
    assert {1, lecture_report["depth"], d["onset_layer"], d["overflow"]["first_layer"]} <= set(shown)
    text = render(lecture_report)
    rows = [line.split() for line in text.splitlines() if line.strip("│ ").split(" ")[0].isdigit()]
    assert [int(r[1] if r[0] == "│" else r[0]) for r in rows] == shown
    layer = lecture_report["layers"][shown[1] - 1]
    assert f"{layer['jacobian_product']['log10_frobenius_norm']:.2f}" in text


def test_small_nets_show_every_layer() -> None:
    report = {"layers": [{}] * 5, "diagnosis": {"onset_layer": None}}
    assert rows_to_show(report) == [1, 2, 3, 4, 5]


def test_format_text_on_the_command_line() -> None:
    spec = json.dumps({"layers": [4, 8, 8, 2], "activation": "tanh", "batch_size": 4})
    done = subprocess.run(
        [sys.executable, "-m", "service", "analyze", "-", "--format", "text"],
        input=spec,
        capture_output=True,
        text=True,
        env=ENV,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    assert "Per layer" in done.stdout and "total growth" in done.stdout
    assert not done.stdout.lstrip().startswith("{")


def test_progress_by_stage_on_a_terminal(tmp_path: Path) -> None:
    """stderr a terminal (a pty): one line per stage with its time; stdout (a file) still the JSON."""
    primary, secondary = pty.openpty()
    with (tmp_path / "out.json").open("wb") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "service", "analyze", str(LECTURE)],
            stdout=out,
            stderr=secondary,
            env=ENV | {"TERM": "xterm", "COLUMNS": "100"},
        )
    os.close(secondary)
    chunks = []
    while True:
        try:
            chunk = os.read(primary, 65536)
        except OSError:  # the child closed its end
            break
        if not chunk:
            break
        chunks.append(chunk)
    assert proc.wait(300) == 0
    stdout = (tmp_path / "out.json").read_bytes()
    os.close(primary)
    stderr = re.sub(r"\x1b\[[0-9;?]*[A-Za-z]", "", b"".join(chunks).decode(errors="replace"))
    for stage in ("forward and backward pass", "float64 reference pass", "Jacobian products (exact)", "diagnosis"):
        assert f"✓ {stage}" in stderr, stderr
    assert re.search(r"✓ diagnosis and verified fixes \(\d+ reruns?\)", stderr) and "analysis done in" in stderr
    assert stderr.count("✓ forward and backward pass") == 1  # the reruns are counted, not listed as stages
    assert json.loads(stdout)["diagnosis"]["verdict"] == "exploding"


def _announced(body: dict) -> str:
    """Analyse `body` without and with the stage wrappers: the same report (elapsed time aside); the console's text."""
    from schemas.spec import ModelSpecSchema
    from service.application.reports import ReportService
    from service.cli_progress import stage_progress

    spec = ModelSpecSchema().load(body)
    plain = ReportService.uncached(20.0).report(spec).report
    console = Console(file=io.StringIO(), force_terminal=True, color_system=None)
    with stage_progress(console):
        announced = ReportService.uncached(20.0).report(spec).report
    for r in (plain, announced):
        r["runtime"].pop("elapsed_ms")
    assert announced == plain
    return console.file.getvalue()


def test_progress_changes_no_number() -> None:
    """The stage wrappers only announce: the report is the same, and the engine's functions are restored."""
    from service.engine import analysis

    original = analysis.run_pass
    out = _announced({"layers": [4, 8, 8, 2], "activation": "sigmoid", "batch_size": 4})
    assert analysis.run_pass is original
    assert "✓ Jacobian products" in out


def test_progress_announces_a_recurrent_specs_stages_and_changes_no_number() -> None:
    from service.engine import recurrent_analysis

    original = recurrent_analysis.run_recurrent_pass
    out = _announced({"recurrent": {"cell": "rnn", "steps": 12, "hidden": 8, "input_dim": 4}, "weight_scale": 0.5})
    assert recurrent_analysis.run_recurrent_pass is original
    for stage in ("forward and backward pass through time", "float64 reference pass through time", "along time"):
        assert stage in out, out
    assert re.search(r"✓ diagnosis and verified fixes \(\d+ reruns?\)", out), out
    assert out.count("✓ forward and backward pass through time") == 1


@pytest.mark.parametrize(
    "network",
    [{"layers": [4, 8, 2]}, {"recurrent": {"cell": "gru", "steps": 6, "hidden": 4, "input_dim": 3}}],
    ids=["feed-forward", "recurrent"],
)
def test_progress_counts_the_training_probe_steps(monkeypatch, network: dict) -> None:
    """A spec with training: the probe is a stage, its status line counts the steps, and the hook is removed after."""
    from rich.status import Status

    from schemas.spec import ModelSpecSchema
    from service.application.reports import ReportService
    from service.cli_progress import stage_progress
    from service.engine.progress import training_steps

    body = {"batch_size": 4, "verify_recommendations": False, "training": {"steps": 3, "examples": 16}}
    spec = ModelSpecSchema().load(network | body)
    shown: list[str] = []
    update = Status.update
    monkeypatch.setattr(
        Status, "update", lambda self, status=None, **kw: (shown.append(str(status)), update(self, status, **kw))
    )
    console = Console(file=io.StringIO(), force_terminal=True, color_system=None)
    with stage_progress(console):
        report = ReportService.uncached(20.0).report(spec).report
    assert len(report["training"]["steps"]) == 3
    assert "✓ training probe" in console.file.getvalue()
    assert [s for s in shown if s.startswith("training probe: step")] == [
        f"training probe: step {k}/3 …" for k in (1, 2, 3)
    ]
    assert training_steps.get() is None


@pytest.mark.parametrize(
    ("argv0", "expected"),
    [
        ([sys.executable, "-m", "service"], "usage: python -m service "),
        ([str(Path(sys.executable).parent / "gradstab")], "usage: gradstab "),
    ],
)
def test_help_names_the_command_typed(argv0: list[str], expected: str) -> None:
    if not Path(argv0[0]).exists():
        pytest.skip(f"{argv0[0]} is not installed")
    for sub, prefix in (
        ([], expected),
        (["sweep"], expected.rstrip() + " sweep"),
        (["worker"], expected.rstrip() + " worker"),
    ):
        done = subprocess.run([*argv0, *sub, "--help"], capture_output=True, text=True, env=ENV, timeout=60)
        assert done.returncode == 0, done.stderr
        assert done.stdout.startswith(prefix), done.stdout[:200]


def test_text_summary_names_the_architecture() -> None:
    from rich.console import Console

    from schemas import ModelSpecSchema, dump_report
    from service.cli_text import print_summary
    from service.engine import analyze

    spec = ModelSpecSchema().load(
        {
            "layers": {"depth": 6, "width": 8},
            "verify_recommendations": False,
            "architecture": {"residual": {"every": 2, "branch_scale": 0.5}, "normalization": {"kind": "layernorm"}},
        }
    )
    console = Console(record=True, width=120)
    print_summary(dump_report(analyze(spec)), console)
    text = console.export_text()
    assert "residual every 2 (3 skips, branch_scale 0.5)" in text and "layernorm pre" in text


def test_an_architecture_change_reads_on_one_line() -> None:
    change = {
        "architecture": {
            "residual": {"every": 2, "branch_scale": 0.1414},
            "normalization": {"kind": "layernorm", "position": "pre"},
        }
    }
    assert change_text(change) == "architecture=residual(every 2, branch_scale 0.1414)+layernorm(pre)"
    assert change_text({"weight_scale": 0.5, "init": "orthogonal"}) == "weight_scale=0.5, init=orthogonal"


def test_the_text_summary_says_what_training_did(tmp_path) -> None:
    """--format text: the training sentence beside the init's facts, and which verified fixes make every layer
    learn."""
    import json
    import subprocess
    import sys

    spec = {
        "layers": {"depth": 12, "width": 16, "input_dim": 8},
        "activation": "sigmoid",
        "init": "xavier_normal",
        "batch_size": 8,
        "training": {"steps": 40, "learning_rate": 0.5, "examples": 64},
    }
    path = tmp_path / "spec.json"
    path.write_text(json.dumps(spec))
    run = subprocess.run(
        [sys.executable, "-m", "service", "analyze", str(path), "--format", "text"],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert run.returncode == 0, run.stderr[-2000:]
    assert "40 sgd steps at learning rate 0.5" in " ".join(run.stdout.split())
    assert "every layer learns" in run.stdout
