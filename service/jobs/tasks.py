"""What an RQ worker runs (`TASK` in queue.py). Settings come from the worker's environment."""

from __future__ import annotations

from functools import cache
from typing import Any

from .runner import run_points as _run_points
from .settings import JobSettings
from .store import RedisJobStore


@cache
def _context() -> tuple[JobSettings, RedisJobStore, Any]:
    from service.application.cache import make_cache
    from service.config import Settings

    app_settings = Settings.from_env()
    settings = app_settings.jobs
    if not settings.redis_url:
        raise RuntimeError("an RQ worker needs REDIS_URL")
    report_cache = make_cache(settings.redis_url, app_settings.cache_size, app_settings.cache_ttl_s)
    return settings, RedisJobStore(settings.redis_url), report_cache


def _is_redelivery() -> bool:
    """RQ counts a redelivered task's retries down from queue.RETRIES."""
    from rq import get_current_job

    from .queue import RETRIES

    job = get_current_job()
    return job is not None and job.retries_left is not None and job.retries_left < RETRIES


def run_points(job_id: str, indices: list[int]) -> int:
    settings, store, report_cache = _context()
    return _run_points(store, settings.ttl_s, job_id, indices, report_cache, retried=_is_redelivery())
