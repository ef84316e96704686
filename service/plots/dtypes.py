"""The representable range of a floating-point dtype, for the bands drawn behind the gradients.

The report carries `diagnosis.dtype_limits` (the engine reads them from torch.finfo); where a
report lacks them, they are computed here from the IEEE 754 parameters of the format, so no
limit is a hand-typed constant: with e exponent bits and m stored mantissa bits,
bias = 2^(e-1) − 1, largest finite = (2 − 2^-m)·2^bias, smallest normal = 2^(1−bias),
smallest subnormal = 2^(1−bias−m). The tests check these against torch.finfo.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

# (exponent bits, stored mantissa bits): IEEE 754 binary16/32/64 and bfloat16 (binary32's exponent, 7-bit mantissa).
IEEE_FORMATS: dict[str, tuple[int, int]] = {
    "float16": (5, 10),
    "bfloat16": (8, 7),
    "float32": (8, 23),
    "float64": (11, 52),
}


@dataclass(frozen=True)
class DtypeRange:
    """Largest finite, smallest normal and smallest subnormal magnitude of a dtype."""

    dtype: str
    max: float
    smallest_normal: float
    smallest_subnormal: float
    source: str  # "report" (torch.finfo, via the engine) | "ieee754" (computed here)

    @property
    def log10_max(self) -> float:
        return math.log10(self.max)

    @property
    def log10_smallest_normal(self) -> float:
        return math.log10(self.smallest_normal)

    @property
    def log10_smallest_subnormal(self) -> float:
        # 2^-1074 is representable, log10 of it is fine; math.log10 takes the exact float.
        return math.log10(self.smallest_subnormal)


def ieee_range(dtype: str) -> DtypeRange:
    """The range from the format's bit layout (exact powers of two, no rounding)."""
    try:
        exp_bits, man_bits = IEEE_FORMATS[dtype]
    except KeyError:
        raise ValueError(f"unknown dtype {dtype!r}; known: {', '.join(IEEE_FORMATS)}") from None
    bias = 2 ** (exp_bits - 1) - 1
    largest = math.ldexp(2.0 - math.ldexp(1.0, -man_bits), bias)
    return DtypeRange(
        dtype=dtype,
        max=largest,
        smallest_normal=math.ldexp(1.0, 1 - bias),
        smallest_subnormal=math.ldexp(1.0, 1 - bias - man_bits),
        source="ieee754",
    )


def dtype_range(report: Mapping[str, Any]) -> DtypeRange:
    """The report's own limits where it has them (all three), else computed from its dtype."""
    diagnosis = report.get("diagnosis") or {}
    limits = diagnosis.get("dtype_limits") or {}
    dtype = limits.get("dtype") or (report.get("runtime") or {}).get("dtype") or "float32"
    values = (limits.get("max"), limits.get("smallest_normal"), limits.get("smallest_subnormal"))
    if all(isinstance(v, int | float) and v > 0 and math.isfinite(v) for v in values):
        return DtypeRange(dtype, float(values[0]), float(values[1]), float(values[2]), source="report")
    return ieee_range(dtype)
