"""Request ids in headers, problem bodies and JSON log lines."""

from __future__ import annotations

import io
import json
import logging

import pytest

from service.logs import JsonFormatter, RequestIdFilter

from .conftest import TINY_SPEC


@pytest.fixture
def log_lines():
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(JsonFormatter())
    handler.addFilter(RequestIdFilter())
    logger = logging.getLogger("service.api")
    logger.addHandler(handler)
    old_level = logger.level
    logger.setLevel(logging.INFO)
    try:
        yield lambda: [json.loads(line) for line in stream.getvalue().splitlines()]
    finally:
        logger.removeHandler(handler)
        logger.setLevel(old_level)


def test_sane_request_id_is_echoed(client):
    resp = client.get("/livez", headers={"X-Request-ID": "trace-42.a:b"})
    assert resp.headers["X-Request-ID"] == "trace-42.a:b"


@pytest.mark.parametrize("header", ["", "x" * 200, "bad id with spaces", "<script>", "ünïcode"])
def test_insane_request_id_is_replaced(client, header):
    resp = client.get("/livez", headers={"X-Request-ID": header})
    generated = resp.headers["X-Request-ID"]
    assert generated != header and len(generated) == 32


def test_generated_when_absent(client):
    a = client.get("/livez").headers["X-Request-ID"]
    b = client.get("/livez").headers["X-Request-ID"]
    assert a != b


def test_log_lines_are_json_with_the_request_id(client, log_lines):
    client.post("/v1/analyses", json=TINY_SPEC, headers={"X-Request-ID": "req-ok"})
    client.post("/v1/analyses", json={"layers": "x"}, headers={"X-Request-ID": "req-bad"})
    lines = log_lines()
    analysis = next(line for line in lines if line["message"] == "analysis")
    assert analysis["request_id"] == "req-ok"
    assert analysis["verdict"] in ("exploding", "vanishing", "stable")
    assert analysis["level"] == "info" and "ts" in analysis
    refused = next(line for line in lines if line["message"] == "refused")
    assert refused["request_id"] == "req-bad"
    assert refused["reason"] == "validation" and refused["status"] == 422


def test_unhandled_exception_is_logged_with_traceback_and_id(client, log_lines, monkeypatch):
    from service.application import reports

    def boom(spec, auto_exact_gflop, **kwargs):
        raise RuntimeError("kaboom")

    monkeypatch.setattr(reports, "analyze", boom)
    resp = client.post("/v1/analyses", json=TINY_SPEC, headers={"X-Request-ID": "req-500"})
    assert resp.status_code == 500
    line = next(line for line in log_lines() if line["level"] == "error")
    assert line["request_id"] == "req-500"
    assert "kaboom" in line["exc_info"]
