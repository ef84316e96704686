"""A recurrent spec over HTTP: 422s that name the field, the report along time, limits under the defaults."""

from __future__ import annotations

import json

import pytest

from schemas.limits import ADMIT_MARGIN, Limits
from schemas.spec import ModelSpecSchema, check_limits
from service.config import ServerSettings

from .conftest import SMALL_LIMITS, TINY_SPEC, strict_json

REC = {"recurrent": {"cell": "rnn", "steps": 8, "hidden": 4, "input_dim": 3}, "batch_size": 2}


def _fields(resp) -> set[str]:
    assert resp.status_code == 422, resp.get_data(as_text=True)
    body = strict_json(resp.get_data(as_text=True))
    return {e["field"] for e in body["errors"]}


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"activation": "tanh"}, "layers"),  # neither
        (TINY_SPEC | REC, "recurrent"),  # both
        (REC | {"architecture": {"residual": {"every": 1}}}, "architecture"),
        (REC | {"activation": "gelu"}, "activation"),
        (REC | {"activation": ["tanh", "tanh"]}, "activation"),
        ({"recurrent": {"cell": "lstm", "steps": 4, "hidden": 4}, "activation": "relu"}, "activation"),
        (TINY_SPEC | {"init": "identity"}, "init"),
        ({"recurrent": {"cell": "elman", "steps": 4}}, "recurrent.cell"),
        ({"recurrent": {"steps": 0}}, "recurrent.steps"),
        ({"recurrent": {"steps": 4, "extra": 1}}, "recurrent.extra"),
    ],
)
def test_bad_recurrent_specs_name_the_field(post_json, body, field):
    assert field in _fields(post_json(body))


def test_limits_name_the_limit(post_json):
    resp = post_json({"recurrent": {"steps": SMALL_LIMITS.max_steps + 1, "hidden": 4}})
    assert "recurrent" in _fields(resp)
    assert "max_steps" in resp.get_data(as_text=True)


def test_recurrent_report_along_time(post_json):
    resp = post_json(REC | {"recurrent": REC["recurrent"] | {"cell": "gru", "loss_at": "every"}})
    assert resp.status_code == 200, resp.get_data(as_text=True)
    rep = strict_json(resp.get_data(as_text=True))
    assert rep["axis"] == "time" and rep["depth"] == 8 and len(rep["layers"]) == 8
    assert rep["recurrent"]["cell"] == "gru" and rep["recurrent"]["clipping"]["kind"] == "training_time"
    assert rep["theory"]["recurrent"]["mean_keep_gate"] is not None
    assert {g["gate"] for g in rep["recurrent"]["weight_grads"]} == {None, "r", "z", "n"}


def test_plain_report_says_depth(post_json):
    rep = strict_json(post_json(TINY_SPEC).get_data(as_text=True))
    assert rep["axis"] == "depth" and rep["recurrent"] is None and rep["theory"]["recurrent"] is None


@pytest.mark.parametrize("cell", ["rnn", "lstm", "gru"])
def test_long_horizon_fits_the_default_request_limits(cell):
    """T = 1000, hidden 256: admitted by the default server's limits (its request deadline × ADMIT_MARGIN)."""
    limits = Limits(max_seconds=ServerSettings().request_deadline * ADMIT_MARGIN)
    spec = ModelSpecSchema(limits=limits).load({"recurrent": {"cell": cell, "steps": 1000, "hidden": 256}})
    assert check_limits(spec, limits) == {}
    too_long = {"recurrent": {"cell": cell, "steps": Limits().max_steps, "hidden": 1024}, "batch_size": 64}
    with pytest.raises(Exception, match="POST /v1/jobs"):
        ModelSpecSchema(limits=limits).load(too_long)


def test_spec_field_is_in_openapi(client):
    doc = json.loads(client.get("/openapi.json").get_data(as_text=True))
    text = json.dumps(doc)
    assert "recurrent" in text and "loss_at" in text and "forget_bias" in text


def test_a_longer_horizon_runs_as_a_job():
    """T = 4000 at hidden 256 passes the request's predicted time but fits a job's (its task timeout × the margin)."""
    from marshmallow import ValidationError

    from schemas.jobs import AnalysisJobRequestSchema

    limits = Limits(max_seconds=ServerSettings().request_deadline * ADMIT_MARGIN)
    body = {"recurrent": {"cell": "lstm", "steps": 4000, "hidden": 256}}
    with pytest.raises(ValidationError, match="predicted time"):
        ModelSpecSchema(limits=limits).load(body)
    plan = AnalysisJobRequestSchema(limits=limits).load({"analysis": body})
    assert plan.kind == "analysis"


def test_capabilities_list_the_cells(client):
    caps = client.get("/v1/capabilities").get_json()
    assert caps["recurrent"]["cells"] == ["rnn", "lstm", "gru"] and "identity" in caps["recurrent"]["inits"]
