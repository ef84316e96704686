"""The report ids of the example specs are pinned: a refactor that changes one changes what every
cache and every stored grade is keyed by (the id hashes the normalised spec, the resolved Jacobian
method and the engine version). Recorded on the tree before issue 8's reshaping."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from schemas.spec import ModelSpecSchema
from service.engine.analysis import analyze, report_id

SPECS = Path(__file__).resolve().parent.parent / "examples" / "specs"
AUTO_EXACT_GFLOP = 20.0  # the default budget (GRADSTAB_AUTO_EXACT_GFLOP)

EXPECTED = {
    "lecture_identity_depth100.json": "8ded3d804b05bbd8c02abc4220b3832a2a164a1342b7082fdac9cbac4726848f",
    "relu_kaiming_stable.json": "cd6d7d15f10ebb1a66876f1ec9b43db2427a40da54603437c59a09794c80cecc",
    "sigmoid_vanishing.json": "3fdb5dbb72f8324a5bc5277c41a3eab37cd5a7700e417b7ffd53c3dc9b2e6e2b",
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
