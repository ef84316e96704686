"""The grading scripts keep their total deadline against a server that is down, slow, trickling or
overloaded, and still write a results file that validates against the platform's format, saying
that the service was unreachable (score 0; PrairieLearn: not gradable, so no attempt is used up).

Without a deadline the Gradescope script could run ~751 s (Gradescope kills it at 600 s, leaving no
results.json) and the PrairieLearn one ~515 s (its example timeout is 120 s)."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import jsonschema
import pytest

from tests.servers import free_port, running_server

from .apps import INSTRUCTOR_KEY, SPEC
from .platform_schemas import GRADESCOPE_RESULTS, PRAIRIELEARN_RESULTS
from .stub_service import stub_service

ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = ROOT / "examples"
GRADESCOPE_DEADLINE = 8.0  # the script keeps 5 s back for writing results: 3 s for the service
PRAIRIELEARN_DEADLINE = 6.0  # keeps 3 s back
STARTUP = 3.0  # the interpreter's own start on a busy 2-core machine


@pytest.fixture(scope="module")
def slow_server() -> Iterator[str]:
    """A real gunicorn (not the project's config: no warm-up) that answers no request within a minute."""
    env = os.environ | {"PORT": str(free_port()), "GRADSTAB_TEST_SLOW_S": "60"}
    port = env["PORT"]
    cmd = [sys.executable, "-m", "gunicorn", "-c", "/dev/null", "-b", f"127.0.0.1:{port}", "-w", "1", "--threads", "8"]
    cmd += ["--timeout", "300", "--graceful-timeout", "1", "tests.slow_gateway_wsgi:app"]
    with running_server(cmd, env, cwd=ROOT, deadline_s=60) as handle:
        yield handle.url


@pytest.fixture(scope="module")
def trickling_server() -> Iterator[str]:
    """Answers a status line, then one header byte every half second forever: no socket timeout fires."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(16)
    stop = threading.Event()

    def trickle(conn: socket.socket) -> None:
        with conn:
            try:
                conn.recv(65536)
                conn.sendall(b"HTTP/1.1 200 OK\r\nX-Slow: ")
                while not stop.wait(0.5):
                    conn.sendall(b"a")
            except OSError:
                pass

    def serve() -> None:
        while not stop.is_set():
            try:
                conn, _ = listener.accept()
            except OSError:
                return
            threading.Thread(target=trickle, args=(conn,), daemon=True).start()

    threading.Thread(target=serve, daemon=True).start()
    yield f"http://127.0.0.1:{listener.getsockname()[1]}"
    stop.set()
    listener.close()


@pytest.fixture(scope="module")
def overloaded_server() -> Iterator[str]:
    """503 with Retry-After: 3600 on every request."""
    body = b'{"title": "Service Unavailable", "status": 503}'
    headers = {"Retry-After": "3600", "Content-Type": "application/problem+json"}
    with stub_service(lambda path: (503, headers, body)) as url:
        yield url


@pytest.fixture
def servers(request: pytest.FixtureRequest) -> dict[str, str]:
    return {
        "down": f"http://127.0.0.1:{free_port()}",  # nothing listens: connection refused, retried
        "slow": request.getfixturevalue("slow_server"),
        "trickling": request.getfixturevalue("trickling_server"),
        "overloaded": request.getfixturevalue("overloaded_server"),
    }


def run_timed(script: Path, env: dict[str, str], limit: float) -> float:
    started = time.monotonic()
    done = subprocess.run(
        [sys.executable, str(script)], env=os.environ | env, capture_output=True, text=True, timeout=limit + 60
    )
    elapsed = time.monotonic() - started
    assert done.returncode == 0, done.stderr
    return elapsed


KINDS = ["down", "slow", "trickling", "overloaded"]


@pytest.mark.slow
@pytest.mark.parametrize("kind", KINDS)
def test_gradescope_deadline(kind: str, servers: dict[str, str], tmp_path: Path) -> None:
    submission = tmp_path / "submission"
    submission.mkdir()
    (submission / "spec.json").write_text(json.dumps(SPEC))
    results = tmp_path / "results" / "results.json"
    env = {
        "GRADSTAB_URL": servers[kind],
        "GRADSTAB_API_KEY": INSTRUCTOR_KEY,
        "GRADSTAB_ASSIGNMENT": "tiny",
        "GRADSTAB_DEADLINE": str(GRADESCOPE_DEADLINE),
        "AUTOGRADER_SOURCE": str(tmp_path / "source"),
        "AUTOGRADER_SUBMISSION": str(submission),
        "AUTOGRADER_RESULTS": str(results),
    }
    elapsed = run_timed(EXAMPLES / "gradescope" / "run_autograder", env, GRADESCOPE_DEADLINE)
    assert elapsed < GRADESCOPE_DEADLINE + STARTUP, elapsed
    body = json.loads(results.read_text())
    jsonschema.validate(body, GRADESCOPE_RESULTS)
    assert body["score"] == 0 and "unreachable" in body["output"]
    assert body["extra_data"] == {"gradable": False, "reason": "unreachable"}


@pytest.mark.slow
@pytest.mark.parametrize("kind", KINDS)
def test_prairielearn_deadline(kind: str, servers: dict[str, str], tmp_path: Path) -> None:
    (tmp_path / "student").mkdir()
    (tmp_path / "student" / "spec.json").write_text(json.dumps(SPEC))
    env = {
        "GRADE_ROOT": str(tmp_path),
        "GRADSTAB_URL": servers[kind],
        "GRADSTAB_API_KEY": INSTRUCTOR_KEY,
        "GRADSTAB_ASSIGNMENT": "tiny",
        "GRADSTAB_DEADLINE": str(PRAIRIELEARN_DEADLINE),
    }
    elapsed = run_timed(EXAMPLES / "prairielearn" / "grade.py", env, PRAIRIELEARN_DEADLINE)
    assert elapsed < PRAIRIELEARN_DEADLINE + STARTUP, elapsed
    body = json.loads((tmp_path / "results" / "results.json").read_text())
    jsonschema.validate(body, PRAIRIELEARN_RESULTS)
    assert body["gradable"] is False and body["score"] == 0 and "unreachable" in body["message"]
