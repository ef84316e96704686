"""Prometheus metrics that add up across gunicorn workers.

With PROMETHEUS_MULTIPROC_DIR set (service/gunicorn_conf.py sets it before any worker starts)
every worker writes its samples to files there and /metrics merges them; without it
(tests, the CLI) each app keeps its own registry, so apps built in one process never clash.
"""

from __future__ import annotations

import hmac
import math
import os
import platform
import resource
import time
from typing import Any

from flask import Blueprint, Flask, Response, current_app, g, request
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
    multiprocess,
)

import service

from .auth import Unauthorized, is_open_path

LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 90, 120)


def buckets_to(timeout_s: float) -> tuple[float, ...]:
    """LATENCY_BUCKETS up to and including the request timeout, so no request falls only into +Inf."""
    return tuple(sorted({b for b in LATENCY_BUCKETS if b < timeout_s} | {float(timeout_s)}))


def build_labels() -> dict[str, str]:
    import torch

    from service.engine.analysis import ENGINE_VERSION

    return {
        "version": service.__version__,
        "engine_version": ENGINE_VERSION,
        "python": platform.python_version(),
        "torch": torch.__version__,
    }


def multiprocess_dir() -> str | None:
    return os.environ.get("PROMETHEUS_MULTIPROC_DIR") or None


SAMPLE_S = 1.0  # how often the process gauges are refreshed


class Metrics:
    def __init__(self, timeout_s: float = 120.0) -> None:
        """`timeout_s`: the worker timeout (GRADSTAB_TIMEOUT), the top latency bucket."""
        self.multiprocess = multiprocess_dir() is not None
        self.collectors: list[Any] = []
        # In multiprocess mode the samples live in files; this registry only owns the objects.
        self.registry = CollectorRegistry(auto_describe=True)
        reg = self.registry
        self.requests = Counter(
            "gradstab_http_requests_total",
            "HTTP requests by endpoint, method and status.",
            ["endpoint", "method", "status"],
            registry=reg,
        )
        self.latency = Histogram(
            "gradstab_http_request_duration_seconds",
            "Request latency by endpoint and status.",
            ["endpoint", "method", "status"],
            buckets=buckets_to(timeout_s),
            registry=reg,
        )
        self.analyses = Counter(
            "gradstab_analyses_total",
            "Completed analyses by verdict and dtype.",
            ["verdict", "dtype"],
            registry=reg,
        )
        self.engine_seconds = Histogram(
            "gradstab_engine_duration_seconds",
            "Engine time per analysis (runtime.elapsed_ms).",
            ["dtype"],
            buckets=buckets_to(timeout_s),
            registry=reg,
        )
        self.refusals = Counter(
            "gradstab_refused_requests_total",
            "Requests refused with a 4xx, by reason.",
            ["reason"],
            registry=reg,
        )
        # Labelled with the caller's role (instructor, student, anonymous), or with the API key's name where the
        # operator opts in (GRADSTAB_METRICS_KEY_NAMES; bounded: names come from the operator's config).
        self.requests_by_key = Counter(
            "gradstab_requests_by_key_total",
            "Requests by caller (the key's role, or its name with GRADSTAB_METRICS_KEY_NAMES) and status.",
            ["key", "status"],
            registry=reg,
        )
        self.grades = Counter(
            "gradstab_grades_total",
            "Grading runs by caller (as gradstab_requests_by_key_total), output format and whether gradable.",
            ["key", "format", "gradable"],
            registry=reg,
        )
        self.cache = Counter(
            "gradstab_report_cache_total",
            "Report cache lookups by backend and result (hit|miss).",
            ["backend", "result"],
            registry=reg,
        )

        self.cut_off_requests = Counter(
            "gradstab_requests_cut_off_total",
            "Requests stopped at the soft deadline (stage=soft, 503) or by the worker timeout (stage=hard).",
            ["stage"],
            registry=reg,
        )

        self.redis_open = Gauge(
            "gradstab_redis_circuit_open",
            "1 while a component skips Redis after a failed call (circuit breaker open), else 0; any worker.",
            ["component"],
            registry=reg,
            multiprocess_mode="max",
        )
        self.redis_skips = Counter(
            "gradstab_redis_skipped_total",
            "Redis calls skipped because the circuit breaker was open.",
            ["component"],
            registry=reg,
        )

        # Build information (constant 1) and this worker's memory, per live worker (pid label).
        self.build_info = Gauge(
            "gradstab_build_info",
            "Versions of the running service (value 1).",
            ["version", "engine_version", "python", "torch"],
            registry=reg,
            multiprocess_mode="max",
        )
        self.build_info.labels(**build_labels()).set(1)
        self.rss = Gauge(
            "gradstab_process_resident_memory_bytes",
            "Resident memory of each live worker, after its latest request.",
            registry=reg,
            multiprocess_mode="liveall",
        )
        self.max_rss = Gauge(
            "gradstab_process_max_resident_memory_bytes",
            "Peak resident memory of each live worker since it started.",
            registry=reg,
            multiprocess_mode="liveall",
        )
        self.cpu = Gauge(
            "gradstab_process_cpu_seconds",
            "CPU time (user + system) of each live worker since it started.",
            registry=reg,
            multiprocess_mode="liveall",
        )
        self._sampled = -math.inf
        self.sample_process()

    def sample_process(self) -> None:
        """This process's memory and CPU (/proc and getrusage), after a request, at most every SAMPLE_S seconds
        (issue 20 item 7: three syscalls and a file per request were a tenth of a millisecond)."""
        now = time.monotonic()
        if now - self._sampled < SAMPLE_S:
            return
        self._sampled = now
        usage = resource.getrusage(resource.RUSAGE_SELF)
        self.max_rss.set(usage.ru_maxrss * 1024)  # kilobytes on Linux
        self.cpu.set(usage.ru_utime + usage.ru_stime)
        try:
            with open("/proc/self/statm", encoding="ascii") as f:
                self.rss.set(int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE"))
        except (OSError, ValueError, IndexError):
            self.rss.set(usage.ru_maxrss * 1024)

    def redis_circuit(self, component: str, is_open: bool) -> None:
        self.redis_open.labels(component=component).set(1 if is_open else 0)

    def redis_skipped(self, component: str) -> None:
        self.redis_skips.labels(component=component).inc()

    def cut_off(self, stage: str) -> None:
        self.cut_off_requests.labels(stage=stage).inc()

    def refused(self, reason: str) -> None:
        self.refusals.labels(reason=reason).inc()

    def analysed(self, report: dict[str, Any]) -> None:
        """After each engine run (ReportService.on_analysed), from the report's wire form."""
        dtype = report["runtime"]["dtype"]
        self.analyses.labels(verdict=report["diagnosis"]["verdict"], dtype=dtype).inc()
        self.engine_seconds.labels(dtype=dtype).observe(report["runtime"]["elapsed_ms"] / 1000.0)

    def cache_lookup(self, backend: str, hit: bool) -> None:
        """After each report cache lookup (ReportService.on_lookup)."""
        self.cache.labels(backend=backend, result="hit" if hit else "miss").inc()

    def graded(self, key: str, fmt: str, gradable: bool) -> None:
        self.grades.labels(key=key, format=fmt, gradable=str(gradable).lower()).inc()

    def add_collector(self, collector: Any) -> None:
        """A collector read at scrape time from shared state (the job queue), not summed over workers."""
        self.collectors.append(collector)
        if not self.multiprocess:
            self.registry.register(collector)

    def exposition(self) -> bytes:
        if self.multiprocess:
            merged = CollectorRegistry()
            multiprocess.MultiProcessCollector(merged)
            for collector in self.collectors:
                merged.register(collector)
            return generate_latest(merged)
        return generate_latest(self.registry)


def _endpoint_label() -> str:
    # The route pattern, not the raw path: fuzzed or hostile URLs must not create series.
    rule = request.url_rule
    return rule.rule if rule is not None else "unmatched"


def _start_timer() -> None:
    g.started = time.perf_counter()


def _observe(response: Response) -> Response:
    started = g.get("started")
    if started is not None:
        m: Metrics = current_app.extensions["gradstab"].metrics
        labels = {"endpoint": _endpoint_label(), "method": request.method, "status": str(response.status_code)}
        m.requests.labels(**labels).inc()
        m.latency.labels(**labels).observe(time.perf_counter() - started)
        m.sample_process()
    return response


bp = Blueprint("metrics", __name__)


@bp.get("/metrics")
def metrics() -> Response:
    """Prometheus text exposition (merged across workers in multiprocess mode). With GRADSTAB_METRICS_TOKEN set,
    only for `Authorization: Bearer <token>` (Prometheus: `authorization: {credentials: <token>}`)."""
    token = current_app.config["GRADSTAB_SETTINGS"].metrics_token
    if token:
        given = request.headers.get("Authorization", "")
        if not (given[:7].lower() == "bearer " and hmac.compare_digest(given[7:].strip().encode(), token.encode())):
            raise Unauthorized("GET /metrics needs 'Authorization: Bearer <GRADSTAB_METRICS_TOKEN>'.")
    body = current_app.extensions["gradstab"].metrics.exposition()
    return Response(body, content_type=CONTENT_TYPE_LATEST)


def caller_label() -> str:
    """The caller as metrics name it: the key's role (instructor, student) or anonymous; the key's own name only
    where the operator opts in (GRADSTAB_METRICS_KEY_NAMES), since whoever reads the metrics learns who calls."""
    key = g.get("api_key")
    if key is None:
        return "anonymous"
    return key.name if current_app.config["GRADSTAB_SETTINGS"].metrics_key_names else key.role


def init_app(app: Flask) -> None:
    app.before_request(_start_timer)
    app.after_request(_observe)
    app.register_blueprint(bp)


def count_by_key(app: Flask) -> None:
    """Requests by caller (after auth has named it); probes and /metrics are not counted."""

    @app.after_request
    def count(response: Response) -> Response:
        if not is_open_path(request.path):
            m: Metrics = current_app.extensions["gradstab"].metrics
            m.requests_by_key.labels(key=caller_label(), status=str(response.status_code)).inc()
        return response
