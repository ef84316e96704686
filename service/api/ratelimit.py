"""Rate limits per API key (per client address when the service is open), with Flask-Limiter.

Counters: with REDIS_URL in Redis, so a limit holds across workers and replicas; else, under
gunicorn, in one SQLite file the server's workers share (GRADSTAB_RATELIMIT_DB, ratelimit_sqlite.py),
so a limit survives a recycled worker; else (the test client, one process) in memory. A breach is a
429 problem+json with Retry-After, and the client knows which key hit which limit. Probes, /metrics
and the API description are never limited.

Students of one course: an instructor key (the course autograder's) that names the student in
`X-Gradstab-Student` (the platform's user or submission id) gets one GRADSTAB_RATE_LIMIT bucket per
student, so a class submitting at a deadline does not starve itself, under a ceiling of
GRADSTAB_COURSE_RATE_LIMIT for the key as a whole, so a leaked key cannot mint unlimited buckets.
Student keys and anonymous callers cannot pick a bucket: the header is ignored for them. Bucket
names hold a hash of the student id, never the id itself (it may be an e-mail address).

One budget per caller (key, or student of an instructor key) across every endpoint (Flask-Limiter's
application limits: a key at its limit on /v1/analyses is at its limit on /v1/grade too). Failed
authentications are limited as well (`guard_failed_auth`): per client address and presented key
(GRADSTAB_AUTH_FAIL_LIMIT), and per address over all keys (GRADSTAB_AUTH_FAIL_ADDRESS_LIMIT), which closes the
address to guessing but not to the valid keys already used from it.
"""

from __future__ import annotations

import hashlib
import logging
import math
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any, TypeVar

from flask import Flask, Response, current_app, g, has_request_context, request
from flask_limiter import ApplicationLimit, Limiter, RateLimitExceeded
from limits import RateLimitItem, parse
from limits.storage import storage_from_string
from limits.strategies import MovingWindowRateLimiter

from service.application.breaker import CircuitBreaker

from . import ratelimit_sqlite
from .auth import ApiKey, is_open_path, match, presented_key
from .errors import problem_response

log = logging.getLogger("service.ratelimit")
T = TypeVar("T")
STUDENT_HEADER = "X-Gradstab-Student"
COURSE_SCOPE = "course"


@dataclass(frozen=True)
class CounterStore:
    """Where the counters live: Redis, else the shared SQLite file, else memory (see the module docstring).
    The request limits, the failed-auth limit and the work budget all count there."""

    redis_url: str | None = None
    redis_timeout_s: float = 2.0
    db_path: str | None = None

    @property
    def uri(self) -> str:
        if self.redis_url:
            return self.redis_url
        return f"{ratelimit_sqlite.SCHEME}://{self.db_path}" if self.db_path else "memory://"

    @property
    def options(self) -> dict[str, Any]:
        timeout = self.redis_timeout_s
        return {"socket_timeout": timeout, "socket_connect_timeout": timeout} if self.redis_url else {}


def student_bucket() -> str | None:
    """A hash of the student an instructor key names, or None (no header, or not an instructor key)."""
    key = g.get("api_key")
    student = request.headers.get(STUDENT_HEADER, "").strip()
    if key is None or key.role != "instructor" or not student:
        return None
    return hashlib.sha256(f"{key.name}\0{student}".encode()).hexdigest()[:20]


def course_key() -> str:
    key = g.get("api_key")
    return f"key:{key.name}" if key is not None else f"ip:{request.remote_addr or 'unknown'}"


def rate_key() -> str:
    student = student_bucket()
    return course_key() + (f"/student:{student}" if student else "")


def _who() -> str:
    """The caller as a refusal names it: "API key <name>" or "client <address>"."""
    return course_key().replace("key:", "API key ").replace("ip:", "client ")


def _retry_after(reset_at: float) -> int:
    return max(1, int(reset_at - time.time()))


def _exempt() -> bool:
    return is_open_path(request.path)


def _refuse_429(reason: str, title: str, detail: str, kind: str, retry_after: int) -> Response:
    """A 429 problem with Retry-After, counted among the refusals by `reason` (every limit here answers so)."""
    current_app.extensions["gradstab"].metrics.refused(reason)
    return problem_response(429, title, detail, kind=kind, headers={"Retry-After": str(retry_after)})


def _too_many(error: RateLimitExceeded) -> Response:
    limiter: Limiter = current_app.extensions["gradstab_limiter"]
    current = limiter.current_limit
    retry_after = _retry_after(current.reset_at) if current is not None else 1
    if error.limit.scope == COURSE_SCOPE:
        who = _who() + " (all its students together)"
    else:
        who = _who() + (f" for the student in {STUDENT_HEADER}" if student_bucket() else "")
    return _refuse_429(
        "rate_limited",
        "Too Many Requests",
        f"Rate limit {error.limit.limit} exceeded for {who}; retry after {retry_after} s.",
        "rate_limited",
        retry_after,
    )


# Statuses where "try again after N seconds" means something (RFC 9110 §10.2.3).
RETRY_AFTER_STATUSES = frozenset({429, 503})


def _retry_after_only_where_it_means_something(response: Response) -> Response:
    """Flask-Limiter puts Retry-After on every response it counts, 200s and 413s included (and urllib3
    then retries a 413): keep it on 429 and 503 only. Registered before the limiter's own hook, so it
    runs after it (Flask runs after_request hooks in reverse order)."""
    if response.status_code not in RETRY_AFTER_STATUSES:
        response.headers.pop("Retry-After", None)
    return response


def init_app(
    app: Flask, limit: str | None, store: CounterStore = CounterStore(), course_limit: str | None = None
) -> Limiter:
    """`limit` like "120/minute" or "10/second;1000/hour"; None switches limiting off. `course_limit`:
    the ceiling of one key across all its students and endpoints (None: no ceiling).

    Counters are keyed "<RATELIMIT_KEY_PREFIX>/<key or ip>[/student:<hash>]" (prefix default gradstab)."""
    # exempt_when per limit: the Limiter's application_limits_exempt_when covers only limits given as strings
    limits = [ApplicationLimit(limit, key_function=rate_key, scope="caller", exempt_when=_exempt)] if limit else []
    if limit and course_limit:
        # The ceiling counts what got through (a student's refused retries do not eat the class's share).
        limits.append(
            ApplicationLimit(
                course_limit,
                key_function=course_key,
                scope=COURSE_SCOPE,
                deduct_when=lambda r: r.status_code != 429,
                exempt_when=_exempt,
            )
        )
    limiter = Limiter(
        rate_key,
        # application limits: one counter per caller shared by every endpoint (default limits count per route)
        application_limits=limits,
        application_limits_exempt_when=_exempt,
        storage_uri=store.uri,
        storage_options=store.options,
        strategy="moving-window",  # no burst of 2× the limit at a window edge
        headers_enabled=True,
        key_prefix=app.config.get("RATELIMIT_KEY_PREFIX") or "gradstab",
        enabled=bool(limit),
        # A Redis outage must not take the API down: fall back to per-process counters.
        in_memory_fallback_enabled=bool(store.redis_url),
    )
    app.after_request(_retry_after_only_where_it_means_something)
    limiter.init_app(app)
    app.extensions["gradstab_limiter"] = limiter
    app.register_error_handler(RateLimitExceeded, _too_many)
    return limiter


class _GuardedWindow:
    """A moving-window limit of our own beside Flask-Limiter's, on the same kind of storage, behind a
    circuit breaker: a storage that fails blocks no one, and after a failure the breaker skips it for a
    while (a hung Redis must not cost every request a timeout)."""

    def __init__(self, app: Flask, limit: str, store: CounterStore, breaker: CircuitBreaker | None, what: str) -> None:
        storage = storage_from_string(store.uri, **store.options)
        self.item: RateLimitItem = parse(limit)
        self.window = MovingWindowRateLimiter(storage)
        self.prefix = app.config.get("RATELIMIT_KEY_PREFIX") or "gradstab"
        self.breaker = breaker or CircuitBreaker()
        self.what = what

    def run(self, call: Callable[[], T]) -> T | None:
        """call() against the storage; None where the breaker is open or the storage failed."""
        if not self.breaker.allow():
            return None
        try:
            out = call()
        except Exception as exc:
            self.breaker.failure()
            log.warning(f"{self.what} storage unavailable", extra={"error": str(exc)})
            return None
        self.breaker.success()
        return out


# A key counts as known from an address for this long after it authenticated from there.
KNOWN_KEY_WINDOW = "1/day"
KNOWN_KEY_RECORD_S = 600.0  # a worker records a known key at most this often


def guard_failed_auth(
    app: Flask,
    limit: str | None,
    store: CounterStore = CounterStore(),
    breaker: CircuitBreaker | None = None,
    address_limit: str | None = None,
    keys: Iterable[ApiKey] = (),
) -> None:
    """Failed authentications (401), limited so that nobody else's failures lock a valid key out.

    Per client address and presented key (`limit`): a client retrying one wrong key gets 429 for that key
    alone. Per address over all keys (`address_limit`, higher): past it the address is closed to guessing:
    every key gets 429 before it is checked, except a valid key that has authenticated from that address
    within KNOWN_KEY_WINDOW. So the people behind one NAT keep working while someone beside them guesses, and
    a guesser cannot tell a right guess from a wrong one by the answer (both are 429 until the window ends).
    A valid key that has never been used from that address waits for the window like a guess.
    Call before auth.init_app, so this runs before authentication, and only with API keys."""
    if not limit and not address_limit:
        return
    per_key = _GuardedWindow(app, limit, store, breaker, "auth-failure limit") if limit else None
    per_address = _GuardedWindow(app, address_limit, store, breaker, "auth-failure limit") if address_limit else None
    known = _GuardedWindow(app, KNOWN_KEY_WINDOW, store, breaker, "auth-failure limit")
    keys = list(keys)

    def address() -> str:
        return request.remote_addr or "unknown"

    def presented() -> str:
        """A hash of the key the request presents (never the key itself), "none" without one."""
        given = presented_key()
        return hashlib.sha256(given.encode()).hexdigest()[:20] if given else "none"

    def counters() -> list[tuple[_GuardedWindow, tuple[str, ...]]]:
        out = []
        if per_key is not None:
            out.append((per_key, (per_key.prefix, "auth-fail", address(), presented())))
        if per_address is not None:
            out.append((per_address, (per_address.prefix, "auth-fail-address", address())))
        return out

    def known_here() -> tuple[str, ...]:
        return known.prefix, "auth-known", address(), presented()

    recorded: dict[tuple[str, ...], float] = {}  # this process's last record of each, so most requests skip it

    def remember(ident: tuple[str, ...]) -> bool:
        now = time.monotonic()
        if now - recorded.get(ident, -math.inf) < KNOWN_KEY_RECORD_S:
            return False
        if len(recorded) > 10_000:
            recorded.clear()
        recorded[ident] = now
        return True

    def refusal(guard: _GuardedWindow, ident: tuple[str, ...]) -> float | None:
        """When the window resets, where this counter is over its limit; None while under it."""
        over = guard.run(lambda: None if guard.window.test(guard.item, *ident) else 1.0)
        return guard.run(lambda: guard.window.get_window_stats(guard.item, *ident).reset_time) if over else None

    @app.before_request
    def refuse_guessers() -> Response | None:
        if is_open_path(request.path) or request.method == "OPTIONS":
            return None
        given = presented_key()
        valid = given is not None and match(keys, given) is not None
        for guard, ident in counters():
            if valid and guard is per_key:  # a valid key never fails: its own counter is empty
                continue
            if valid and known.run(lambda: not known.window.test(known.item, *known_here())):
                return None  # known from this address: no one else's failures refuse it
            reset = refusal(guard, ident)
            if reset is not None:
                retry_after = _retry_after(reset)
                whose = "this key" if guard is per_key else "all keys"
                return _refuse_429(
                    "auth_rate_limited",
                    "Too Many Requests",
                    f"Too many failed authentications from client {address()} for {whose} ({guard.item}); "
                    f"retry after {retry_after} s.",
                    "rate_limited",
                    retry_after,
                )
        return None

    @app.after_request
    def count_failures(response: Response) -> Response:
        if is_open_path(request.path):
            return response
        if response.status_code == 401:
            for guard, ident in counters():
                guard.run(lambda guard=guard, ident=ident: guard.window.hit(guard.item, *ident))
        elif g.get("api_key") is not None and remember(known_here()):  # authenticated: a key known here
            known.run(lambda: known.window.hit(known.item, *known_here()))
        return response


class WorkBudgetExceeded(Exception):
    """The caller's estimated-work budget (GRADSTAB_WORK_LIMIT) cannot pay for this analysis now."""

    def __init__(self, detail: str, retry_after: int) -> None:
        super().__init__(detail)
        self.detail, self.retry_after = detail, retry_after


def work_budget(
    app: Flask, limit: str | None, store: CounterStore = CounterStore(), breaker: CircuitBreaker | None = None
) -> Callable[[float], None]:
    """An `admit(gflop)` for the report service: each analysis that runs (a cache miss) is charged its
    predicted time in GEMM-equivalent GFLOP (cost.charged_gflop: its GFLOP where GEMMs dominate, more where
    per-layer and per-step fixed costs do) against the caller's budget `limit` ("20000/minute": GFLOP per
    window, per key, or per student of an instructor key), so a key cannot keep every worker busy with heavy
    specs at a request rate its request limit allows. Over budget: 429 work_budget with Retry-After. A storage
    that fails blocks no one; outside a request (warm-up, jobs) nothing is charged."""
    if not limit:
        return lambda gflop: None
    guard = _GuardedWindow(app, limit, store, breaker, "work budget")
    item, window = guard.item, guard.window

    def admit(gflop: float) -> None:
        if not has_request_context():
            return
        cost = max(1, math.ceil(gflop))
        ident = (guard.prefix, "work", rate_key())

        def charge() -> tuple[bool, float]:
            if cost <= item.amount and window.hit(item, *ident, cost=cost):
                return True, 0.0  # the window's reset time is only read for a refusal (issue 20 item 7)
            return False, window.get_window_stats(item, *ident).reset_time

        charged = guard.run(charge)
        if charged is None or charged[0]:
            return
        retry_after = _retry_after(charged[1])
        raise WorkBudgetExceeded(
            f"Work budget {item} (predicted GEMM-equivalent GFLOP) spent for {_who()}: this analysis is charged {cost} "
            "GFLOP; "
            f"retry after {retry_after} s, or send a smaller spec.",
            retry_after,
        )

    def refuse(error: WorkBudgetExceeded) -> Response:
        return _refuse_429("work_budget", "Work budget spent", error.detail, "work_budget", error.retry_after)

    app.register_error_handler(WorkBudgetExceeded, refuse)
    return admit
