"""Rate limits per API key (per client address when the service is open), with Flask-Limiter.

In-process counters by default (per worker: fine for one process, approximate across gunicorn
workers); with REDIS_URL the counters live in Redis, so a limit holds across workers and
replicas. A breach is a 429 problem+json with Retry-After, and the client knows which key hit
which limit. Probes, /metrics and the API description are never limited.

Students of one course: an instructor key (the course autograder's) that names the student in
`X-Gradstab-Student` (the platform's user or submission id) gets one GRADSTAB_RATE_LIMIT bucket per
student, so a class submitting at a deadline does not starve itself, under a ceiling of
GRADSTAB_COURSE_RATE_LIMIT for the key as a whole, so a leaked key cannot mint unlimited buckets.
Student keys and anonymous callers cannot pick a bucket: the header is ignored for them. Bucket
names hold a hash of the student id, never the id itself (it may be an e-mail address).
"""

from __future__ import annotations

import hashlib
import time

from flask import Flask, Response, current_app, g, request
from flask_limiter import ApplicationLimit, Limiter, RateLimitExceeded

from .auth import is_open_path
from .errors import problem_response

STUDENT_HEADER = "X-Gradstab-Student"
COURSE_SCOPE = "course"


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


def _exempt() -> bool:
    return is_open_path(request.path)


def _too_many(error: RateLimitExceeded) -> Response:
    limiter: Limiter = current_app.extensions["gradstab_limiter"]
    current = limiter.current_limit
    retry_after = max(1, int(current.reset_at - time.time())) if current is not None else 1
    if error.limit.scope == COURSE_SCOPE:
        who = course_key().replace("key:", "API key ").replace("ip:", "client ") + " (all its students together)"
    else:
        who = course_key().replace("key:", "API key ").replace("ip:", "client ")
        who += f" for the student in {STUDENT_HEADER}" if student_bucket() else ""
    current_app.extensions["gradstab"].metrics.refused("rate_limited")
    return problem_response(
        429,
        "Too Many Requests",
        f"Rate limit {error.limit.limit} exceeded for {who}; retry after {retry_after} s.",
        kind="rate_limited",
        headers={"Retry-After": str(retry_after)},
    )


def init_app(app: Flask, limit: str | None, redis_url: str | None, course_limit: str | None = None) -> Limiter:
    """`limit` like "120/minute" or "10/second;1000/hour"; None switches limiting off. `course_limit`:
    the ceiling of one key across all its students and endpoints (None: no ceiling).

    Counters are keyed "<RATELIMIT_KEY_PREFIX>/<key or ip>/<endpoint>" (prefix default gradstab)."""
    limiter = Limiter(
        rate_key,
        default_limits=[limit] if limit else [],
        default_limits_exempt_when=_exempt,
        # The ceiling counts what got through (a student's refused retries do not eat the class's share).
        application_limits=[
            ApplicationLimit(
                course_limit, key_function=course_key, scope=COURSE_SCOPE, deduct_when=lambda r: r.status_code != 429
            )
        ]
        if limit and course_limit
        else [],
        application_limits_exempt_when=_exempt,
        storage_uri=redis_url or "memory://",
        storage_options={"socket_timeout": 2, "socket_connect_timeout": 2} if redis_url else {},
        strategy="moving-window",  # no burst of 2× the limit at a window edge
        headers_enabled=True,
        key_prefix=app.config.get("RATELIMIT_KEY_PREFIX") or "gradstab",
        enabled=bool(limit),
        # A Redis outage must not take the API down: fall back to per-process counters.
        in_memory_fallback_enabled=bool(redis_url),
    )
    limiter.init_app(app)
    app.extensions["gradstab_limiter"] = limiter
    app.register_error_handler(RateLimitExceeded, _too_many)
    return limiter
