"""Per-app state shared by the resources (app.extensions["gradstab"]), built by create_app."""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass, field
from typing import Any

from flask import current_app

from service.application.grading import GradingService
from service.application.reports import ReportService
from service.config import Settings
from service.jobs.service import JobService

from .metrics import Metrics


@dataclass
class ServiceState:
    settings: Settings
    metrics: Metrics
    reports: ReportService  # every analysis: the report cache, then the engine
    grading: GradingService  # rubrics and the assignments kept on the server
    jobs: JobService | None = None  # sweeps and long analyses: RQ with REDIS_URL, else an in-process pool
    ready: bool = False  # set by warm_up, per worker process
    warm_up_ms: float | None = None
    warm_up_error: str | None = None
    api: Any = None  # the flask-smorest Api (its spec feeds /docs)
    # sha256 of (caller, report id) served by this worker: X-Cache says hit only to the same caller
    cache_seen: OrderedDict[str, None] = field(default_factory=OrderedDict)


def state() -> ServiceState:
    return current_app.extensions["gradstab"]
