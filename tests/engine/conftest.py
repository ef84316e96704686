"""Engine tests: specs go through the wire schema, so defaults are the documented ones."""

from __future__ import annotations

from typing import Any

import pytest
import torch

from schemas import ModelSpecSchema
from service.engine import ModelSpec


def make_spec(**fields: Any) -> ModelSpec:
    body = {"verify_recommendations": False, **fields}
    return ModelSpecSchema().load(body)


def chunked_power_here(monkeypatch: pytest.MonkeyPatch) -> None:
    """The GPU's chunked power iteration (jacobian.CHUNKED_DEVICES), run on this CPU for the test."""
    from service.engine import jacobian

    monkeypatch.setattr(jacobian, "CHUNKED_DEVICES", frozenset({"cpu", "cuda"}))


@pytest.fixture(autouse=True)
def _deterministic_threads():
    torch.set_num_threads(1)
    yield
