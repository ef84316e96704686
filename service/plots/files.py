"""Write a report's pictures to files (the CLI's --html and --plot)."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

PLOT_SUFFIXES = (".svg", ".png")


def plot_bytes(report: Mapping[str, Any], fmt: str) -> bytes:
    """The main plot (gradient norms per layer) as "svg" or "png"."""
    from .figures import gradient_figure
    from .render import render_png, render_svg

    figure = gradient_figure(report)
    return render_svg(figure).encode("utf-8") if fmt == "svg" else render_png(figure)


def write_outputs(report: Mapping[str, Any], html: str | None = None, plot: str | None = None) -> None:
    """Raises ValueError for a plot path that is neither .svg nor .png, OSError if a file cannot be written."""
    if plot is not None:
        suffix = Path(plot).suffix.lower()
        if suffix not in PLOT_SUFFIXES:
            raise ValueError(f"--plot {plot}: the file name must end in .svg or .png")
        data = plot_bytes(report, suffix[1:])
    if html is not None:
        from .html import report_page

        Path(html).write_text(report_page(report), encoding="utf-8")
    if plot is not None:
        Path(plot).write_bytes(data)
