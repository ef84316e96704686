"""A sweep's grid → its points: the cross product of the axes, each point the base spec with
the axis values set at their (dotted) field paths. Pure data, no validation of the values:
`schemas.jobs` loads every point with the same ModelSpecSchema as POST /v1/analyses.
"""

from __future__ import annotations

import copy
import itertools
from collections.abc import Mapping, Sequence
from typing import Any

# The nested objects of a spec whose members a grid may name as `parent.member`.
NESTED = ("layers", "jacobian", "thresholds", "architecture", "training", "recurrent")


def point_count(grid: Mapping[str, Sequence[Any]]) -> int:
    count = 1
    for values in grid.values():
        count *= len(values)
    return count


def set_path(doc: dict[str, Any], path: str, value: Any) -> None:
    """doc["a"]["b"] = value for path "a.b", creating the object under "a" when absent."""
    head, _, rest = path.partition(".")
    if not rest:
        doc[head] = value
        return
    child = doc.get(head)
    if not isinstance(child, dict):
        child = {}
        doc[head] = child
    set_path(child, rest, value)


def expand(base: Mapping[str, Any], grid: Mapping[str, Sequence[Any]]) -> list[tuple[dict[str, Any], dict[str, Any]]]:
    """[(params, body)] in row-major order of the grid's axes (the first axis varies slowest)."""
    names = list(grid)
    out = []
    for values in itertools.product(*(grid[n] for n in names)):
        body = copy.deepcopy(dict(base))
        params = dict(zip(names, values, strict=True))
        for name, value in params.items():
            set_path(body, name, copy.deepcopy(value))
        out.append((params, body))
    return out
