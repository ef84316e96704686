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


@pytest.fixture(autouse=True)
def _deterministic_threads():
    torch.set_num_threads(1)
    yield
