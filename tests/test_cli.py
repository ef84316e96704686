"""`python -m service analyze`: the API's exact JSON offline, and a clear error naming the field."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

SPEC = {"layers": [4, 8, 8, 2], "activation": "tanh", "batch_size": 4, "dtype": "float16"}
ROOT = Path(__file__).resolve().parent.parent
ELAPSED = re.compile(r'"elapsed_ms":[0-9.e+-]+')


def _run(*args: str, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
    env = os.environ | {"OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}
    return subprocess.run(
        [sys.executable, "-m", "service", *args],
        input=stdin,
        capture_output=True,
        text=True,
        cwd=ROOT,
        env=env,
        timeout=120,
        check=False,
    )


def test_analyze_prints_exactly_what_the_api_returns(tmp_path):
    import torch

    from service.api.app import create_app
    from service.config import Settings

    path = tmp_path / "spec.json"
    path.write_text(json.dumps(SPEC))
    cli = _run("analyze", str(path))
    assert cli.returncode == 0, cli.stderr
    torch.set_num_threads(1)
    api = create_app({"GRADSTAB_SETTINGS": Settings.from_env({})}).test_client().post("/v1/analyses", json=SPEC)
    assert api.status_code == 200
    # Same keys in the same order and the same numbers, apart from the engine's wall time and
    # the HTTP layer's cache note (added by the report cache, not part of the report).
    cli_report = json.loads(ELAPSED.sub('"elapsed_ms":0', cli.stdout))
    api_report = json.loads(ELAPSED.sub('"elapsed_ms":0', api.get_data(as_text=True)))
    api_report.pop("cache", None)
    assert json.dumps(cli_report) == json.dumps(api_report)


def test_analyze_reads_stdin():
    cli = _run("analyze", "-", stdin=json.dumps(SPEC))
    assert cli.returncode == 0, cli.stderr
    assert json.loads(cli.stdout)["depth"] == 3


@pytest.mark.parametrize(
    ("body", "needle"),
    [
        (json.dumps(SPEC | {"batch_size": 3.7}), "batch_size"),
        (json.dumps(SPEC | {"colour": "red"}), "colour"),
        (json.dumps(SPEC | {"layers": {"depth": 10**6, "width": 4}}), "max_depth"),
        ('{"layers": [4, 8], "weight_scale": NaN}', "NaN"),
        ("[1, 2]", "JSON object"),
        ("{", "Malformed JSON"),
    ],
)
def test_bad_spec_exits_nonzero_naming_the_field(body, needle):
    cli = _run("analyze", "-", stdin=body)
    assert cli.returncode == 2
    assert needle in cli.stderr
    assert cli.stdout == ""


def test_missing_file():
    cli = _run("analyze", "/nonexistent/spec.json")
    assert cli.returncode == 2 and "cannot read" in cli.stderr


@pytest.mark.parametrize(
    "command", [[sys.executable, "-m", "service"], [str(Path(sys.executable).parent / "gradstab")]]
)
def test_version_prints_the_version_and_exits_0(command):
    """`--version` used to exit 2 (argparse: a subcommand is required)."""
    import service

    out = subprocess.run([*command, "--version"], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == f"gradstab {service.__version__}"


def test_analyze_takes_an_architecture_spec(tmp_path):
    path = tmp_path / "spec.json"
    spec = {
        **SPEC,
        "architecture": {"residual": {"every": 1}, "normalization": {"kind": "rmsnorm", "position": "post"}},
    }
    path.write_text(json.dumps(spec))
    out = _run("analyze", str(path))
    assert out.returncode == 0, out.stderr
    report = json.loads(out.stdout)
    assert report["architecture"]["normalization"] == "rmsnorm" and report["architecture"]["blocks"][1]["skip"]
    bad = _run("analyze", "-", stdin=json.dumps({**SPEC, "architecture": {"residual": {"every": 7}}}))
    assert bad.returncode == 2 and "every" in bad.stderr
