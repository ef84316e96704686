"""The real thing: `python -m service serve` (gunicorn + service/gunicorn_conf.py) on a free port."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests

from tests.servers import ServerHandle, running_server, server_env

ROOT = Path(__file__).resolve().parent.parent
SPEC = {"layers": [4, 8, 8, 2], "activation": "tanh", "batch_size": 4}
STARTUP_DEADLINE_S = 120  # generous: importing torch on a busy 2-core CI box is slow
SERVE = [sys.executable, "-m", "service", "serve"]


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerHandle]:
    env = server_env(2) | {
        "PROMETHEUS_MULTIPROC_DIR": str(tmp_path_factory.mktemp("prometheus")),
        "GRADSTAB_MAX_BODY_BYTES": "5000",
    }
    log_path = tmp_path_factory.mktemp("logs") / "server.log"
    with running_server(SERVE, env, cwd=ROOT, log_path=log_path, deadline_s=STARTUP_DEADLINE_S) as handle:
        yield handle


def test_analyses_metrics_and_clean_shutdown(server: ServerHandle):
    base = server.url
    reports = []
    for i in range(6):  # distinct seeds: each one a real analysis, whatever caching sits in front
        resp = requests.post(
            f"{base}/v1/analyses", json=SPEC | {"seed": i}, headers={"X-Request-ID": f"gtest-{i}"}, timeout=60
        )
        assert resp.status_code == 200, resp.text
        assert resp.headers["X-Request-ID"] == f"gtest-{i}"
        reports.append(resp.json())
    assert [r["depth"] for r in reports] == [3] * 6
    again = requests.post(f"{base}/v1/analyses", json=SPEC | {"seed": 0}, timeout=60).json()
    for report in (reports[0], again):
        report["runtime"].pop("elapsed_ms")
        report.pop("cache", None)
    assert again == reports[0]  # same body, same numbers, whichever worker answers

    bad = requests.post(f"{base}/v1/analyses", json=SPEC | {"batch_size": "4"}, timeout=30)
    assert bad.status_code == 422 and bad.headers["Content-Type"] == "application/problem+json"
    assert bad.json()["errors"][0]["field"] == "batch_size"
    huge = requests.post(
        f"{base}/v1/analyses",
        data=b"{" + b" " * 10_000 + b"}",
        headers={"Content-Type": "application/json"},
        timeout=30,
    )
    assert huge.status_code == 413
    caps = requests.get(f"{base}/v1/capabilities", timeout=30).json()
    assert caps["limits"]["max_body_bytes"] == 5000

    # Metrics add up across both workers whichever one answers the scrape.
    for _ in range(3):
        text = requests.get(f"{base}/metrics", timeout=30).text
        analyses = sum(
            float(line.rsplit(" ", 1)[1]) for line in text.splitlines() if line.startswith("gradstab_analyses_total{")
        )
        assert analyses >= 6  # 7 posts; the repeat may come from a cache
        assert 'gradstab_refused_requests_total{reason="validation"} 1.0' in text
        assert 'gradstab_refused_requests_total{reason="body_too_large"} 1.0' in text

    proc = server.proc
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(timeout=60) == 0
    lines = server.log_text().splitlines()
    records = [json.loads(line) for line in lines if line.strip()]  # every line is one JSON object
    access = [r for r in records if r.get("logger") == "gunicorn.access"]
    assert {"gtest-0", "gtest-5"} <= {r.get("request_id") for r in access}
    assert sum(r["message"] == "warm-up done" for r in records) == 2
    assert any(r["message"] == "Shutting down: Master" for r in records)


# --------------------------------------------------------------------------- config outside a checkout

HOOKS = ("on_starting", "when_ready", "post_fork", "post_worker_init", "child_exit", "on_exit")
_LOAD_CONFIG = """
import json, sys
from gunicorn.app.base import Application

class Probe(Application):
    def init(self, parser, opts, args): return None
    def load(self): return None
    def load_config(self): return None  # no sys.argv parsing: only the location below

probe = Probe()
probe.load_config_from_module_name_or_filename(sys.argv[1])
cfg = probe.cfg
print(json.dumps({
    "hooks": {h: getattr(cfg, h).__module__ + "." + getattr(cfg, h).__name__ for h in sys.argv[2:]},
    "workers": cfg.workers, "bind": cfg.bind, "timeout": cfg.timeout, "preload_app": cfg.preload_app,
    "logger_class": cfg.settings["logger_class"].get().__name__, "wsgi_app": cfg.wsgi_app,
}))
"""


@pytest.mark.parametrize("location", ["gunicorn.conf.py", "python:service.gunicorn_conf"])
def test_both_config_locations_give_gunicorn_the_same_settings_and_hooks(location, tmp_path):
    """gunicorn takes settings and hooks by name from the config's namespace: the root file's
    re-export must hand over every hook, not only the plain settings (a missing hook is silently
    gunicorn's no-op default: no warm-up before serving, stale metrics files)."""
    env = os.environ | {
        "GRADSTAB_WORKERS": "3",
        "GRADSTAB_TORCH_THREADS": "1",
        "GRADSTAB_TIMEOUT": "77",
        "HOST": "127.0.0.1",
        "PORT": "8123",
        "PROMETHEUS_MULTIPROC_DIR": str(tmp_path / "prom"),
    }
    out = subprocess.run(
        [sys.executable, "-c", _LOAD_CONFIG, location, *HOOKS],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    loaded = json.loads(out.stdout)
    assert loaded["hooks"] == {h: f"service.gunicorn_conf.{h}" for h in HOOKS}
    assert loaded["workers"] == 3 and loaded["timeout"] == 77 and loaded["bind"] == ["127.0.0.1:8123"]
    assert loaded["preload_app"] is False and loaded["logger_class"] == "JsonAccessLogger"
    assert loaded["wsgi_app"] == "service.wsgi:app"


def test_serve_works_from_an_installed_package_in_any_directory(tmp_path):
    """`python -m service serve` as in the image: the packages installed without the checkout's
    root gunicorn.conf.py beside them (a copy on PYTHONPATH, ahead of the editable install), run
    from an unrelated directory. It must become ready and stop cleanly on SIGTERM."""
    site, workdir = tmp_path / "site", tmp_path / "run"
    for package in ("service", "schemas"):
        shutil.copytree(ROOT / package, site / package, ignore=shutil.ignore_patterns("__pycache__"))
    workdir.mkdir()
    env = server_env(1) | {
        "PYTHONPATH": str(site),
        "PROMETHEUS_MULTIPROC_DIR": str(tmp_path / "prom"),
    }
    where = subprocess.run(
        [sys.executable, "-c", "import service, schemas; print(service.__file__); print(schemas.__file__)"],
        cwd=workdir,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    assert all(line.startswith(str(site)) for line in where.stdout.split()), where.stdout
    assert not (site / "gunicorn.conf.py").exists() and not (workdir / "gunicorn.conf.py").exists()

    log_path = tmp_path / "serve.log"
    with running_server(SERVE, env, cwd=workdir, log_path=log_path, deadline_s=STARTUP_DEADLINE_S) as handle:
        handle.proc.send_signal(signal.SIGTERM)
        assert handle.proc.wait(timeout=60) == 0, log_path.read_text()
    records = [json.loads(line) for line in log_path.read_text().splitlines() if line.strip()]
    assert sum(r["message"] == "warm-up done" for r in records) == 1  # post_worker_init ran
    assert any(r["message"] == "Shutting down: Master" for r in records)
