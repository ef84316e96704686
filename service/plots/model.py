"""Figure data: what a plot shows, decided before any drawing library is involved.

The builders in `figures.py`/`phase.py` return these; `render.py` only draws them. Tests check
the numbers here (one point per layer, bands at the dtype's limits) without parsing pixels, and
the SVG tests check that the drawing kept them. y values of a `LineFigure` are log10 of the
quantity (a norm of 1e396 is 396): matplotlib's own log axis cannot hold values past 1.8e308.
"""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class Series:
    """One value per layer; None where the quantity has no finite value (drawn as a gap)."""

    key: str  # stable id: becomes the SVG group id "series-<key>"
    label: str
    x: tuple[int, ...]
    y: tuple[float | None, ...]
    color: str
    linestyle: str = "-"
    marker: str | None = None


@dataclass(frozen=True)
class Spread:
    """A shaded range per layer (the batch's min–max)."""

    key: str
    label: str
    x: tuple[int, ...]
    low: tuple[float | None, ...]
    high: tuple[float | None, ...]
    color: str


@dataclass(frozen=True)
class Band:
    """A horizontal band from y0 to y1 (log10); None is the edge of the view."""

    key: str
    label: str
    y0: float | None
    y1: float | None
    color: str
    hatch: str | None = None


@dataclass(frozen=True)
class Marker:
    """A vertical line at one layer (onset, first overflow/underflow)."""

    key: str
    label: str
    x: int
    color: str
    linestyle: str


@dataclass(frozen=True)
class Clipped:
    """Layers whose value left the dtype (inf/NaN: edge "top"; exactly 0: edge "bottom")."""

    key: str
    label: str
    x: tuple[int, ...]
    edge: str
    color: str


@dataclass(frozen=True)
class OffScale:
    """A dtype limit beyond the view (it does not meet the data): an arrow and its value at that edge."""

    key: str
    label: str
    edge: str  # "top" | "bottom"
    color: str


@dataclass(frozen=True)
class LineFigure:
    """A per-layer chart. `title`/`description` are also the SVG's <title>/<desc> (alt text)."""

    key: str
    title: str
    description: str
    xlabel: str
    ylabel: str
    yscale: str  # "log10": y holds log10 values, ticks read 10^k | "linear"
    ylim: tuple[float, float]
    series: tuple[Series, ...]
    spreads: tuple[Spread, ...] = ()
    bands: tuple[Band, ...] = ()
    markers: tuple[Marker, ...] = ()
    clipped: tuple[Clipped, ...] = ()
    notes: tuple[str, ...] = field(default=())  # shown under the plot (and in the HTML caption)
    offscale: tuple[OffScale, ...] = ()


@dataclass(frozen=True)
class HeatmapFigure:
    """A sweep's grid: one cell per (x, y) point, coloured by verdict or by log10 growth."""

    key: str
    title: str
    description: str
    xlabel: str
    ylabel: str
    x_values: tuple[object, ...]
    y_values: tuple[object, ...]
    values: tuple[tuple[float | None, ...], ...]  # [row y][column x]
    value_kind: str  # "verdict" (codes below) | "log10_total_growth"
    colorbar_label: str
    # χ = 1 per row, in cell coordinates (column, row centre); drawn across each row's height. Only on a
    # numeric x axis: between two categories (inits, activations) there is nothing to interpolate.
    critical_line: tuple[tuple[float, float], ...] = ()
    notes: tuple[str, ...] = ()
    chi: tuple[tuple[float | None, ...], ...] = ()  # theory's χ per cell [row][column], written in the cells
    # cells (column, row) outlined, e.g. each row's largest stable learning rate of a learning-rate sweep
    marked: tuple[tuple[int, int], ...] = ()
    marked_label: str = ""


VERDICT_CODES: dict[str, int] = {"vanishing": 0, "stable": 1, "exploding": 2}
