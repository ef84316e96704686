"""Queue workers outlive a Redis restart (issue 20 item 2), against a real redis-server of the test's own on a
free loopback port, without persistence, as docker-compose.yml runs it (`--save '' --appendonly no`).

Idle: Redis is shut down under an idle worker and started again a few seconds later; the same worker process
then runs a sweep to completion. Busy: the same while the worker runs a task; the task's point is delivered
once Redis is back (the worker's bookkeeping fails, RQ's retry or a redelivery runs it again). Without
persistence the restart loses every job record: GET answers 404, and the same request submitted again gets the
same id (a content hash) and runs again, which is what README.md tells a client to do.
"""

from __future__ import annotations

import shutil
import subprocess
import time
import uuid
from pathlib import Path

import pytest

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


def test_an_idle_worker_outlives_a_redis_restart(redis_server, tmp_path) -> None:
    queue = f"test-{uuid.uuid4().hex[:8]}"
    config = {"REDIS_URL": redis_server.url, "GRADSTAB_JOB_QUEUE": queue}
    client = make_jobs_app(str(tmp_path / "unused.sqlite3"), **config).test_client()
    worker = start_worker(queue, f"{queue}-w", tmp_path, redis_server.url)
    try:
        sweep = _sweep(uuid.uuid4().int % 2**31, 3)
        loc = client.post("/v1/sweeps", json=sweep).headers["Location"]
        assert wait_for(client, loc, timeout=180)["status"] == "succeeded"

        redis_server.kill()  # the worker is idle, blocked on the queue
        time.sleep(5)
        redis_server.start()
        assert worker.poll() is None, (tmp_path / f"{queue}-w.log").read_text()

        # Without persistence the job record went with Redis: 404, and the same request runs again.
        assert client.get(loc).status_code == 404
        again = client.post("/v1/sweeps", json=sweep)
        assert again.status_code == 202 and again.headers["Location"] == loc
        job = wait_for(client, loc, timeout=180)
        assert job["status"] == "succeeded" and sorted(p["index"] for p in job["result"]["points"]) == [0, 1, 2]
        assert worker.poll() is None
    finally:
        stop(worker)


def test_a_busy_worker_outlives_a_redis_restart(redis_server, tmp_path) -> None:
    queue = f"test-{uuid.uuid4().hex[:8]}"
    config = {"REDIS_URL": redis_server.url, "GRADSTAB_JOB_QUEUE": queue}
    client = make_jobs_app(str(tmp_path / "unused.sqlite3"), **config).test_client()
    worker = start_worker(queue, f"{queue}-w", tmp_path, redis_server.url)
    try:
        slow = _sweep(uuid.uuid4().int % 2**31, 1, depth=400)  # a task of a second or more
        loc = client.post("/v1/sweeps", json=slow).headers["Location"]
        wait_for(client, loc, timeout=180, until=lambda job: job["status"] == "running")
        redis_server.kill()  # mid-task
        time.sleep(3)
        redis_server.start()
        assert worker.poll() is None, (tmp_path / f"{queue}-w.log").read_text()

        sweep = _sweep(uuid.uuid4().int % 2**31, 2)
        loc = client.post("/v1/sweeps", json=sweep).headers["Location"]
        assert wait_for(client, loc, timeout=180)["status"] == "succeeded"
        assert worker.poll() is None
    finally:
        stop(worker)
