"""The report ids of the example specs are pinned: a refactor that changes one changes what every
cache and every stored grade is keyed by (the id hashes the normalised spec, the resolved Jacobian
method and the engine version). Recorded before issue 8's reshaping, which kept them; re-pinned for
engine 1.2.0 (issues 9 and 10 changed the numbers on purpose: per-layer float64 weight draws, the
float32 chain above 1 GFLOP, float16 emulation rounded once from float64, flags and causes)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from schemas.spec import ModelSpecSchema
from service.engine.analysis import analyze, report_id

SPECS = Path(__file__).resolve().parent.parent / "examples" / "specs"
AUTO_EXACT_GFLOP = 20.0  # the default budget (GRADSTAB_AUTO_EXACT_GFLOP)

EXPECTED = {
    "lecture_identity_depth100.json": "eda7964dc849a67ec044ea352a14b6eacbd26c201da6d9ddf3b37066b781b8f0",
    "relu_kaiming_stable.json": "a90ee22d7f5ed4d1995389243a763a0605d115d727f81dde4cea91da56f94e16",
    "sigmoid_vanishing.json": "eef7e1577154c664bd4b13c0699ad5843258b5dbc57cfb4d0e30d5924b2509fd",
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
