"""The Gradescope and PrairieLearn examples end to end: a real gunicorn server, the scripts as
Gradescope and PrairieLearn would run them (paths overridden), the results files they write."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import jsonschema
import pytest

from tests.servers import running_server, server_env

from .apps import INSTRUCTOR_KEY, KEYS, SPEC, STUDENT_KEY, write_assignment
from .platform_schemas import GRADESCOPE_RESULTS, PRAIRIELEARN_RESULTS

ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = ROOT / "examples"


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    assignments = write_assignment(tmp_path_factory.mktemp("assignments"))
    env = server_env(1) | {
        "GRADSTAB_API_KEYS": KEYS,
        "GRADSTAB_ASSIGNMENTS_DIR": str(assignments),
        "GRADSTAB_MAX_DEPTH": "40",
        "GRADSTAB_MAX_WIDTH": "32",
    }
    env.pop("REDIS_URL", None)
    cmd = [sys.executable, "-m", "gunicorn", "--config", str(ROOT / "gunicorn.conf.py"), "service.wsgi:app"]
    with running_server(cmd, env, cwd=ROOT) as handle:
        yield handle.url


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


CLIENT_USE = """
import json, sys
from gradstab_client import USER_AGENT, ApiError, GradstabClient
url, key = sys.argv[1], sys.argv[2]
client = GradstabClient(url, key, deadline=60)
graded = client.submit("tiny", SPEC, {"g": 0.3}, student="gradescope:42")
try:
    client.assignment("nope")
except ApiError as exc:
    missing = exc.status
print(json.dumps({"graded": graded, "missing": missing, "ua": USER_AGENT}))
"""


def test_client_package_installs_type_checks_and_talks_to_the_server(server: str, tmp_path: Path) -> None:
    """examples/client installs as a package (with py.typed), passes mypy --strict, and works."""
    client_dir = EXAMPLES / "client"
    site = tmp_path / "site"
    pip = [sys.executable, "-m", "pip", "install", "-q", "--no-deps", "--no-build-isolation", "--target", str(site)]
    done = subprocess.run([*pip, str(client_dir)], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    assert (site / "gradstab_client" / "py.typed").is_file()
    mypy = subprocess.run(
        [
            sys.executable,
            "-m",
            "mypy",
            "--strict",
            "--no-incremental",
            "--cache-dir",
            str(tmp_path / "mypy"),
            "-p",
            "gradstab_client",
        ],
        cwd=site,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert mypy.returncode == 0, mypy.stdout
    code = f"SPEC = {SPEC!r}\n" + CLIENT_USE
    env = os.environ | {"PYTHONPATH": str(site)}
    used = subprocess.run(
        [sys.executable, "-c", code, server, STUDENT_KEY],
        env=env,
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert used.returncode == 0, used.stderr
    out = json.loads(used.stdout)
    assert out["missing"] == 404 and out["ua"].startswith("gradstab-client/0.2.0")
    assert out["graded"]["max_score"] == 6 and out["graded"]["hidden"]["checks"] == 1
