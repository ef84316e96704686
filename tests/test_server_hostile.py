"""Hostile and awkward clients against a real gunicorn (the project's config and worker class).

Issue 13, items 8, 15 and 21: every answer is problem+json with a request id, whether the app wrote it
(413 for a body over the limit, with or without Content-Length; a duplicate key; the soft deadline)
or gunicorn did (a malformed header, `Content-Length: -1`, 414, 431, the worker timeout); and the 413
for a 50 MB upload reaches curl, requests and urllib instead of a connection reset.
"""

from __future__ import annotations

import json
import shutil
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests

from tests.servers import ServerHandle, free_port, running_server, server_env

ROOT = Path(__file__).resolve().parent.parent
MAX_BODY = 5000
TIMEOUT_S = 8
DEADLINE_S = 3
BODY_TIMEOUT_S = 1
PROBLEM = "application/problem+json"
PROBE_PORT = free_port()
SPEC = {"layers": [4, 8, 8, 2], "activation": "tanh", "batch_size": 4}


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerHandle]:
    env = server_env(2) | {
        "GRADSTAB_TIMEOUT": str(TIMEOUT_S),
        "GRADSTAB_REQUEST_DEADLINE": str(DEADLINE_S),
        "GRADSTAB_MAX_BODY_BYTES": str(MAX_BODY),
        "GRADSTAB_BODY_TIMEOUT": str(BODY_TIMEOUT_S),
        "GRADSTAB_RATE_LIMIT": "off",
        "GRADSTAB_PROBE_PORT": str(PROBE_PORT),
        "PROMETHEUS_MULTIPROC_DIR": str(tmp_path_factory.mktemp("prometheus")),
    }
    cmd = [sys.executable, "-m", "gunicorn", "--config", "python:service.gunicorn_conf", "tests.slow_wsgi:app"]
    log_path = tmp_path_factory.mktemp("logs") / "server.log"
    with running_server(cmd, env, cwd=ROOT, log_path=log_path, deadline_s=120) as handle:
        yield handle


def raw(server: ServerHandle, data: bytes, timeout: float = 30) -> tuple[int, dict[str, str], bytes]:
    """Send bytes as they are; parse the one response (the server closes the connection after it)."""
    with socket.create_connection(("127.0.0.1", server.port), timeout=timeout) as sock:
        sock.sendall(data)
        return reply_of(sock)


def reply_of(sock: socket.socket) -> tuple[int, dict[str, str], bytes]:
    """The one response on `sock`, read until the server closes the connection."""
    chunks = []
    while True:
        try:
            chunk = sock.recv(65536)
        except ConnectionResetError:
            break
        if not chunk:
            break
        chunks.append(chunk)
    reply = b"".join(chunks)
    head, _, body = reply.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    status = int(lines[0].split()[1])
    headers = {k.strip().lower(): v.strip() for k, v in (line.split(":", 1) for line in lines[1:] if ":" in line)}
    return status, headers, body


def assert_problem(status: int, headers: dict[str, str], body: bytes, expected: int) -> dict:
    assert status == expected, body[:500]
    assert headers["content-type"] == PROBLEM, headers
    doc = json.loads(body)
    assert (
        doc["status"] == expected
        and doc["title"]
        and doc["detail"]
        and doc["type"].startswith("tag:gradstab,2026:/problems/")
    )
    assert doc["request_id"] and headers["x-request-id"] == doc["request_id"]
    assert len(body) < 2000  # nothing hostile is echoed back at length
    return doc


def chunked(payload: bytes, size: int = 4096) -> bytes:
    out = b""
    for i in range(0, len(payload), size):
        part = payload[i : i + size]
        out += f"{len(part):x}\r\n".encode() + part + b"\r\n"
    return out + b"0\r\n\r\n"


def post_head(extra: str = "", path: str = "/v1/analyses") -> bytes:
    return (f"POST {path} HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n{extra}\r\n").encode()


VALID_PREFIX = json.dumps(SPEC).encode()

CASES = [
    # (id, request bytes, expected status)
    ("chunked over the limit", post_head("Transfer-Encoding: chunked\r\n") + chunked(b" " * 1_400_000), 413),
    (
        "chunked whose first part is valid JSON",
        post_head("Transfer-Encoding: chunked\r\n") + chunked(VALID_PREFIX + b" " * (MAX_BODY * 2)),
        413,
    ),
    ("content-length over the limit", post_head(f"Content-Length: {MAX_BODY + 1}\r\n") + b" " * (MAX_BODY + 1), 413),
    ("duplicate key", post_head("Content-Length: 34\r\n") + b'{"layers":[4,4],"layers":[2,2,2]}\n', 400),
    ("content-length -1", post_head("Content-Length: -1\r\n") + b"{}", 400),
    ("bad header name", b"GET /livez HTTP/1.1\r\nHost: x\r\nBad Header: 1\r\n\r\n", 400),
    ("bad request line", b"GET /livez HTTP/9.9 extra\r\nHost: x\r\n\r\n", 400),
    ("uri too long", b"GET /" + b"a" * 10_000 + b" HTTP/1.1\r\nHost: x\r\n\r\n", 414),
    ("too many headers", b"GET /livez HTTP/1.1\r\nHost: x\r\n" + b"X-A: 1\r\n" * 200 + b"\r\n", 431),
    ("header too large", b"GET /livez HTTP/1.1\r\nHost: x\r\nX-A: " + b"a" * 20_000 + b"\r\n\r\n", 431),
]


@pytest.mark.parametrize(("data", "status"), [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_hostile_requests_get_problem_json(server, data, status):
    assert_problem(*raw(server, data), status)


def test_chunked_body_within_the_limit_is_read_whole(server):
    status, _, body = raw(server, post_head("Transfer-Encoding: chunked\r\n") + chunked(VALID_PREFIX, 7))
    assert status == 200, body[:500]
    assert json.loads(body)["depth"] == 3


BIG = 50 * 2**20


def test_50_mb_body_gets_a_readable_413_in_requests(server):
    resp = requests.post(
        server.url + "/v1/analyses", data=b" " * BIG, headers={"Content-Type": "application/json"}, timeout=60
    )
    assert resp.status_code == 413 and resp.headers["Content-Type"] == PROBLEM
    assert "Retry-After" not in resp.headers


def test_50_mb_body_gets_a_readable_413_in_urllib(server):
    req = urllib.request.Request(
        server.url + "/v1/analyses", data=b" " * BIG, headers={"Content-Type": "application/json"}, method="POST"
    )
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    with pytest.raises(urllib.error.HTTPError) as info:
        opener.open(req, timeout=60)
    assert info.value.code == 413 and info.value.headers["Content-Type"] == PROBLEM
    assert json.loads(info.value.read())["status"] == 413


@pytest.mark.skipif(shutil.which("curl") is None, reason="no curl")
def test_50_mb_body_gets_a_readable_413_in_curl(server, tmp_path):
    big = tmp_path / "big.json"
    with big.open("wb") as f:
        f.truncate(BIG)
    out = subprocess.run(
        ["curl", "-sS", "--noproxy", "*", "-o", "-", "-w", "\n%{http_code}", "-H", "Content-Type: application/json",
         "--data-binary", f"@{big}", server.url + "/v1/analyses"],
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert out.returncode == 0, out.stderr
    body, _, code = out.stdout.rpartition("\n")
    assert code == "413" and json.loads(body)["status"] == 413


def _cut_off(server: ServerHandle, stage: str) -> float:
    text = requests.get(server.url + "/metrics", timeout=30).text
    prefix = f'gradstab_requests_cut_off_total{{stage="{stage}"}} '
    return sum(float(line[len(prefix) :]) for line in text.splitlines() if line.startswith(prefix))


def test_soft_deadline_ends_a_long_request_as_a_counted_503(server):
    before = _cut_off(server, "soft")
    started = time.monotonic()
    resp = requests.get(server.url + "/test/sleep?s=60", headers={"X-Request-ID": "slow-1"}, timeout=60)
    elapsed = time.monotonic() - started
    assert resp.status_code == 503 and resp.headers["Content-Type"] == PROBLEM
    assert resp.json()["request_id"] == "slow-1" and "GRADSTAB_REQUEST_DEADLINE" in resp.json()["detail"]
    assert DEADLINE_S <= elapsed < TIMEOUT_S
    assert _cut_off(server, "soft") == before + 1


def test_worker_timeout_still_ends_as_problem_json_with_the_request_id(server):
    """A request the soft deadline cannot stop (SIGALRM held off, as inside one long C call): gunicorn's
    worker timeout kills it; the answer is a 503 problem with the request's id, counted, not HTML."""
    resp = requests.get(server.url + "/test/block?s=60", headers={"X-Request-ID": "stuck-1"}, timeout=60)
    assert resp.status_code == 503 and resp.headers["Content-Type"] == PROBLEM
    assert resp.json()["request_id"] == "stuck-1" and resp.headers["X-Request-ID"] == "stuck-1"
    deadline = time.monotonic() + 30
    while _cut_off(server, "hard") < 1 and time.monotonic() < deadline:
        time.sleep(0.5)
    assert _cut_off(server, "hard") == 1


def test_master_liveness_answers_while_every_worker_is_busy(server):
    """Both sync workers inside long requests: the app's /livez queues, the master's probe port does not."""
    import threading

    # an earlier test's hard timeout may have cost a worker: wait until gunicorn has replaced it
    deadline = time.monotonic() + 90
    while requests.get(f"http://127.0.0.1:{PROBE_PORT}/livez", timeout=5).json()["workers"] < 2:
        assert time.monotonic() < deadline, "gunicorn did not bring back its second worker"
        time.sleep(0.5)
    busy = [
        threading.Thread(target=requests.get, args=(server.url + "/test/sleep?s=60",), kwargs={"timeout": 60})
        for _ in range(2)
    ]
    for t in busy:
        t.start()
    time.sleep(0.5)
    started = time.monotonic()
    probe = requests.get(f"http://127.0.0.1:{PROBE_PORT}/livez", timeout=5)
    probe_s = time.monotonic() - started
    started = time.monotonic()
    app_livez = requests.get(server.url + "/livez", timeout=30)
    app_s = time.monotonic() - started
    for t in busy:
        t.join()
    # >= 1: an earlier case's blocked request may still be ending in gunicorn's hard timeout meanwhile
    assert probe.status_code == 200 and probe.json()["workers"] >= 1
    assert probe_s < 0.5
    assert app_livez.status_code == 200 and app_s > 1.0  # it waited for a worker: why the probe port exists


def test_an_abandoned_request_stops_when_its_client_goes(server):
    """The client hangs up 0.5 s into a 60 s request: the work stops within about a second (counted as
    client_gone), instead of holding the worker until the deadline."""
    before = _cut_off(server, "client_gone")
    with socket.create_connection(("127.0.0.1", server.port), timeout=10) as sock:
        sock.sendall(b"GET /test/sleep?s=60 HTTP/1.1\r\nHost: x\r\n\r\n")
        time.sleep(0.5)
    deadline = time.monotonic() + DEADLINE_S - 0.5  # well before the soft deadline would end it
    while _cut_off(server, "client_gone") == before and time.monotonic() < deadline:
        time.sleep(0.2)
    assert _cut_off(server, "client_gone") == before + 1


def test_stalled_bodies_get_408_and_free_their_workers(server):
    """Issue 20 item 6, without nginx: as many clients as there are workers declare a body, send two bytes and
    go quiet. Each gets 408 problem+json after GRADSTAB_BODY_TIMEOUT (not a 503 at the request deadline), and a
    request sent meanwhile is answered."""
    stalled = []
    for _ in range(2):  # the server's two workers
        sock = socket.create_connection(("127.0.0.1", server.port), timeout=30)
        sock.sendall(
            b'POST /v1/analyses HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 500\r\n\r\n{"'
        )
        stalled.append(sock)
    try:
        answered = requests.post(server.url + "/v1/analyses", json=SPEC, timeout=30)
        assert answered.status_code == 200
        for sock in stalled:
            status, headers, body = reply_of(sock)
            assert status == 408 and headers["content-type"] == PROBLEM
            doc = json.loads(body)
            assert doc["type"].endswith("/problems/body_timeout") and "GRADSTAB_BODY_TIMEOUT" in doc["detail"]
            assert doc["request_id"] == headers["x-request-id"]
    finally:
        for sock in stalled:
            sock.close()
