"""Phase diagrams of a sweep (the jobs API's `result`): verdict or log10 growth per cell, and
theory's χ = 1 line, the edge between order (vanishing) and chaos (exploding).

Input: `{"points": [{"params": {field: value}, "verdict", "log10_total_growth",
"theory": {"chi", ...}}, ...], "axes": {field: [values, ...]}}`. Two axes are drawn; one
heatmap is made per combination of any other axes' values (small multiples).
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Mapping, Sequence
from typing import Any

from .model import VERDICT_CODES, HeatmapFigure

_PREFERRED_X = ("training.learning_rate", "weight_scale", "init", "activation", "input_scale")
_PREFERRED_Y = ("layers.depth", "depth", "layers.width", "width", "dtype")


def _axes(result: Mapping[str, Any]) -> dict[str, list[Any]]:
    axes = result.get("axes")
    if isinstance(axes, Mapping) and axes:
        return {str(k): list(v) for k, v in axes.items() if isinstance(v, Sequence) and not isinstance(v, str)}
    found: dict[str, list[Any]] = {}  # no axes: the distinct values of the points' params, in order
    for point in result.get("points") or []:
        for key, value in (point.get("params") or {}).items():
            if value not in found.setdefault(key, []):
                found[key].append(value)
    return found


def _pick(axes: Mapping[str, list[Any]], preferred: Sequence[str], taken: str | None) -> str:
    multi = [k for k, v in axes.items() if len(v) > 1 and k != taken] or [k for k in axes if k != taken]
    for name in preferred:
        if name in multi:
            return name
    if not multi:
        raise ValueError("a phase diagram needs two sweep axes")
    return multi[0]


def _log_chi(point: Mapping[str, Any]) -> float | None:
    chi = (point.get("theory") or {}).get("chi")
    return math.log(chi) if isinstance(chi, int | float) and chi > 0 and math.isfinite(chi) else None


def critical_line(log_chi: Sequence[Sequence[float | None]]) -> tuple[tuple[float, float], ...]:
    """Where log χ crosses 0 along each row, linearly interpolated between cell centres.

    Cell (column i, row j) has its centre at (i + 0.5, j + 0.5) in the heatmap's coordinates.
    """
    line = []
    for j, row in enumerate(log_chi):
        for i in range(len(row) - 1):
            a, b = row[i], row[i + 1]
            if a is None or b is None or not (a == 0 or (a < 0) != (b < 0)):
                continue
            line.append((i + 0.5 + (a / (a - b) if a != b else 0.0), j + 0.5))
            break
    return tuple(line)


def is_numeric_axis(values: Sequence[Any]) -> bool:
    """A χ = 1 line can be interpolated along an axis of increasing numbers, not across categories."""
    numbers = [v for v in values if isinstance(v, int | float) and not isinstance(v, bool)]
    return len(numbers) == len(values) >= 2 and all(a < b for a, b in itertools.pairwise(numbers))


def largest_stable_cells(
    cells: Mapping[tuple[int, int], Mapping[str, Any]], x_values: Sequence[Any], x: str
) -> tuple[tuple[int, int], ...]:
    """Per row of a sweep over training.learning_rate (the x axis): the cell (column, row) of the largest learning
    rate whose training did not diverge and whose loss fell (service/jobs/stable_lr.py's answer)."""
    if x != "training.learning_rate":
        return ()
    best: dict[int, int] = {}
    for (j, i), p in cells.items():
        if (p.get("training") or {}).get("stable") and (j not in best or x_values[i] > x_values[best[j]]):
            best[j] = i
    return tuple((i, j) for j, i in sorted(best.items()))


def phase_figures(
    result: Mapping[str, Any], value: str = "verdict", x: str | None = None, y: str | None = None
) -> list[HeatmapFigure]:
    """One heatmap per combination of the axes other than x and y."""
    if value not in ("verdict", "log10_total_growth"):
        raise ValueError("value must be 'verdict' or 'log10_total_growth'")
    axes = _axes(result)
    x = x or _pick(axes, _PREFERRED_X, None)
    y = y or _pick(axes, _PREFERRED_Y, x)
    if x not in axes or y not in axes or x == y:
        raise ValueError(f"x and y must be two different sweep axes, from: {', '.join(axes)}")
    others = [k for k in axes if k not in (x, y)]
    numeric = is_numeric_axis(axes[x])
    points = list(result.get("points") or [])
    figures = []
    for combo in itertools.product(*(axes[k] for k in others)):
        fixed = dict(zip(others, combo, strict=True))
        cells: dict[tuple[int, int], Mapping[str, Any]] = {}
        for p in points:
            params = p.get("params") or {}
            if (
                all(params.get(k) == v for k, v in fixed.items())
                and params.get(x) in axes[x]
                and params.get(y) in axes[y]
            ):
                cells[(axes[y].index(params[y]), axes[x].index(params[x]))] = p
        if not cells:
            continue
        grid, chis = [], []
        for j in range(len(axes[y])):
            row, chi_row = [], []
            for i in range(len(axes[x])):
                p = cells.get((j, i))
                if p is None:
                    row.append(None)
                elif value == "verdict":
                    row.append(float(VERDICT_CODES[p["verdict"]]) if p.get("verdict") in VERDICT_CODES else None)
                else:
                    g = p.get("log10_total_growth")
                    row.append(float(g) if isinstance(g, int | float) and math.isfinite(g) else None)
                chi_row.append(_log_chi(p) if p is not None else None)
            grid.append(tuple(row))
            chis.append(chi_row)
        marked = largest_stable_cells(cells, axes[x], x)
        where = ", ".join(f"{k}={v}" for k, v in fixed.items())
        what = "verdict" if value == "verdict" else "log10 total growth"
        missing = sum(v is None for row in grid for v in row)
        figures.append(
            HeatmapFigure(
                key="phase" + ("-" + "-".join(str(v) for v in combo) if combo else ""),
                title=f"Phase diagram: {what} over {y} × {x}" + (f" ({where})" if where else ""),
                description=(
                    f"Heatmap with {len(axes[x])} columns ({x}: {', '.join(map(str, axes[x]))}) and "
                    f"{len(axes[y])} rows ({y}: {', '.join(map(str, axes[y]))}); each cell is one analysis "
                    f"coloured by its measured {what}; "
                    + (
                        "a dashed line marks theory's χ = 1 in each row where it falls in the grid."
                        if numeric
                        else f"theory's χ is written in each cell ({x} is categorical: no χ = 1 line between them)."
                    )
                ),
                xlabel=x,
                ylabel=y,
                x_values=tuple(axes[x]),
                y_values=tuple(axes[y]),
                values=tuple(grid),
                value_kind=value,
                colorbar_label="measured verdict" if value == "verdict" else "total growth (RMS gain), log10",
                critical_line=critical_line(chis) if numeric else (),
                chi=tuple(tuple(None if c is None else math.exp(c) for c in row) for row in chis),
                marked=marked,
                marked_label="largest stable learning rate (did not diverge, loss fell)" if marked else "",
                notes=(f"{missing} cell(s) without a result are blank.",) if missing else (),
            )
        )
    return figures
