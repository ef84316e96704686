"""The report ids of the example specs are pinned: a refactor that changes one changes what every
cache and every stored grade is keyed by (the id hashes the normalised spec, the resolved Jacobian
method and the engine version). Recorded before issue 8's reshaping, which kept them; re-pinned for
engine 1.2.0 (issues 9 and 10 changed the numbers on purpose: per-layer float64 weight draws, the
float32 chain above 1 GFLOP, float16 emulation rounded once from float64, flags and causes) and for
engine 1.3.0 (issue 9: the power iteration carries its basis's image, power_iterations defaults to 1,
ReLU chains multiply only live units, two-pass moments) and for engine 1.3.1 (issue 9: on a GPU the power
iteration runs in chunks of layers, which changes the GPU's spectral norms; the CPU's numbers are unchanged)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from schemas.spec import ModelSpecSchema
from service.engine.analysis import analyze, report_id

SPECS = Path(__file__).resolve().parent.parent / "examples" / "specs"
AUTO_EXACT_GFLOP = 20.0  # the default budget (GRADSTAB_AUTO_EXACT_GFLOP)

EXPECTED = {
    # issue 18's architectures (the plain specs' ids above did not change with the optional field)
    "batchnorm_relu_depth50.json": "7402dc76af4207be65e4f43541a50b766d7d58db65bbb3e732d065caf85cf2ba",
    "layernorm_post_residual_depth50.json": "83df103136873dc4218f291902828f3f58da9691359f2d64d488dcd3cbb26f41",
    "layernorm_pre_residual_depth50.json": "238d5abb70190a48c4cbe4c7638dd1858509f767cdb311983bd5b65577a00aa7",
    "plain_relu_exploding_depth50.json": "f93e964b3fc1ebd270f2fbad2ab40cf89b410885ab935f1e083cd951c95c7d0d",
    "residual_relu_depth50.json": "dee71d561952b1092185b67fba8f52781f5f24fa06ed4e284ad6573c91f7abfa",
    "residual_scaled_branches_depth50.json": "6cb94ffecb38268f6cf3371a1e5c3147bfe69e63fac012d178db493106bcf93c",
    "lecture_identity_depth100.json": "9d903fb9302a4c5494c0451cea790b0c38e104a4e5c03a4a66dd55419c4e0444",
    "relu_kaiming_stable.json": "9c78c58f903810637ec60862f08bc52e531c94b24ff320ad80c80b96286e0489",
    "sigmoid_vanishing.json": "c2f58cdeabf13f60af751d9ee7def98f8359e28725fabcace9c6d4287764cc56",
}


def _load(name: str):
    return ModelSpecSchema().load(json.loads((SPECS / name).read_text()))


def test_every_example_spec_has_a_pinned_id():
    assert sorted(p.name for p in SPECS.glob("*.json")) == sorted(EXPECTED)


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_report_id_is_unchanged(name):
    assert report_id(_load(name), AUTO_EXACT_GFLOP) == EXPECTED[name]


def test_the_report_carries_the_same_id():
    """The id inside a full report equals the one computed before the engine runs (the cache key)."""
    name = "lecture_identity_depth100.json"
    assert analyze(_load(name), AUTO_EXACT_GFLOP).id == EXPECTED[name]
