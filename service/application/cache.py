"""The report cache: identical specs (same report id) are analysed once and then served from here.

A class of 300 submitting the same starter spec costs one analysis. The key is the report id
from the engine's `plan(spec, auto_exact_gflop)` (sha256 of the normalised spec, the resolved
Jacobian method and the engine version), computable before the engine runs, so a new engine
version never serves an old report, and two servers with different budgets share a report only
where they compute the same numbers. Values are the report's JSON dict, exactly what a client
would receive. `service.application.reports.ReportService` is the one user.

In-process LRU by default (bounded, per worker); Redis when REDIS_URL is set, shared by every
worker and replica with a TTL. A Redis outage degrades to cache misses, never to errors, and a hung
one costs one socket timeout per GRADSTAB_REDIS_RETRY seconds, not one per call: after a failure
the circuit breaker (breaker.py) skips Redis for that long.
"""

from __future__ import annotations

import json
import logging
import threading
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol

from .breaker import CircuitBreaker

log = logging.getLogger("service.cache")

KEY_PREFIX = "gradstab:report:"


class ReportCache(Protocol):
    backend: str

    def get(self, key: str) -> dict[str, Any] | None: ...

    def set(self, key: str, report: dict[str, Any]) -> None: ...


class NoCache:
    """GRADSTAB_CACHE_SIZE=0: every request runs the engine."""

    backend = "none"

    def get(self, key: str) -> dict[str, Any] | None:
        return None

    def set(self, key: str, report: dict[str, Any]) -> None:
        return None


class LRUCache:
    """A bounded in-process LRU, safe for threaded workers. Entries are stored as JSON text, so a
    caller that mutates its copy cannot change what the next request gets. Bounded in entries and in
    bytes of that text (a depth-2000 report is 2.8 MiB: 256 of them were 700 MiB per worker); a report
    larger than the whole budget is not kept."""

    backend = "memory"

    def __init__(self, max_entries: int, max_bytes: int | None = None) -> None:
        self.max_entries = max_entries
        self.max_bytes = max_bytes
        self.bytes = 0
        self._data: OrderedDict[str, str] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, key: str) -> dict[str, Any] | None:
        with self._lock:
            text = self._data.get(key)
            if text is None:
                return None
            self._data.move_to_end(key)
        return json.loads(text)

    def set(self, key: str, report: dict[str, Any]) -> None:
        text = json.dumps(report, allow_nan=False)
        size = len(text)  # characters: JSON text here is ASCII-dominated, so about bytes
        if self.max_bytes is not None and size > self.max_bytes:
            return
        with self._lock:
            old = self._data.pop(key, None)
            self.bytes -= len(old) if old is not None else 0
            self._data[key] = text
            self.bytes += size
            while len(self._data) > self.max_entries or (self.max_bytes is not None and self.bytes > self.max_bytes):
                _, dropped = self._data.popitem(last=False)
                self.bytes -= len(dropped)


class RedisCache:
    """Reports shared across workers and replicas, each kept `ttl_s` seconds."""

    backend = "redis"

    def __init__(
        self,
        url: str,
        ttl_s: int,
        prefix: str = KEY_PREFIX,
        timeout_s: float = 2.0,
        breaker: CircuitBreaker | None = None,
        on_skip: Callable[[], None] | None = None,
    ) -> None:
        import redis

        self.client = redis.Redis.from_url(url, socket_timeout=timeout_s, socket_connect_timeout=timeout_s)
        self.ttl_s = ttl_s
        self.prefix = prefix
        self.breaker = breaker or CircuitBreaker()
        self.on_skip = on_skip or (lambda: None)

    def _call(self, fn: Callable[[], Any]) -> tuple[bool, Any]:
        """(True, result), or (False, None) when the breaker skips Redis or the call fails."""
        if not self.breaker.allow():
            self.on_skip()
            return False, None
        try:
            result = fn()
        except Exception as exc:  # redis.RedisError and socket errors: a miss, not a failure
            self.breaker.failure()
            log.warning("report cache unavailable", extra={"error": str(exc)})
            return False, None
        self.breaker.success()
        return True, result

    def get(self, key: str) -> dict[str, Any] | None:
        ok, text = self._call(lambda: self.client.get(self.prefix + key))
        return json.loads(text) if ok and text is not None else None

    def set(self, key: str, report: dict[str, Any]) -> None:
        text = json.dumps(report, allow_nan=False)
        self._call(lambda: self.client.set(self.prefix + key, text, ex=self.ttl_s or None))


@dataclass(frozen=True)
class CachedReport:
    report: dict[str, Any]
    hit: bool


def make_cache(
    redis_url: str | None,
    max_entries: int,
    ttl_s: int,
    max_bytes: int | None = None,
    timeout_s: float = 2.0,
    breaker: CircuitBreaker | None = None,
    on_skip: Callable[[], None] | None = None,
) -> ReportCache:
    """max_entries=0 switches caching off, Redis included; else Redis when a URL is given (`timeout_s`
    per call, `breaker` and `on_skip` as RedisCache takes them), else an LRU of at most `max_entries`
    reports and `max_bytes` of their JSON text."""
    if max_entries <= 0:
        return NoCache()
    if redis_url:
        return RedisCache(redis_url, ttl_s, timeout_s=timeout_s, breaker=breaker, on_skip=on_skip)
    return LRUCache(max_entries, max_bytes)
