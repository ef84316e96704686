"""deploy/nginx-api.conf in front of a real gunicorn (issue 13, items 11 and 16). Skipped without an
nginx binary. The compose file's upstream (`api:8000` through Docker's DNS, `resolve` needs nginx
>= 1.27.3) is replaced by the test server's loopback port; everything else is the file as shipped."""

from __future__ import annotations

import http.client
import json
import re
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
import requests

from tests.servers import ServerHandle, free_port, running_server, server_env

ROOT = Path(__file__).resolve().parents[2]
NGINX = shutil.which("nginx") or ("/usr/sbin/nginx" if Path("/usr/sbin/nginx").exists() else None)
pytestmark = pytest.mark.skipif(NGINX is None, reason="no nginx binary")
PROBLEM = "application/problem+json"


@contextmanager
def nginx_front(tmp: Path, **extra_env: str) -> Iterator[tuple[str, ServerHandle]]:
    """A real gunicorn (2 workers, these settings) behind deploy/nginx-api.conf on loopback."""
    env = (
        server_env(2)
        | {
            "GRADSTAB_TRUSTED_PROXIES": "1",
            "GRADSTAB_RATE_LIMIT": "off",
            "PROMETHEUS_MULTIPROC_DIR": str(tmp / "prom"),
        }
        | extra_env
    )
    proxy_port = free_port()
    conf = (ROOT / "deploy/nginx-api.conf").read_text()
    conf = re.sub(r"server api:8000[^;]*;", f"server 127.0.0.1:{env['PORT']};", conf)
    conf = conf.replace("listen 8080;", f"listen 127.0.0.1:{proxy_port};")
    conf = conf.replace("pid /tmp/nginx.pid;", f"pid {tmp}/nginx.pid;")
    conf = conf.replace("/dev/stdout", str(tmp / "access.log")).replace("/dev/stderr", str(tmp / "error.log"))
    (tmp / "nginx.conf").write_text(conf)
    cmd = [sys.executable, "-m", "service", "serve"]
    with running_server(cmd, env, cwd=ROOT, log_path=tmp / "server.log") as server:
        nginx = subprocess.Popen(
            [NGINX, "-c", str(tmp / "nginx.conf"), "-e", str(tmp / "error.log"), "-g", "daemon off;"],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        try:
            url = f"http://127.0.0.1:{proxy_port}"
            deadline = time.monotonic() + 20
            while time.monotonic() < deadline:
                try:
                    if requests.get(url + "/readyz", timeout=5).status_code == 200:
                        break
                except requests.ConnectionError:
                    time.sleep(0.2)
            yield url, server
        finally:
            nginx.terminate()
            nginx.wait(timeout=30)


@pytest.fixture(scope="module")
def front(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, ServerHandle]]:
    with nginx_front(tmp_path_factory.mktemp("nginx")) as handle:
        yield handle


def _trickle(port: int) -> socket.socket:
    s = socket.create_connection(("127.0.0.1", port))
    s.sendall(
        b"POST /v1/analyses HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 10000\r\n\r\n{"
    )
    return s


def test_trickling_clients_do_not_hold_the_workers(front):
    """Three connections trickling bodies (more than the 2 workers): through nginx, /livez still answers
    at once, and nginx drops the trickles after client_body_timeout."""
    url, _ = front
    port = int(url.rsplit(":", 1)[1])
    slow = [_trickle(port) for _ in range(3)]
    try:
        for _ in range(5):
            started = time.monotonic()
            assert requests.get(url + "/livez", timeout=5).status_code == 200
            assert time.monotonic() - started < 1.0
            time.sleep(0.5)
    finally:
        for s in slow:
            s.close()


def test_the_proxy_answers_its_own_refusals_as_problem_json(front):
    url, _ = front
    big = requests.post(url + "/v1/analyses", data=b" " * 3_000_000, headers={"Content-Type": "application/json"})
    assert big.status_code == 413 and big.headers["Content-Type"] == PROBLEM
    assert json.loads(big.text)["request_id"] == big.headers["X-Request-ID"]
    assert "Retry-After" not in big.headers


def test_metrics_are_not_on_the_public_port(front):
    url, server = front
    hidden = requests.get(url + "/metrics", timeout=10)
    assert hidden.status_code == 404 and "gradstab_" not in hidden.text
    assert "gradstab_http_requests_total" in requests.get(server.url + "/metrics", timeout=10).text  # the scraper's


def test_request_id_is_one_end_to_end(front):
    url, _ = front
    resp = requests.post(url + "/v1/analyses", json={"layers": [2, 2]}, headers={"X-Request-ID": "edge-1"}, timeout=60)
    assert resp.status_code == 200 and resp.headers["X-Request-ID"] == "edge-1"
    fresh = requests.get(url + "/livez", timeout=10)
    assert re.fullmatch(r"[0-9a-f]{32}", fresh.headers["X-Request-ID"])


def _post_from(source: str, url: str, key: str, headers: dict[str, str] | None = None) -> tuple[int, dict]:
    """POST a tiny spec to the front from the loopback address `source` (127.0.0.2 …), as another host would."""
    host, port = url.removeprefix("http://").split(":")
    conn = http.client.HTTPConnection(host, int(port), timeout=60, source_address=(source, 0))
    try:
        body = json.dumps({"layers": [2, 2]})
        hdrs = {"Content-Type": "application/json", "Authorization": f"Bearer {key}"} | (headers or {})
        conn.request("POST", "/v1/analyses", body=body, headers=hdrs)
        resp = conn.getresponse()
        return resp.status, json.loads(resp.read() or b"{}")
    finally:
        conn.close()


def test_failed_keys_behind_the_front_lock_out_no_valid_key(tmp_path):
    """Issue 20 item 3, through the compose front (GRADSTAB_TRUSTED_PROXIES=1): the service sees each client's
    own address, not nginx's and not a forged X-Forwarded-For, and one client's failures refuse neither a
    valid key from the same address nor anyone at another address."""
    keys = "prof:prof-key-0123456789abcdef,stu:stu-key-0123456789abcdef:student"
    with nginx_front(tmp_path, GRADSTAB_API_KEYS=keys, GRADSTAB_AUTH_FAIL_LIMIT="3/minute") as (url, _):
        forged = {"X-Forwarded-For": "203.0.113.9"}
        codes = [_post_from("127.0.0.2", url, "wrong-key-0123456789", forged)[0] for _ in range(4)]
        assert codes == [401, 401, 401, 429]
        status, doc = _post_from("127.0.0.2", url, "wrong-key-0123456789")
        assert status == 429 and "client 127.0.0.2 " in doc["detail"]  # its own address, not the forged one
        assert _post_from("127.0.0.2", url, "stu-key-0123456789abcdef")[0] == 200  # same address, valid key
        assert _post_from("127.0.0.3", url, "wrong-key-0123456789")[0] == 401  # another address: its own count
