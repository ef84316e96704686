"""Settings from the environment: defaults, overrides, and no oversubscription."""

from __future__ import annotations

import os

import pytest

from service.config import ServerSettings, Settings


def _cores() -> int:
    return len(os.sched_getaffinity(0))


def test_server_defaults_do_not_oversubscribe():
    s = ServerSettings.from_env({})
    assert (s.host, s.port) == ("127.0.0.1", 8000)
    assert s.workers >= 1 and s.torch_threads >= 1
    assert s.workers * s.torch_threads <= _cores()
    assert s.timeout >= 60


@pytest.mark.parametrize(
    ("env", "workers", "threads"),
    [
        ({"WEB_CONCURRENCY": "3", "GRADSTAB_TORCH_THREADS": "2"}, 3, 2),
        ({"GRADSTAB_WORKERS": "2"}, 2, max(1, _cores() // 2)),
        ({"GRADSTAB_TORCH_THREADS": "1"}, _cores(), 1),
    ],
)
def test_workers_and_threads_from_env(env, workers, threads):
    s = ServerSettings.from_env(env)
    assert (s.workers, s.torch_threads) == (workers, threads)


def test_host_port_and_bad_values():
    s = ServerSettings.from_env({"HOST": "0.0.0.0", "PORT": "9001"})
    assert (s.host, s.port) == ("0.0.0.0", 9001)
    with pytest.raises(ValueError, match="PORT"):
        ServerSettings.from_env({"PORT": "eighty"})
    with pytest.raises(ValueError, match="GRADSTAB_ACCESS_LOG"):
        ServerSettings.from_env({"GRADSTAB_ACCESS_LOG": "maybe"})


def test_app_settings_read_limits_from_env():
    s = Settings.from_env(
        {"GRADSTAB_MAX_DEPTH": "50", "GRADSTAB_MAX_BODY_BYTES": "1234", "GRADSTAB_MAX_JSON_DEPTH": "8"}
    )
    assert s.limits.max_depth == 50 and s.limits.max_body_bytes == 1234 and s.max_json_depth == 8


def test_body_limit_is_the_flask_content_length(monkeypatch):
    from service.api.app import create_app

    monkeypatch.setenv("GRADSTAB_MAX_BODY_BYTES", "100")
    app = create_app()
    assert app.config["MAX_CONTENT_LENGTH"] == 100
    resp = app.test_client().post("/v1/analyses", data="{" + " " * 200 + "}", content_type="application/json")
    assert resp.status_code == 413
