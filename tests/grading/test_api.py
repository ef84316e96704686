"""The grading resources, API keys, rate limits and the report cache through the Flask test client."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import jsonschema
import pytest
from flask import Flask

from schemas import ModelSpecSchema
from service.application.assignments import AssignmentError
from service.engine.cost import charged_gflop

from .apps import INSTRUCTOR_KEY, KEYS, SPEC, STUDENT_KEY, bearer, make_app, write_assignment
from .platform_schemas import GRADESCOPE_RESULTS, PRAIRIELEARN_RESULTS

RUBRIC = {
    "checks": [
        {"kind": "verdict", "name": "stable", "points": 2, "expected": "stable"},
        {"kind": "answer", "name": "growth", "answer": "g", "pointer": "/diagnosis/growth_per_layer", "abs_tol": 0.5},
    ]
}


@pytest.fixture(scope="module")
def app(tmp_path_factory: pytest.TempPathFactory) -> Flask:
    directory = write_assignment(tmp_path_factory.mktemp("assignments"))
    return make_app(GRADSTAB_API_KEYS=KEYS, GRADSTAB_ASSIGNMENTS_DIR=str(directory))


def post(client: Any, path: str, body: Any, key: str | None = INSTRUCTOR_KEY) -> Any:
    return client.post(path, data=json.dumps(body), content_type="application/json", headers=bearer(key) if key else {})


def grade_body(fmt: str = "json", spec: dict[str, Any] | None = None) -> dict[str, Any]:
    return {"submission": {"spec": spec or SPEC, "answers": {"g": 0.3}}, "rubric": RUBRIC, "format": fmt}


def test_grade_in_each_format(app: Flask) -> None:
    client = app.test_client()
    first = post(client, "/v1/grade", grade_body("json"))
    assert first.status_code == 200, first.get_json()
    body = first.get_json()
    assert body["max_score"] == 3 and [c["name"] for c in body["checks"]] == ["stable", "growth"]
    assert len(body["report"]["id"]) == 64 and body["report"]["engine_version"]
    gs = post(client, "/v1/grade", grade_body("gradescope"))
    assert gs.headers["X-Cache"] == "hit"  # the same spec: analysed once
    jsonschema.validate(gs.get_json(), GRADESCOPE_RESULTS)
    pl = post(client, "/v1/grade", grade_body("prairielearn"))
    jsonschema.validate(pl.get_json(), PRAIRIELEARN_RESULTS)
    assert pl.get_json()["score"] == pytest.approx(body["fraction"])


def test_invalid_spec_per_format(app: Flask) -> None:
    client = app.test_client()
    bad = {"layers": {"depth": 6, "width": 8}, "activation": "swish"}
    resp = post(client, "/v1/grade", grade_body("json", bad))
    assert resp.status_code == 422 and resp.content_type == "application/problem+json"
    assert resp.get_json()["errors"][0]["field"] == "submission.spec.activation"
    gs = post(client, "/v1/grade", grade_body("gradescope", bad)).get_json()
    jsonschema.validate(gs, GRADESCOPE_RESULTS)
    assert gs["score"] == 0 and "'swish' is not an activation" in gs["output"]
    over = {"layers": {"depth": 400, "width": 8}}
    pl = post(client, "/v1/grade", grade_body("prairielearn", over)).get_json()
    jsonschema.validate(pl, PRAIRIELEARN_RESULTS)
    assert pl["gradable"] is False and "max_depth" in pl["format_errors"][0]


def test_rubric_mistakes_are_422_naming_the_field(app: Flask) -> None:
    body = grade_body()
    body["rubric"] = {"checks": [{"kind": "value", "name": "x", "pointer": "nope", "expected": 1}]}
    resp = post(app.test_client(), "/v1/grade", body)
    assert resp.status_code == 422
    assert resp.get_json()["errors"][0]["field"] == "rubric.checks.0.pointer"


def test_keys(app: Flask) -> None:
    client = app.test_client()
    missing = post(client, "/v1/grade", grade_body(), key=None)
    assert missing.status_code == 401 and missing.headers["WWW-Authenticate"].startswith("Bearer")
    assert missing.content_type == "application/problem+json"
    assert post(client, "/v1/grade", grade_body(), key="wrong-key-0123456789").status_code == 401
    x_api_key = client.get("/v1/assignments", headers={"X-API-Key": STUDENT_KEY})
    assert x_api_key.status_code == 200
    forbidden = post(client, "/v1/grade", grade_body(), key=STUDENT_KEY)
    assert forbidden.status_code == 403 and "'alice' has the role 'student'" in forbidden.get_json()["detail"]
    for path in ("/livez", "/metrics", "/openapi.json"):
        assert client.get(path).status_code == 200, path
    metrics = client.get("/metrics").get_data(as_text=True)
    assert 'gradstab_requests_by_key_total{key="student",status="403"}' in metrics  # the role, not the name


def test_assignments_public_part_and_hidden_rubric(app: Flask) -> None:
    client = app.test_client()
    listed = client.get("/v1/assignments", headers=bearer(STUDENT_KEY)).get_json()
    assert [a["id"] for a in listed] == ["tiny"]
    public = client.get("/v1/assignments/tiny", headers=bearer(STUDENT_KEY)).get_json()
    assert public["may_change"] == ["init", "weight_scale"] and public["max_score"] == 6
    assert "rubric" not in public and "SECRET" not in json.dumps(public)
    missing = client.get("/v1/assignments/nope", headers=bearer(STUDENT_KEY))
    assert missing.status_code == 404 and "known: tiny" in missing.get_json()["detail"]

    submission = {"spec": {**SPEC, "weight_scale": 0.5}, "answers": {"g": 0.3}}
    for fmt in ("json", "gradescope", "prairielearn"):
        student = post(client, "/v1/assignments/tiny/submissions", submission | {"format": fmt}, STUDENT_KEY)
        text = student.get_data(as_text=True)
        assert student.status_code == 200 and "SECRET" not in text and "secret band" not in text, fmt
    student = post(client, "/v1/assignments/tiny/submissions", submission, STUDENT_KEY).get_json()
    assert student["hidden"] == {"checks": 1, "points": 3.0} and student["max_score"] == 6  # hidden ones count
    assert student["checks"][-1]["name"] == "Hidden check 1" and student["checks"][-1]["kind"] == "hidden"
    full = post(client, "/v1/assignments/tiny/submissions", submission | {"format": "gradescope"}).get_json()
    jsonschema.validate(full, GRADESCOPE_RESULTS)
    secret = next(t for t in full["tests"] if t["name"] == "secret band")
    assert secret["visibility"] == "hidden" and secret["max_score"] == 3

    cheat = post(
        client, "/v1/assignments/tiny/submissions", {"spec": {**SPEC, "activation": "relu"}, "answers": {"g": 1.0}}
    ).get_json()
    shape = cheat["checks"][0]
    assert not shape["passed"] and "activation" in shape["message"] and cheat["score"] == 0


def test_open_service_uses_the_student_view(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level("WARNING"):
        app = make_app(GRADSTAB_ASSIGNMENTS_DIR=str(write_assignment(tmp_path)))
    assert any("service is open" in r.getMessage() for r in caplog.records)
    client = app.test_client()
    body = post(client, "/v1/assignments/tiny/submissions", {"spec": SPEC}, key=None).get_json()
    assert body["hidden"]["checks"] == 1 and "secret band" not in json.dumps(body)
    assert post(client, "/v1/grade", grade_body(), key=None).status_code == 200


def test_bad_assignment_file_stops_the_start(tmp_path: Path) -> None:
    write_assignment(tmp_path, "id: Bad Id\ntitle: t\nstarter: {layers: [2, 2]}\nrubric: {checks: []}\n")
    with pytest.raises(AssignmentError) as info:
        make_app(GRADSTAB_ASSIGNMENTS_DIR=str(tmp_path))
    assert "tiny.yaml: id: Use 1-64 characters" in str(info.value)
    assert "tiny.yaml: rubric.checks:" in str(info.value)


def test_analyses_cache_and_rate_limit() -> None:
    app = make_app(GRADSTAB_RATE_LIMIT="3/minute")
    client = app.test_client()
    first = post(client, "/v1/analyses", SPEC, key=None)
    second = post(client, "/v1/analyses", SPEC, key=None)
    assert (first.headers["X-Cache"], second.headers["X-Cache"]) == ("miss", "hit")
    a, b = first.get_json(), second.get_json()
    assert (a.pop("cache"), b.pop("cache")) == ({"hit": False}, {"hit": True})
    assert a == b
    assert post(client, "/v1/analyses", SPEC, key=None).status_code == 200
    limited = post(client, "/v1/analyses", SPEC, key=None)
    assert limited.status_code == 429 and limited.content_type == "application/problem+json"
    assert int(limited.headers["Retry-After"]) >= 1
    assert "3 per 1 minute" in limited.get_json()["detail"] and "client 127.0.0.1" in limited.get_json()["detail"]
    assert client.get("/livez").status_code == 200  # probes are never limited


def test_one_rate_limit_bucket_per_student_under_a_course_ceiling(tmp_path: Path) -> None:
    """One instructor key for a whole class: each student (X-Gradstab-Student) gets their own
    GRADSTAB_RATE_LIMIT, and the key as a whole GRADSTAB_COURSE_RATE_LIMIT."""
    app = make_app(
        GRADSTAB_API_KEYS=KEYS,
        GRADSTAB_ASSIGNMENTS_DIR=str(write_assignment(tmp_path)),
        GRADSTAB_RATE_LIMIT="2/minute",
        GRADSTAB_COURSE_RATE_LIMIT="5/minute",
    )
    client = app.test_client()

    def get(student: str | None, key: str = INSTRUCTOR_KEY) -> Any:
        headers = bearer(key) | ({"X-Gradstab-Student": student} if student else {})
        return client.get("/v1/assignments", headers=headers)

    assert [get("alice").status_code for _ in range(3)] == [200, 200, 429]
    limited = get("alice").get_json()
    assert (
        "API key prof for the student in X-Gradstab-Student" in limited["detail"] and "alice" not in limited["detail"]
    )
    assert [get("bob").status_code for _ in range(2)] == [200, 200]  # alice's bucket is not bob's
    assert get("carol").status_code == 200  # 5 requests of the key so far: the course ceiling
    ceiling = get("dave")
    assert ceiling.status_code == 429 and "all its students together" in ceiling.get_json()["detail"]
    # A student key cannot choose its bucket: the header is ignored.
    assert [get(f"s{i}", STUDENT_KEY).status_code for i in range(3)] == [200, 200, 429]


def test_retry_after_only_on_429() -> None:
    """Flask-Limiter put Retry-After on every counted response (a 200, a 413: urllib3 then retried the 413)."""
    app = make_app(GRADSTAB_RATE_LIMIT="2/minute")
    client = app.test_client()
    ok = post(client, "/v1/analyses", SPEC, key=None)
    too_large = client.post("/v1/analyses", data=b" " * 2_000_000, content_type="application/json")
    limited = post(client, "/v1/analyses", SPEC, key=None)
    assert (ok.status_code, too_large.status_code, limited.status_code) == (200, 413, 429)
    assert "Retry-After" not in ok.headers and "Retry-After" not in too_large.headers
    assert int(limited.headers["Retry-After"]) >= 1
    assert ok.headers["X-RateLimit-Limit"] == "2"  # the informational headers stay


def test_one_rate_limit_budget_per_key_across_endpoints() -> None:
    """The README says per key; Flask-Limiter's default limits counted per key *and* per endpoint."""
    client = make_app(GRADSTAB_API_KEYS=KEYS, GRADSTAB_RATE_LIMIT="3/minute").test_client()
    assert post(client, "/v1/analyses", SPEC).status_code == 200
    assert client.get("/v1/assignments", headers=bearer(INSTRUCTOR_KEY)).status_code == 200
    assert client.get("/v1/capabilities", headers=bearer(INSTRUCTOR_KEY)).status_code == 200
    limited = post(client, "/v1/grade", grade_body())
    assert limited.status_code == 429 and "API key prof" in limited.get_json()["detail"]
    assert client.get("/v1/assignments", headers=bearer(STUDENT_KEY)).status_code == 200  # another key's budget


def test_metrics_name_keys_only_where_the_operator_opts_in() -> None:
    """Issue 20 item 5: by default the key label holds the caller's role; GRADSTAB_METRICS_KEY_NAMES names keys."""
    for opt_in, label in (("off", "instructor"), ("on", "prof")):
        client = make_app(GRADSTAB_API_KEYS=KEYS, GRADSTAB_METRICS_KEY_NAMES=opt_in).test_client()
        assert post(client, "/v1/grade", grade_body()).status_code == 200
        metrics = client.get("/metrics").get_data(as_text=True)
        assert f'gradstab_requests_by_key_total{{key="{label}",status="200"}}' in metrics
        assert f'gradstab_grades_total{{format="json",gradable="true",key="{label}"}}' in metrics
        assert ('"prof"' in metrics) == (opt_in == "on") and '"alice"' not in metrics


def test_metrics_can_require_a_bearer_token() -> None:
    client = make_app(GRADSTAB_API_KEYS=KEYS, GRADSTAB_METRICS_TOKEN="scrape-token-0123456789").test_client()
    for headers in ({}, bearer("wrong"), bearer(INSTRUCTOR_KEY)):
        refused = client.get("/metrics", headers=headers)
        assert refused.status_code == 401 and refused.content_type == "application/problem+json"
        assert "gradstab_" not in refused.get_data(as_text=True)
    scraped = client.get("/metrics", headers=bearer("scrape-token-0123456789"))
    assert scraped.status_code == 200 and "gradstab_http_requests_total" in scraped.get_data(as_text=True)


def test_failed_authentications_are_rate_limited_per_address_and_key() -> None:
    """Issue 20 item 3: one client retrying a wrong key is refused for that key alone; a valid key is never
    refused for someone else's failures from the same address (a NAT, or a proxy's address)."""
    client = make_app(
        GRADSTAB_API_KEYS=KEYS, GRADSTAB_AUTH_FAIL_LIMIT="3/minute", GRADSTAB_AUTH_FAIL_ADDRESS_LIMIT="off"
    ).test_client()
    wrong = "wrong-key-0000000000"
    assert [post(client, "/v1/analyses", SPEC, key=wrong).status_code for _ in range(4)] == [401, 401, 401, 429]
    blocked = post(client, "/v1/analyses", SPEC, key=wrong)
    assert blocked.status_code == 429 and int(blocked.headers["Retry-After"]) >= 1
    assert "failed authentications" in blocked.get_json()["detail"]
    assert post(client, "/v1/analyses", SPEC, key="another-wrong-key-01").status_code == 401  # its own count
    assert post(client, "/v1/analyses", SPEC).status_code == 200  # the valid key from the same address
    assert client.get("/livez").status_code == 200


def test_an_address_closed_to_guessing_still_serves_the_keys_known_there() -> None:
    """Past the per-address limit every guess gets 429, right or wrong, so the answer tells a guesser nothing;
    a valid key that has authenticated from that address goes on being served."""
    client = make_app(
        GRADSTAB_API_KEYS=KEYS, GRADSTAB_AUTH_FAIL_LIMIT="3/minute", GRADSTAB_AUTH_FAIL_ADDRESS_LIMIT="5/minute"
    ).test_client()
    assert post(client, "/v1/analyses", SPEC).status_code == 200  # the instructor's key, known here now
    guesses = [post(client, "/v1/analyses", SPEC, key=f"guess-{i:016d}").status_code for i in range(6)]
    assert guesses == [401] * 5 + [429]
    assert post(client, "/v1/analyses", SPEC).status_code == 200  # known: served
    fresh = post(client, "/v1/analyses", SPEC, key=STUDENT_KEY)  # valid, never used from here: waits
    assert fresh.status_code == 429 and "all keys" in fresh.get_json()["detail"]


def test_x_cache_does_not_reveal_another_keys_submission() -> None:
    client = make_app(GRADSTAB_API_KEYS=KEYS).test_client()
    spec = SPEC | {"seed": 4242}
    first = post(client, "/v1/analyses", spec, key=STUDENT_KEY)
    other = post(client, "/v1/analyses", spec)  # another key, the same spec: served from the cache
    again = post(client, "/v1/analyses", spec, key=STUDENT_KEY)
    assert (first.headers["X-Cache"], other.headers["X-Cache"], again.headers["X-Cache"]) == ("miss", "miss", "hit")
    assert other.get_json()["cache"] == {"hit": False}
    metrics = client.get("/metrics").get_data(as_text=True)
    assert 'gradstab_report_cache_total{backend="memory",result="hit"} 2.0' in metrics


def test_work_budget_charges_estimated_gflop_per_caller() -> None:
    """Issue 13 item 17: rate limits counted requests, not cost. Each analysis that runs is charged its
    predicted time in GEMM-equivalent GFLOP (issue 20; at least 1) to the caller: a budget of two charges
    pays for two, refuses the third, and a cache hit costs nothing."""
    specs = [{"layers": [4, 8, 8, 2], "activation": "tanh", "batch_size": 4, "seed": seed} for seed in range(3)]
    charge = math.ceil(charged_gflop(ModelSpecSchema().load(specs[0])))
    client = make_app(GRADSTAB_WORK_LIMIT=f"{2 * charge}/minute", GRADSTAB_RATE_LIMIT="off").test_client()
    assert [post(client, "/v1/analyses", s, key=None).status_code for s in specs[:2]] == [200, 200]
    refused = post(client, "/v1/analyses", specs[2], key=None)
    assert refused.status_code == 429 and refused.content_type == "application/problem+json"
    doc = refused.get_json()
    assert doc["type"].endswith("/problems/work_budget") and "GFLOP" in doc["detail"]
    assert int(refused.headers["Retry-After"]) >= 1
    assert post(client, "/v1/analyses", specs[0], key=None).status_code == 200  # cached: free
