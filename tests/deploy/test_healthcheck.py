"""deploy/healthcheck.py against a stub HTTP server: the probe Docker relies on must turn
a 2xx into exit 0 and anything else (503 while warming up, refused, timeout) into exit 1.

Runs in milliseconds and needs no app, so the probe's own logic is covered even where the
full-server test (test_container_commands.py) is skipped.
"""

from __future__ import annotations

import importlib.util
import os
import subprocess
import sys
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import ModuleType

import pytest

from tests.deploy.support import REPO
from tests.servers import free_port

SCRIPT = REPO / "deploy" / "healthcheck.py"


def _load() -> ModuleType:
    spec = importlib.util.spec_from_file_location("deploy_healthcheck", SCRIPT)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


healthcheck = _load()


class _Stub(BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        status = {"/readyz": 200, "/livez": 204}.get(self.path, 503)
        self.send_response(status)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, format: str, *args: object) -> None:  # keep pytest output clean
        pass


@pytest.fixture()
def stub_port() -> Iterator[int]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Stub)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield server.server_address[1]
    finally:
        server.shutdown()
        server.server_close()


@pytest.mark.parametrize(
    ("env", "url"),
    [
        ({}, "http://127.0.0.1:8000/readyz"),
        ({"HOST": "0.0.0.0", "PORT": "9000"}, "http://127.0.0.1:9000/readyz"),
        ({"HOST": "::"}, "http://[::1]:8000/readyz"),
        ({"HOST": "10.1.2.3", "PORT": "81"}, "http://10.1.2.3:81/readyz"),
        ({"HOST": "fd00::1"}, "http://[fd00::1]:8000/readyz"),
        ({"HEALTHCHECK_URL": "http://x:1/y", "PORT": "9"}, "http://x:1/y"),
    ],
)
def test_probe_url_follows_the_bind(env: dict[str, str], url: str) -> None:
    """A wildcard bind (the container's HOST=0.0.0.0) is probed on loopback."""
    assert healthcheck.probe_url(env) == url


def _run(port: int, *args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("HEALTHCHECK_")}
    env.update(HOST="0.0.0.0", PORT=str(port), HTTP_PROXY="http://127.0.0.1:9", http_proxy="")
    return subprocess.run(
        [sys.executable, str(SCRIPT), *args],
        env=env,
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )


def test_exit_status_follows_http_status(stub_port: int) -> None:
    """2xx → 0, 503 → 1; an HTTP_PROXY in the environment is ignored for the probe."""
    ok = _run(stub_port)
    assert ok.returncode == 0, ok.stdout + ok.stderr
    assert "healthy" in ok.stdout and "/readyz -> 200" in ok.stdout
    assert _run(stub_port, "/livez").returncode == 0
    bad = _run(stub_port, "/warming-up")
    assert bad.returncode == 1 and "-> 503" in bad.stdout


def test_refused_connection_is_unhealthy() -> None:
    result = _run(free_port())
    assert result.returncode == 1, result.stdout + result.stderr
    assert "unhealthy" in result.stdout
