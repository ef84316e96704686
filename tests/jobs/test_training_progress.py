"""An analysis job with `training` reports its probe's steps as progress (issue 22: "progress is the step count"):
written by the worker through service.engine.progress, kept by both stores, documented by JobSchema."""

from __future__ import annotations

import os
import uuid
from typing import Any

import pytest

from schemas.jobs import JobSchema
from service.jobs import runner
from service.jobs.model import JobRecord, now
from service.jobs.store import RedisJobStore, SQLiteJobStore

from .conftest import wait_for

TRAINING_SPEC: dict[str, Any] = {
    "layers": [4, 8, 8, 2],
    "batch_size": 4,
    "verify_recommendations": False,
    "training": {"steps": 7, "examples": 16},
}


def test_an_analysis_job_with_training_ends_with_every_step_counted(client) -> None:
    r = client.post("/v1/jobs", json={"analysis": TRAINING_SPEC})
    assert r.status_code == 202, r.get_json()
    job = wait_for(client, r.headers["Location"])
    assert job["status"] == "succeeded"
    assert job["progress"] == {"done": 1, "total": 1, "training_steps": {"done": 7, "total": 7}}
    assert len(job["result"]["training"]["steps"]) == 7
    assert JobSchema().validate(job) == {}


def test_a_job_without_training_has_no_step_count(client) -> None:
    r = client.post("/v1/jobs", json={"analysis": {"layers": [4, 8, 2], "batch_size": 4}})
    job = wait_for(client, r.headers["Location"])
    assert job["progress"] == {"done": 1, "total": 1}


class _Recorder:
    def __init__(self, fail: bool = False) -> None:
        self.calls: list[tuple[str, int, int]] = []
        self.fail = fail

    def set_training_steps(self, job_id: str, done: int, total: int) -> None:
        self.calls.append((job_id, done, total))
        if self.fail:
            raise ConnectionError("store down")


def test_the_step_writer_is_throttled_and_always_writes_the_last_step() -> None:
    store = _Recorder()
    write = runner._step_writer(store, "j")  # type: ignore[arg-type]
    for k in range(1, 1001):
        write(k, 1000)
    assert store.calls[0] == ("j", 1, 1000) and store.calls[-1] == ("j", 1000, 1000)
    assert len(store.calls) < 1000  # a thousand fast steps are not a thousand store writes


def test_a_failing_store_fails_no_analysis() -> None:
    store = _Recorder(fail=True)
    write = runner._step_writer(store, "j")  # type: ignore[arg-type]
    write(3, 3)  # logged, not raised
    assert store.calls == [("j", 3, 3)]


def _roundtrip(store: Any) -> None:
    record = JobRecord(id=uuid.uuid4().hex, kind="analysis", total=1, created_at=now())
    store.create(record, 60)
    assert store.get(record.id).training_steps is None
    store.set_training_steps(record.id, 0, 50)
    assert store.get(record.id).training_steps == (0, 50)
    store.set_training_steps(record.id, 50, 50)
    assert store.get(record.id).training_steps == (50, 50)
    store.delete(record.id)
    assert store.get(record.id) is None


def test_sqlite_store_keeps_the_step_count(tmp_path) -> None:
    _roundtrip(SQLiteJobStore(str(tmp_path / "s.sqlite3")))


@pytest.mark.skipif(not os.environ.get("TEST_REDIS_URL"), reason="TEST_REDIS_URL is not set (.ci/run sets it)")
def test_redis_store_keeps_the_step_count() -> None:
    _roundtrip(RedisJobStore(os.environ["TEST_REDIS_URL"], prefix=f"test:{uuid.uuid4().hex}:"))
