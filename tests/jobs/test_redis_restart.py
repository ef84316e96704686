"""Queue workers outlive a Redis restart (issue 20 item 2), against a real redis-server of the test's own on a
free loopback port, without persistence, as docker-compose.yml runs it (`--save '' --appendonly no`).

Idle: Redis is shut down under an idle worker and started again a few seconds later; the same worker process
then runs a sweep to completion. Busy: the same while the worker runs a task (the task's bookkeeping then fails
and RQ's loop quits, which ended the process before `serve`); the worker then runs the next sweep. Without
persistence the restart loses every job record, the one in flight too: GET answers 404, and the same request
submitted again gets the same id (a content hash) and runs again, which is what README.md tells a client to do.
"""

from __future__ import annotations

import shutil
import subprocess
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from flask.testing import FlaskClient

from tests.servers import free_port

from .conftest import make_jobs_app, wait_for
from .test_redis_workers import start_worker, stop

REDIS_SERVER = shutil.which("redis-server")
pytestmark = pytest.mark.skipif(REDIS_SERVER is None, reason="no redis-server binary")


class RedisProcess:
    """A redis-server without persistence on 127.0.0.1:port, stopped (as a crash would: nothing saved) and
    started again on the same port."""

    def __init__(self, port: int, log_dir: Path) -> None:
        self.port, self.log_dir, self.proc = port, log_dir, None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        cmd = [REDIS_SERVER or "redis-server", "--port", str(self.port), "--bind", "127.0.0.1", "--save", ""]
        cmd += ["--appendonly", "no", "--dir", str(self.log_dir)]
        self.proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        import redis

        deadline = time.monotonic() + 20
        while True:
            try:
                redis.Redis.from_url(self.url).ping()
                return
            except redis.exceptions.ConnectionError:
                assert time.monotonic() < deadline, "redis-server did not start"
                time.sleep(0.05)

    def kill(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            self.proc.wait(10)


@pytest.fixture
def redis_server(tmp_path):
    server = RedisProcess(free_port(), tmp_path)
    server.start()
    yield server
    server.kill()


def _sweep(seed: int, points: int, depth: int = 20) -> dict:
    return {
        "base": {"layers": {"depth": depth, "width": 64}, "seed": seed, "batch_size": 8},
        "grid": {"weight_scale": [0.8 + 0.1 * i for i in range(points)]},
    }


@contextmanager
def api_and_worker(redis_server: RedisProcess, tmp_path: Path) -> Iterator[tuple[FlaskClient, subprocess.Popen[bytes]]]:
    """A jobs API and one worker process on the test's own Redis and a fresh queue."""
    queue = f"test-{uuid.uuid4().hex[:8]}"
    config = {"REDIS_URL": redis_server.url, "GRADSTAB_JOB_QUEUE": queue}
    client = make_jobs_app(str(tmp_path / "unused.sqlite3"), **config).test_client()
    worker = start_worker(queue, "worker", tmp_path, redis_server.url)
    try:
        yield client, worker
    finally:
        stop(worker)


def _restart(redis_server: RedisProcess, down_s: float, worker: subprocess.Popen[bytes], tmp_path: Path) -> None:
    redis_server.kill()
    time.sleep(down_s)
    redis_server.start()
    assert worker.poll() is None, (tmp_path / "worker.log").read_text()


def test_an_idle_worker_outlives_a_redis_restart(redis_server, tmp_path) -> None:
    with api_and_worker(redis_server, tmp_path) as (client, worker):
        sweep = _sweep(uuid.uuid4().int % 2**31, 3)
        loc = client.post("/v1/sweeps", json=sweep).headers["Location"]
        assert wait_for(client, loc, timeout=180)["status"] == "succeeded"
        _restart(redis_server, 5, worker, tmp_path)  # the worker is idle, blocked on the queue

        # Without persistence the job record went with Redis: 404, and the same request runs again.
        assert client.get(loc).status_code == 404
        again = client.post("/v1/sweeps", json=sweep)
        assert again.status_code == 202 and again.headers["Location"] == loc
        job = wait_for(client, loc, timeout=180)
        assert job["status"] == "succeeded" and sorted(p["index"] for p in job["result"]["points"]) == [0, 1, 2]
        assert worker.poll() is None


def test_a_busy_worker_outlives_a_redis_restart(redis_server, tmp_path) -> None:
    with api_and_worker(redis_server, tmp_path) as (client, worker):
        slow = _sweep(uuid.uuid4().int % 2**31, 1, depth=400)  # a task of a second or more
        loc = client.post("/v1/sweeps", json=slow).headers["Location"]
        wait_for(client, loc, timeout=180, until=lambda job: job["status"] == "running")
        _restart(redis_server, 3, worker, tmp_path)  # mid-task

        sweep = _sweep(uuid.uuid4().int % 2**31, 2)
        loc = client.post("/v1/sweeps", json=sweep).headers["Location"]
        assert wait_for(client, loc, timeout=180)["status"] == "succeeded"
        assert worker.poll() is None
