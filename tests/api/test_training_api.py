"""POST /v1/analyses with `training`: the report's section in strict JSON and as documented, refusals that name the
field and the limit, the OpenAPI example."""

from __future__ import annotations

import typing

import pytest

from service.plots.training_figures import training_gradient_heatmap

from .conftest import make_app, strict_json
from .test_report_schema import _strict

TRAIN_SPEC = {
    "layers": [4, 8, 8, 2],
    "batch_size": 4,
    "dtype": "float16",
    "weight_scale": 1.5,
    "verify_recommendations": False,
    "training": {"steps": 6, "examples": 16, "loss_scaling": "dynamic", "histograms": [0, 5]},
}


def test_a_training_spec_reports_its_steps_layers_and_summary(post_json) -> None:
    resp = post_json(TRAIN_SPEC)
    assert resp.status_code == 200, resp.get_json()
    tr = strict_json(resp.get_data(as_text=True))["training"]
    assert [s["index"] for s in tr["steps"]] == list(range(6))
    assert tr["master_dtype"] == "float32" and tr["pass_dtype"] == "float16"
    assert [ly["index"] for ly in tr["layers"]] == [1, 2, 3]
    assert all(len(ly["grad_norm"]) == 6 for ly in tr["layers"])
    assert [h["step"] for h in tr["histograms"]] == [0, 5]
    assert len(tr["histogram_edges_log10"]) == len(tr["histograms"][0]["layers"][0]["counts"]) + 1
    assert tr["summary"]["sentence"].startswith("6 sgd steps")
    for step in tr["steps"]:  # a skipped step's gradient held inf: its norm is null, its overflow counted
        if step["skipped"]:
            k = step["index"]
            assert any(ly["grad_norm"][k] is None and ly["overflow_count"][k] > 0 for ly in tr["layers"])


def test_a_plain_spec_reports_no_training(post_json) -> None:
    assert post_json({"layers": [4, 8, 2], "verify_recommendations": False}).get_json()["training"] is None


def test_the_training_response_validates_against_its_documented_schema(client, post_json) -> None:
    jsonschema = pytest.importorskip("jsonschema")
    doc = client.get("/openapi.json").get_json()
    ok = doc["paths"]["/v1/analyses"]["post"]["responses"]["200"]
    schema = _strict(ok["content"]["application/json"]["schema"] | {"components": doc["components"]})
    jsonschema.Draft4Validator(schema).validate(post_json(TRAIN_SPEC).get_json())


@pytest.mark.parametrize(
    ("training", "field", "words"),
    [
        ({"steps": 0}, "training.steps", "greater than or equal to 1"),
        ({"optimizer": "rmsprop"}, "training.optimizer", "one of"),
        ({"learning_rate": -1}, "training.learning_rate", "greater than"),
        ({"optimizer": "adam", "momentum": 0.9}, "training.momentum", "sgd only"),
        ({"task": "ranking"}, "training.task", "one of"),
        ({"examples": 2}, "training.examples", "below batch_size"),
        ({"loss_scaling": "auto"}, "training.loss_scaling", "one of"),
        ({"steps": 5, "histograms": [5]}, "training.histograms", "not below steps"),
        ({"epochs": 3}, "training.epochs", "Unknown field"),
    ],
)
def test_bad_training_is_a_422_naming_the_field(post_json, training, field, words) -> None:
    resp = post_json({"layers": [4, 8, 2], "batch_size": 4, "training": training})
    assert resp.status_code == 422
    errors = resp.get_json()["errors"]
    assert any(e["field"] == field and words.lower() in e["message"].lower() for e in errors), errors


RECURRENT_TRAIN = {
    "recurrent": {"cell": "lstm", "steps": 5, "hidden": 8, "input_dim": 4, "stacked": 2, "loss_at": "every"},
    "batch_size": 4,
    "verify_recommendations": False,
    "training": {"steps": 3, "examples": 16, "histograms": [2]},
}


def test_a_recurrent_spec_trains_reporting_each_matrix(post_json) -> None:
    """The probe on a recurrent spec: training.layers[] is W_ih^l, W_hh^l per stacked layer, named by `matrix`."""
    resp = make_app(max_memory_mib=256.0).test_client().post("/v1/analyses", json=RECURRENT_TRAIN)
    assert resp.status_code == 200, resp.get_json()
    rep = strict_json(resp.get_data(as_text=True))
    tr = rep["training"]
    assert rep["axis"] == "time" and len(tr["steps"]) == 3
    assert [(ly["index"], ly["matrix"]) for ly in tr["layers"]] == [
        (1, "W_ih^1"),
        (2, "W_hh^1"),
        (3, "W_ih^2"),
        (4, "W_hh^2"),
    ]
    assert all(len(ly["grad_norm"]) == 3 for ly in tr["layers"])
    assert len(tr["histograms"][0]["layers"]) == 4
    assert any("4 = W_hh^2" in note for note in training_gradient_heatmap(tr).notes)  # the heat map names the rows
    plain = strict_json(post_json(TRAIN_SPEC).get_data(as_text=True))["training"]
    assert all(ly["matrix"] is None for ly in plain["layers"])  # feed-forward entries: layer W^index


def test_recurrent_classification_needs_two_hidden_units(post_json) -> None:
    """The top layer's h is the logits: one hidden unit per class."""
    body = RECURRENT_TRAIN | {
        "recurrent": {"cell": "gru", "steps": 3, "hidden": 1, "input_dim": 2},
        "training": {"task": "classification", "examples": 16},
    }
    resp = post_json(body)
    assert resp.status_code == 422
    assert any(e["field"] == "training.task" for e in resp.get_json()["errors"]), resp.get_json()


def test_recurrent_training_steps_count_in_the_work_estimate() -> None:
    """A recurrent spec that fits untrained is refused with many training steps, naming training.steps."""
    client = make_app(max_gflop=0.5, max_memory_mib=4096.0).test_client()
    base: dict[str, typing.Any] = {
        "recurrent": {"cell": "rnn", "steps": 20, "hidden": 16, "input_dim": 8},
        "batch_size": 8,
        "verify_recommendations": False,
    }
    assert client.post("/v1/analyses", json=base | {"training": {"steps": 2, "examples": 16}}).status_code == 200
    resp = client.post("/v1/analyses", json=base | {"training": {"steps": 10000, "examples": 16}})
    assert resp.status_code == 422
    errors = resp.get_json()["errors"]
    assert any(e["field"] == "training.steps" and "POST /v1/jobs" in e["message"] for e in errors), errors


@pytest.mark.parametrize(
    ("training", "limit", "field"),
    [
        ({"steps": 51}, "max_training_steps", "training.steps"),
        ({"examples": 65}, "max_training_examples", "training.examples"),
        ({"steps": 10, "histograms": [0, 1, 2]}, "max_training_histograms", "training.histograms"),
    ],
)
def test_training_past_its_limits_is_refused_naming_the_limit(training, limit, field) -> None:
    client = make_app(max_training_steps=50, max_training_examples=64, max_training_histograms=2).test_client()
    resp = client.post("/v1/analyses", json={"layers": [4, 8, 2], "batch_size": 4, "training": training})
    assert resp.status_code == 422
    errors = resp.get_json()["errors"]
    assert any(e["field"] == field and limit in e["message"] for e in errors), errors


def test_training_steps_count_in_the_work_estimate() -> None:
    """The cost model counts steps: a spec that fits untrained is refused with many steps, naming the field."""
    client = make_app(max_gflop=0.05, max_memory_mib=256.0).test_client()
    base: dict[str, typing.Any] = {"layers": [32, 32, 32], "batch_size": 16, "verify_recommendations": False}
    assert client.post("/v1/analyses", json=base | {"training": {"steps": 2, "examples": 16}}).status_code == 200
    resp = client.post("/v1/analyses", json=base | {"training": {"steps": 5000, "examples": 16}})
    assert resp.status_code == 422
    assert any(e["field"] == "training.steps" and "max_gflop" in e["message"] for e in resp.get_json()["errors"])


def test_openapi_documents_training_with_an_example(client) -> None:
    schemas = client.get("/openapi.json").get_json()["components"]["schemas"]
    spec = schemas["ModelSpec"]["properties"]["training"]
    assert spec["example"]["loss_scaling"] == "dynamic"
    assert "training" in schemas["Report"]["properties"]
