"""Jobs on RQ with a real redis-server and real worker processes (TEST_REDIS_URL; .ci/run starts
Debian's redis-server on loopback). Skipped, saying why, where no Redis is configured.

The kill test: two workers share a sweep; one is killed with SIGKILL while it runs a task. Its
task stays in RQ's StartedJobRegistry until its heartbeat lease runs out, then the survivor's
maintenance requeues it (Retry), and the sweep completes with every point delivered once.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest

from service.jobs.model import JobRecord, now
from service.jobs.store import RedisJobStore

from .conftest import make_jobs_app, wait_for

REDIS_URL = os.environ.get("TEST_REDIS_URL")
pytestmark = pytest.mark.skipif(
    not REDIS_URL, reason="TEST_REDIS_URL is not set (.ci/run starts redis-server and sets it)"
)
ROOT = Path(__file__).resolve().parents[2]


def start_worker(queue: str, name: str, log_dir: Path, redis_url: str | None = None) -> subprocess.Popen[bytes]:
    env = os.environ | {
        "REDIS_URL": redis_url or REDIS_URL or "",
        "GRADSTAB_JOB_QUEUE": queue,
        "GRADSTAB_WORKER_HEARTBEAT": "1",
        "GRADSTAB_TORCH_THREADS": "1",
        "GRADSTAB_LOG_LEVEL": "WARNING",
    }
    log = open(log_dir / f"{name}.log", "wb")  # noqa: SIM115 (closed with the process)
    return subprocess.Popen(
        [sys.executable, "-m", "service.jobs.worker", "--name", name], cwd=ROOT, env=env, stdout=log, stderr=log
    )


def stop(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(10)


def current_job(name: str) -> str | None:
    import redis
    from rq import Worker

    worker = Worker.find_by_key(f"rq:worker:{name}", connection=redis.Redis.from_url(REDIS_URL))
    return worker.get_current_job_id() if worker is not None else None


def test_store_delivers_each_point_once() -> None:
    store = RedisJobStore(REDIS_URL or "")
    jid = uuid.uuid4().hex
    store.create(JobRecord(id=jid, kind="sweep", total=2, created_at=now(), plan={"points": []}), ttl_s=60)
    assert store.add_entry(jid, 0, {"v": 1}, 60) is True
    assert store.add_entry(jid, 0, {"v": 2}, 60) is False  # a redelivered task rewrites nothing
    assert store.get(jid).finished_at is None
    assert store.add_entry(jid, 1, {"v": 3}, 60) is True
    assert store.entries(jid) == {0: {"v": 1}, 1: {"v": 3}}
    assert store.get(jid).finished_at is not None
    assert 0 < store.client.ttl(store.prefix + jid) <= 60


def test_killed_worker_loses_no_point(tmp_path) -> None:
    queue = f"test-{uuid.uuid4().hex[:8]}"
    seed = uuid.uuid4().int % 2**31  # a sweep no earlier run has submitted
    config = {"REDIS_URL": REDIS_URL, "GRADSTAB_JOB_QUEUE": queue}
    client = make_jobs_app(str(tmp_path / "unused.sqlite3"), **config).test_client()
    names = [f"{queue}-a", f"{queue}-b"]
    workers = [start_worker(queue, n, tmp_path) for n in names]
    retried_before = RedisJobStore(REDIS_URL or "").stats.read().retried
    try:
        n_points = 12
        sweep = {
            "base": {"layers": {"depth": 60, "width": 128}, "seed": seed, "batch_size": 8},
            "grid": {"weight_scale": [0.8 + 0.05 * i for i in range(n_points)]},
        }
        r = client.post("/v1/sweeps", json=sweep)
        assert r.status_code == 202, r.get_json()
        loc = r.headers["Location"]

        # Kill worker a in the middle of a task (it holds one; the sweep is under way).
        deadline = time.monotonic() + 120
        victim_task = None
        while victim_task is None:
            assert time.monotonic() < deadline, (tmp_path / f"{names[0]}.log").read_text()
            job = client.get(loc).get_json()
            victim_task = current_job(names[0]) if job["progress"]["done"] >= 1 else None
            time.sleep(0.05)
        workers[0].send_signal(signal.SIGKILL)
        workers[0].wait(10)
        killed_at = client.get(loc).get_json()["progress"]["done"]
        assert killed_at < n_points

        # A restarted API (a fresh app on the same Redis) reads the same job.
        restarted = make_jobs_app(str(tmp_path / "unused2.sqlite3"), **config).test_client()
        job = wait_for(restarted, loc, timeout=180)
        assert job["status"] == "succeeded", job
        points = job["result"]["points"]
        indices = [p["index"] for p in points]
        assert sorted(indices) == list(range(n_points))  # every point, exactly once
        assert job["progress"] == {"done": n_points, "total": n_points}
        assert all("verdict" in p for p in points)
        assert RedisJobStore(REDIS_URL or "").stats.read().retried > retried_before  # the redelivery is counted
        print(
            f"\nkill test: killed worker a mid-task {victim_task} at {killed_at}/{n_points} points; "
            f"delivered {len(points)}/{n_points}, each once"
        )

        import redis
        from rq import Queue
        from rq.serializers import JSONSerializer

        q = Queue(queue, connection=redis.Redis.from_url(REDIS_URL), serializer=JSONSerializer)
        failed = [q.fetch_job(i) for i in q.failed_job_registry.get_job_ids()]
        reasons = [(j.id, j.latest_result().exc_string if j and j.latest_result() else None) for j in failed]
        assert not reasons, reasons
    finally:
        for w in workers:
            stop(w)


def test_a_worker_runs_recurrent_and_training_analysis_jobs(tmp_path) -> None:
    """Issues 21 and 22 on the real queue: a recurrent spec and a training spec as analysis jobs, through an RQ
    worker process; the training job's progress counts its steps; both reports equal the synchronous ones."""
    queue = f"test-{uuid.uuid4().hex[:8]}"
    seed = uuid.uuid4().int % 2**31
    config = {"REDIS_URL": REDIS_URL, "GRADSTAB_JOB_QUEUE": queue}
    client = make_jobs_app(str(tmp_path / "unused.sqlite3"), **config).test_client()
    specs = [
        {"recurrent": {"cell": "gru", "steps": 30, "hidden": 16, "input_dim": 4}, "seed": seed},
        {"layers": [4, 8, 8, 2], "batch_size": 4, "seed": seed, "training": {"steps": 9, "examples": 16}},
    ]
    worker = start_worker(queue, f"{queue}-a", tmp_path)
    try:
        jobs = []
        for spec in specs:
            r = client.post("/v1/jobs", json={"analysis": spec})
            assert r.status_code == 202, r.get_json()
            jobs.append(wait_for(client, r.headers["Location"], timeout=180))
    finally:
        stop(worker)
    recurrent, trained = jobs
    assert recurrent["status"] == "succeeded" and recurrent["result"]["axis"] == "time"
    assert "training_steps" not in recurrent["progress"]
    assert trained["status"] == "succeeded"
    assert trained["progress"]["training_steps"] == {"done": 9, "total": 9}
    for spec, job in zip(specs, jobs, strict=True):
        sync = client.post("/v1/analyses", json=spec).get_json()
        assert job["result"]["id"] == sync["id"]
        assert job["result"]["diagnosis"] == sync["diagnosis"]
