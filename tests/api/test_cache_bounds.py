"""The report cache under stress: a hung Redis (accepts, never answers) must not stall every request
(issue 13, item 19), and the in-process cache is bounded in bytes (item 20)."""

from __future__ import annotations

import json
import socket
import time
from collections.abc import Iterator

import pytest

from service.application.breaker import CircuitBreaker
from service.application.cache import RedisCache


@pytest.fixture
def hung_redis() -> Iterator[str]:
    """A port whose listen backlog completes connections that nobody ever reads or answers."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen(64)
        yield f"redis://127.0.0.1:{s.getsockname()[1]}/0"


def test_breaker_skips_redis_after_a_timeout_then_tries_again(hung_redis):
    now = [0.0]
    changes, skips = [], []
    breaker = CircuitBreaker(30.0, on_change=changes.append, clock=lambda: now[0])
    cache = RedisCache(hung_redis, 60, timeout_s=0.2, breaker=breaker, on_skip=lambda: skips.append(1))
    started = time.monotonic()
    assert cache.get("a") is None  # waits out one timeout
    first = time.monotonic() - started
    started = time.monotonic()
    for _ in range(20):
        assert cache.get("a") is None
        cache.set("a", {"x": 1})
    assert time.monotonic() - started < 0.1  # skipped, not waited
    assert first >= 0.2 and changes == [True] and len(skips) == 40
    now[0] = 31.0  # half-open: one call goes through again (and fails: still open)
    started = time.monotonic()
    assert cache.get("a") is None
    assert time.monotonic() - started >= 0.2 and breaker.is_open and changes == [True]


def test_breaker_closes_after_a_success():
    now = [0.0]
    changes: list[bool] = []
    breaker = CircuitBreaker(5.0, on_change=changes.append, clock=lambda: now[0])
    breaker.failure()
    assert not breaker.allow()
    now[0] = 6.0
    assert breaker.allow() and not breaker.allow()  # one trial at a time
    breaker.success()
    assert breaker.allow() and changes == [True, False]


def test_requests_with_a_hung_redis_pay_one_timeout_not_one_per_call(hung_redis):
    from tests.grading.apps import INSTRUCTOR_KEY, KEYS, SPEC, bearer, make_app

    app = make_app(
        REDIS_URL=hung_redis, GRADSTAB_REDIS_TIMEOUT="0.3", GRADSTAB_RATE_LIMIT="100/minute", GRADSTAB_API_KEYS=KEYS
    )
    client = app.test_client()
    times = []
    for seed in range(6):
        started = time.monotonic()
        body = json.dumps(SPEC | {"seed": seed})
        resp = client.post("/v1/analyses", data=body, content_type="application/json", headers=bearer(INSTRUCTOR_KEY))
        times.append(time.monotonic() - started)
        assert resp.status_code == 200, resp.get_data(as_text=True)
    # Before: every lookup and every store waited out the socket timeout (2 s each, 6-8 s a request).
    # Now the first request pays it (limiter and cache), the limiter re-checks Redis now and then (after
    # 1, 2, 4 … s), and the rest skip it.
    assert sum(t > 0.25 for t in times[1:]) <= 1, times
    started = time.monotonic()
    assert client.get("/livez").status_code == 200
    assert time.monotonic() - started < 0.2
    text = client.get("/metrics").get_data(as_text=True)
    assert 'gradstab_redis_circuit_open{component="cache"} 1.0' in text
    assert 'gradstab_redis_skipped_total{component="cache"}' in text


def test_in_process_cache_is_bounded_in_bytes():
    """Issue 13, item 20: sized in entries only, 256 depth-2000 reports were ~700 MiB per worker."""
    from service.application.cache import LRUCache

    cache = LRUCache(max_entries=100, max_bytes=10_000)
    for i in range(10):
        cache.set(f"k{i}", {"pad": "x" * 3000})
    assert cache.bytes <= 10_000 and cache.get("k9") is not None and cache.get("k0") is None
    cache.set("huge", {"pad": "x" * 20_000})  # larger than the whole budget: not kept, nothing evicted for it
    assert cache.get("huge") is None and cache.get("k9") is not None
