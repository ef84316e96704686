"""Pictures of a report: figure data (pure Python), SVG/PNG (matplotlib, imported lazily), HTML.

Every function here takes the report's wire form (the dict `schemas.report.dump_report` returns,
the same JSON a client receives), so a plot can be drawn from a stored or cached report without
the engine. Importing this package does not import matplotlib: the JSON path and the server's
start-up never pay for it; only `render`/`html` calls load it, on first use.
"""

from __future__ import annotations

from .dtypes import DtypeRange, dtype_range, ieee_range
from .figures import activation_figure, fixes_figure, gradient_figure
from .html import report_page, sweep_page
from .phase import phase_figures
from .render import render_png, render_svg

__all__ = [
    "DtypeRange",
    "activation_figure",
    "dtype_range",
    "fixes_figure",
    "gradient_figure",
    "ieee_range",
    "phase_figures",
    "render_png",
    "render_svg",
    "report_page",
    "sweep_page",
]
