"""ReportSchema against hand-built Reports: non-finite numbers become null, no field is forgotten."""

from __future__ import annotations

import dataclasses
import json
import math
import sys
import typing

import pytest
from marshmallow import Schema, fields

from schemas.jsonio import dumps
from schemas.report import HTTP_ONLY, ReportSchema
from service.engine import report as r
from tests.api.conftest import TINY_SPEC

INF, NAN = math.inf, math.nan


def _stats(value: float) -> r.TensorStats:
    return r.TensorStats(value, NAN, -INF, 0.0, value, 0.0, 0.0, 0.5, 16, "nonfinite")


def hand_built_report() -> r.Report:
    event = r.RangeEvent(True, 2, "output_grad", 1.0, 1, {"output_grad": r.QuantityEvent(2, 1, 1.0)})
    layer = r.LayerReport(
        index=1,
        in_features=4,
        out_features=4,
        weight_grad=_stats(INF),
        output_grad=_stats(1.0),
        jacobian_product=r.JacobianStats(24.1, INF, NAN, None, None, "rank_deficient", 3, 1.0, 2.0, "exact"),
        activation=r.ActivationStats("identity", 0.0, INF, 30.0, 1.0, 1.0, None, None, 0.25),
        update=r.UpdateStats(2.0, NAN, None),
    )
    diagnosis = r.Diagnosis(
        verdict="exploding",
        log10_total_growth=24.0,
        growth_per_layer=INF,
        log10_growth_per_layer=0.24,
        onset_layer=2,
        overflow=event,
        underflow=r.RangeEvent(False, None, None, None, None),
        dtype_limits=r.DtypeLimits("float16", 65504.0, 6.1e-5, 6e-8, 9.8e-4, 4.8, -4.2),
        causes=[r.Cause("dtype_overflow", "inf", [2], {"max": INF, "nested": [NAN, 1, (2.5,)], "ok": True})],
        recommendations=[
            r.Recommendation(
                "use_float32",
                {"dtype": "float32", "weight_scale": NAN},
                "why",
                r.Outcome("stable", 0.1, 1.0, False, False),
                True,
            )
        ],
        summary="s",
        thresholds={"exploding_log10": 2.0, "weird": NAN},
    )
    theory = r.Theory(4.0, 4.0, 2.0, INF, None, 0.5, "note", [r.LayerTheory(1, NAN, 2.0)])
    runtime = r.Runtime("cpu", "float16", True, "exact", "float64", "2", "3.11", "1", 1, 12.5, ["n"])
    return r.Report("abc", "1", 1, INF, "nonfinite", [layer], diagnosis, theory, runtime)


def test_nonfinite_numbers_dump_as_null():
    out = ReportSchema().dump(hand_built_report())
    text = dumps(out)  # raises on NaN/inf
    assert "NaN" not in text and "Infinity" not in text
    assert out["loss"] is None
    layer = out["layers"][0]
    assert layer["weight_grad"]["norm"] is None and layer["weight_grad"]["log10_norm"] is None
    assert layer["jacobian_product"]["log10_spectral_norm"] == 24.1
    assert out["diagnosis"]["causes"][0]["evidence"] == {"max": None, "nested": [None, 1, [2.5]], "ok": True}
    assert out["diagnosis"]["recommendations"][0]["change"] == {"dtype": "float32", "weight_scale": None}
    assert out["diagnosis"]["thresholds"] == {"exploding_log10": 2.0, "weird": None}
    assert out["diagnosis"]["overflow"]["by_quantity"]["output_grad"]["first_layer"] == 2
    assert json.loads(text) == out


def _schema_fields(schema: Schema) -> dict[str, fields.Field]:
    return dict(schema.fields)


def _dataclass_in(hint: typing.Any) -> type:
    """The dataclass inside a hint such as list[LayerReport] or dict[str, QuantityEvent] | None."""
    if dataclasses.is_dataclass(hint):
        return hint
    for arg in typing.get_args(hint):
        if dataclasses.is_dataclass(arg) or typing.get_args(arg):
            return _dataclass_in(arg)
    raise AssertionError(f"no dataclass in {hint}")


def _check(cls: type, schema: Schema, path: str) -> list[str]:
    """Every dataclass field has a schema field and vice versa, recursively."""
    missing: list[str] = []
    hints = typing.get_type_hints(cls, vars(sys.modules[cls.__module__]))  # report.py, or training_report.py
    sf = _schema_fields(schema)
    names = {f.name for f in dataclasses.fields(cls)}
    missing += [f"{path}.{n} (not in schema)" for n in names - set(sf)]
    missing += [f"{path}.{n} (not in dataclass)" for n in set(sf) - names]
    for name in names & set(sf):
        field = sf[name]
        inner = field.inner if isinstance(field, fields.List) else field
        inner = inner.value_field if isinstance(inner, fields.Dict) and inner.value_field else inner
        if isinstance(inner, fields.Nested):
            missing += _check(_dataclass_in(hints[name]), inner.schema, f"{path}.{name}")
    return missing


def test_schema_covers_every_report_field():
    assert _check(r.Report, ReportSchema(exclude=HTTP_ONLY), "report") == []


def _strict(node: typing.Any) -> typing.Any:
    """OpenAPI 3.0 schemas as JSON Schema (nullable → a null type), with additionalProperties: false
    on every object that lists its properties."""
    if isinstance(node, dict):
        out = {k: _strict(v) for k, v in node.items() if k != "nullable"}
        if "properties" in out and "additionalProperties" not in out:
            out["additionalProperties"] = False
        if node.get("nullable") is True and "type" in out:
            out["type"] = [out["type"], "null"]
        return out
    return [_strict(v) for v in node] if isinstance(node, list) else node


def test_the_analysis_response_validates_against_its_documented_schema(client, post_json):
    """What /v1/analyses returns, `cache` member included, is what its OpenAPI document says, and
    nothing more (a fuzzer run from the app's own document once flagged the undocumented `cache`)."""
    jsonschema = pytest.importorskip("jsonschema")
    doc = client.get("/openapi.json").get_json()
    ok = doc["paths"]["/v1/analyses"]["post"]["responses"]["200"]
    schema = _strict(ok["content"]["application/json"]["schema"] | {"components": doc["components"]})
    resp = post_json(TINY_SPEC | {"learning_rate": 0.1})
    assert resp.status_code == 200
    body = resp.get_json()
    assert set(body) >= {"cache", "diagnosis", "layers"}
    jsonschema.Draft4Validator(schema).validate(body)
    assert "X-Cache" in ok["headers"] and resp.headers["X-Cache"] in ("hit", "miss")


# --------------------------------------------------------------------------- dump_report's fast path

REAL_SPECS = [
    {"layers": {"depth": 10, "width": 64}, "batch_size": 8},
    {"layers": {"depth": 30, "width": 4}, "activation": "identity", "init": "normal", "weight_scale": 1.0},
    {"layers": [4, 8, 8, 2], "activation": "tanh", "batch_size": 4, "dtype": "float16", "weight_scale": 30.0},
    {"layers": {"depth": 8, "width": 16}, "activation": "relu", "jacobian": {"method": "estimate"}, "seed": 3},
    {"layers": [6, 6, 6], "activation": "sigmoid", "verify_recommendations": False},
]


def _same_wire(report: object) -> None:
    """dump_report must be ReportSchema().dump exactly: same keys, same order, same values."""
    from schemas.report import dump_report

    expected = ReportSchema().dump(report)
    got = dump_report(report)
    assert got == expected
    assert json.dumps(got) == json.dumps(expected)  # key order too


def test_dump_report_fast_path_is_in_use_and_equals_marshmallow_on_a_hand_built_report():
    import schemas.report

    assert schemas.report._REPORT_PLAN is not None, "ReportSchema gained a feature the fast path does not model"
    _same_wire(hand_built_report())


def test_dump_report_equals_marshmallow_on_real_reports():
    from schemas.limits import Limits
    from schemas.spec import ModelSpecSchema
    from service.engine import analyze

    schema = ModelSpecSchema(limits=Limits())
    for body in REAL_SPECS:
        _same_wire(analyze(schema.load(body)))


def test_dump_report_leaves_out_missing_attributes_and_reads_dicts_like_marshmallow():
    report = hand_built_report()
    event = report.diagnosis.overflow
    event.by_quantity = {"output_grad": {"first_layer": 2, "layer_count": 1}}  # dict values, max_fraction missing
    object.__setattr__(report, "theory", None)  # nullable nested
    _same_wire(report)


def test_unmodelled_schema_features_fall_back_to_marshmallow():
    from marshmallow import post_dump

    from schemas.report import compile_plan

    class WithMethod(Schema):
        x = fields.Method("get_x")

        def get_x(self, obj: object) -> int:
            return 1

    class WithHook(Schema):
        x = fields.Integer()

        @post_dump
        def add(self, data: dict, **kwargs: object) -> dict:
            return data

    class WithMany(Schema):
        xs = fields.Nested(WithHook, many=True)

    class Leaf(Schema):
        x = fields.Integer()

    class Plain(Schema):
        x = fields.Integer()
        y = fields.List(fields.Nested(Leaf))
        z = fields.Dict(keys=fields.String(), values=fields.Nested(Leaf))

    for schema in (WithMethod(), WithHook(), WithMany()):
        assert compile_plan(schema) is None, type(schema).__name__
    assert compile_plan(Plain()) is not None


def test_dump_report_converts_values_of_other_types_like_marshmallow():
    """The fast path passes exact str/int/bool/finite float through; everything else goes to `_serialize`."""
    import numpy as np

    report = hand_built_report()
    layer = report.layers[0]
    layer.index = True  # Integer field given a bool: marshmallow dumps int(True)
    layer.in_features = np.int64(4)
    layer.weight_grad.mean = np.float64(0.25)  # a float subclass: float() of it
    layer.weight_grad.std = np.float32(-np.inf)
    layer.weight_grad.max_abs = 3  # an int in a float field: 3.0
    layer.weight_grad.status = np.str_("ok")
    report.runtime.float16_emulated = 0  # Boolean keeps the value as it is
    report.runtime.notes = ("a", np.str_("b"))
    report.diagnosis.causes[0].layers = [np.int64(2), True]
    _same_wire(report)
    out = ReportSchema().dump(report)
    assert out["layers"][0]["weight_grad"]["std"] is None
    assert type(out["layers"][0]["weight_grad"]["max_abs"]) is float


def test_wire_encoding_refuses_nan_and_infinity():
    from schemas.jsonio import dumps_bytes

    for bad in ({"x": NAN}, [1.0, INF], {"a": {"b": [-INF]}}):
        with pytest.raises(ValueError, match="not JSON compliant"):
            dumps(bad)
        with pytest.raises(ValueError, match="not JSON compliant"):
            dumps_bytes(bad)


def test_wire_encoding_has_the_values_and_key_order_of_json():
    """orjson's text where it round-trips, else json's: same values, same key order, either way."""
    from schemas.jsonio import dumps_bytes

    cases = [
        {"z": 1, "a": [0.1, -0.0, 1e-7, 1e300, 2**63 - 1], "m": {"é": '\u2028\x1f"\\', "n": None, "t": True}},
        {"tuple": (1, 2.5), "big": 2**70, 1: "int key", "nested": [{"b": 1, "a": 2}]},  # json's path
        [],
        "text",
    ]
    for value in cases:
        text = dumps(value)
        assert text == dumps_bytes(value).decode()
        assert "NaN" not in text and "Infinity" not in text and ", " not in text
        expected = json.dumps(value, ensure_ascii=False, separators=(",", ":"))
        assert json.dumps(json.loads(text)) == json.dumps(json.loads(expected))  # values and key order
    assert dumps(cases[1]) == json.dumps(cases[1], ensure_ascii=False, separators=(",", ":"))
    with pytest.raises(TypeError):  # json refuses what orjson would encode
        dumps({"when": __import__("datetime").date(2024, 1, 1)})
