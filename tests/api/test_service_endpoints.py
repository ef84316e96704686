"""livez, readyz, capabilities, metrics, the OpenAPI document and the offline docs page."""

from __future__ import annotations

import re

from service.api.health import warm_up

from .conftest import TINY_SPEC, make_app, strict_json


def test_livez_is_cheap_and_ok(client):
    resp = client.get("/livez")
    assert resp.status_code == 200
    assert resp.get_json()["status"] == "ok"


def test_readyz_is_503_until_warm_up_then_200():
    app = make_app(warm_up=False)
    client = app.test_client()
    resp = client.get("/readyz")
    assert resp.status_code == 503
    assert resp.mimetype == "application/problem+json"
    assert client.get("/livez").status_code == 200  # alive while not ready
    assert warm_up(app) is True
    resp = client.get("/readyz")
    assert resp.status_code == 200
    assert resp.get_json()["status"] == "ready"
    assert resp.get_json()["warm_up_ms"] > 0


def test_readyz_reports_a_failed_warm_up(monkeypatch):
    from service.application import reports

    def boom(spec, auto_exact_gflop, **kwargs):
        raise RuntimeError("no BLAS")

    monkeypatch.setattr(reports, "analyze", boom)
    app = make_app(warm_up=True)
    resp = app.test_client().get("/readyz")
    assert resp.status_code == 503
    assert "no BLAS" in resp.get_json()["detail"]


def test_capabilities(client, app):
    resp = client.get("/v1/capabilities")
    assert resp.status_code == 200
    caps = strict_json(resp.get_data(as_text=True))
    assert "relu" in caps["activations"] and "kaiming_normal" in caps["inits"]
    assert caps["dtypes"] == ["float16", "bfloat16", "float32", "float64"]
    assert "cpu" in caps["devices"]
    import torch

    assert ("cuda" in caps["devices"]) == torch.cuda.is_available()
    limits = app.config["GRADSTAB_SETTINGS"].limits
    assert caps["limits"] == limits.as_dict()
    assert caps["limit_env"]["max_depth"] == "GRADSTAB_MAX_DEPTH"
    assert caps["limit_env"]["max_body_bytes"] == "GRADSTAB_MAX_BODY_BYTES"
    assert {"service", "engine", "torch", "python"} <= set(caps["versions"])
    assert caps["jacobian_methods"] == ["auto", "exact", "estimate"]


def _sample(text: str, name: str, **labels: str) -> float:
    total = 0.0
    for line in text.splitlines():
        if not line.startswith(name + "{"):
            continue
        if all(f'{k}="{v}"' in line for k, v in labels.items()):
            total += float(line.rsplit(" ", 1)[1])
    return total


def test_metrics_count_requests_analyses_and_refusals():
    app = make_app()
    client = app.test_client()
    client.post("/v1/analyses", json=TINY_SPEC)
    client.post("/v1/analyses", json=TINY_SPEC | {"dtype": "float64"})
    client.post("/v1/analyses", json=TINY_SPEC | {"bogus": 1})
    client.post("/v1/analyses", data="{", content_type="application/json")
    client.post("/v1/analyses", data="{}", content_type="text/plain")
    client.post("/v1/analyses", json=TINY_SPEC | {"batch_size": 10_000})
    client.get("/nowhere/at/all")
    text = client.get("/metrics").get_data(as_text=True)
    assert _sample(text, "gradstab_http_requests_total", endpoint="/v1/analyses", status="200") == 2
    assert _sample(text, "gradstab_http_requests_total", endpoint="/v1/analyses", status="422") == 2
    assert _sample(text, "gradstab_http_requests_total", endpoint="unmatched", status="404") == 1
    assert _sample(text, "gradstab_http_request_duration_seconds_count", endpoint="/v1/analyses") == 6
    assert _sample(text, "gradstab_analyses_total", dtype="float32") == 1
    assert _sample(text, "gradstab_analyses_total", dtype="float64") == 1
    for reason in ("validation", "bad_json", "content_type", "limit", "not_found"):
        assert _sample(text, "gradstab_refused_requests_total", reason=reason) == 1, reason


def test_openapi_document(client):
    resp = client.get("/openapi.json")
    assert resp.status_code == 200
    doc = resp.get_json()
    assert doc["openapi"].startswith("3.")
    post = doc["paths"]["/v1/analyses"]["post"]
    assert post["requestBody"]["content"]["application/json"]["schema"]["$ref"].endswith("/ModelSpec")
    assert post["responses"]["200"]["content"]["application/json"]["schema"]["$ref"].endswith("/Report")
    responses = doc["components"]["responses"]
    assert "application/problem+json" in responses["UNPROCESSABLE_ENTITY"]["content"]
    spec_schema = doc["components"]["schemas"]["ModelSpec"]
    assert spec_schema["additionalProperties"] is False
    assert "oneOf" in spec_schema["properties"]["layers"]
    assert {"/v1/capabilities", "/livez", "/readyz"} <= set(doc["paths"])
    weight_scale = spec_schema["properties"]["weight_scale"]  # > 0, not ≥ 0
    assert (weight_scale["minimum"], weight_scale["exclusiveMinimum"]) == (0, True)


def test_docs_page_is_self_contained(client):
    resp = client.get("/docs")
    assert resp.status_code == 200
    assert resp.mimetype == "text/html"
    html = resp.get_data(as_text=True)
    assert not re.search(r"(https?:)?//[a-z0-9.-]+\.[a-z]{2,}", html, re.I), "external URL in /docs"
    assert "<script" not in html
    for text in ("/v1/analyses", "/v1/capabilities", "ModelSpec", "weight_scale", "kaiming_normal", "Problem"):
        assert text in html


def test_docs_console_is_served_from_local_assets(client):
    """/docs/console/: Swagger UI on /openapi.json, every asset from this service (no CDN)."""
    assert 'href="/docs/console/"' in client.get("/docs").get_data(as_text=True)
    resp = client.get("/docs/console/")
    assert resp.status_code == 200 and resp.mimetype == "text/html"
    html = resp.get_data(as_text=True)
    assert not re.search(r"(https?:)?//[a-z0-9.-]+\.[a-z]{2,}", html, re.I), "external URL in the console"
    assert '"/openapi.json"' in html and "validatorUrl: null" in html  # no call to validator.swagger.io
    assets = re.findall(r'(?:src|href)="([^"]+)"', html)
    assert {"swagger-ui-bundle.js", "swagger-ui.css"} <= set(assets)
    for asset in assets:
        got = client.get("/docs/console/" + asset)
        assert got.status_code == 200 and len(got.get_data()) > 500, asset
    assert client.get("/docs/console/index.html").status_code == 404  # only the files the console needs


def test_metrics_have_build_info_process_figures_and_buckets_up_to_the_timeout(client):
    """Issue 13, item 11: the engine histogram stopped at 60 s under a 120 s timeout; no build or process figures."""
    import service

    client.post("/v1/analyses", json={"layers": [4, 8, 8, 2], "activation": "tanh", "batch_size": 4})
    text = client.get("/metrics").get_data(as_text=True)
    assert f'version="{service.__version__}"' in text and "gradstab_build_info{" in text
    assert "gradstab_process_resident_memory_bytes " in text and "gradstab_process_max_resident_memory_bytes " in text
    assert 'gradstab_engine_duration_seconds_bucket{dtype="float32",le="120.0"}' in text
    http_buckets = [line for line in text.splitlines() if line.startswith("gradstab_http_request_duration_seconds_b")]
    assert any('le="120.0"' in line for line in http_buckets)
