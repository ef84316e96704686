"""The application factory: the only place where settings, resources and extensions meet.

To add a resource, write a module with `blueprint(settings)` and append it to RESOURCES (it is
then served and documented in OpenAPI). App-wide behaviour (request ids, metrics, API keys, rate
limits) is wired in `create_app`, in the order the request hooks must run.
"""

from __future__ import annotations

import logging
import socket
from collections.abc import Callable, Mapping
from typing import Any

from flask import Flask, current_app, request
from werkzeug.middleware.proxy_fix import ProxyFix

import service
from service.application.assignments import load_directory
from service.application.breaker import CircuitBreaker
from service.application.cache import make_cache
from service.application.deadline import deadline
from service.application.grading import GradingService
from service.application.reports import ReportService
from service.config import Settings
from service.jobs.service import JobService

from . import (
    analyses,
    assignments,
    auth,
    capabilities,
    docs,
    grading,
    health,
    jobs,
    metrics,
    problems,
    ratelimit,
    request_id,
)
from .bodylimit import TIMED_OUT, BodyLimit
from .errors import ProblemError
from .jobs_health import JobQueueCollector
from .jsonio import StrictJSONProvider
from .smorest import Api, Blueprint
from .state import ServiceState

log = logging.getLogger("service.api")

API_DESCRIPTION = (
    "Diagnose exploding and vanishing gradients of an MLP described by a JSON spec: "
    "per-layer gradient and Jacobian-product statistics, a verdict, its causes and verified "
    "fixes. Errors are RFC 9457 problem+json."
)

# Every resource of the API, in the order of the OpenAPI document.
RESOURCES: list[Callable[[Settings], Blueprint]] = [
    analyses.blueprint,
    capabilities.blueprint,
    health.blueprint,
    grading.blueprint,
    assignments.blueprint,
    jobs.blueprint,
]


def _state(settings: Settings) -> ServiceState:
    """Metrics, the report service (cache, engine) and the grading service (assignments)."""
    m = metrics.Metrics(settings.server.timeout)
    breaker = CircuitBreaker(settings.redis_retry_s, on_change=lambda is_open: m.redis_circuit("cache", is_open))
    cache = make_cache(
        settings.redis_url,
        settings.cache_size,
        settings.cache_ttl_s,
        max_bytes=settings.cache_max_mib * 2**20,
        timeout_s=settings.redis_timeout_s,
        breaker=breaker,
        on_skip=lambda: m.redis_skipped("cache"),
    )
    from service.engine.draws import set_cache_mib  # the worker's process (torch is loaded there)

    set_cache_mib(settings.draw_cache_mib)
    reports = ReportService(settings.limits.auto_exact_gflop, cache, m.analysed, m.cache_lookup)
    found = {}
    if settings.assignments_dir:
        # A bad file raises AssignmentError here: the app (and gunicorn) refuses to start.
        found = load_directory(settings.assignments_dir, settings.limits)
        log.info(
            "assignments loaded",
            extra={"count": len(found), "ids": sorted(found), "directory": settings.assignments_dir},
        )
    jobs = JobService.from_settings(settings.jobs, cache)
    m.add_collector(JobQueueCollector(jobs))
    return ServiceState(settings, m, reports, GradingService(reports, settings.limits, found), jobs)


def _contact(settings: Settings) -> dict[str, str]:
    """info.contact: who runs this server (GRADSTAB_CONTACT_NAME, _URL, _EMAIL)."""
    out = {"name": settings.contact_name}
    if settings.contact_url:
        out["url"] = settings.contact_url
    if settings.contact_email:
        out["email"] = settings.contact_email
    return out


class GradstabFlask(Flask):
    """Flask with a soft deadline around each view (GRADSTAB_REQUEST_DEADLINE): past it the view stops
    with DeadlineExceeded, a 503 problem+json, before gunicorn's worker timeout would kill the worker."""

    def dispatch_request(self) -> Any:  # type: ignore[override]
        settings: Settings = self.config["GRADSTAB_SETTINGS"]
        sock = request.environ.get("gunicorn.socket")
        with deadline(settings.server.request_deadline, client_gone=(lambda: peer_closed(sock)) if sock else None):
            return super().dispatch_request()


def refuse_stalled_body() -> None:
    """408 where the body did not arrive within GRADSTAB_BODY_TIMEOUT (bodylimit.BodyLimit read it)."""
    if request.environ.get(TIMED_OUT):
        seconds = current_app.config["GRADSTAB_SETTINGS"].body_timeout_s
        raise ProblemError(
            408,
            "body_timeout",
            f"The request body did not arrive within {seconds:g} s (GRADSTAB_BODY_TIMEOUT); send it at once.",
            title="Request Timeout",
        )


def peer_closed(sock: socket.socket) -> bool:
    """True when the client has closed the connection: a non-blocking peek reads end-of-file. (The request
    body has been read by then; anything still unread means the client is there.)"""
    try:
        return sock.recv(1, socket.MSG_PEEK | socket.MSG_DONTWAIT) == b""
    except BlockingIOError:
        return False
    except OSError:  # reset: gone as well
        return True


def create_app(config: Mapping[str, Any] | None = None) -> Flask:
    """Build the app. `config` overrides Flask settings; GRADSTAB_SETTINGS may hold a Settings
    (tests), else `Settings.from_env()` reads the environment."""
    config = dict(config or {})
    settings: Settings = config.pop("GRADSTAB_SETTINGS", None) or Settings.from_env()
    app = GradstabFlask(__name__)
    app.json = StrictJSONProvider(app)
    app.config.update(
        API_TITLE="Gradient stability service",
        API_VERSION=service.__version__,
        OPENAPI_VERSION="3.0.3",
        OPENAPI_URL_PREFIX="/",
        OPENAPI_JSON_PATH="openapi.json",
        API_SPEC_OPTIONS={
            "info": {
                "description": API_DESCRIPTION,
                "license": {"name": "MIT", "url": "https://opensource.org/license/mit"},
                "contact": _contact(settings),
            },
            # relative: the document describes the server that serves it, wherever it is reached
            "servers": [{"url": "/", "description": "this server"}],
        },
        MAX_CONTENT_LENGTH=settings.limits.max_body_bytes,
        GRADSTAB_SETTINGS=settings,
    )
    app.config.update(config)
    st = app.extensions["gradstab"] = _state(settings)

    request_id.init_app(app)  # first: every later hook and log line has the id
    metrics.init_app(app)
    app.before_request(refuse_stalled_body)  # before auth and limits: nothing waits on a body that never came
    st.api = api = Api(app)  # also registers the problem+json error handlers
    for make_blueprint in RESOURCES:
        api.register_blueprint(make_blueprint(settings))
    app.register_blueprint(docs.bp)
    app.register_blueprint(problems.bp)
    # API keys, then rate limits (whose key is the caller's name), then counts by key name.
    keys = auth.load_keys(settings.api_keys, settings.api_keys_file)
    store = ratelimit.CounterStore(settings.redis_url, settings.redis_timeout_s, settings.ratelimit_db)
    if keys:  # an open service never answers 401
        auth_breaker = CircuitBreaker(
            settings.redis_retry_s, on_change=lambda is_open: st.metrics.redis_circuit("auth", is_open)
        )
        ratelimit.guard_failed_auth(
            app, settings.auth_fail_limit, store, auth_breaker, settings.auth_fail_address_limit, keys
        )
    auth.init_app(app, keys)
    ratelimit.init_app(app, settings.rate_limit, store, settings.course_rate_limit)
    # Cost, not only requests: each analysis that runs is charged its estimated GFLOP to the caller.
    work_breaker = CircuitBreaker(
        settings.redis_retry_s, on_change=lambda is_open: st.metrics.redis_circuit("work", is_open)
    )
    st.reports.admit = ratelimit.work_budget(app, settings.work_limit, store, work_breaker)
    metrics.count_by_key(app)

    # Chunked bodies held to the same limit, and a refused body drained so the 413 reaches the client.
    # Under gunicorn the body is read here, within GRADSTAB_BODY_TIMEOUT (a stalled client gets 408, not the deadline).
    app.wsgi_app = BodyLimit(  # type: ignore[method-assign]
        app.wsgi_app, settings.limits.max_body_bytes, settings.body_timeout_s
    )
    if settings.trusted_proxies:
        # Behind N trusted proxies: the client address, scheme and host are the ones the
        # outermost of them saw (rate limits per client address and logs depend on it).
        n = settings.trusted_proxies
        app.wsgi_app = ProxyFix(app.wsgi_app, x_for=n, x_proto=n, x_host=n)  # type: ignore[method-assign]

    if settings.warm_up:
        health.warm_up(app)
    return app
