"""A small client for the gradient-stability service, used by the Gradescope and PrairieLearn
examples. Standard library only (urllib), so an autograder image needs nothing installed.

    client = GradstabClient("https://gradstab.example.edu", api_key="...")
    result = client.submit("sigmoid-depth-30", spec, answers={"growth_per_layer": 0.97},
                           fmt="gradescope")

Timeouts on every call; 429 and 503 (and connection failures) are retried with exponential
backoff, honouring Retry-After; other errors raise ApiError with the server's problem details.
"""

from __future__ import annotations

import json
import random
import time
import urllib.error
import urllib.request
from typing import Any

__all__ = ["ApiError", "GradstabClient", "GradstabError", "TransportError"]

RETRY_STATUSES = frozenset({429, 502, 503, 504})


class GradstabError(Exception):
    """Base of every error this client raises."""


class TransportError(GradstabError):
    """The server could not be reached (after the retries)."""


class ApiError(GradstabError):
    """The server answered with an error: `status`, and its RFC 9457 problem `detail`/`errors`."""

    def __init__(self, status: int, problem: dict[str, Any]) -> None:
        self.status = status
        self.problem = problem
        self.detail = str(problem.get("detail") or problem.get("title") or f"HTTP {status}")
        self.errors = problem.get("errors") or []
        fields = "; ".join(f"{e.get('field')}: {e.get('message')}" for e in self.errors)
        super().__init__(f"HTTP {status}: {self.detail}" + (f" ({fields})" if fields else ""))


def _retry_after(headers: Any, default: float) -> float:
    value = headers.get("Retry-After") if headers is not None else None
    try:
        return max(0.0, float(value)) if value is not None else default
    except ValueError:  # an HTTP date: fall back to our own backoff
        return default


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
        sleep: Any = time.sleep,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self.api_key = api_key
        self.timeout = timeout
        self.retries = retries
        self.backoff = backoff
        self.max_backoff = max_backoff
        self._sleep = sleep

    def request(self, method: str, path: str, body: Any = None) -> tuple[Any, dict[str, str]]:
        """(JSON body, headers); retries 429/502/503/504 and connection errors, then raises."""
        data = json.dumps(body).encode() if body is not None else None
        headers = {"Accept": "application/json"}
        if data is not None:
            headers["Content-Type"] = "application/json"
        if self.api_key:
            headers["Authorization"] = f"Bearer {self.api_key}"
        for attempt in range(self.retries + 1):
            delay = min(self.max_backoff, self.backoff * 2**attempt) * (0.5 + random.random() / 2)
            req = urllib.request.Request(self.base_url + path, data=data, headers=headers, method=method)
            try:
                with urllib.request.urlopen(req, timeout=self.timeout) as resp:
                    return json.loads(resp.read() or b"null"), dict(resp.headers)
            except urllib.error.HTTPError as exc:
                payload = exc.read()
                if exc.code in RETRY_STATUSES and attempt < self.retries:
                    self._sleep(min(self.max_backoff, _retry_after(exc.headers, delay)))
                    continue
                try:
                    problem = json.loads(payload) if payload else {}
                except ValueError:
                    problem = {"detail": payload.decode(errors="replace")[:500]}
                raise ApiError(exc.code, problem if isinstance(problem, dict) else {}) from None
            except (urllib.error.URLError, TimeoutError, ConnectionError) as exc:
                if attempt < self.retries:
                    self._sleep(delay)
                    continue
                raise TransportError(f"{method} {self.base_url}{path} failed: {exc}") from exc
        raise TransportError(f"{method} {self.base_url}{path}: out of retries")  # pragma: no cover

    def analyze(self, spec: dict[str, Any]) -> dict[str, Any]:
        return self.request("POST", "/v1/analyses", spec)[0]

    def grade(
        self, spec: dict[str, Any], rubric: dict[str, Any], answers: dict[str, Any] | None = None, fmt: str = "json"
    ) -> dict[str, Any]:
        body = {"submission": {"spec": spec, "answers": answers or {}}, "rubric": rubric, "format": fmt}
        return self.request("POST", "/v1/grade", body)[0]

    def assignment(self, assignment_id: str) -> dict[str, Any]:
        return self.request("GET", f"/v1/assignments/{assignment_id}")[0]

    def submit(
        self, assignment_id: str, spec: dict[str, Any], answers: dict[str, Any] | None = None, fmt: str = "json"
    ) -> dict[str, Any]:
        body = {"spec": spec, "answers": answers or {}, "format": fmt}
        return self.request("POST", f"/v1/assignments/{assignment_id}/submissions", body)[0]
