"""The main plot as a PNG with its label and alt text, for autograder results (Gradescope's HTML
output, PrairieLearn's `images`), where an image must travel inside JSON as a base64 data URL."""

from __future__ import annotations

import base64
from collections.abc import Mapping
from dataclasses import dataclass
from html import escape
from typing import Any

# 80 dpi: about 60 kB of PNG (80 kB base64) for a 100-layer plot, well inside PrairieLearn's 1 MB results.json.
GRADER_DPI = 80.0


@dataclass(frozen=True)
class Picture:
    label: str
    alt: str
    png: bytes

    @property
    def data_url(self) -> str:
        return "data:image/png;base64," + base64.b64encode(self.png).decode("ascii")

    def html(self) -> str:
        """An <img> with the data URL inline (Gradescope's HTML output fetches nothing else)."""
        return f'<img src="{self.data_url}" alt="{escape(self.alt, quote=True)}" style="max-width:100%">'


def report_picture(report: Mapping[str, Any]) -> Picture:
    from .figures import gradient_figure

    return _picture(gradient_figure(report))


def report_pictures(report: Mapping[str, Any], training: bool = False) -> list[Picture]:
    """The main plot; with `training` (a rubric that reads the report's training section) also the training
    probe's grad-norm heat map and loss curve, where the report has them."""
    from .training_figures import training_gradient_heatmap, training_loss_figure

    pictures = [report_picture(report)]
    section = report.get("training")
    if training and section and section.get("steps"):
        pictures += [_picture(training_gradient_heatmap(section)), _picture(training_loss_figure(section))]
    return pictures


def _picture(figure: Any) -> Picture:
    from .render import render_png

    return Picture(label=figure.title, alt=figure.description, png=render_png(figure, dpi=GRADER_DPI))
