"""Shared rate limits and the shared report cache against a real Redis (TEST_REDIS_URL; .ci/run
starts Debian's redis-server on loopback). Skipped, saying why, where no Redis is configured."""

from __future__ import annotations

import json
import os
import uuid

import pytest

from service.application.cache import RedisCache

from .apps import SPEC, make_app

REDIS_URL = os.environ.get("TEST_REDIS_URL")
pytestmark = pytest.mark.skipif(
    not REDIS_URL, reason="TEST_REDIS_URL is not set (.ci/run starts redis-server and sets it)"
)


def post(client, path, body):
    return client.post(path, data=json.dumps(body), content_type="application/json")


def test_rate_limit_holds_across_two_app_instances() -> None:
    # Two apps stand for two workers or replicas; a fresh prefix keeps runs apart.
    config = {
        "REDIS_URL": REDIS_URL,
        "GRADSTAB_RATE_LIMIT": "3/minute",
        "RATELIMIT_KEY_PREFIX": f"test-{uuid.uuid4().hex}",
    }
    first, second = make_app(**config).test_client(), make_app(**config).test_client()
    assert [c.get("/v1/assignments").status_code for c in (first, second, first)] == [200, 200, 200]
    limited = second.get("/v1/assignments")
    assert limited.status_code == 429 and int(limited.headers["Retry-After"]) >= 1


def test_report_cache_is_shared() -> None:
    spec = SPEC | {"seed": uuid.uuid4().int % 2**62}  # a spec no earlier run has cached
    config = {"REDIS_URL": REDIS_URL, "GRADSTAB_CACHE_TTL": 60}
    first, second = make_app(**config).test_client(), make_app(**config).test_client()
    miss = post(first, "/v1/analyses", spec)
    hit = post(second, "/v1/analyses", spec)
    assert miss.get_json()["id"] == hit.get_json()["id"]
    metrics = second.get("/metrics").get_data(as_text=True)
    assert 'gradstab_report_cache_total{backend="redis",result="hit"} 1.0' in metrics  # served from Redis
    # X-Cache says hit only to a caller this worker served before (service/api/cache_hint.py)
    assert hit.headers["X-Cache"] == "miss" and post(second, "/v1/analyses", spec).headers["X-Cache"] == "hit"


def test_redis_outage_is_a_miss_not_an_error() -> None:
    cache = RedisCache("redis://127.0.0.1:1/0", ttl_s=60)
    assert cache.get("k") is None
    cache.set("k", {"a": 1})  # logged, not raised
