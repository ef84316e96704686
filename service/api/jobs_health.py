"""The job queue's health for people and for Prometheus: GET /v1/capabilities' `jobs` and /metrics' gradstab_job_*.

Read at request or scrape time from where the jobs live (RQ's registries, the store's shared counters),
not counted in this process: RQ workers run elsewhere and open no port, and one gunicorn worker's
counters would miss the others'.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from typing import Any

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, HistogramMetricFamily, Metric

from service.jobs.service import JobService
from service.jobs.stats import TaskStats

log = logging.getLogger("service.api")


def _stats(jobs: JobService) -> tuple[TaskStats | None, str | None]:
    try:
        return jobs.store.stats.read(), None
    except Exception as exc:  # Redis or the SQLite file: report it, never fail the request or the scrape
        return None, f"{type(exc).__name__}: {exc}"


def jobs_capabilities(jobs: JobService) -> dict[str, Any]:
    """Backend, queue, live workers, depth, running tasks, task outcomes and job run times."""
    health = jobs.health()
    stats, error = _stats(jobs)
    out = health.as_dict()
    out["error"] = health.error or error
    out.update((stats or TaskStats()).summary())
    return out


class JobQueueCollector:
    """A prometheus_client custom collector over one JobService."""

    def __init__(self, jobs: JobService) -> None:
        self.jobs = jobs

    def describe(self) -> list[Metric]:
        return []  # no describe-time collect: registering must not touch Redis

    def collect(self) -> Iterator[Metric]:
        health = self.jobs.health()
        labels = ["backend", "queue"]
        values = [health.backend, health.queue or ""]
        for name, text, value in (
            (
                "gradstab_job_workers",
                "Live workers consuming the job queue (in-process: this process's threads).",
                health.workers,
            ),
            ("gradstab_job_queue_depth", "Tasks waiting in the job queue for a worker.", health.queued),
            ("gradstab_job_tasks_running", "Tasks a worker is running now.", health.running),
        ):
            if value is not None:
                gauge = GaugeMetricFamily(name, text, labels=labels)
                gauge.add_metric(values, value)
                yield gauge
        up = GaugeMetricFamily("gradstab_job_queue_up", "1 when the job queue could be read, else 0.", labels=labels)
        up.add_metric(values, 0 if health.error else 1)
        yield up
        stats, _error = _stats(self.jobs)
        if stats is None:
            return
        tasks = CounterMetricFamily(
            "gradstab_job_tasks",
            "Tasks run, by outcome (failed: a point errored or the task raised).",
            labels=["outcome"],
        )
        for outcome, count in stats.tasks.items():
            tasks.add_metric([outcome], count)
        yield tasks
        retried = CounterMetricFamily("gradstab_job_tasks_retried", "Task runs that were redeliveries (lost worker).")
        retried.add_metric([], stats.retried)
        yield retried
        duration = HistogramMetricFamily(
            "gradstab_job_duration_seconds",
            "Run time of finished jobs, from the first point started to the last delivered.",
        )
        duration.add_metric([], stats.cumulative_buckets(), stats.job_seconds_sum)
        yield duration
