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
