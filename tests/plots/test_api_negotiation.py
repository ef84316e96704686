"""POST /v1/analyses with Accept: JSON by default and unchanged; HTML, SVG, PNG on request; else 406."""

from __future__ import annotations

from typing import Any

import pytest

from tests.api.conftest import TINY_SPEC, make_app, strict_json


@pytest.fixture(scope="module")
def client() -> Any:
    return make_app().test_client()


def _post(client: Any, accept: str | None) -> Any:
    headers = {} if accept is None else {"Accept": accept}
    return client.post("/v1/analyses", json=TINY_SPEC, headers=headers)


def _without_timing(report: dict[str, Any]) -> dict[str, Any]:
    report["runtime"].pop("elapsed_ms")
    return report


@pytest.mark.parametrize("accept", [None, "application/json", "*/*", "application/*", "text/html;q=0.5, */*"])
def test_json_unchanged(client: Any, accept: str | None) -> None:
    plain = _post(client, None)
    r = _post(client, accept)
    assert r.status_code == 200 and r.mimetype == "application/json"
    assert _without_timing(strict_json(r.get_data(as_text=True))) == _without_timing(plain.get_json())
    assert "Accept" in r.headers.get("Vary", "")


@pytest.mark.parametrize(
    ("accept", "mimetype", "start"),
    [
        ("text/html", "text/html", b"<!DOCTYPE html>"),
        ("image/svg+xml", "image/svg+xml", b"<?xml"),
        ("image/png", "image/png", b"\x89PNG"),
        ("image/*", "image/svg+xml", b"<?xml"),
        ("image/png, application/json;q=0.1", "image/png", b"\x89PNG"),
    ],
)
def test_pictures(client: Any, accept: str, mimetype: str, start: bytes) -> None:
    r = _post(client, accept)
    assert r.status_code == 200, r.get_data(as_text=True)
    assert r.mimetype == mimetype and r.data.startswith(start)
    assert "Accept" in r.headers.get("Vary", "")


@pytest.mark.parametrize("accept", ["application/xml", "text/csv", "image/gif, application/pdf"])
def test_unknown_accept_is_406_problem(client: Any, accept: str) -> None:
    r = _post(client, accept)
    assert r.status_code == 406
    assert r.mimetype == "application/problem+json"
    body = r.get_json()
    assert body["status"] == 406 and body["errors"][0]["field"] == "Accept"
    assert "text/html" in body["detail"]


def test_openapi_documents_the_representations(client: Any) -> None:
    op = client.get("/openapi.json").get_json()["paths"]["/v1/analyses"]["post"]
    assert {"application/json", "text/html", "image/svg+xml", "image/png"} <= set(op["responses"]["200"]["content"])
    assert "406" in op["responses"]
