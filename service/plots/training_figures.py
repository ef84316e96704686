"""The training probe's pictures, from a report's `training` section (plain JSON, no torch):

- `training_gradient_heatmap`: log10 ‖∂ℓ/∂W^t‖ per layer (rows) and step (columns): vanishing shows as the bottom
  rows far below the top ones, overflow as blank cells (null norms).
- `training_loss_figure`: the batch loss per step, skipped steps (dynamic loss scaling) marked.
- `training_update_figure`: ‖ΔW‖/‖W‖ per step for a few layers spread over the depth.
- `training_histogram_figures`: per requested step, the counts of log10|S·∂ℓ/∂W| per bin for the bottom, middle and
  top layer, the dtype's smallest normal and largest value marked.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from itertools import pairwise
from typing import Any

from . import palette
from .model import HeatmapFigure, LineFigure, Marker, Series

MAX_CELLS = 24  # heat-map rows and columns at most (every k-th step or layer beyond it, said in a note)
MAX_LINES = 5  # layers drawn in the update-ratio chart
MAX_SKIP_MARKERS = 20
_COLOURS = (palette.BLUE, palette.ORANGE, palette.BLUISH_GREEN, palette.REDDISH_PURPLE, palette.VERMILLION)
_STYLES = ("-", "--", "-.", ":", "-")


def _log10(v: Any) -> float | None:
    return math.log10(v) if isinstance(v, int | float) and math.isfinite(v) and v > 0 else None


def _every(n: int, most: int) -> list[int]:
    step = max(1, math.ceil(n / most))
    return list(range(0, n, step))


def _spread(n: int, most: int) -> list[int]:
    """Up to `most` indices from 0 to n − 1, first and last included."""
    if n <= most:
        return list(range(n))
    return sorted({round(i * (n - 1) / (most - 1)) for i in range(most)})


def _view(values: Sequence[float | None]) -> tuple[float, float]:
    finite = [v for v in values if v is not None]
    if not finite:
        return (-1.0, 1.0)
    lo, hi = min(finite), max(finite)
    return (lo - 0.5, hi + 0.5) if hi > lo else (lo - 1.0, hi + 1.0)


def _name(layer: Mapping[str, Any]) -> str:
    """A row's or line's name: the layer's index, or a recurrent spec's matrix (W_hh^1, …)."""
    return layer.get("matrix") or f"layer {layer['index']}"


def training_gradient_heatmap(training: Mapping[str, Any]) -> HeatmapFigure:
    layers = list(training["layers"])
    steps = len(training["steps"])
    cols, rows = _every(steps, MAX_CELLS), _every(len(layers), MAX_CELLS)
    values = tuple(tuple(layers[r]["log10_grad_norm"][c] for c in cols) for r in rows)
    notes = []
    if len(cols) < steps:
        notes.append(f"Every {cols[1] - cols[0]}th step is drawn.")
    if len(rows) < len(layers):
        notes.append(f"Every {rows[1] - rows[0]}th layer is drawn.")
    notes.append("Blank: a non-finite gradient (overflow) or one exactly 0.")
    if layers and layers[0].get("matrix"):  # a recurrent spec: one row per trainable matrix
        notes.append("Rows are matrices: " + ", ".join(f"{ly['index']} = {ly['matrix']}" for ly in layers) + ".")
    return HeatmapFigure(
        key="training-gradients",
        title="Training: log10 ‖∂ℓ/∂W‖ per layer and step",
        description=(
            f"Heatmap with {len(cols)} columns (steps 0 to {steps - 1}) and {len(rows)} rows (layers 1 to "
            f"{len(layers)}); each cell is the norm of that layer's weight gradient at that step, log10, as the pass "
            f"dtype ({training['pass_dtype']}) held it, unscaled."
        ),
        xlabel="step",
        ylabel="matrix (index)" if layers and layers[0].get("matrix") else "layer t",
        x_values=tuple(cols),
        y_values=tuple(layers[r]["index"] for r in rows),
        values=values,
        value_kind="log10_total_growth",
        colorbar_label="‖∂ℓ/∂W‖, log10",
        notes=tuple(notes),
    )


def training_loss_figure(training: Mapping[str, Any]) -> LineFigure:
    steps = list(training["steps"])
    xs = tuple(s["index"] for s in steps)
    ys = tuple(_log10(s["loss"]) for s in steps)
    skipped = [s["index"] for s in steps if s["skipped"]]
    markers = tuple(
        Marker(f"skipped-{k}", "skipped step (non-finite gradients)" if i == 0 else "", k, palette.VERMILLION, ":")
        for i, k in enumerate(skipped[:MAX_SKIP_MARKERS])
    )
    div = training["summary"]["divergence_step"]
    if div is not None:
        markers += (Marker("divergence", f"diverged at step {div}", div, palette.BLACK, "--"),)
    notes = (
        (f"{len(skipped) - MAX_SKIP_MARKERS} more skipped steps not marked.",)
        if len(skipped) > MAX_SKIP_MARKERS
        else ()
    )
    return LineFigure(
        key="training-loss",
        title="Training: the batch loss per step",
        description=(
            f"Line chart over steps 0 to {len(steps) - 1}, y axis log10 scale: the loss of each step's batch before "
            f"the step ({training['loss_function']}); {len(skipped)} skipped step(s) marked by dotted lines."
        ),
        xlabel="step",
        ylabel="loss, log10 scale",
        yscale="log10",
        ylim=_view(ys),
        series=(Series("loss", "batch loss", xs, ys, palette.BLUE, "-", None),),
        markers=markers,
        notes=notes,
    )


def training_update_figure(training: Mapping[str, Any]) -> LineFigure:
    layers = list(training["layers"])
    xs = tuple(range(len(training["steps"])))
    series = []
    for i, r in enumerate(_spread(len(layers), MAX_LINES)):
        ly = layers[r]
        ys = tuple(_log10(v) for v in ly["update_ratio"])
        series.append(Series(f"layer-{ly['index']}", _name(ly), xs, ys, _COLOURS[i], _STYLES[i], None))
    data = [v for s in series for v in s.y]
    return LineFigure(
        key="training-updates",
        title="Training: update size ‖ΔW‖/‖W‖ per step",
        description=(
            f"Line chart over steps, y axis log10 scale: the relative size of each step's weight update for "
            f"{len(series)} layers from the bottom to the top (about 1e-3 is the usual healthy size); gaps are "
            "skipped steps (no update) or non-finite weights."
        ),
        xlabel="step",
        ylabel="‖ΔW‖/‖W‖, log10 scale",
        yscale="log10",
        ylim=_view(data),
        series=tuple(series),
    )


def training_histogram_figures(training: Mapping[str, Any], dtype_range: Mapping[str, float]) -> list[LineFigure]:
    """dtype_range: log10 of the dtype's smallest normal and largest finite value (`diagnosis.dtype_limits`)."""
    edges = list(training["histogram_edges_log10"])
    centres = tuple(round((a + b) / 2, 3) for a, b in pairwise(edges))
    names = {ly["index"]: _name(ly) for ly in training["layers"]}
    out = []
    for h in training["histograms"]:
        chosen = _spread(len(h["layers"]), 3)
        series = []
        for i, r in enumerate(chosen):
            ly = h["layers"][r]
            ys = tuple(_log10(c) for c in ly["counts"])
            label = f"{names[ly['index']]} ({ly['zeros']} zero, {ly['nonfinite']} non-finite)"
            series.append(Series(f"layer-{ly['index']}", label, centres, ys, _COLOURS[i], _STYLES[i], "o"))  # type: ignore[arg-type]
        markers = (
            Marker("smallest-normal", "smallest normal", dtype_range["log10_smallest_normal"], palette.GREY, "--"),  # type: ignore[arg-type]
            Marker("largest", "largest finite", dtype_range["log10_max"], palette.BLACK, "--"),  # type: ignore[arg-type]
        )
        data = [v for s in series for v in s.y]
        out.append(
            LineFigure(
                key=f"training-histogram-{h['step']}",
                title=f"Training: log10|S·∂ℓ/∂W| at step {h['step']} (S = {h['loss_scale']:g})",
                description=(
                    f"Histogram as lines: per bin of log10 of the loss-scaled weight gradient's magnitudes (64 fixed "
                    f"bins over {training['pass_dtype']}'s range), the count of values, for the bottom, middle and "
                    "top layer; dashed lines mark the dtype's smallest normal and largest finite value."
                ),
                xlabel="log10 |S·∂ℓ/∂W| (bin centre)",
                ylabel="values, log10 scale",
                yscale="log10",
                ylim=_view(data),
                series=tuple(series),
                markers=markers,
            )
        )
    return out


def training_figures(report: Mapping[str, Any]) -> list[HeatmapFigure | LineFigure]:
    """Every training picture of a report; [] without training."""
    training = report.get("training")
    if not training or not training.get("steps"):
        return []
    limits = (report.get("diagnosis") or {}).get("dtype_limits") or {}
    figures: list[HeatmapFigure | LineFigure] = [
        training_gradient_heatmap(training),
        training_loss_figure(training),
        training_update_figure(training),
    ]
    if "log10_max" in limits:
        figures += training_histogram_figures(training, limits)
    return figures
