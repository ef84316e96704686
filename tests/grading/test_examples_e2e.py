"""The Gradescope and PrairieLearn examples end to end: a real gunicorn server, the scripts as
Gradescope and PrairieLearn would run them (paths overridden), the results files they write."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import jsonschema
import pytest

from .apps import INSTRUCTOR_KEY, KEYS, SPEC, write_assignment
from .platform_schemas import GRADESCOPE_RESULTS, PRAIRIELEARN_RESULTS

ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = ROOT / "examples"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    port = free_port()
    assignments = write_assignment(tmp_path_factory.mktemp("assignments"))
    env = os.environ | {
        "HOST": "127.0.0.1",
        "PORT": str(port),
        "GRADSTAB_WORKERS": "1",
        "GRADSTAB_TORCH_THREADS": "1",
        "GRADSTAB_API_KEYS": KEYS,
        "GRADSTAB_ASSIGNMENTS_DIR": str(assignments),
        "GRADSTAB_MAX_DEPTH": "40",
        "GRADSTAB_MAX_WIDTH": "32",
    }
    env.pop("REDIS_URL", None)
    proc = subprocess.Popen(
        [sys.executable, "-m", "gunicorn", "--config", str(ROOT / "gunicorn.conf.py"), "service.wsgi:app"],
        cwd=ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        for _ in range(600):  # readiness, not a timing assertion: give up after ~2 minutes
            if proc.poll() is not None:
                pytest.fail(f"gunicorn exited with {proc.returncode}")
            try:
                with urllib.request.urlopen(url + "/readyz", timeout=2) as resp:
                    if resp.status == 200:
                        break
            except OSError:
                pass
            time.sleep(0.2)
        else:
            pytest.fail("gunicorn did not become ready")
        yield url
    finally:
        proc.terminate()
        proc.wait(timeout=30)


def run_script(script: Path, env: dict[str, str]) -> None:
    done = subprocess.run(
        [sys.executable, str(script)], env=os.environ | env, capture_output=True, text=True, timeout=300
    )
    assert done.returncode == 0, done.stderr


def test_gradescope_autograder(server: str, tmp_path: Path) -> None:
    submission = tmp_path / "submission"
    submission.mkdir()
    (submission / "spec.json").write_text(json.dumps({**SPEC, "weight_scale": 0.5}))
    (submission / "answers.json").write_text(json.dumps({"g": 0.3}))
    results = tmp_path / "results" / "results.json"
    run_script(
        EXAMPLES / "gradescope" / "run_autograder",
        {
            "GRADSTAB_URL": server,
            "GRADSTAB_API_KEY": INSTRUCTOR_KEY,
            "GRADSTAB_ASSIGNMENT": "tiny",
            "AUTOGRADER_SOURCE": str(tmp_path / "source"),
            "AUTOGRADER_SUBMISSION": str(submission),
            "AUTOGRADER_RESULTS": str(results),
        },
    )
    body = json.loads(results.read_text())
    jsonschema.validate(body, GRADESCOPE_RESULTS)
    names = [t["name"] for t in body["tests"]]
    assert names == ["shape", "no overflow", "growth", "secret band"]
    assert body["tests"][0]["status"] == "passed" and body["tests"][3]["visibility"] == "hidden"
    assert body["score"] == sum(t["score"] for t in body["tests"])
    assert body["extra_data"]["report_id"] in body["output"]


def test_gradescope_autograder_without_a_spec(server: str, tmp_path: Path) -> None:
    results = tmp_path / "results.json"
    run_script(
        EXAMPLES / "gradescope" / "run_autograder",
        {
            "GRADSTAB_URL": server,
            "GRADSTAB_API_KEY": INSTRUCTOR_KEY,
            "GRADSTAB_ASSIGNMENT": "tiny",
            "AUTOGRADER_SUBMISSION": str(tmp_path),
            "AUTOGRADER_RESULTS": str(results),
        },
    )
    body = json.loads(results.read_text())
    jsonschema.validate(body, GRADESCOPE_RESULTS)
    assert body["score"] == 0 and "Upload spec.json" in body["output"]


def test_prairielearn_grader(server: str, tmp_path: Path) -> None:
    (tmp_path / "student").mkdir()
    (tmp_path / "student" / "spec.json").write_text(json.dumps({**SPEC, "activation": "nope"}))
    run_script(
        EXAMPLES / "prairielearn" / "grade.py",
        {
            "GRADE_ROOT": str(tmp_path),
            "GRADSTAB_URL": server,
            "GRADSTAB_API_KEY": INSTRUCTOR_KEY,
            "GRADSTAB_ASSIGNMENT": "tiny",
        },
    )
    body = json.loads((tmp_path / "results" / "results.json").read_text())
    jsonschema.validate(body, PRAIRIELEARN_RESULTS)
    assert body["gradable"] is False and "activation" in body["format_errors"][0]
