"""A small client for the gradient-stability service, used by the Gradescope and PrairieLearn
examples. Standard library only (urllib), so an autograder image needs nothing installed: copy this
folder next to the script, or `pip install examples/client`.

    client = GradstabClient("https://gradstab.example.edu", api_key="...", deadline=100)
    result = client.submit("sigmoid-depth-30", spec, answers={"growth_per_layer": 0.97},
                           fmt="gradescope", student="submission-1234")

Timeouts on every call; 429, 502, 503, 504 and connection failures are retried with jittered
exponential backoff, honouring Retry-After; other errors raise ApiError with the server's problem
details. `deadline` bounds the whole call, retries and waits included (a server that accepts the
connection and then trickles or stalls cannot hold it longer): past it, DeadlineExceeded.
"""

from __future__ import annotations

import json
import platform
import random
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Mapping
from email.message import Message
from typing import Any

__all__ = [
    "STUDENT_HEADER",
    "USER_AGENT",
    "ApiError",
    "DeadlineExceeded",
    "GradstabClient",
    "GradstabError",
    "TransportError",
]
__version__ = "0.2.0"

USER_AGENT = f"gradstab-client/{__version__} (Python {platform.python_version()})"
STUDENT_HEADER = "X-Gradstab-Student"  # one rate-limit bucket per student under the course key's ceiling
RETRY_STATUSES = frozenset({429, 502, 503, 504})

JSON = Any  # what json.loads returns
Response = tuple[JSON, dict[str, str]]


class GradstabError(Exception):
    """Base of every error this client raises."""


class TransportError(GradstabError):
    """The server could not be reached (after the retries)."""


class DeadlineExceeded(TransportError):
    """The call's total deadline passed before the server answered."""


class ApiError(GradstabError):
    """The server answered with an error: `status`, and its RFC 9457 problem `detail`/`errors`."""

    def __init__(self, status: int, problem: dict[str, Any]) -> None:
        self.status = status
        self.problem = problem
        self.detail = str(problem.get("detail") or problem.get("title") or f"HTTP {status}")
        errors = problem.get("errors")
        self.errors: list[dict[str, Any]] = (
            [e for e in errors if isinstance(e, dict)] if isinstance(errors, list) else []
        )
        fields = "; ".join(f"{e.get('field')}: {e.get('message')}" for e in self.errors)
        super().__init__(f"HTTP {status}: {self.detail}" + (f" ({fields})" if fields else ""))


def _retry_after(headers: Message | None, default: float) -> float:
    value = headers.get("Retry-After") if headers is not None else None
    try:
        return max(0.0, float(value)) if value is not None else default
    except ValueError:  # an HTTP date: fall back to our own backoff
        return default


class _Retry(Exception):
    """One attempt failed in a way worth retrying; `wait` is what the server asked for (or None)."""

    def __init__(self, error: GradstabError, wait: float | None) -> None:
        super().__init__(str(error))
        self.error = error
        self.wait = wait


class GradstabClient:
    def __init__(
        self,
        base_url: str,
        api_key: str | None = None,
        *,
        timeout: float = 120.0,
        retries: int = 5,
        backoff: float = 1.0,
        max_backoff: float = 60.0,
        deadline: float | None = None,
        user_agent: str = USER_AGENT,
        sleep: Callable[[float], None] = time.sleep,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        """`timeout`: seconds per attempt; `deadline`: seconds for a whole call, retries included."""
        self.base_url = base_url.rstrip("/")
        self.api_key = api_key
        self.timeout = timeout
        self.retries = retries
        self.backoff = backoff
        self.max_backoff = max_backoff
        self.deadline = deadline
        self.user_agent = user_agent
        self._sleep = sleep
        self._clock = clock

    def _headers(self, has_body: bool, extra: Mapping[str, str] | None) -> dict[str, str]:
        headers = {"Accept": "application/json", "User-Agent": self.user_agent}
        if has_body:
            headers["Content-Type"] = "application/json"
        if self.api_key:
            headers["Authorization"] = f"Bearer {self.api_key}"
        headers.update(extra or {})
        return headers

    def _attempt(self, req: urllib.request.Request, timeout: float, last: bool) -> Response:
        """One request: the answer, ApiError, or _Retry when another attempt may help."""
        try:
            with urllib.request.urlopen(req, timeout=timeout) as resp:
                return json.loads(resp.read() or b"null"), dict(resp.headers)
        except urllib.error.HTTPError as exc:
            payload = exc.read()
            try:
                problem = json.loads(payload) if payload else {}
            except ValueError:
                problem = {"detail": payload.decode(errors="replace")[:500]}
            error = ApiError(exc.code, problem if isinstance(problem, dict) else {})
            if exc.code in RETRY_STATUSES and not last:
                raise _Retry(error, _retry_after(exc.headers, -1.0)) from None
            raise error from None
        except (urllib.error.URLError, TimeoutError, ConnectionError, OSError) as exc:
            failed = TransportError(f"{req.get_method()} {req.full_url} failed: {exc}")
            if last:
                raise failed from exc
            raise _Retry(failed, None) from exc

    def _bounded(self, req: urllib.request.Request, timeout: float, last: bool, remaining: float) -> Response:
        """_attempt, abandoned after `remaining` seconds whatever the server does (a daemon thread)."""
        box: dict[str, Any] = {}

        def run() -> None:
            try:
                box["value"] = self._attempt(req, timeout, last)
            except BaseException as exc:  # handed to the caller's thread
                box["error"] = exc

        worker = threading.Thread(target=run, name="gradstab-request", daemon=True)
        worker.start()
        worker.join(remaining)
        if worker.is_alive():
            raise DeadlineExceeded(f"{req.get_method()} {req.full_url}: no answer within the deadline")
        if "error" in box:
            raise box["error"]
        value: Response = box["value"]
        return value

    def request(self, method: str, path: str, body: JSON = None, headers: Mapping[str, str] | None = None) -> Response:
        """(JSON body, headers); retries 429/502/503/504 and connection errors, then raises."""
        data = json.dumps(body).encode() if body is not None else None
        all_headers = self._headers(data is not None, headers)
        end = None if self.deadline is None else self._clock() + self.deadline
        url = self.base_url + path
        for attempt in range(self.retries + 1):
            remaining = None if end is None else end - self._clock()
            if remaining is not None and remaining <= 0:
                raise DeadlineExceeded(f"{method} {url}: the deadline of {self.deadline:g} s passed")
            req = urllib.request.Request(url, data=data, headers=all_headers, method=method)
            last = attempt == self.retries
            try:
                if remaining is None:
                    return self._attempt(req, self.timeout, last)
                return self._bounded(req, min(self.timeout, remaining), last, remaining)
            except _Retry as retry:
                delay = min(self.max_backoff, self.backoff * 2**attempt) * (0.5 + random.random() / 2)
                wait = min(self.max_backoff, retry.wait if retry.wait is not None and retry.wait >= 0 else delay)
                if end is not None and self._clock() + wait >= end:
                    raise DeadlineExceeded(f"{retry.error} (no time left to retry before the deadline)") from None
                self._sleep(wait)
        raise TransportError(f"{method} {url}: out of retries")  # pragma: no cover

    @staticmethod
    def _student(student: str | None) -> dict[str, str]:
        return {STUDENT_HEADER: student} if student else {}

    def analyze(self, spec: dict[str, Any]) -> dict[str, Any]:
        out: dict[str, Any] = self.request("POST", "/v1/analyses", spec)[0]
        return out

    def grade(
        self,
        spec: dict[str, Any],
        rubric: dict[str, Any],
        answers: dict[str, Any] | None = None,
        fmt: str = "json",
        student: str | None = None,
    ) -> dict[str, Any]:
        body = {"submission": {"spec": spec, "answers": answers or {}}, "rubric": rubric, "format": fmt}
        out: dict[str, Any] = self.request("POST", "/v1/grade", body, self._student(student))[0]
        return out

    def assignment(self, assignment_id: str) -> dict[str, Any]:
        out: dict[str, Any] = self.request("GET", f"/v1/assignments/{assignment_id}")[0]
        return out

    def submit(
        self,
        assignment_id: str,
        spec: dict[str, Any],
        answers: dict[str, Any] | None = None,
        fmt: str = "json",
        student: str | None = None,
    ) -> dict[str, Any]:
        """Grade against an assignment; `student` (the platform's user or submission id) picks the
        per-student rate-limit bucket."""
        body = {"spec": spec, "answers": answers or {}, "format": fmt}
        path = f"/v1/assignments/{assignment_id}/submissions"
        out: dict[str, Any] = self.request("POST", path, body, self._student(student))[0]
        return out
