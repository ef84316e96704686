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


def run_points(job_id: str, indices: list[int]) -> int:
    settings, store, report_cache = _context()
    return _run_points(store, settings.ttl_s, job_id, indices, report_cache)
