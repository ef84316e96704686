"""Wiring for autograders: API keys, rate limits, the report cache, assignments, and
the grading resources. `init_app` is the one extension create_app calls for all of it.

Every setting has a default and an environment variable; a key in the Flask config with the
same name overrides the environment (tests use that):

    GRADSTAB_API_KEYS        ""            name:key[:role],... (role instructor|student)
    GRADSTAB_API_KEYS_FILE   ""            file of name:key[:role] lines, or JSON
    GRADSTAB_RATE_LIMIT      "120/minute"  per key (per client address when open); "off" disables
    REDIS_URL                ""            shared rate-limit counters and report cache
    GRADSTAB_CACHE_SIZE      256           in-process LRU entries per worker (0: no cache at all)
    GRADSTAB_CACHE_TTL       604800        seconds a report stays in Redis (0: no expiry)
    GRADSTAB_ASSIGNMENTS_DIR ""            assignment files (.json/.yaml/.yml); empty: none
"""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from flask import Flask, Response, current_app, request
from prometheus_client import Counter

from schemas.report import dump_report
from service.cache import CachedReport, ReportCache, get_or_compute, make_cache
from service.engine.spec import ModelSpec
from service.grading.assignments import Assignment, load_directory

from . import auth, ratelimit
from .jsonio import dumps_bytes
from .smorest import Api
from .state import state

log = logging.getLogger("service.autograder")

DEFAULT_RATE_LIMIT = "120/minute"


def _setting(config: Mapping[str, Any], env: Mapping[str, str], name: str, default: str) -> str:
    value = config.get(name)
    if value is None:
        value = env.get(name)
    return default if value is None else str(value).strip()


def _int_setting(config: Mapping[str, Any], env: Mapping[str, str], name: str, default: int) -> int:
    raw = _setting(config, env, name, str(default)) or str(default)
    try:
        value = int(raw)
    except ValueError as exc:
        raise ValueError(f"{name}={raw!r} is not an integer") from exc
    if value < 0:
        raise ValueError(f"{name}={value} must be ≥ 0")
    return value


@dataclass(frozen=True)
class AutograderSettings:
    api_keys: str = ""
    api_keys_file: str = ""
    rate_limit: str | None = DEFAULT_RATE_LIMIT
    redis_url: str | None = None
    cache_size: int = 256
    cache_ttl_s: int = 7 * 24 * 3600
    assignments_dir: str | None = None

    @classmethod
    def load(cls, config: Mapping[str, Any], environ: Mapping[str, str] | None = None) -> AutograderSettings:
        env = os.environ if environ is None else environ
        limit = _setting(config, env, "GRADSTAB_RATE_LIMIT", DEFAULT_RATE_LIMIT)
        return cls(
            api_keys=_setting(config, env, "GRADSTAB_API_KEYS", ""),
            api_keys_file=_setting(config, env, "GRADSTAB_API_KEYS_FILE", ""),
            rate_limit=None if limit.lower() in ("", "off", "none", "0") else limit,
            redis_url=_setting(config, env, "REDIS_URL", "") or None,
            cache_size=_int_setting(config, env, "GRADSTAB_CACHE_SIZE", cls.cache_size),
            cache_ttl_s=_int_setting(config, env, "GRADSTAB_CACHE_TTL", cls.cache_ttl_s),
            assignments_dir=_setting(config, env, "GRADSTAB_ASSIGNMENTS_DIR", "") or None,
        )


class AutograderMetrics:
    """Counters labelled with the API key's name (bounded: names come from the operator's config)."""

    def __init__(self, registry: Any) -> None:
        self.requests = Counter(
            "gradstab_requests_by_key_total",
            "Requests by API key name and status.",
            ["key", "status"],
            registry=registry,
        )
        self.grades = Counter(
            "gradstab_grades_total",
            "Grading runs by API key, output format and whether gradable.",
            ["key", "format", "gradable"],
            registry=registry,
        )
        self.cache = Counter(
            "gradstab_report_cache_total",
            "Report cache lookups by backend and result (hit|miss).",
            ["backend", "result"],
            registry=registry,
        )


@dataclass
class AutograderState:
    settings: AutograderSettings
    cache: ReportCache
    metrics: AutograderMetrics
    assignments: dict[str, Assignment] = field(default_factory=dict)


def autograder() -> AutograderState:
    return current_app.extensions["gradstab_autograder"]


def cached_report(spec: ModelSpec) -> CachedReport:
    """The report's JSON dict for `spec`, from the cache or the engine (which then fills it)."""
    from .analyses import run_analysis

    st, ag = state(), autograder()

    def compute() -> dict[str, Any]:
        report = run_analysis(spec, st.settings)
        st.metrics.analysed(report.diagnosis.verdict, report.runtime.dtype, report.runtime.elapsed_ms)
        return dump_report(report)  # the shared schema: a new ReportSchema() costs ~1.2 ms

    result = get_or_compute(ag.cache, spec, st.settings.limits.auto_exact_gflop, compute)
    ag.metrics.cache.labels(backend=ag.cache.backend, result="hit" if result.hit else "miss").inc()
    return result


def cache_response(cached: CachedReport) -> Response:
    """The report as the client gets it, plus `cache: {"hit": ...}` and an X-Cache header.

    A finished Response: flask-smorest passes it through, so the report is not dumped twice."""
    body = {**cached.report, "cache": {"hit": cached.hit}}
    response = current_app.response_class(dumps_bytes(body) + b"\n", mimetype="application/json")
    response.headers["X-Cache"] = "hit" if cached.hit else "miss"
    return response


def init_app(app: Flask, api: Api) -> None:
    """Keys, then rate limits (whose key is the caller's name), the cache, assignments, resources."""
    from . import grading

    settings = AutograderSettings.load(app.config)
    gradstab = app.extensions["gradstab"]
    keys = auth.load_keys(settings.api_keys, settings.api_keys_file)
    assignments: dict[str, Assignment] = {}
    if settings.assignments_dir:
        # A bad file raises AssignmentError here: the app (and gunicorn) refuses to start.
        assignments = load_directory(settings.assignments_dir, gradstab.settings.limits)
        log.info(
            "assignments loaded",
            extra={"count": len(assignments), "ids": sorted(assignments), "directory": settings.assignments_dir},
        )
    cache = make_cache(settings.redis_url, settings.cache_size, settings.cache_ttl_s)
    metrics = AutograderMetrics(gradstab.metrics.registry)
    app.extensions["gradstab_autograder"] = AutograderState(settings, cache, metrics, assignments)

    auth.init_app(app, keys)
    ratelimit.init_app(app, settings.rate_limit, settings.redis_url)

    @app.after_request
    def count_by_key(response: Any) -> Any:
        if not auth.is_open_path(request.path):
            metrics.requests.labels(key=auth.caller_name(), status=str(response.status_code)).inc()
        return response

    api.register_blueprint(grading.grade_blueprint())
    api.register_blueprint(grading.assignments_blueprint())
