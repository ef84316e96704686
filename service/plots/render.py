"""Draw figure data with matplotlib (Agg, imported on first use) as SVG or PNG.

matplotlib is imported inside `_mpl()`, never at module level, so importing `service.plots`
costs nothing on the JSON path or at worker start. Figures are built with the object API
(`matplotlib.figure.Figure`, no pyplot): no global figure registry, nothing to close, safe in
threaded workers. Fixed margins instead of tight/constrained layout, and a legend at a fixed
place instead of loc="best", keep a 100-layer plot well under the 150 ms budget.
"""

from __future__ import annotations

import io
import math
from functools import cache
from types import SimpleNamespace
from typing import Any

from .figures import pow10
from .model import VERDICT_CODES, HeatmapFigure, LineFigure
from .palette import VERDICT_COLOURS
from .svg import add_alt_text

# svg.fonttype none: text stays <text> (searchable, readable by screen readers and tests, and
# small) and the browser draws it with its own sans-serif font, so no font is embedded or fetched.
# path.simplify off: every layer stays a vertex of its line. hashsalt and Date: same bytes per report.
RC = {
    "svg.fonttype": "none",
    "svg.hashsalt": "gradstab",  # replaced per figure: ids stay unique when several SVGs share a page
    "path.simplify": False,
    "font.family": "sans-serif",
    "font.size": 9.0,
    "axes.titlesize": 10.5,
    "axes.labelsize": 9.5,
    "legend.fontsize": 8.0,
    "hatch.linewidth": 0.6,
}
SIZE_IN = (8.0, 5.4)
MARKER_MAX_LAYERS = 40
_METADATA = {"svg": {"Date": None, "Creator": "gradient-stability"}, "png": {"Software": "gradient-stability"}}


@cache
def _mpl() -> SimpleNamespace:
    """matplotlib's pieces, imported once, with the Agg backend (no display needed)."""
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib.figure import Figure
    from matplotlib.ticker import FuncFormatter, MaxNLocator

    return SimpleNamespace(matplotlib=matplotlib, Figure=Figure, FuncFormatter=FuncFormatter, MaxNLocator=MaxNLocator)


def power_of_ten(value: float, _pos: int | None = None) -> str:
    """Tick label of a log10 axis: 3 → "10³" (plain Unicode, so no math font is needed)."""
    if abs(value - round(value)) > 1e-9:
        return ""
    return pow10(round(value))


def _nan(values: tuple[float | None, ...]) -> list[float]:
    return [math.nan if v is None else v for v in values]


def _draw_line_figure(fig: Any, spec: LineFigure) -> None:
    mpl = _mpl()
    ax = fig.add_axes((0.09, 0.33, 0.89, 0.60))
    lo, hi = spec.ylim
    for band in spec.bands:
        y0 = lo if band.y0 is None else band.y0
        y1 = hi if band.y1 is None else band.y1
        patch = ax.axhspan(
            y0,
            y1,
            facecolor=band.color,
            alpha=0.18,
            edgecolor=band.color,
            hatch=band.hatch,
            linewidth=0.0,
            label=band.label,
            zorder=0,
        )
        patch.set_gid(f"band-{band.key}")
    for spread in spec.spreads:
        poly = ax.fill_between(
            spread.x,
            _nan(spread.low),
            _nan(spread.high),
            color=spread.color,
            alpha=0.22,
            linewidth=0.0,
            label=spread.label,
            zorder=1,
        )
        poly.set_gid(f"spread-{spread.key}")
    # Markers only where they can be told apart; every layer is a vertex of the line either way.
    few = len(spec.series[0].x) <= MARKER_MAX_LAYERS if spec.series else True
    for s in spec.series:
        (line,) = ax.plot(
            s.x,
            _nan(s.y),
            color=s.color,
            linestyle=s.linestyle,
            linewidth=1.5,
            marker=s.marker if few or s.linestyle == "none" else None,  # a marker-only series always has them
            markersize=4.0,
            label=s.label,
            zorder=3,
        )
        line.set_gid(f"series-{s.key}")
    for c in spec.clipped:
        y = hi - 0.02 * (hi - lo) if c.edge == "top" else lo + 0.02 * (hi - lo)
        (pts,) = ax.plot(
            c.x,
            [y] * len(c.x),
            linestyle="none",
            marker="^" if c.edge == "top" else "v",
            markersize=5,
            markerfacecolor="white",
            markeredgecolor=c.color,
            label=c.label,
            zorder=4,
        )
        pts.set_gid(f"clipped-{c.key}")
    for o in spec.offscale:  # a dtype limit beyond the view: where it is, at the edge it lies past
        top = o.edge == "top"
        note = ax.text(
            0.995,
            0.985 if top else 0.015,
            f"{'↑' if top else '↓'} {o.label} (off-scale)",
            transform=ax.transAxes,
            ha="right",
            va="top" if top else "bottom",
            fontsize=7.5,
            color=o.color,
            bbox={"facecolor": "white", "edgecolor": "none", "alpha": 0.8, "pad": 1.5},
            zorder=5,
        )
        note.set_gid(f"offscale-{o.key}")
    for m in spec.markers:
        vline = ax.axvline(m.x, color=m.color, linestyle=m.linestyle, linewidth=1.3, label=m.label, zorder=2)
        vline.set_gid(f"marker-{m.key}")
    xs = spec.series[0].x if spec.series else (1,)
    ax.set_xlim(min(xs) - 0.5, max(xs) + 0.5)
    ax.set_ylim(lo, hi)
    ax.xaxis.set_major_locator(mpl.MaxNLocator(nbins=10, integer=True))
    if spec.yscale == "log10":
        ax.yaxis.set_major_locator(mpl.MaxNLocator(nbins=8, integer=True))
        ax.yaxis.set_major_formatter(mpl.FuncFormatter(power_of_ten))
    ax.set_title(spec.title, y=1.01)  # a fixed y skips matplotlib's title-vs-ticks layout pass (~15% of a draw)
    ax.set_xlabel(spec.xlabel)
    ax.set_ylabel(spec.ylabel)
    ax.grid(True, color="#dddddd", linewidth=0.5, zorder=-1)
    ax.legend(loc="upper center", bbox_to_anchor=(0.5, -0.12), ncol=2, frameon=False)
    if spec.notes:
        fig.text(0.01, 0.01, " ".join(spec.notes), fontsize=7.5, color="#333333")


def _draw_heatmap(fig: Any, spec: HeatmapFigure) -> None:
    mpl = _mpl()
    from matplotlib.colors import BoundaryNorm, ListedColormap
    from matplotlib.patches import Rectangle

    # Room right of the colour bar for its tick labels ("exploding") and its label, in any browser's font.
    ax = fig.add_axes((0.12, 0.14, 0.62, 0.76))
    cax = fig.add_axes((0.765, 0.14, 0.025, 0.76))
    grid = [[math.nan if v is None else v for v in row] for row in spec.values]
    if spec.value_kind == "verdict":
        names = sorted(VERDICT_CODES, key=VERDICT_CODES.get)
        cmap = ListedColormap([VERDICT_COLOURS[n] for n in names])
        norm = BoundaryNorm([-0.5, 0.5, 1.5, 2.5], cmap.N)
        mesh = ax.pcolormesh(grid, cmap=cmap, norm=norm, edgecolors="white", linewidth=0.5)
        bar = fig.colorbar(mesh, cax=cax, ticks=[0, 1, 2])
        bar.ax.set_yticklabels(names)
    else:
        finite = [v for row in grid for v in row if not math.isnan(v)]
        span = max([abs(v) for v in finite] + [1.0])
        mesh = ax.pcolormesh(grid, cmap="PuOr_r", vmin=-span, vmax=span, edgecolors="white", linewidth=0.5)
        bar = fig.colorbar(mesh, cax=cax)
        bar.ax.yaxis.set_major_formatter(mpl.FuncFormatter(power_of_ten))
        bar.ax.yaxis.set_major_locator(mpl.MaxNLocator(integer=True))
    mesh.set_gid("cells")
    bar.set_label(spec.colorbar_label)
    if spec.critical_line:
        # Each row's crossing spans that row's height (rows are separate depths, say: no slope between them).
        xs, ys = [], []
        for cx, cy in spec.critical_line:
            xs += [cx, cx]
            ys += [cy - 0.5, cy + 0.5]
        (line,) = ax.plot(
            xs,
            ys,
            color="black",
            linestyle="--",
            linewidth=1.8,
            label="theory: χ = 1 (edge of chaos)",
        )
        line.set_gid("critical-line")
        ax.legend(loc="upper right", fontsize=8)
    for n, (i, j) in enumerate(spec.marked):
        box = Rectangle(
            (i + 0.04, j + 0.04),
            0.92,
            0.92,
            fill=False,
            edgecolor="black",
            linewidth=2.5,
            label=spec.marked_label if n == 0 else None,
        )
        box.set_gid(f"marked-{j}-{i}")
        ax.add_patch(box)
    if spec.marked:
        ax.legend(loc="upper right", fontsize=8)
    for j, row in enumerate(spec.chi):
        for i, chi in enumerate(row):
            if chi is not None:
                ax.text(
                    i + 0.5,
                    j + 0.5,
                    f"χ {chi:.3g}",
                    ha="center",
                    va="center",
                    fontsize=8,
                    color="black",
                    bbox={"facecolor": "white", "edgecolor": "none", "alpha": 0.7, "pad": 1.5},
                    gid=f"chi-{j}-{i}",
                )
    ax.set_xticks([i + 0.5 for i in range(len(spec.x_values))], [str(v) for v in spec.x_values])
    ax.set_yticks([i + 0.5 for i in range(len(spec.y_values))], [str(v) for v in spec.y_values])
    ax.set_title(spec.title, y=1.01)
    ax.set_xlabel(spec.xlabel)
    ax.set_ylabel(spec.ylabel)
    if spec.notes:
        fig.text(0.01, 0.01, " ".join(spec.notes), fontsize=7.5, color="#333333")


def _render(spec: LineFigure | HeatmapFigure, fmt: str, dpi: float) -> bytes:
    mpl = _mpl()
    with mpl.matplotlib.rc_context({**RC, "svg.hashsalt": f"gradstab-{spec.key}"}):
        fig = mpl.Figure(figsize=SIZE_IN, dpi=dpi)
        if isinstance(spec, HeatmapFigure):
            _draw_heatmap(fig, spec)
        else:
            _draw_line_figure(fig, spec)
        buf = io.BytesIO()
        fig.savefig(buf, format=fmt, dpi=dpi, metadata=_METADATA[fmt])
    return buf.getvalue()


def render_svg(spec: LineFigure | HeatmapFigure) -> str:
    """A standalone SVG document with <title>/<desc> alt text."""
    svg = _render(spec, "svg", 72.0).decode("utf-8")
    return add_alt_text(svg, spec.title, spec.description, f"fig-{spec.key}")


def render_png(spec: LineFigure | HeatmapFigure, dpi: float = 100.0) -> bytes:
    """A PNG (for clients and graders that cannot show SVG, e.g. PrairieLearn's `images`)."""
    return _render(spec, "png", dpi)
