"""Phase diagrams from a sweep result in the jobs API's shape (issue 11)."""

from __future__ import annotations

import math
import re
from typing import Any

import pytest

from service.plots import phase_figures, render_svg, sweep_page
from service.plots.model import VERDICT_CODES
from service.plots.phase import critical_line

from . import svgparse


def _sweep() -> dict[str, Any]:
    """relu, width 128: kaiming stays stable, xavier vanishes with depth (0.707 per layer)."""
    points = []
    for init, chi in (("kaiming_normal", 1.0), ("xavier_normal", 0.5)):
        for depth in (10, 50):
            growth = (depth - 1) * 0.5 * math.log10(chi)
            verdict = "stable" if growth > -2 else "vanishing"
            points.append(
                {
                    "params": {"init": init, "layers.depth": depth},
                    "verdict": verdict,
                    "log10_total_growth": growth,
                    "theory": {"chi": chi, "predicted_log10_total_growth": growth},
                }
            )
    return {"points": points, "axes": {"init": ["kaiming_normal", "xavier_normal"], "layers.depth": [10, 50]}}


def test_cells_are_the_points_verdicts() -> None:
    (fig,) = phase_figures(_sweep())
    assert fig.xlabel == "init" and fig.ylabel == "layers.depth"
    stable, vanishing = VERDICT_CODES["stable"], VERDICT_CODES["vanishing"]
    assert fig.values == ((stable, stable), (stable, vanishing))


def test_growth_values_and_svg() -> None:
    (fig,) = phase_figures(_sweep(), value="log10_total_growth")
    assert fig.values[1][1] == pytest.approx(49 * 0.5 * math.log10(0.5))
    svg = render_svg(fig)
    root = svgparse.parse(svg)
    svgparse.group(root, "cells")
    assert "Phase diagram" in svg and "<desc" in svg


def test_critical_line_where_log_chi_changes_sign() -> None:
    # log χ: -1 then +1 along the row: the edge half-way between the two cell centres.
    assert critical_line([[-1.0, 1.0]]) == ((1.0, 0.5),)
    assert critical_line([[-1.0, -0.5]]) == ()
    sweep = _numeric_sweep()
    (fig,) = phase_figures(sweep)
    # χ = w²: 1 between w = 0.5 (log χ = -1.386) and w = 2 (+1.386), half-way, in both rows.
    assert fig.critical_line == ((1.0, 0.5), (1.0, 1.5))
    root = svgparse.parse(render_svg(fig))
    ys = sorted({round(y, 1) for _, y in svgparse.vertices(svgparse.group(root, "critical-line"))})
    assert len(ys) == 3  # the line spans both rows' full height: bottom, the shared edge, top


def _numeric_sweep() -> dict[str, Any]:
    points = []
    for w in (0.5, 2.0):
        for depth in (10, 50):
            growth = (depth - 1) * math.log10(w)
            verdict = "stable" if abs(growth) < 2 else ("vanishing" if growth < 0 else "exploding")
            theory = {"chi": w * w, "predicted_log10_total_growth": growth}
            points.append(
                {
                    "params": {"weight_scale": w, "layers.depth": depth},
                    "verdict": verdict,
                    "log10_total_growth": growth,
                    "theory": theory,
                }
            )
    return {"points": points, "axes": {"weight_scale": [0.5, 2.0], "layers.depth": [10, 50]}}


def test_categorical_axis_gets_chi_per_cell_and_no_line() -> None:
    """Between two inits there is nothing to interpolate: each cell says its χ instead."""
    sweep = _sweep()
    for p in sweep["points"]:
        p["theory"]["chi"] = 0.5 if p["params"]["init"] == "xavier_normal" else 2.0
    (fig,) = phase_figures(sweep)
    assert fig.critical_line == ()
    assert fig.chi == ((2.0, 0.5), (2.0, 0.5))
    svg = render_svg(fig)
    assert 'id="critical-line"' not in svg and svg.count("χ 0.5") == 2 and svg.count("χ 2") == 2
    assert "categorical" in fig.description


def test_extra_axes_make_small_multiples() -> None:
    sweep = _sweep()
    extra = []
    for p in sweep["points"]:
        for act in ("relu", "tanh"):
            extra.append({**p, "params": {**p["params"], "activation": act}})
    sweep = {"points": extra, "axes": {**sweep["axes"], "activation": ["relu", "tanh"]}}
    figs = phase_figures(sweep, x="init", y="layers.depth")
    assert [f.title.endswith(f"(activation={a})") for f, a in zip(figs, ("relu", "tanh"), strict=True)] == [True] * 2


def test_bad_axes_are_refused() -> None:
    with pytest.raises(ValueError, match="two different sweep axes"):
        phase_figures(_sweep(), x="init", y="init")


def test_sweep_page_is_self_contained_and_escaped() -> None:
    sweep = _sweep()
    sweep["points"][0]["verdict"] = "<script>x</script>"
    page = sweep_page(sweep)
    assert page.count("<svg") == 2 and "<script" not in page and "&lt;script&gt;" in page
    # Only fragments and inline data (matplotlib rasterises a continuous colour bar): nothing from a host.
    assert all(r.startswith(("#", "data:")) for r in re.findall(r'(?:src|href)="([^"]*)"', page))
