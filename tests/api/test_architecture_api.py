"""POST /v1/analyses with `architecture`: the report's members, refusals that name the field, the OpenAPI example."""

from __future__ import annotations

import pytest

from .conftest import strict_json

ARCH_SPEC = {
    "layers": {"depth": 6, "width": 8},
    "batch_size": 4,
    "verify_recommendations": False,
    "architecture": {"residual": {"every": 2, "branch_scale": 0.5}, "normalization": {"kind": "batchnorm"}},
}


def test_an_architecture_spec_gives_its_blocks_and_theory(post_json) -> None:
    resp = post_json(ARCH_SPEC)
    assert resp.status_code == 200, resp.get_json()
    report = strict_json(resp.get_data(as_text=True))
    arch = report["architecture"]
    assert arch["blocks"] == [
        {"first_layer": 1, "last_layer": 2, "skip": True, "note": None},
        {"first_layer": 3, "last_layer": 4, "skip": True, "note": None},
        {"first_layer": 5, "last_layer": 6, "skip": True, "note": None},
    ]
    assert arch["normalized_layers"] == [{"layer": t, "at": "input"} for t in (1, 3, 5)]
    assert arch["products"] == "whole_batch" and arch["eps"] == 1e-5 and arch["growth_from_layer"] == 2
    assert report["diagnosis"]["growth_from_layer"] == 2
    assert report["theory"]["architecture"]["status"] == "unavailable"  # batchnorm with skips: no closed form


def test_a_plain_spec_reports_no_architecture(post_json) -> None:
    report = post_json({"layers": [4, 8, 2], "verify_recommendations": False}).get_json()
    assert report["architecture"] is None and report["theory"]["architecture"] is None
    assert report["diagnosis"]["growth_from_layer"] == 1


def test_unequal_widths_have_no_skip_and_say_why(post_json) -> None:
    body = {"layers": [8, 8, 8, 4, 4], "verify_recommendations": False, "architecture": {"residual": {"every": 2}}}
    blocks = post_json(body).get_json()["architecture"]["blocks"]
    assert blocks[0]["skip"] and not blocks[1]["skip"]
    assert "8" in blocks[1]["note"] and "4" in blocks[1]["note"]


@pytest.mark.parametrize(
    ("architecture", "field", "words"),
    [
        ({"residual": {"every": 4}}, "every", "one of"),
        ({"residual": {"branch_scale": -1}}, "branch_scale", "greater than or equal to 0"),
        ({"normalization": {"kind": "groupnorm"}}, "kind", "one of"),
        ({"normalization": {"position": "middle"}}, "position", "one of"),
        ({"skip": True}, "skip", "Unknown field"),
    ],
)
def test_bad_architecture_is_a_422_naming_the_field(post_json, architecture, field, words) -> None:
    resp = post_json({"layers": [4, 8, 2], "architecture": architecture})
    assert resp.status_code == 422
    text = resp.get_data(as_text=True)
    assert field in text and words.lower() in text.lower()


def test_batchnorm_needs_two_samples(post_json) -> None:
    resp = post_json({"layers": [4, 8, 2], "batch_size": 1, "architecture": {"normalization": {"kind": "batchnorm"}}})
    assert resp.status_code == 422 and "batch_size" in resp.get_data(as_text=True)


def test_openapi_documents_the_architecture_with_an_example(client) -> None:
    doc = client.get("/openapi.json").get_json()
    schemas = doc["components"]["schemas"]
    spec = schemas["ModelSpec"]["properties"]["architecture"]
    assert spec["example"]["residual"]["every"] == 2
    names = {name.lower() for name in schemas}
    assert {"architecture", "residual", "normalization"} <= names
    assert "architecture" in schemas["Report"]["properties"]


def test_capabilities_list_what_architecture_accepts(client) -> None:
    caps = client.get("/v1/capabilities").get_json()["architecture"]
    assert caps["residual_every"] == [1, 2, 3] and caps["normalization_eps"] == 1e-5
    assert caps["normalization_kinds"] == ["none", "layernorm", "rmsnorm", "batchnorm"]
    assert caps["normalization_positions"] == ["pre", "post"]
