"""Real reports from the engine (small specs), in their wire form, for the plot tests."""

from __future__ import annotations

from typing import Any

import pytest

from schemas import ModelSpecSchema
from schemas.report import dump_report
from service.engine import analyze


def report_for(**fields: Any) -> dict[str, Any]:
    import torch

    torch.set_num_threads(1)
    return dump_report(analyze(ModelSpecSchema().load(fields)))


@pytest.fixture(scope="session")
def float16_exploding() -> dict[str, Any]:
    """The lecture's identity net in float16, short enough to be quick: it overflows."""
    return report_for(
        layers={"depth": 30, "width": 4},
        activation="identity",
        init="normal",
        weight_scale=1.6,
        dtype="float16",
        batch_size=8,
        verify_recommendations=True,
    )


@pytest.fixture(scope="session")
def float16_vanishing() -> dict[str, Any]:
    """A sigmoid net in float16 whose gradient sinks through float16's subnormal range to 0."""
    return report_for(
        layers={"depth": 30, "width": 16},
        activation="sigmoid",
        init="xavier_normal",
        dtype="float16",
        batch_size=8,
        verify_recommendations=False,
    )


@pytest.fixture(scope="session")
def sigmoid_vanishing() -> dict[str, Any]:
    return report_for(
        layers={"depth": 25, "width": 16},
        activation="sigmoid",
        init="xavier_normal",
        dtype="float32",
        batch_size=8,
        verify_recommendations=False,
    )
