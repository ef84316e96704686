"""Dispatch a job's points as tasks: to RQ on Redis (workers anywhere), or to a thread pool in
this process (no REDIS_URL). Either way a task is `runner.run_points(job_id, chunk)`.
"""

from __future__ import annotations

import logging
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any, Protocol

from .errors import StoreUnavailable
from .health import QueueHealth, rq_health
from .runner import run_points
from .settings import JobSettings
from .store import JobStore

log = logging.getLogger("service.jobs")

TASK = "service.jobs.tasks.run_points"  # what an RQ worker imports and calls
RESULT_TTL_S = 300  # RQ's own record of a finished task (a count of delivered points)
RETRIES = 3  # redeliveries of a chunk whose worker died (RQ's abandoned-job cleanup)


def chunks(total: int, size: int) -> list[list[int]]:
    return [list(range(i, min(i + size, total))) for i in range(0, total, size)]


class Dispatcher(Protocol):
    backend: str

    def submit(self, job_id: str, total: int) -> None: ...

    def health(self) -> QueueHealth: ...


class ThreadDispatcher:
    """The in-process pool: threads, not forked processes (torch's thread pools and fork do not mix)."""

    backend = "in-process"

    def __init__(self, store: JobStore, settings: JobSettings, cache: Any = None) -> None:
        self.store = store
        self.settings = settings
        self.cache = cache
        self.executor = ThreadPoolExecutor(settings.threads, thread_name_prefix="gradstab-job")
        self._pending, self._running = 0, 0
        self._lock = threading.Lock()

    def _run(self, job_id: str, indices: list[int]) -> None:
        with self._lock:
            self._pending, self._running = self._pending - 1, self._running + 1
        try:
            run_points(self.store, self.settings.ttl_s, job_id, indices, self.cache)
        except Exception:
            log.exception("in-process task failed", extra={"job_id": job_id})
        finally:
            with self._lock:
                self._running -= 1

    def health(self) -> QueueHealth:
        """This server process's pool: its threads always consume it (other gunicorn workers have their own)."""
        with self._lock:
            return QueueHealth("in-process", None, self.settings.threads, self._pending, self._running)

    def submit(self, job_id: str, total: int) -> None:
        for chunk in chunks(total, self.settings.chunk):
            with self._lock:
                self._pending += 1
            self.executor.submit(self._run, job_id, chunk)


class RQDispatcher:
    """One RQ job per chunk of points on the queue GRADSTAB_JOB_QUEUE, JSON-serialised (no pickle)."""

    backend = "rq"

    def __init__(self, settings: JobSettings) -> None:
        import redis
        from rq import Queue
        from rq.serializers import JSONSerializer

        assert settings.redis_url
        self.settings = settings
        self.connection = redis.Redis.from_url(settings.redis_url, socket_timeout=5.0, socket_connect_timeout=2.0)
        self.queue = Queue(settings.queue, connection=self.connection, serializer=JSONSerializer)
        self._errors = (redis.RedisError, OSError)

    def submit(self, job_id: str, total: int) -> None:
        from rq import Queue, Retry

        s = self.settings
        data = [
            Queue.prepare_data(
                TASK,
                args=(job_id, chunk),
                timeout=s.task_timeout_s,
                # The result lives in the job store. Not 0: RQ 2.12 deletes a job with result_ttl=0 by
                # walking its executions, and a redelivered job's dead execution (expired) makes that
                # raise, filing a delivered task as failed.
                result_ttl=RESULT_TTL_S,
                failure_ttl=s.ttl_s,
                description=f"gradstab job {job_id} points {chunk[0]}..{chunk[-1]}",
                retry=Retry(max=RETRIES),
            )
            for chunk in chunks(total, s.chunk)
        ]
        try:
            self.queue.enqueue_many(data)
        except self._errors as exc:
            raise StoreUnavailable(f"the queue (Redis) is unavailable: {exc}") from exc

    def health(self) -> QueueHealth:
        return rq_health(self.queue, self.settings.heartbeat_s, time.time())
