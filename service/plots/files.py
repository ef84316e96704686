"""Write a report's pictures to files (the CLI's --html and --plot)."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

PLOT_SUFFIXES = (".svg", ".png")


class FigureUnavailable(ValueError):
    """The report has no such picture (a training picture of a spec without training)."""


def plot_bytes(report: Mapping[str, Any], fmt: str, figure: str = "gradients") -> bytes:
    """One picture as "svg" or "png": the main plot (gradient norms per layer) by default, or a training picture
    (schemas.figures.FIGURES names them)."""
    from .render import render_png, render_svg

    drawn = _figure(report, figure)
    return render_svg(drawn).encode("utf-8") if fmt == "svg" else render_png(drawn)


def _figure(report: Mapping[str, Any], name: str) -> Any:
    from .figures import gradient_figure
    from .training_figures import training_gradient_heatmap, training_loss_figure, training_update_figure

    if name == "gradients":
        return gradient_figure(report)
    draw = {
        "training_gradients": training_gradient_heatmap,
        "training_loss": training_loss_figure,
        "training_updates": training_update_figure,
    }.get(name)
    if draw is None:
        raise FigureUnavailable(f"unknown figure {name!r}")
    training = report.get("training")
    if not training or not training.get("steps"):
        raise FigureUnavailable(f"figure {name} draws the training probe: this spec has no training")
    return draw(training)


def write_outputs(
    report: Mapping[str, Any], html: str | None = None, plot: str | None = None, figure: str = "gradients"
) -> None:
    """Raises ValueError for a plot path that is neither .svg nor .png or a figure the report lacks, OSError if a
    file cannot be written."""
    if plot is not None:
        suffix = Path(plot).suffix.lower()
        if suffix not in PLOT_SUFFIXES:
            raise ValueError(f"--plot {plot}: the file name must end in .svg or .png")
        data = plot_bytes(report, suffix[1:], figure)
    if html is not None:
        from .html import report_page

        Path(html).write_text(report_page(report), encoding="utf-8")
    if plot is not None:
        Path(plot).write_bytes(data)
