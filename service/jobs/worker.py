"""`make worker` / `gradstab worker`: an RQ worker for the job queue (needs REDIS_URL).

Why a SimpleWorker subclass: RQ's default Worker forks a work horse per task, and a horse forked
from a process that has used torch can deadlock in its OpenMP/thread pools (or, forked from one
that has not, re-imports torch for every task). A SimpleWorker runs tasks in its own process, so
torch is imported once, after any fork, and stays warm. What the forking Worker adds, heartbeats
while a task runs, is kept: a thread renews the task's entry in RQ's StartedJobRegistry every
GRADSTAB_WORKER_HEARTBEAT seconds. A worker killed with SIGKILL stops renewing; after three missed
beats (+5 s) any other worker's maintenance (every three beats) moves the task out of the registry and,
with retries left, back onto the queue (RQ's abandoned-job handling, `Retry(max=3)`).

Why `serve` loops: RQ's work loop retries a failed dequeue, but any other Redis call that fails (maintenance,
its heartbeat, a job's bookkeeping after the job ran) ends it with "unhandled exception, quitting", and the
process would exit with Redis. `serve` waits for Redis with exponential backoff (RECONNECT_S up to
RECONNECT_MAX_S) and starts a fresh worker, idle or busy when Redis went away, until a stop is asked for.
"""

from __future__ import annotations

import argparse
import logging
import logging.config
import os
import sys
import threading
import time
from collections.abc import Callable
from typing import Any

import redis
from rq import Queue, SimpleWorker
from rq.job import Job
from rq.serializers import JSONSerializer
from rq.worker import WorkerStatus

from .health import note_worker_seen
from .settings import JobSettings

log = logging.getLogger("service.jobs.worker")
RECONNECT_S = 0.5  # the first wait for Redis after the worker lost it; doubled per failed try
RECONNECT_MAX_S = 30.0


class HeartbeatWorker(SimpleWorker):
    """A SimpleWorker whose running task keeps a short, renewed lease in the StartedJobRegistry."""

    def get_heartbeat_ttl(self, job: Job) -> int:
        # Three beats, plus slack for a starved heartbeat thread on a loaded machine: an early expiry
        # only costs a duplicate run (delivery is first-write-wins), but each one spends a retry.
        return int(self.job_monitoring_interval) * 3 + 5

    def heartbeat(self, timeout: int | None = None, pipeline: Any = None) -> None:
        """RQ's heartbeat, plus the sighting GET /v1/jobs/{id} reads to say since when a queue has no worker."""
        super().heartbeat(timeout, pipeline)
        for queue in self.queues:
            note_worker_seen(pipeline if pipeline is not None else self.connection, queue.name, time.time())

    def _beat(self, job: Job, stop: threading.Event) -> None:
        while not stop.wait(self.job_monitoring_interval):
            try:
                self.maintain_heartbeats(job)
            except Exception:  # a missed beat only risks a redelivery, which delivers nothing twice
                log.warning("heartbeat failed", exc_info=True)

    def execute_job(self, job: Job, queue: Queue) -> None:
        self.prepare_execution(job)
        stop = threading.Event()
        beat = threading.Thread(target=self._beat, args=(job, stop), name="rq-heartbeat", daemon=True)
        beat.start()
        try:
            self.perform_job(job, queue)
        finally:
            stop.set()
            beat.join()
        self.set_state(WorkerStatus.IDLE)


def make_worker(settings: JobSettings, name: str | None = None) -> HeartbeatWorker:
    if not settings.redis_url:
        raise SystemExit("gradstab worker: set REDIS_URL to the Redis the API uses")
    connection = redis.Redis.from_url(settings.redis_url)
    queue = Queue(settings.queue, connection=connection, serializer=JSONSerializer)
    beat = settings.heartbeat_s
    return HeartbeatWorker(
        [queue],
        connection=connection,
        serializer=JSONSerializer,
        name=name,
        job_monitoring_interval=beat,
        maintenance_interval=3 * beat,
        worker_ttl=3 * beat + 15,  # the idle wait on the queue is worker_ttl - 15: maintenance runs while idle too
    )


def serve(
    settings: JobSettings,
    name: str | None = None,
    burst: bool = False,
    sleep: Callable[[float], None] = time.sleep,
    logging_level: str = "INFO",
) -> None:
    """Run workers until one stops on request (SIGTERM, SIGINT) or, with `burst`, empties the queue; a worker
    that quits because Redis went away is replaced once Redis answers again."""
    while True:
        worker = make_worker(settings, name)
        try:
            worker.work(burst=burst, with_scheduler=False, logging_level=logging_level)
        except redis.exceptions.RedisError:  # its teardown could not reach Redis either
            log.warning("worker %s lost Redis", worker.name, exc_info=True)
        if worker._stop_requested or burst:
            return
        _wait_for_redis(worker.connection, sleep)
        if name is not None:  # the same name again: drop the registration the lost worker may have left
            worker.connection.delete(worker.key)


def _wait_for_redis(connection: redis.Redis, sleep: Callable[[float], None]) -> None:
    wait = RECONNECT_S
    while True:
        try:
            connection.ping()
            log.warning("Redis answers again: starting a fresh worker")
            return
        except redis.exceptions.RedisError as exc:
            log.warning("waiting %.1f s for Redis: %s", wait, exc)
            sleep(wait)
            wait = min(2 * wait, RECONNECT_MAX_S)


def main(argv: list[str] | None = None, prog: str = "gradstab worker") -> int:
    parser = argparse.ArgumentParser(prog=prog, description=__doc__.splitlines()[0])
    parser.add_argument("--burst", action="store_true", help="exit when the queue is empty")
    parser.add_argument("--name", default=None, help="worker name (default: RQ's, unique per process)")
    args = parser.parse_args(argv)
    settings = JobSettings.from_env()
    import torch  # once, in this process, before any task: no fork follows

    torch.set_num_threads(int(os.environ.get("GRADSTAB_TORCH_THREADS") or 1))
    from service.config import draw_cache_mib
    from service.engine.draws import set_cache_mib

    set_cache_mib(draw_cache_mib())
    from service.logs import logging_config

    level = os.environ.get("GRADSTAB_LOG_LEVEL", "INFO").upper()
    logging.config.dictConfig(logging_config(level))  # the server's JSON lines; RQ adds no handler of its own then
    serve(settings, args.name, args.burst, logging_level=level)
    return 0


if __name__ == "__main__":
    sys.exit(main())
