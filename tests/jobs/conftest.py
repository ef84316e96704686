"""Apps whose jobs run in-process (a thread pool, a SQLite store in tmp_path), and a poller."""

from __future__ import annotations

import time
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient

from service.api.app import create_app
from service.config import Settings

SWEEP_2X2: dict[str, Any] = {
    "base": {"layers": {"depth": 10, "width": 128}, "activation": "relu", "init": "kaiming_normal"},
    "grid": {"init": ["kaiming_normal", "xavier_normal"], "layers.depth": [10, 50]},
}


@pytest.fixture(scope="session", autouse=True)
def _one_torch_thread() -> None:
    import torch

    torch.set_num_threads(1)


def make_jobs_app(db_path: str, **env: Any) -> Flask:
    """An app whose settings come from these variables alone (not the caller's environment)."""
    base = {
        "GRADSTAB_CACHE_SIZE": 0,
        "GRADSTAB_RATE_LIMIT": "off",
        "GRADSTAB_JOBS_DB": db_path,
        "GRADSTAB_JOB_THREADS": 2,
    }
    settings = Settings.from_env({k: str(v) for k, v in (base | env).items()})
    return create_app({"TESTING": True, "GRADSTAB_SETTINGS": settings})


@pytest.fixture
def app(tmp_path) -> Flask:
    return make_jobs_app(str(tmp_path / "jobs.sqlite3"))


@pytest.fixture
def client(app: Flask) -> FlaskClient:
    return app.test_client()


def wait_for(client: Any, location: str, timeout: float = 120.0, until: Any = None) -> dict[str, Any]:
    """Poll GET `location` until the job is terminal (or `until(job)` holds); fail after `timeout`."""
    deadline = time.monotonic() + timeout
    while True:
        r = client.get(location)
        assert r.status_code == 200, r.get_data(as_text=True)
        job = r.get_json()
        if (until or (lambda j: j["status"] in ("succeeded", "failed", "cancelled")))(job):
            return job
        assert time.monotonic() < deadline, f"job still {job['status']} after {timeout}s: {job['progress']}"
        time.sleep(0.1)
