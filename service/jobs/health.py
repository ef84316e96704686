"""Is anyone consuming the queue? Live workers, queue depth, and since when no worker has been seen.

Why: with REDIS_URL and no `make worker`, a job would stay `queued` forever with nothing saying
why. RQ registers each worker under the queue's worker set and renews the worker's key on every
heartbeat; a worker counts as live while its last heartbeat is younger than its TTL
(`worker_ttl`, 3 × GRADSTAB_WORKER_HEARTBEAT + 15 s), so one killed with SIGKILL stops counting
within that time. Every live sighting (a worker's heartbeat, or the API seeing one) is written to
`gradstab:queue:<name>:worker_seen`, which says since when a queue has been without one.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any

SEEN_KEY = "gradstab:queue:{queue}:worker_seen"


def worker_ttl_s(heartbeat_s: int) -> int:
    """How long a silent worker still counts as live (what service.jobs.worker gives RQ as worker_ttl)."""
    return 3 * heartbeat_s + 15


@dataclass(frozen=True)
class QueueHealth:
    backend: str  # "rq" or "in-process"
    queue: str | None  # the RQ queue name (GRADSTAB_JOB_QUEUE); None in-process
    workers: int | None  # live workers consuming the queue; None where it could not be read
    queued: int | None  # tasks waiting for a worker
    running: int | None  # tasks a worker is running now
    worker_seen_at: float | None = None  # when a live worker was last seen (epoch seconds); None: never
    error: str | None = None  # why the queue could not be read (Redis down)

    @property
    def no_worker(self) -> bool:
        return self.workers == 0

    def as_dict(self) -> dict[str, Any]:
        seen = self.worker_seen_at
        return {
            "backend": self.backend,
            "queue": self.queue,
            "workers": self.workers,
            "queued": self.queued,
            "running": self.running,
            "worker_seen_at": None if seen is None else datetime.fromtimestamp(seen, tz=timezone.utc),
            "error": self.error,
        }


def note_worker_seen(connection: Any, queue: str, at: float) -> None:
    connection.set(SEEN_KEY.format(queue=queue), repr(at))


def rq_health(queue: Any, heartbeat_s: int, now: float) -> QueueHealth:
    """Read RQ's registries for `queue` (an rq.Queue); a Redis failure becomes `error`, never an exception."""
    import redis
    from rq import Worker
    from rq.registry import StartedJobRegistry

    connection = queue.connection
    try:
        ttl = worker_ttl_s(heartbeat_s)
        live = [
            w
            for w in Worker.all(queue=queue)
            if w.last_heartbeat is not None and now - w.last_heartbeat.timestamp() <= ttl
        ]
        if live:
            note_worker_seen(connection, queue.name, now)
        seen = connection.get(SEEN_KEY.format(queue=queue.name))
        running = StartedJobRegistry(queue.name, connection=connection).count
        return QueueHealth("rq", queue.name, len(live), queue.count, running, float(seen) if seen is not None else None)
    except (redis.RedisError, OSError) as exc:
        return QueueHealth("rq", queue.name, None, None, None, error=f"the queue (Redis) is unavailable: {exc}")


def waiting(health: QueueHealth, created_at: float) -> dict[str, Any] | None:
    """Why an unfinished job makes no progress, and since when; None while a worker consumes its queue."""
    if not health.no_worker:
        return None
    since = max(created_at, health.worker_seen_at or created_at)
    return {
        "reason": "no_worker",
        "since": datetime.fromtimestamp(since, tz=timezone.utc),
        "detail": f"No live worker consumes the queue {health.queue!r}, so no point of this job can start. "
        "Start one with the same REDIS_URL and GRADSTAB_JOB_QUEUE as the API: "
        "`REDIS_URL=redis://HOST:6379/0 make worker` (or `gradstab worker`); the job then runs as it is.",
    }
