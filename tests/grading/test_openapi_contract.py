"""The OpenAPI document tells the truth: it passes openapi-spec-validator, declares how keys are
sent and which operations need one, names every operation, documents the grading results (and
real responses match it), puts no string bounds on objects; problems have absolute types that
resolve to a page, and one title per type."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from flask import Flask
from openapi_schema_validator import OAS30Validator
from openapi_spec_validator import validate

from service.api.problems import PROBLEM_TYPES

from .apps import INSTRUCTOR_KEY, KEYS, SPEC, STUDENT_KEY, bearer, make_app, write_assignment
from .test_api import grade_body, post

METHODS = ("get", "put", "post", "delete", "patch")


@pytest.fixture(scope="module")
def app(tmp_path_factory: pytest.TempPathFactory) -> Flask:
    directory = write_assignment(tmp_path_factory.mktemp("assignments"))
    return make_app(GRADSTAB_API_KEYS=KEYS, GRADSTAB_ASSIGNMENTS_DIR=str(directory))


@pytest.fixture(scope="module")
def doc(app: Flask) -> dict[str, Any]:
    resp = app.test_client().get("/openapi.json")
    assert resp.status_code == 200
    return resp.get_json()


def operations(doc: dict[str, Any]) -> Iterator[tuple[str, str, dict[str, Any]]]:
    for path, item in doc["paths"].items():
        for method in METHODS:
            if method in item:
                yield path, method, item[method]


def test_the_document_passes_openapi_spec_validator(doc: dict[str, Any]) -> None:
    validate(doc)  # raises OpenAPIValidationError on any problem


def test_security_schemes_and_per_operation_security(doc: dict[str, Any]) -> None:
    schemes = doc["components"]["securitySchemes"]
    assert schemes["bearerKey"] == {**schemes["bearerKey"], "type": "http", "scheme": "bearer"}
    assert schemes["apiKeyHeader"] | {"in": "header", "name": "X-API-Key"} == schemes["apiKeyHeader"]
    for path, method, op in operations(doc):
        if path in ("/livez", "/readyz"):
            assert op["security"] == [], path
            continue
        assert op["security"] == [{"bearerKey": []}, {"apiKeyHeader": []}], (method, path)
        assert {"401", "429"} <= set(op["responses"]), (method, path)


def test_every_operation_has_a_unique_operation_id(doc: dict[str, Any]) -> None:
    ids = [op.get("operationId") for _, _, op in operations(doc)]
    assert all(ids) and len(set(ids)) == len(ids), ids
    assert {"createAnalysis", "grade", "submit", "getJob", "cancelJob"} <= set(ids)


def test_every_operation_declares_its_500_and_keyed_successes_their_rate_limit_headers(doc: dict[str, Any]) -> None:
    """Spectral's OWASP rules api8 define-error-responses-500 and api4 rate-limit, where they apply."""
    for path, _, op in operations(doc):
        assert "500" in op["responses"], path
        if op["security"]:
            for status, response in op["responses"].items():
                if status.startswith("2"):
                    assert {"X-RateLimit-Limit", "X-RateLimit-Remaining", "X-RateLimit-Reset"} <= set(
                        response.get("headers", {})
                    ), (path, status)


def _walk(node: Any) -> Iterator[dict[str, Any]]:
    if isinstance(node, dict):
        yield node
        for value in node.values():
            yield from _walk(value)
    elif isinstance(node, list):
        for value in node:
            yield from _walk(value)


def test_no_string_bounds_on_objects(doc: dict[str, Any]) -> None:
    for schema in _walk(doc["components"]["schemas"]):
        if schema.get("type") == "object":
            assert not {"maxLength", "minLength"} & set(schema), schema
    answers = doc["components"]["schemas"]["Submission"]["properties"]["answers"]
    assert answers["maxProperties"] == 100


def _validator(doc: dict[str, Any], ref: str) -> OAS30Validator:
    def resolve(node: Any) -> Any:
        if isinstance(node, dict):
            if "$ref" in node:
                return resolve(doc["components"]["schemas"][node["$ref"].rsplit("/", 1)[-1]])
            return {k: resolve(v) for k, v in node.items()}
        if isinstance(node, list):
            return [resolve(v) for v in node]
        return node

    return OAS30Validator(resolve({"$ref": ref}))


@pytest.mark.parametrize("path", ["/v1/grade", "/v1/assignments/{assignment_id}/submissions"])
def test_grading_responses_are_documented(doc: dict[str, Any], path: str) -> None:
    content = doc["paths"][path]["post"]["responses"]["200"]["content"]["application/json"]
    refs = [s["$ref"] for s in content["schema"]["oneOf"]]
    assert [r.rsplit("/", 1)[-1] for r in refs] == ["GradeResult", "GradescopeResults", "PrairieLearnResults"]


@pytest.mark.parametrize(
    ("fmt", "schema"),
    [("json", "GradeResult"), ("gradescope", "GradescopeResults"), ("prairielearn", "PrairieLearnResults")],
)
def test_real_grading_responses_match_their_schema(app: Flask, doc: dict[str, Any], fmt: str, schema: str) -> None:
    validator = _validator(doc, f"#/components/schemas/{schema}")
    client = app.test_client()
    bodies = [
        post(client, "/v1/grade", grade_body(fmt)).get_json(),
        post(client, "/v1/assignments/tiny/submissions", {"spec": SPEC, "format": fmt}, STUDENT_KEY).get_json(),
        post(client, "/v1/assignments/tiny/submissions", {"spec": SPEC, "format": fmt}, INSTRUCTOR_KEY).get_json(),
    ]
    if fmt != "json":  # an invalid spec is graded (gradescope) or not gradable (prairielearn)
        bad = {"spec": {**SPEC, "activation": "swish"}, "format": fmt}
        bodies.append(post(client, "/v1/assignments/tiny/submissions", bad, STUDENT_KEY).get_json())
    for body in bodies:
        errors = [e.message for e in validator.iter_errors(body)]
        assert not errors, (errors, body)


def test_problem_types_are_stable_and_have_pages(app: Flask) -> None:
    client = app.test_client()
    missing = client.get("/v1/assignments/nope", headers=bearer(STUDENT_KEY) | {"Host": "attacker.example"})
    problem = missing.get_json()
    assert problem["type"] == "tag:gradstab,2026:/problems/not_found"  # never from the Host header
    page = client.get("/problems/not_found")  # no key needed
    assert page.status_code == 200 and page.mimetype == "text/html"
    assert "Not Found" in page.get_data(as_text=True)
    unauthorized = client.get("/v1/assignments").get_json()
    assert client.get(unauthorized["type"].removeprefix("tag:gradstab,2026:")).status_code == 200
    assert client.get("/problems/http_405").status_code == 200  # kinds made from a status resolve too
    assert client.get("/problems/nonsense").status_code == 404


def test_problem_types_come_from_the_configured_public_url() -> None:
    """Issue 20 item 8: absolute and resolvable where the operator says where the service is, whatever Host the
    client sends."""
    client = make_app(GRADSTAB_API_KEYS=KEYS, GRADSTAB_PUBLIC_URL="https://gradstab.example.edu/").test_client()
    problem = client.get("/v1/assignments", headers={"Host": "attacker.example"}).get_json()
    assert problem["type"] == "https://gradstab.example.edu/problems/unauthorized"


def test_one_title_per_problem_type_and_rubric_errors_are_not_invalid_specs(app: Flask) -> None:
    titles = [t.title for t in PROBLEM_TYPES.values()]
    assert len(set(titles)) == len(titles), titles
    body = grade_body()
    body["rubric"] = {"checks": [{"kind": "value", "name": "x", "pointer": "nope", "expected": 1}]}
    rubric = post(app.test_client(), "/v1/grade", body).get_json()
    assert (rubric["title"], rubric["type"].rsplit("/", 1)[-1]) == ("Invalid rubric", "invalid_rubric")
    spec = post(app.test_client(), "/v1/grade", grade_body("json", {"layers": "x"})).get_json()
    assert (spec["title"], spec["type"].rsplit("/", 1)[-1]) == ("Invalid spec", "validation")
