"""Counts that every process running tasks adds to, kept where the jobs live (Redis or the SQLite file).

Why in the store and not in prometheus_client: RQ workers run on other machines and open no port,
so their own metrics would never reach the API's /metrics. The API reads these shared counters at
scrape time (service/api/jobs_metrics.py) and in GET /v1/capabilities.

    tasks:<outcome>     tasks run, by outcome: succeeded (every point delivered without an error),
                        failed (a point ended in an error, or the task raised)
    tasks_retried       task runs that were redeliveries (RQ requeued a task whose worker died)
    job_seconds:<le>    jobs by run time (started → every point delivered), one count per bucket
    job_seconds_sum     their summed run time; job_seconds_count: how many
"""

from __future__ import annotations

import contextlib
import sqlite3
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

# Job run time buckets (seconds): a small sweep takes seconds, a large one hours.
JOB_BUCKETS = (1.0, 5.0, 15.0, 60.0, 300.0, 900.0, 3600.0, 4 * 3600.0, 24 * 3600.0)
OUTCOMES = ("succeeded", "failed")


def bucket_of(seconds: float) -> str:
    """The name of the first bucket that holds `seconds` ('+Inf' past the last)."""
    return next((f"{b:g}" for b in JOB_BUCKETS if seconds <= b), "+Inf")


@dataclass(frozen=True)
class TaskStats:
    """A snapshot of the counters (every process's tasks together)."""

    tasks: dict[str, int] = field(default_factory=lambda: dict.fromkeys(OUTCOMES, 0))
    retried: int = 0
    job_buckets: dict[str, int] = field(default_factory=dict)  # per bucket, not cumulative
    job_count: int = 0
    job_seconds_sum: float = 0.0

    @classmethod
    def from_counts(cls, counts: dict[str, float]) -> TaskStats:
        return cls(
            tasks={o: int(counts.get(f"tasks:{o}", 0)) for o in OUTCOMES},
            retried=int(counts.get("tasks_retried", 0)),
            job_buckets={k.split(":", 1)[1]: int(v) for k, v in counts.items() if k.startswith("job_seconds:")},
            job_count=int(counts.get("job_seconds_count", 0)),
            job_seconds_sum=float(counts.get("job_seconds_sum", 0.0)),
        )

    def cumulative_buckets(self) -> list[tuple[str, int]]:
        """Prometheus' `le` buckets: each counts the jobs at or below its bound."""
        out, total = [], 0
        for name in [f"{b:g}" for b in JOB_BUCKETS] + ["+Inf"]:
            total += self.job_buckets.get(name, 0)
            out.append((name, total))
        return out

    def summary(self) -> dict[str, Any]:
        """What GET /v1/capabilities shows under jobs."""
        mean = self.job_seconds_sum / self.job_count if self.job_count else None
        return {
            "tasks_succeeded": self.tasks["succeeded"],
            "tasks_failed": self.tasks["failed"],
            "tasks_retried": self.retried,
            "jobs_finished": self.job_count,
            "job_seconds_mean": None if mean is None else round(mean, 3),
        }


def _job_increments(seconds: float) -> dict[str, float]:
    return {f"job_seconds:{bucket_of(seconds)}": 1, "job_seconds_count": 1, "job_seconds_sum": max(0.0, seconds)}


class RedisStats:
    def __init__(self, client: Any, key: str) -> None:
        self.client, self.key = client, key

    def add(self, increments: dict[str, float]) -> None:
        pipe = self.client.pipeline(transaction=False)
        for name, value in increments.items():
            pipe.hincrbyfloat(self.key, name, value)
        pipe.execute()

    def read(self) -> TaskStats:
        raw = self.client.hgetall(self.key)
        return TaskStats.from_counts({k.decode(): float(v) for k, v in raw.items()})


class SQLiteStats:
    def __init__(self, connect: Callable[[], contextlib.AbstractContextManager[sqlite3.Connection]]) -> None:
        self.connect = connect
        with self.connect() as db:
            db.execute("CREATE TABLE IF NOT EXISTS stats (name TEXT PRIMARY KEY, value REAL NOT NULL)")

    def add(self, increments: dict[str, float]) -> None:
        with self.connect() as db:
            db.executemany(
                "INSERT INTO stats (name, value) VALUES (?, ?) ON CONFLICT(name) DO UPDATE SET value = value + ?",
                [(k, v, v) for k, v in increments.items()],
            )

    def read(self) -> TaskStats:
        with self.connect() as db:
            return TaskStats.from_counts(dict(db.execute("SELECT name, value FROM stats").fetchall()))


class Stats:
    """The counters of one store; a failed write is only logged by the caller (never fails a task)."""

    def __init__(self, backend: RedisStats | SQLiteStats) -> None:
        self.backend = backend

    def task_done(self, failed: bool, retried: bool = False) -> None:
        increments: dict[str, float] = {f"tasks:{'failed' if failed else 'succeeded'}": 1}
        if retried:
            increments["tasks_retried"] = 1
        self.backend.add(increments)

    def job_finished(self, seconds: float) -> None:
        self.backend.add(_job_increments(seconds))

    def read(self) -> TaskStats:
        return self.backend.read()
