"""The example client: retries 429/503 honouring Retry-After, clear exceptions, no retry on 4xx."""

from __future__ import annotations

import json
import sys
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "examples" / "client"))
from gradstab_client import USER_AGENT, ApiError, DeadlineExceeded, GradstabClient, TransportError

# Scripted answers: (status, headers, body) popped per request.
SCRIPT: list[tuple[int, dict[str, str], dict]] = []


SEEN: list[dict[str, str]] = []  # the headers of each request


class Handler(BaseHTTPRequestHandler):
    def do_POST(self) -> None:
        SEEN.append(dict(self.headers))
        self.rfile.read(int(self.headers.get("Content-Length", 0)))
        status, headers, body = SCRIPT.pop(0)
        data = json.dumps(body).encode()
        self.send_response(status)
        for k, v in headers.items():
            self.send_header(k, v)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture(scope="module")
def url() -> Iterator[str]:
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}"
    httpd.shutdown()


def test_retries_honour_retry_after(url: str) -> None:
    slept: list[float] = []
    SCRIPT[:] = [
        (429, {"Retry-After": "7"}, {"title": "Too Many Requests"}),
        (503, {}, {"title": "Service Unavailable"}),
        (200, {}, {"ok": True}),
    ]
    client = GradstabClient(url, "k", retries=3, backoff=0.5, sleep=slept.append)
    assert client.analyze({"layers": [2, 2]}) == {"ok": True}
    assert slept[0] == 7 and 0.25 <= slept[1] <= 1.0  # Retry-After, then jittered backoff


def test_client_errors_are_not_retried(url: str) -> None:
    SCRIPT[:] = [(422, {}, {"detail": "Invalid fields: layers.", "errors": [{"field": "layers", "message": "bad"}]})]
    with pytest.raises(ApiError) as info:
        GradstabClient(url, sleep=lambda s: None).analyze({})
    assert info.value.status == 422 and "layers: bad" in str(info.value)


def test_gives_up_after_retries(url: str) -> None:
    SCRIPT[:] = [(503, {}, {}), (503, {}, {})]
    with pytest.raises(ApiError) as info:
        GradstabClient(url, retries=1, sleep=lambda s: None).analyze({})
    assert info.value.status == 503
    with pytest.raises(TransportError):
        GradstabClient("http://127.0.0.1:1", retries=1, timeout=1, sleep=lambda s: None).analyze({})


def test_user_agent_and_student_header(url: str) -> None:
    SEEN.clear()
    SCRIPT[:] = [(200, {}, {"score": 1})]
    GradstabClient(url, "k").submit("a", {"layers": [2, 2]}, student="gradescope:42")
    assert SEEN[0]["User-Agent"] == USER_AGENT and USER_AGENT.startswith("gradstab-client/")
    assert SEEN[0]["X-Gradstab-Student"] == "gradescope:42"


def test_deadline_bounds_retries_and_waits(url: str) -> None:
    """A Retry-After longer than the time left ends the call at once instead of sleeping past it."""
    slept: list[float] = []
    SCRIPT[:] = [(503, {"Retry-After": "30"}, {})]
    with pytest.raises(DeadlineExceeded):
        GradstabClient(url, retries=5, deadline=10, sleep=slept.append).analyze({})
    assert slept == []
    now = [0.0]
    SCRIPT[:] = [(503, {"Retry-After": "4"}, {})] * 3

    def sleep(s: float) -> None:
        slept.append(s)
        now[0] += s

    client = GradstabClient(url, retries=5, deadline=10, sleep=sleep, clock=lambda: now[0])
    with pytest.raises(DeadlineExceeded):  # 4 + 4 s waited; the third wait would end past 10 s
        client.analyze({})
    assert slept == [4, 4]
    SCRIPT.clear()
