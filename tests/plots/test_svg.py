"""The rendered SVG keeps the figure data: one vertex per layer, log10 ticks, bands at the limits, alt text."""

from __future__ import annotations

import math
import re
from typing import Any

import pytest

from service.plots import activation_figure, gradient_figure, render_png, render_svg

from . import svgparse

NS = svgparse.NS


@pytest.fixture(scope="module")
def gradient_svg(float16_exploding: dict[str, Any]) -> str:
    return render_svg(gradient_figure(float16_exploding))


def test_every_series_has_one_vertex_per_finite_layer(float16_exploding: dict[str, Any], gradient_svg: str) -> None:
    root = svgparse.parse(gradient_svg)
    fig = gradient_figure(float16_exploding)
    for series in fig.series:
        finite = sum(v is not None for v in series.y)
        if finite == 0:
            continue
        points = svgparse.vertices(svgparse.group(root, f"series-{series.key}"))
        assert len(points) == finite, series.key
        xs = [p[0] for p in points]
        assert xs == sorted(xs) and len(set(xs)) == len(xs)  # one per layer, left to right


def test_series_values_survive_the_drawing(float16_exploding: dict[str, Any], gradient_svg: str) -> None:
    root = svgparse.parse(gradient_svg)
    to_log10 = svgparse.y_pixel_to_log10(root)
    points = svgparse.vertices(svgparse.group(root, "series-jacobian-frobenius"))
    expected = [lr["jacobian_product"]["log10_frobenius_norm"] for lr in float16_exploding["layers"]]
    assert [round(to_log10(y), 2) for _, y in points] == pytest.approx(expected, abs=0.02)


def test_y_axis_is_labelled_in_powers_of_ten(gradient_svg: str) -> None:
    root = svgparse.parse(gradient_svg)
    ticks = svgparse.y_ticks(root)
    assert len(ticks) >= 3
    exps = [k for k, _ in ticks]
    assert exps == sorted(exps)
    pixels = [y for _, y in ticks]
    steps = {round((pixels[i + 1] - pixels[i]) / (exps[i + 1] - exps[i]), 3) for i in range(len(ticks) - 1)}
    assert len(steps) == 1  # equal pixels per decade: a log10 axis
    assert "log10 scale" in gradient_svg


def test_dtype_bands_sit_at_the_limits_in_pixels(
    float16_exploding: dict[str, Any], gradient_svg: str, float16_vanishing: dict[str, Any]
) -> None:
    root = svgparse.parse(gradient_svg)
    to_log10 = svgparse.y_pixel_to_log10(root)
    limits = float16_exploding["diagnosis"]["dtype_limits"]
    overflow = svgparse.vertices(svgparse.group(root, "band-dtype-overflow"))
    assert min(to_log10(y) for _, y in overflow) == pytest.approx(math.log10(limits["max"]), abs=0.01)
    assert "float16 subnormal below 6.1e-05" in gradient_svg  # off-scale here: an arrow at the bottom edge
    root = svgparse.parse(render_svg(gradient_figure(float16_vanishing)))
    to_log10 = svgparse.y_pixel_to_log10(root)
    subnormal = svgparse.vertices(svgparse.group(root, "band-dtype-subnormal"))
    assert max(to_log10(y) for _, y in subnormal) == pytest.approx(math.log10(limits["smallest_normal"]), abs=0.01)
    assert min(to_log10(y) for _, y in subnormal) == pytest.approx(math.log10(limits["smallest_subnormal"]), abs=0.01)
    svgparse.group(root, "offscale-dtype-overflow")


def test_alt_text_is_the_first_child(float16_exploding: dict[str, Any], gradient_svg: str) -> None:
    root = svgparse.parse(gradient_svg)
    assert root.get("role") == "img"
    first, second = list(root)[:2]
    assert first.tag.endswith("title") and "float16" in first.text
    assert second.tag.endswith("desc") and "65504" in second.text
    assert root.get("aria-labelledby") == f"{first.get('id')} {second.get('id')}"


def test_svg_has_no_external_reference_and_keeps_text(gradient_svg: str) -> None:
    refs = re.findall(r'(?:href|src)="([^"]*)"', gradient_svg)
    assert refs and all(r.startswith("#") for r in refs)
    assert "<text" in gradient_svg and "@font-face" not in gradient_svg


def test_same_report_same_bytes(float16_exploding: dict[str, Any], gradient_svg: str) -> None:
    assert render_svg(gradient_figure(float16_exploding)) == gradient_svg


def test_png(sigmoid_vanishing: dict[str, Any]) -> None:
    png = render_png(activation_figure(sigmoid_vanishing))
    assert png.startswith(b"\x89PNG\r\n\x1a\n") and len(png) > 5000
