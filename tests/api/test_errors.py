"""Every class of bad input gets a clear 4xx problem+json naming what is wrong; never a 500."""

from __future__ import annotations

import json

import pytest

from .conftest import SMALL_LIMITS, TINY_SPEC, strict_json

PROBLEM = "application/problem+json"


def _problem(resp, status: int, kind: str) -> dict:
    assert resp.status_code == status, resp.get_data(as_text=True)
    assert resp.mimetype == PROBLEM
    body = strict_json(resp.get_data(as_text=True))
    assert body["status"] == status
    assert body["type"] == f"tag:gradstab,2026:/problems/{kind}"  # no public URL configured: a tag: URI
    assert body["title"] and body["detail"]
    assert body["request_id"] == resp.headers["X-Request-ID"]
    return body


def _fields(body: dict) -> set[str]:
    return {e["field"] for e in body["errors"]}


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"colour": "blue"}, "colour"),  # unknown field
        ({"jacobian": {"method": "exact", "speed": 3}}, "jacobian.speed"),  # unknown nested field
        ({"batch_size": 3.7}, "batch_size"),  # not an int
        ({"batch_size": 4.0}, "batch_size"),  # a float is not an int either
        ({"batch_size": "3"}, "batch_size"),  # a string is not a number
        ({"weight_scale": "1.5"}, "weight_scale"),
        ({"weight_scale": True}, "weight_scale"),  # a bool is not a number
        ({"bias": "yes"}, "bias"),
        ({"weight_scale": 0}, "weight_scale"),  # range: > 0
        ({"batch_size": 0}, "batch_size"),
        ({"seed": -1}, "seed"),
        ({"thresholds": {"exploding_log10": -1}}, "thresholds.exploding_log10"),
        ({"activation": "swish"}, "activation"),  # enum
        ({"dtype": "float8"}, "dtype"),
        ({"device": "tpu"}, "device"),
        ({"loss": "hinge"}, "loss"),
        ({"jacobian": {"method": "guess"}}, "jacobian.method"),
        ({"layers": [4]}, "layers"),
        ({"layers": [4, 0]}, "layers"),
        ({"layers": "deep"}, "layers"),
        ({"layers": {"depth": 3}}, "layers"),
        ({"activation": ["relu", "tanh"]}, "activation"),  # wrong count for 3 layers
    ],
)
def test_validation_names_the_field(post_json, change, field):
    body = _problem(post_json(TINY_SPEC | change), 422, "validation")
    assert field in _fields(body)
    assert all(e["message"] for e in body["errors"])


def test_number_literal_beyond_float_range_is_refused(client):
    raw = json.dumps(TINY_SPEC)[:-1] + ', "weight_scale": 1e400}'  # Python parses it as inf
    body = _problem(client.post("/v1/analyses", data=raw, content_type="application/json"), 422, "validation")
    assert _fields(body) == {"weight_scale"}


def test_missing_layers_is_named(post_json):
    body = _problem(post_json({"activation": "relu"}), 422, "validation")
    assert _fields(body) == {"layers"}


def test_every_bad_field_is_named(post_json):
    body = _problem(post_json(TINY_SPEC | {"dtype": "x", "batch_size": "y", "extra": 1}), 422, "validation")
    assert _fields(body) == {"dtype", "batch_size", "extra"}


@pytest.mark.parametrize(
    ("change", "limit"),
    [
        ({"layers": {"depth": SMALL_LIMITS.max_depth + 1, "width": 4}}, "max_depth"),
        ({"layers": [4, SMALL_LIMITS.max_width + 1]}, "max_width"),
        ({"batch_size": SMALL_LIMITS.max_batch_size + 1}, "max_batch_size"),
        ({"jacobian": {"probes": SMALL_LIMITS.max_probes + 1}}, "max_probes"),
        ({"layers": {"depth": 12, "width": 32}, "batch_size": 16}, "max_gflop"),
    ],
)
def test_limits_say_the_limit_and_the_figure(post_json, change, limit):
    body = _problem(post_json(TINY_SPEC | change), 422, "limit")
    messages = " ".join(e["message"] for e in body["errors"])
    assert f"{limit}=" in messages
    assert f"GRADSTAB_{limit.upper()}" in messages
    assert "is over the limit" in body["detail"]


@pytest.mark.parametrize("literal", ["NaN", "Infinity", "-Infinity"])
def test_nan_and_infinity_literals_are_refused(client, literal):
    raw = json.dumps(TINY_SPEC)[:-1] + f', "weight_scale": {literal}}}'
    body = _problem(client.post("/v1/analyses", data=raw, content_type="application/json"), 400, "bad_json")
    assert literal.lstrip("-") in body["detail"]


@pytest.mark.parametrize(
    ("data", "kind"),
    [
        (b'{"layers": [4, 8', "bad_json"),
        (b"{'layers': [4, 8]}", "bad_json"),
        (b"", "empty_body"),
        (b"   \n", "empty_body"),
        (b'{"layers": [4, 8], "activation": "\xff\xfe"}', "bad_encoding"),
        (b"\xef\xbb\xbf" + json.dumps(TINY_SPEC).encode(), "bad_json"),  # a UTF-8 BOM is not JSON
        (b'{"layers": [4, 8], "seed": ' + b"9" * 5000 + b"}", "bad_json"),  # past int digit limit
        (b"[" * 40 + b"]" * 40, "too_deep"),
        (b'{"a":' * 40 + b"1" + b"}" * 40, "too_deep"),
        (b"[" * 100_000 + b"]" * 100_000, "too_deep"),  # deeper than Python's recursion limit
    ],
)
def test_malformed_bodies_are_400(client, app, data, kind):
    limit = app.config["GRADSTAB_SETTINGS"].limits.max_body_bytes
    if len(data) > limit:  # a fresh app with room for the deep body, same depth limit
        from .conftest import make_app

        client = make_app(warm_up=False, max_body_bytes=len(data) + 1).test_client()
    _problem(client.post("/v1/analyses", data=data, content_type="application/json"), 400, kind)


@pytest.mark.parametrize(
    ("data", "kind"),
    [
        (b"[1, 2, 3]", "array"),
        (b'"relu"', "str"),
        (b"42", "int"),
        (b"null", "NoneType"),
    ],
)
def test_json_that_is_not_an_object_is_422(client, data, kind):
    body = _problem(client.post("/v1/analyses", data=data, content_type="application/json"), 422, "not_object")
    assert kind in body["detail"]
    assert _fields(body) == {"body"}


@pytest.mark.parametrize(
    "content_type",
    [
        "text/plain",
        "application/x-www-form-urlencoded",
        "multipart/form-data; boundary=x",
        None,
        "application/json; charset=latin-1",
    ],
)
def test_wrong_content_type_is_415(client, content_type):
    headers = {"Content-Type": content_type} if content_type else {}
    resp = client.post("/v1/analyses", data=json.dumps(TINY_SPEC), headers=headers)
    _problem(resp, 415, "content_type")


@pytest.mark.parametrize(
    "content_type", ["application/merge-patch+json", "application/json-patch+json", "application/problem+json"]
)
def test_json_suffix_media_types_are_refused(client, content_type):
    """Issue 20 item 8: another document type in JSON is not a spec; only application/json is read."""
    resp = client.post("/v1/analyses", data=json.dumps(TINY_SPEC), content_type=content_type)
    _problem(resp, 415, "content_type")
    assert "application/json" in resp.get_json()["detail"]


def test_application_json_with_a_utf8_charset_is_read(client):
    resp = client.post("/v1/analyses", data=json.dumps(TINY_SPEC), content_type="application/json; charset=utf-8")
    assert resp.status_code == 200


@pytest.mark.parametrize(
    "data",
    [
        b'{"layers": [4, 8], "layers": [2, 2]}',
        b'{"layers": [4, 8], "jacobian": {"method": "exact", "method": "estimate"}}',
    ],
)
def test_duplicate_keys_are_400_naming_the_key(client, data):
    """json keeps the last of two equal keys silently: a client would never learn which one counted."""
    body = _problem(client.post("/v1/analyses", data=data, content_type="application/json"), 400, "duplicate_key")
    assert "'layers'" in body["detail"] or "'method'" in body["detail"]


def test_errors_do_not_echo_huge_values_or_every_unknown_key():
    """A 900 KB value and 60,000 unknown keys once came back in full (0.9 MB and 3.2 MB errors)."""
    from schemas.errors import MAX_ECHO_CHARS, MAX_FIELD_ERRORS

    from .conftest import make_app

    client = make_app(warm_up=False, max_body_bytes=5_000_000).test_client()
    for body in (
        {"layers": [4, 4], "activation": "x" * 900_000},
        {"layers": [4, 4], **{f"k{i}": 1 for i in range(60_000)}},
        {"layers": [4, 4], ("k" * 900_000): 1},
    ):
        resp = client.post("/v1/analyses", data=json.dumps(body), content_type="application/json")
        problem = _problem(resp, 422, "validation")
        assert len(resp.data) < 20_000
        assert len(problem["errors"]) <= MAX_FIELD_ERRORS + 1
        if len(body) > MAX_FIELD_ERRORS:
            assert "59980 more errors not listed" in problem["errors"][-1]["message"]
        assert all(
            len(e["field"]) < MAX_ECHO_CHARS + 50 and len(e["message"]) < MAX_ECHO_CHARS + 50 for e in problem["errors"]
        )


def test_huge_body_is_413(client, app):
    limit = app.config["GRADSTAB_SETTINGS"].limits.max_body_bytes
    padding = " " * (limit + 1)
    resp = client.post("/v1/analyses", data=json.dumps(TINY_SPEC) + padding, content_type="application/json")
    _problem(resp, 413, "body_too_large")


def test_unknown_route_is_404_problem(client):
    _problem(client.get("/v1/nothing-here"), 404, "not_found")


def test_wrong_method_is_405_problem_with_allow(client):
    resp = client.get("/v1/analyses")
    _problem(resp, 405, "method_not_allowed")
    assert "POST" in resp.headers["Allow"]
    _problem(client.delete("/livez"), 405, "method_not_allowed")


def test_astronomical_depth_is_refused_before_any_allocation(post_json):
    """Found by the fuzzer: {"depth": 8e18} used to expand into a list before the limit check."""
    body = _problem(post_json(TINY_SPEC | {"layers": {"depth": 8347158887296411648, "width": 4}}), 422, "limit")
    assert "max_depth=" in body["errors"][0]["message"]
