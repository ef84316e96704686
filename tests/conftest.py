"""Suite-wide: every status any test's Flask app answered on a documented operation is declared in /openapi.json.

Flask's `request_finished` signal reaches this receiver from every app the tests build (the API,
grading and jobs apps alike); at the end of the session the statuses seen are compared with the
operations' declared responses, and an undeclared one fails the run (an error in teardown) naming the
operation, the status and how often it was seen. tests/api/test_openapi_statuses.py provokes the
refusals on purpose; the fuzz run (tests/api/test_fuzz.py) checks its own with schemathesis.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterator
from typing import Any

import pytest
from flask import Flask, Response, request, request_finished

SEEN: Counter[tuple[str, str, int]] = Counter()  # (OpenAPI path, method, status) → times


def openapi_path(rule: str) -> str:
    """werkzeug's /v1/jobs/<string:job_id> → OpenAPI's /v1/jobs/{job_id}."""
    return re.sub(r"<(?:[^:<>]+:)?([^<>]+)>", r"{\1}", rule)


def _record(sender: Flask, response: Response, **extra: Any) -> None:
    rule = request.url_rule
    if rule is not None and request.method not in ("HEAD", "OPTIONS"):
        SEEN[(openapi_path(rule.rule), request.method.lower(), response.status_code)] += 1


def undeclared(doc: dict[str, Any], seen: Counter[tuple[str, str, int]]) -> list[str]:
    out = []
    for (path, method, status), times in sorted(seen.items()):
        operation = doc["paths"].get(path, {}).get(method)
        if operation is None:  # not a documented operation (/metrics, /docs, /openapi.json, /problems/...)
            continue
        if str(status) not in operation["responses"]:
            out.append(f"{method.upper()} {path} answered {status} ({times}×), not declared")
    return out


@pytest.fixture(scope="session", autouse=True)
def every_returned_status_is_declared() -> Iterator[None]:
    request_finished.connect(_record)
    yield
    request_finished.disconnect(_record)
    if not SEEN:
        return
    from service.api.app import create_app
    from service.config import Settings

    app = create_app({"TESTING": True, "GRADSTAB_SETTINGS": Settings.from_env({})})
    doc = app.test_client().get("/openapi.json").get_json()
    missing = undeclared(doc, SEEN)
    assert not missing, "statuses the tests saw that /openapi.json does not declare:\n" + "\n".join(missing)
