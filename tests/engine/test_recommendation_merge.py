"""One recommendation per resulting spec (issue 24): two advisors that propose the same network are one
recommendation carrying both codes and both reasons, judged on the strictest thing either addresses."""

from __future__ import annotations

import pytest

from service.engine import analyze
from service.engine.diagnosis.advice import Candidate, merge_duplicates

from .conftest import make_spec

ISSUE_SPECS = [
    # measured_weight_scale and critical_weight_scale both proposed {"weight_scale": 1.0}
    dict(layers={"depth": 50, "width": 32}, activation="identity", init="xavier_uniform", weight_scale=0.5,
         dtype="bfloat16", seed=580590),
    # ... and orthogonal_init's {"init": "orthogonal", "weight_scale": 1.0} on a net already orthogonal: the same spec
    dict(layers={"depth": 100, "width": 4}, activation="identity", init="orthogonal", weight_scale=2,
         dtype="float16", seed=49812),
]  # fmt: skip


@pytest.mark.parametrize("fields", ISSUE_SPECS, ids=["xavier", "orthogonal"])
def test_each_resulting_spec_is_recommended_once_with_every_reason(fields: dict) -> None:
    spec = make_spec(**fields, verify_recommendations=True)
    recs = analyze(spec).diagnosis.recommendations
    resulting = [spec.with_changes(**r.change) for r in recs]
    assert len(set(resulting)) == len(resulting)
    scale_one = [r for r in recs if spec.with_changes(**r.change) == spec.with_changes(weight_scale=1.0)]
    assert len(scale_one) == 1
    rec = scale_one[0]
    assert rec.change == {"weight_scale": 1.0}
    assert rec.code == rec.codes[0] == "measured_weight_scale"
    expected = {"measured_weight_scale", "critical_weight_scale"}
    if fields["init"] == "orthogonal":
        expected.add("orthogonal_init")
    assert set(rec.codes) == expected
    # every advisor's reason is kept: the measured gain's and mean-field theory's (and orthogonality's)
    assert "positively homogeneous" in rec.rationale and "Mean-field theory" in rec.rationale
    assert ("product of orthogonal matrices" in rec.rationale) == (fields["init"] == "orthogonal")


def test_merge_keeps_the_smallest_change_and_the_strictest_judgement() -> None:
    spec = make_spec(layers={"depth": 3, "width": 4}, activation="identity", init="orthogonal", weight_scale=2.0)
    merged = merge_duplicates(
        spec,
        [
            Candidate("a", {"init": "orthogonal", "weight_scale": 1.0}, "A.", "range"),
            Candidate("b", {"dtype": "float64"}, "B.", "range"),
            Candidate("c", {"weight_scale": 1.0}, "C.", "growth"),
            Candidate("d", {"weight_scale": 1.0}, "C.", "gradient_range"),
        ],
    )
    assert [m.codes for m in merged] == [("a", "c", "d"), ("b",)]
    first = merged[0]
    assert (first.code, first.change, first.rationale) == ("a", {"weight_scale": 1.0}, "A. C.")
    assert first.addresses == "growth"
