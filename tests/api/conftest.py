"""Test apps with small limits, so every accepted spec stays cheap."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient

from schemas.limits import Limits
from service.api.app import create_app
from service.config import Settings

SMALL_LIMITS = Limits(
    max_depth=12,
    max_width=32,
    max_batch_size=16,
    max_parameters=20_000,
    max_gflop=0.05,
    max_memory_mib=64.0,
    max_probes=64,
    max_power_iterations=8,
    max_body_bytes=20_000,
)
TINY_SPEC: dict[str, Any] = {"layers": [4, 8, 8, 2], "activation": "tanh", "batch_size": 4}


@pytest.fixture(scope="session", autouse=True)
def _one_torch_thread() -> None:
    """Tiny specs gain nothing from threads, and OpenMP spinning on a shared 2-core box costs 5x."""
    import torch

    torch.set_num_threads(1)


def make_app(warm_up: bool = True, **limits: Any) -> Flask:
    base = SMALL_LIMITS.as_dict() | limits
    # No report cache (every request runs, and can monkeypatch, the engine) and no
    # rate limit here; tests/grading covers both.
    settings = Settings(limits=Limits(**base), max_json_depth=16, warm_up=warm_up, cache_size=0, rate_limit=None)
    return create_app({"TESTING": True, "GRADSTAB_SETTINGS": settings})


@pytest.fixture(scope="session")
def app() -> Flask:
    return make_app()


@pytest.fixture
def client(app: Flask) -> FlaskClient:
    return app.test_client()


def strict_json(text: str) -> Any:
    """Parse as a strict JSON client would: NaN/Infinity tokens are errors."""

    def refuse(name: str) -> Any:
        raise AssertionError(f"non-JSON token {name} in a response")

    return json.loads(text, parse_constant=refuse)


@pytest.fixture
def post_json(client: FlaskClient) -> Iterator[Any]:
    def post(body: Any, **kwargs: Any) -> Any:
        return client.post("/v1/analyses", data=json.dumps(body), content_type="application/json", **kwargs)

    yield post
