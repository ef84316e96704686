"""Property-based: any small spec within the schema gives a complete, strict-JSON report.

Extreme weight and input scales, every activation, dtype, init and loss: no exception, no NaN or
Infinity token in the JSON, and every non-finite number is null with a status beside it.
"""

from __future__ import annotations

import json

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from schemas import ModelSpecSchema
from schemas.report import dump_report
from service.engine import analyze
from service.engine.spec import ACTIVATIONS, DTYPES, INITS, LOSSES

bodies = st.fixed_dictionaries(
    {
        "layers": st.lists(st.integers(1, 12), min_size=2, max_size=7),
        "activation": st.sampled_from(ACTIVATIONS),
        "init": st.sampled_from(INITS),
        "weight_scale": st.sampled_from([1e-6, 1e-2, 0.5, 1.0, 3.0, 100.0, 1e5]),
        "dtype": st.sampled_from(DTYPES),
        "loss": st.sampled_from(LOSSES),
        "batch_size": st.integers(1, 3),
        "input_scale": st.sampled_from([1e-4, 1.0, 1e4]),
        "bias": st.booleans(),
        "seed": st.integers(0, 2**31),
        "verify_recommendations": st.booleans(),
        "jacobian": st.fixed_dictionaries({"method": st.sampled_from(["exact", "estimate"])}),
    }
)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(body=bodies)
def test_any_small_spec_gives_a_strict_json_report(body: dict) -> None:
    if body["loss"] == "cross_entropy" and body["layers"][-1] < 2:
        body["layers"][-1] = 2
    spec = ModelSpecSchema().load(body)
    report = analyze(spec)
    out = dump_report(report)
    text = json.dumps(out, allow_nan=False)  # raises on NaN/Infinity
    assert json.loads(text)["diagnosis"]["verdict"] in ("exploding", "vanishing", "stable")
    assert len(out["layers"]) == spec.depth
    for layer in out["layers"]:
        for key in ("weight_grad", "output_grad"):
            stats = layer[key]
            if stats["norm"] is None:
                assert stats["status"] in ("nonfinite",) or stats["nonfinite_fraction"] > 0
        jp = layer["jacobian_product"]
        if jp["log10_min_singular_value"] is None:
            assert jp["min_singular_value_status"] in ("rank_deficient", "not_computed")
