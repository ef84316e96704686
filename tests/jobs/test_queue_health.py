"""Queue health: live workers, depth, task outcomes and job run times in GET /v1/capabilities and /metrics;
a job that waits for a worker that does not exist says so (`waiting`), in its 202 and in GET.

The Redis half needs TEST_REDIS_URL (.ci/run starts redis-server); the rest runs everywhere.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import uuid
from datetime import datetime, timezone

import pytest
from prometheus_client.parser import text_string_to_metric_families

from service.jobs.health import QueueHealth, waiting
from service.jobs.stats import JOB_BUCKETS, TaskStats, bucket_of

from .conftest import SWEEP_2X2, make_jobs_app, wait_for

REDIS_URL = os.environ.get("TEST_REDIS_URL")
needs_redis = pytest.mark.skipif(not REDIS_URL, reason="TEST_REDIS_URL is not set (.ci/run sets it)")


def samples(client) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    text = client.get("/metrics").get_data(as_text=True)
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


def settled(client, **expected: int) -> dict:
    """GET /v1/capabilities' jobs once its counters reach `expected`: a task records its outcome just after it
    delivers its last point, so a job can read succeeded a moment before its last task is counted."""
    deadline = time.monotonic() + 30
    while True:
        jobs = client.get("/v1/capabilities").get_json()["jobs"]
        if all(jobs[k] == v for k, v in expected.items()) or time.monotonic() > deadline:
            return jobs
        time.sleep(0.05)


def iso(text: str) -> float:
    return datetime.fromisoformat(text).timestamp()


def test_buckets_hold_each_time_once() -> None:
    assert bucket_of(0.2) == "1" and bucket_of(1.0) == "1" and bucket_of(1.01) == "5"
    assert bucket_of(JOB_BUCKETS[-1] * 2) == "+Inf"
    stats = TaskStats(job_buckets={"1": 2, "60": 1, "+Inf": 1}, job_count=4, job_seconds_sum=1e6)
    cumulative = dict(stats.cumulative_buckets())
    assert cumulative["1"] == 2 and cumulative["15"] == 2 and cumulative["60"] == 3 and cumulative["+Inf"] == 4


def test_waiting_says_since_when() -> None:
    created = 1_000.0
    never = QueueHealth("rq", "q", 0, 3, 0, worker_seen_at=None)
    why = waiting(never, created)
    assert why is not None and why["reason"] == "no_worker"
    assert why["since"] == datetime.fromtimestamp(created, tz=timezone.utc)
    assert "'q'" in why["detail"] and "make worker" in why["detail"] and "REDIS_URL" in why["detail"]
    lost = QueueHealth("rq", "q", 0, 3, 0, worker_seen_at=created + 50)  # the last worker went away later
    assert waiting(lost, created)["since"] == datetime.fromtimestamp(created + 50, tz=timezone.utc)
    assert waiting(QueueHealth("rq", "q", 1, 3, 1), created) is None
    assert waiting(QueueHealth("rq", "q", None, None, None, error="down"), created) is None  # unknown is not 0


def test_in_process_health_and_job_run_time(tmp_path) -> None:
    client = make_jobs_app(str(tmp_path / "jobs.sqlite3")).test_client()
    before = client.get("/v1/capabilities").get_json()["jobs"]
    assert before["backend"] == "in-process" and before["workers"] == 2  # GRADSTAB_JOB_THREADS in make_jobs_app
    assert before["tasks_succeeded"] == 0 and before["jobs_finished"] == 0 and before["job_seconds_mean"] is None
    r = client.post("/v1/sweeps", json=SWEEP_2X2)
    assert r.status_code == 202 and "waiting" not in r.get_json()  # the pool's threads always consume it
    job = wait_for(client, r.headers["Location"])
    assert job["status"] == "succeeded" and "waiting" not in job
    after = settled(client, tasks_succeeded=4, running=0)  # the last task leaves `running` just after it counts
    assert after["tasks_succeeded"] == 4 and after["tasks_failed"] == 0 and after["jobs_finished"] == 1
    assert after["queued"] == 0 and after["running"] == 0
    # The run time is the job's own finished_at - started_at, as its body reports them.
    run_s = iso(job["finished_at"]) - iso(job["started_at"])
    assert after["job_seconds_mean"] == pytest.approx(run_s, abs=2e-3)
    m = samples(client)
    assert m[("gradstab_job_workers", (("backend", "in-process"), ("queue", "")))] == 2
    assert m[("gradstab_job_tasks_total", (("outcome", "succeeded"),))] == 4
    assert m[("gradstab_job_duration_seconds_count", ())] == 1
    assert m[("gradstab_job_duration_seconds_sum", ())] == pytest.approx(run_s, abs=2e-3)
    assert m[("gradstab_job_duration_seconds_bucket", (("le", bucket_of(run_s)),))] == 1


def test_a_failed_point_counts_a_failed_task(tmp_path, monkeypatch) -> None:
    from service.jobs import runner

    def refuse(*args, **kwargs):
        raise RuntimeError("refused for the test")

    monkeypatch.setattr(runner, "compute_report", refuse)
    client = make_jobs_app(str(tmp_path / "jobs.sqlite3")).test_client()
    job = wait_for(client, client.post("/v1/sweeps", json=SWEEP_2X2).headers["Location"])
    assert job["status"] == "failed"
    caps = settled(client, tasks_failed=4)
    assert caps["tasks_failed"] == 4 and caps["tasks_succeeded"] == 0


@needs_redis
def test_no_worker_is_said_in_202_get_capabilities_and_metrics(tmp_path) -> None:
    queue = f"test-{uuid.uuid4().hex[:8]}"
    client = make_jobs_app(
        str(tmp_path / "unused.sqlite3"), REDIS_URL=REDIS_URL, GRADSTAB_JOB_QUEUE=queue
    ).test_client()
    sweep = {**SWEEP_2X2, "base": {**SWEEP_2X2["base"], "seed": uuid.uuid4().int % 2**31}}
    r = client.post("/v1/sweeps", json=sweep)
    assert r.status_code == 202
    body = r.get_json()
    assert body["status"] == "queued"
    assert body["waiting"]["reason"] == "no_worker" and body["waiting"]["since"] == body["created_at"]
    assert queue in body["waiting"]["detail"]
    got = client.get(r.headers["Location"]).get_json()
    assert got["waiting"] == body["waiting"]
    caps = client.get("/v1/capabilities").get_json()["jobs"]
    assert caps["backend"] == "rq" and caps["queue"] == queue
    assert caps["workers"] == 0 and caps["queued"] == 4 and caps["worker_seen_at"] is None
    m = samples(client)
    labels = (("backend", "rq"), ("queue", queue))
    assert m[("gradstab_job_workers", labels)] == 0 and m[("gradstab_job_queue_depth", labels)] == 4

    # A worker (its logs in the server's JSON format) drains the queue; the job no longer waits.
    env = os.environ | {"REDIS_URL": REDIS_URL, "GRADSTAB_JOB_QUEUE": queue, "GRADSTAB_TORCH_THREADS": "1"}
    out = subprocess.run(
        [sys.executable, "-m", "service", "worker", "--burst"], env=env, capture_output=True, text=True, timeout=300
    )
    assert out.returncode == 0, out.stderr
    lines = [json.loads(line) for line in out.stdout.splitlines() if line.strip()]
    assert lines and all({"ts", "level", "logger", "message"} <= set(e) for e in lines)
    assert all(datetime.fromisoformat(e["ts"]).tzinfo is not None for e in lines)
    job = wait_for(client, r.headers["Location"], timeout=30)
    assert job["status"] == "succeeded" and "waiting" not in job
    caps = client.get("/v1/capabilities").get_json()["jobs"]
    assert caps["queued"] == 0 and caps["worker_seen_at"] is not None
    assert iso(caps["worker_seen_at"]) >= iso(job["created_at"])
