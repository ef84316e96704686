"""The report ids of the example specs are pinned: a refactor that changes one changes what every
cache and every stored grade is keyed by (the id hashes the normalised spec, the resolved Jacobian
method and the engine version). Recorded before issue 8's reshaping, which kept them; re-pinned for
engine 1.2.0 (issues 9 and 10 changed the numbers on purpose: per-layer float64 weight draws, the
float32 chain above 1 GFLOP, float16 emulation rounded once from float64, flags and causes) and for
engine 1.3.0 (issue 9: the power iteration carries its basis's image, power_iterations defaults to 1,
ReLU chains multiply only live units, two-pass moments)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from schemas.spec import ModelSpecSchema
from service.engine.analysis import analyze, report_id

SPECS = Path(__file__).resolve().parent.parent / "examples" / "specs"
AUTO_EXACT_GFLOP = 20.0  # the default budget (GRADSTAB_AUTO_EXACT_GFLOP)

EXPECTED = {
    "lecture_identity_depth100.json": "55a44d2fc8d6f0fb426d85d311cb7ffaa3bd8baf288e5c56e41d0822d6f38156",
    "relu_kaiming_stable.json": "1cb97fbeca3a5e552d0cca1ea3de70024952af635b52dffe6d89f6d445debd17",
    "sigmoid_vanishing.json": "915b6066344b11e262b96c5836d23c003bfe47ef7466a1ccbb2deb8e5e579017",
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
