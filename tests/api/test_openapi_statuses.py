"""/openapi.json is the whole truth: every refusal an operation answers is declared, the response schemas say
what is always present (`required`), and Job.result is typed per kind.

The refusals are provoked here on purpose (malformed, too large and non-JSON bodies on every operation that
takes one; unknown ids, unacceptable media, missing and wrong keys, the rate limit); tests/conftest.py then
checks every status any test saw against the document, and the fuzz run checks its own.
"""

from __future__ import annotations

import json
import time
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from openapi_schema_validator import OAS30Validator

from service.config import Settings
from service.jobs.model import JobRecord, Plan, now

from .conftest import TINY_SPEC

SWEEP = {"base": {"layers": [4, 8, 8, 2], "batch_size": 4}, "grid": {"activation": ["tanh", "relu"]}}


@pytest.fixture(scope="module")
def app(tmp_path_factory: pytest.TempPathFactory) -> Flask:
    from service.api.app import create_app

    env = {
        "GRADSTAB_JOBS_DB": str(tmp_path_factory.mktemp("jobs") / "jobs.sqlite3"),
        "GRADSTAB_RATE_LIMIT": "off",
        "GRADSTAB_CACHE_SIZE": "0",
        "GRADSTAB_MAX_BODY_BYTES": "4000",
        "GRADSTAB_MAX_DEPTH": "12",
        "GRADSTAB_MAX_WIDTH": "32",
    }
    return create_app({"TESTING": True, "GRADSTAB_SETTINGS": Settings.from_env(env)})


@pytest.fixture(scope="module")
def doc(app: Flask) -> dict[str, Any]:
    return app.test_client().get("/openapi.json").get_json()


def body_operations(doc: dict[str, Any]) -> list[tuple[str, str]]:
    return [
        (path.replace("{assignment_id}", "nope"), method)
        for path, ops in doc["paths"].items()
        for method, op in ops.items()
        if method != "parameters" and "requestBody" in op
    ]


def declared(doc: dict[str, Any], path: str, method: str) -> set[str]:
    return set(doc["paths"][path][method]["responses"])


def test_body_refusals_are_answered_and_declared(app: Flask, doc: dict[str, Any]) -> None:
    client = app.test_client()
    ops = body_operations(doc)
    assert {p for p, _ in ops} >= {"/v1/analyses", "/v1/grade", "/v1/sweeps", "/v1/jobs"}
    for path, method in ops:
        documented = path.replace("nope", "{assignment_id}")
        cases = {
            400: client.open(path, method=method, data="{not json", content_type="application/json"),
            413: client.open(path, method=method, data=json.dumps({"x": "y" * 5000}), content_type="application/json"),
            415: client.open(path, method=method, data="layers=4", content_type="text/plain"),
        }
        for expected, response in cases.items():
            assert response.status_code == expected, (path, response.get_json())
            assert response.mimetype == "application/problem+json"
            assert str(expected) in declared(doc, documented, method), (documented, expected)


def test_job_refusals_are_answered_and_declared(app: Flask, doc: dict[str, Any]) -> None:
    client = app.test_client()
    path = "/v1/jobs/{job_id}"
    assert client.get("/v1/jobs/0000").status_code == 404 and "404" in declared(doc, path, "get")
    assert client.delete("/v1/jobs/0000").status_code == 404 and "404" in declared(doc, path, "delete")
    # An analysis job with nothing delivered yet: its picture is a 409 (a record no worker will pick up).
    jobs = app.extensions["gradstab"].jobs
    plan = Plan("analysis", [{"params": {}, "spec": {}, "report_id": "x"}])
    jobs.store.create(JobRecord(id="f" * 32, kind="analysis", total=1, created_at=now(), plan=plan.to_dict()), 60)
    r = client.get(f"/v1/jobs/{'f' * 32}", headers={"Accept": "image/svg+xml"})
    assert r.status_code == 409 and "409" in declared(doc, path, "get")
    r = client.get(f"/v1/jobs/{'f' * 32}", headers={"Accept": "text/csv"})
    assert r.status_code == 406 and "406" in declared(doc, path, "get")


def test_key_refusals_are_declared_on_every_keyed_operation(doc: dict[str, Any]) -> None:
    for path, ops in doc["paths"].items():
        for method, op in ops.items():
            if method != "parameters" and op.get("security") != []:
                assert {"401", "429", "500", "503"} <= set(op["responses"]), (method, path)


def test_every_operation_has_a_description_and_the_document_a_contact(doc: dict[str, Any]) -> None:
    assert doc["info"]["contact"]["name"]
    for path, ops in doc["paths"].items():
        for method, op in ops.items():
            if method != "parameters":
                assert op.get("summary") and op.get("description"), (method, path)


def schema_validator(doc: dict[str, Any], name: str) -> OAS30Validator:
    return OAS30Validator({"$ref": f"#/components/schemas/{name}", "components": doc["components"]})


REPORT_SPECS = [
    TINY_SPEC,
    {"layers": {"depth": 10, "width": 4}, "activation": "identity", "init": "normal", "dtype": "float16"},
    {"layers": [8, 16, 16, 4], "activation": "sigmoid", "learning_rate": 0.1, "loss": "cross_entropy", "bias": True},
    {"layers": [8, 16, 16, 4], "activation": "relu", "jacobian": {"method": "estimate", "singular_values": "all"}},
    # issue 18: a residual/normalised network's members (architecture, theory.architecture) and a whole-batch one
    {"layers": [8, 8, 8, 8, 4], "architecture": {"residual": {"every": 2}, "normalization": {"kind": "layernorm"}}},
    {
        "layers": [8, 8, 8, 4],
        "batch_size": 4,
        "architecture": {"normalization": {"kind": "batchnorm", "position": "post"}},
    },
]


@pytest.mark.parametrize("spec", REPORT_SPECS)
def test_reports_have_every_member_the_document_requires(app: Flask, doc: dict[str, Any], spec: dict[str, Any]) -> None:
    report_schema = doc["components"]["schemas"]["Report"]
    assert {"id", "layers", "diagnosis", "theory", "runtime"} <= set(report_schema["required"])
    assert "cache" not in report_schema["required"]  # the HTTP-only member, absent from a job's report
    for nested in ("LayerReport", "Diagnosis", "Runtime", "JacobianStats", "Recommendation"):
        assert doc["components"]["schemas"][nested]["required"], nested
    r = app.test_client().post("/v1/analyses", json=spec)
    assert r.status_code == 200, r.get_json()
    report = r.get_json()
    report.pop("cache")
    errors = [f"{'/'.join(map(str, e.path))}: {e.message}" for e in schema_validator(doc, "Report").iter_errors(report)]
    assert not errors, errors[:5]


def wait(client: FlaskClient, location: str) -> dict[str, Any]:
    deadline = time.monotonic() + 120
    while True:
        job = client.get(location).get_json()
        if job["status"] in ("succeeded", "failed", "cancelled"):
            return job
        assert time.monotonic() < deadline, job
        time.sleep(0.1)


def test_job_result_is_typed_per_kind(app: Flask, doc: dict[str, Any]) -> None:
    result = doc["components"]["schemas"]["Job"]["properties"]["result"]
    assert {s["$ref"].rsplit("/", 1)[1] for s in result["oneOf"]} == {"SweepResult", "Report"}
    point = doc["components"]["schemas"]["SweepPoint"]
    assert {"verdict", "log10_total_growth", "theory", "overflow", "report_id"} <= set(point["required"])
    client = app.test_client()
    sweep = wait(client, client.post("/v1/sweeps", json=SWEEP).headers["Location"])
    analysis = wait(client, client.post("/v1/jobs", json={"analysis": TINY_SPEC}).headers["Location"])
    job_schema = schema_validator(doc, "Job")
    for job in (sweep, analysis):
        assert job["status"] == "succeeded", job
        errors = [f"{'/'.join(map(str, e.path))}: {e.message}" for e in job_schema.iter_errors(job)]
        assert not errors, errors[:5]
    # oneOf: each result matches exactly its own kind's schema.
    assert schema_validator(doc, "SweepResult").is_valid(sweep["result"])
    assert not schema_validator(doc, "Report").is_valid(sweep["result"])
    assert schema_validator(doc, "Report").is_valid(analysis["result"])
    assert not schema_validator(doc, "SweepResult").is_valid(analysis["result"])
    failed_point = {"index": 0, "params": {"activation": "tanh"}, "error": "SpecError: no"}
    assert schema_validator(doc, "SweepResult").is_valid({"points": [failed_point], "axes": {"activation": ["tanh"]}})
