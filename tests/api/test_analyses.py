"""POST /v1/analyses through the Flask test client: the happy path and the engine's refusals."""

from __future__ import annotations

import pytest

from schemas.limits import Limits
from schemas.spec import ModelSpecSchema
from service.application import reports
from service.engine.errors import SpecError

from .conftest import TINY_SPEC, strict_json


def test_tiny_spec_gives_a_full_report(post_json):
    resp = post_json(TINY_SPEC)
    assert resp.status_code == 200
    assert resp.mimetype == "application/json"
    report = strict_json(resp.get_data(as_text=True))
    assert report["depth"] == 3
    assert [layer["index"] for layer in report["layers"]] == [1, 2, 3]
    assert report["diagnosis"]["verdict"] in ("exploding", "vanishing", "stable")
    assert report["runtime"]["dtype"] == "float32"
    assert report["runtime"]["elapsed_ms"] >= 0


def test_same_body_same_numbers(post_json):
    first = post_json(TINY_SPEC).get_json()
    second = post_json(TINY_SPEC).get_json()
    for report in (first, second):
        report["runtime"].pop("elapsed_ms")
    assert first == second


def test_float16_overflow_is_strict_json(post_json):
    """The lecture's product overflows float16; the non-finite numbers must come back as null."""
    spec = {
        "layers": {"depth": 12, "width": 4},
        "activation": "identity",
        "init": "normal",
        "weight_scale": 30.0,
        "dtype": "float16",
        "batch_size": 2,
    }
    resp = post_json(spec)
    assert resp.status_code == 200
    report = strict_json(resp.get_data(as_text=True))
    assert report["diagnosis"]["overflow"]["occurred"] is True


def test_cuda_without_cuda_is_a_422_naming_device(post_json, monkeypatch):
    def no_cuda(spec, auto_exact_gflop, **kwargs):
        raise SpecError("device", "device 'cuda' was asked for, but this server has no CUDA device.")

    monkeypatch.setattr(reports, "analyze", no_cuda)
    resp = post_json(TINY_SPEC | {"device": "cuda"})
    assert resp.status_code == 422
    body = resp.get_json()
    assert body["type"] == "tag:gradstab,2026:/problems/unavailable_device"
    assert body["errors"][0]["field"] == "device"


def test_unexpected_engine_failure_is_a_500_without_internals(post_json, monkeypatch):
    def boom(spec, auto_exact_gflop, **kwargs):
        raise RuntimeError("secret internal state")

    monkeypatch.setattr(reports, "analyze", boom)
    resp = post_json(TINY_SPEC)
    assert resp.status_code == 500
    assert resp.mimetype == "application/problem+json"
    assert "secret" not in resp.get_data(as_text=True)
    assert "Traceback" not in resp.get_data(as_text=True)
    assert resp.get_json()["request_id"] == resp.headers["X-Request-ID"]


def test_configured_auto_exact_gflop_reaches_the_engine(post_json, monkeypatch, app):
    seen = {}
    real = reports.analyze

    def spy(spec, auto_exact_gflop, **kwargs):
        seen["gflop"] = auto_exact_gflop
        return real(spec, auto_exact_gflop, **kwargs)

    monkeypatch.setattr(reports, "analyze", spy)
    assert post_json(TINY_SPEC).status_code == 200
    assert seen["gflop"] == app.config["GRADSTAB_SETTINGS"].limits.auto_exact_gflop


@pytest.mark.parametrize(
    ("layers", "batch_size"),
    [
        ({"depth": 1000, "width": 4}, 8),
        ({"depth": 1000, "width": 16}, 8),
        ({"depth": 2, "width": 4096}, 1),
        ([4096, 4096], 1),
        # ordinary MLPs at the default batch (8) on the CPU budget
        ({"depth": 50, "width": 512}, 8),
        ({"depth": 100, "width": 512}, 8),
        ({"depth": 12, "width": 4096}, 8),
    ],
)
def test_default_limits_accept_deep_and_wide(layers, batch_size):
    """The issue's floor: depth 1000 (narrow) and width 4096 (shallow) fit the default limits."""
    spec = ModelSpecSchema(limits=Limits()).load({"layers": layers, "batch_size": batch_size})
    assert spec.depth >= 1
