"""The dtype bands come from the format's bit layout or the report, and equal torch.finfo."""

from __future__ import annotations

import math

import pytest
import torch

from service.plots.dtypes import IEEE_FORMATS, dtype_range, ieee_range


def _torch_limits(name: str) -> tuple[float, float, float]:
    dt = getattr(torch, name)
    fi = torch.finfo(dt)
    subnormal = torch.nextafter(torch.zeros((), dtype=dt), torch.ones((), dtype=dt)).item()
    return fi.max, fi.smallest_normal, subnormal


@pytest.mark.parametrize("name", sorted(IEEE_FORMATS))
def test_ieee_range_is_torch_finfo(name: str) -> None:
    rng = ieee_range(name)
    assert (rng.max, rng.smallest_normal, rng.smallest_subnormal) == _torch_limits(name)


def test_float16_is_the_lectures_numbers() -> None:
    rng = ieee_range("float16")
    assert rng.max == 65504.0
    assert math.isclose(rng.smallest_normal, 6.1e-5, rel_tol=1e-3)
    assert math.isclose(rng.smallest_subnormal, 6e-8, rel_tol=1e-2)


def test_report_limits_are_used_and_missing_ones_computed() -> None:
    given = {"dtype": "float16", "max": 65504.0, "smallest_normal": 6.103515625e-05, "smallest_subnormal": 5.96e-08}
    assert dtype_range({"diagnosis": {"dtype_limits": given}}).source == "report"
    computed = dtype_range({"runtime": {"dtype": "bfloat16"}, "diagnosis": {}})
    assert computed.source == "ieee754"
    assert computed.max == _torch_limits("bfloat16")[0]


def test_unknown_dtype_is_refused() -> None:
    with pytest.raises(ValueError, match="float8"):
        ieee_range("float8")
