"""Job settings: environment variables with documented defaults (no Flask, no torch).

REDIS_URL                        ""        the queue and the job store; empty = in-process
GRADSTAB_JOB_TTL                 86400     seconds a job and its results are kept after it
                                           finishes (and at most after creation while it runs)
GRADSTAB_MAX_SWEEP_POINTS        256       points per sweep (the grid's cross product)
GRADSTAB_MAX_JOB_GFLOP           100000     estimated work of one job, summed over its points
GRADSTAB_JOB_QUOTA               16        unfinished jobs per API key (per client when open); 0 = none
GRADSTAB_JOB_TASK_TIMEOUT        600       per-task time limit in seconds (a task is one chunk of points)
GRADSTAB_SWEEP_CHUNK             1         points per task
GRADSTAB_JOB_THREADS             1         in-process pool threads (no REDIS_URL)
GRADSTAB_JOBS_DB                 <tmp>/gradstab-jobs-<uid>.sqlite3
                                           in-process job store, shared by the server's workers
GRADSTAB_JOB_QUEUE               gradstab  the RQ queue name
GRADSTAB_WORKER_HEARTBEAT        5         seconds between a worker's heartbeats while it runs a task;
                                           a task whose worker misses 3 is requeued
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass, field, fields, replace
from typing import Any


def default_db_path() -> str:
    uid = os.getuid() if hasattr(os, "getuid") else 0
    return os.path.join(tempfile.gettempdir(), f"gradstab-jobs-{uid}.sqlite3")


ENV = {
    "redis_url": "REDIS_URL",
    "ttl_s": "GRADSTAB_JOB_TTL",
    "max_points": "GRADSTAB_MAX_SWEEP_POINTS",
    "max_job_gflop": "GRADSTAB_MAX_JOB_GFLOP",
    "quota": "GRADSTAB_JOB_QUOTA",
    "task_timeout_s": "GRADSTAB_JOB_TASK_TIMEOUT",
    "chunk": "GRADSTAB_SWEEP_CHUNK",
    "threads": "GRADSTAB_JOB_THREADS",
    "db_path": "GRADSTAB_JOBS_DB",
    "queue": "GRADSTAB_JOB_QUEUE",
    "heartbeat_s": "GRADSTAB_WORKER_HEARTBEAT",
}
_MINIMUM = {"ttl_s": 1, "max_points": 1, "task_timeout_s": 1, "chunk": 1, "threads": 1, "heartbeat_s": 1}


@dataclass(frozen=True)
class JobSettings:
    redis_url: str | None = None
    ttl_s: int = 86400
    max_points: int = 256
    max_job_gflop: float = 100000.0
    quota: int = 16
    task_timeout_s: int = 600
    chunk: int = 1
    threads: int = 1
    db_path: str = field(default_factory=default_db_path)
    queue: str = "gradstab"
    heartbeat_s: int = 5

    @classmethod
    def from_env(
        cls, environ: Mapping[str, str] | None = None, overrides: Mapping[str, Any] | None = None
    ) -> JobSettings:
        """Settings from the environment; `overrides` (by variable name, e.g. a Flask config) win."""
        env = dict(os.environ if environ is None else environ)
        over = dict(overrides or {})
        out = cls()
        values: dict[str, Any] = {}
        for f in fields(cls):
            name = ENV[f.name]
            raw = over.get(name, env.get(name))
            if raw is None or raw == "":
                continue
            current = getattr(out, f.name)
            if isinstance(current, bool) or current is None or isinstance(current, str):
                values[f.name] = str(raw)
                continue
            kind = type(current)
            try:
                value = kind(raw)
            except ValueError as exc:
                raise ValueError(f"{name}={raw!r} is not a {kind.__name__}") from exc
            if value < _MINIMUM.get(f.name, 0):
                raise ValueError(f"{name}={value} is below its minimum {_MINIMUM.get(f.name, 0)}")
            values[f.name] = value
        return replace(out, **values)

    @staticmethod
    def env_name(name: str) -> str:
        return ENV[name]
