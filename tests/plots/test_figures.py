"""Figure data before rendering: one point per layer, log10 axes, bands at the dtype's limits."""

from __future__ import annotations

import math
from typing import Any

import torch

from service.plots import activation_figure, fixes_figure, gradient_figure
from service.plots.figures import predicted_log10_frobenius


def _band(fig: Any, key: str) -> Any:
    return next(b for b in fig.bands if b.key == key)


def test_one_point_per_layer_on_every_series(float16_exploding: dict[str, Any]) -> None:
    d = float16_exploding["depth"]
    for fig in (gradient_figure(float16_exploding), activation_figure(float16_exploding)):
        for series in fig.series:
            assert series.x == tuple(range(1, d + 1)), series.key
            assert len(series.y) == d, series.key
    spread = gradient_figure(float16_exploding).spreads[0]
    assert len(spread.low) == len(spread.high) == d


def test_series_are_the_reports_numbers(float16_exploding: dict[str, Any]) -> None:
    fig = gradient_figure(float16_exploding)
    by_key = {s.key: s for s in fig.series}
    layers = float16_exploding["layers"]
    assert by_key["jacobian-spectral"].y == tuple(lr["jacobian_product"]["log10_spectral_norm"] for lr in layers)
    assert by_key["jacobian-frobenius"].y == tuple(lr["jacobian_product"]["log10_frobenius_norm"] for lr in layers)
    assert fig.yscale == "log10" and "log10" in fig.ylabel


def test_dtype_bands_at_the_true_limits_where_they_meet_the_data(
    float16_exploding: dict[str, Any], float16_vanishing: dict[str, Any]
) -> None:
    fi = torch.finfo(torch.float16)
    subnormal = torch.nextafter(torch.zeros((), dtype=torch.float16), torch.ones((), dtype=torch.float16)).item()
    exploding = gradient_figure(float16_exploding)
    assert _band(exploding, "dtype-overflow").y0 == math.log10(fi.max)
    vanishing = gradient_figure(float16_vanishing)
    assert _band(vanishing, "dtype-subnormal").y1 == math.log10(fi.smallest_normal)
    assert _band(vanishing, "dtype-subnormal").y0 == math.log10(subnormal)
    assert _band(vanishing, "dtype-underflow").y1 == math.log10(subnormal)
    lo, hi = vanishing.ylim
    assert lo < math.log10(subnormal)  # the range the gradient sank through is in view
    # The limits the curves stay far from are arrows at the edge, with their values, not bands.
    assert not any(b.key == "dtype-overflow" for b in vanishing.bands) and hi < math.log10(fi.max)
    (top,) = [o for o in vanishing.offscale if o.edge == "top"]
    assert "65504" in top.label.replace(",", "") or "6.55e+04" in top.label
    assert not any(b.key in ("dtype-subnormal", "dtype-underflow") for b in exploding.bands)
    assert [o.edge for o in exploding.offscale] == ["bottom"]


def _curves(fig: Any) -> list[float]:
    return [v for s in fig.series for v in s.y if v is not None]


def test_a_far_dtype_range_does_not_squash_the_curves(sigmoid_vanishing: dict[str, Any]) -> None:
    """float32's 1e-45 to 3e38 around a net that stays within 1e-12 to 1e2: the view is the data's."""
    fig = gradient_figure(sigmoid_vanishing)
    data = _curves(fig)
    lo, hi = fig.ylim
    assert lo >= min(data) - 4 and hi <= max(data) + 4
    assert not [b.key for b in fig.bands if b.key.startswith("dtype-")]
    assert sorted(o.edge for o in fig.offscale) == ["bottom", "top"]


def test_stable_band_is_the_thresholds_on_the_frobenius_scale(sigmoid_vanishing: dict[str, Any]) -> None:
    fig = gradient_figure(sigmoid_vanishing)
    th = sigmoid_vanishing["diagnosis"]["thresholds"]
    shift = 0.5 * math.log10(sigmoid_vanishing["layers"][-1]["out_features"])
    band = _band(fig, "stable")
    assert math.isclose(band.y0, th["vanishing_log10"] + shift)
    assert math.isclose(band.y1, th["exploding_log10"] + shift)


def test_onset_and_first_overflow_are_marked(float16_exploding: dict[str, Any]) -> None:
    dg = float16_exploding["diagnosis"]
    assert dg["overflow"]["occurred"]
    markers = {m.key: m.x for m in gradient_figure(float16_exploding).markers}
    assert markers["first-overflow"] == dg["overflow"]["first_layer"]
    assert markers["onset"] == dg["onset_layer"]


def test_nonfinite_gradients_are_drawn_at_the_top_edge(float16_exploding: dict[str, Any]) -> None:
    fig = gradient_figure(float16_exploding)
    nonfinite = tuple(lr["index"] for lr in float16_exploding["layers"] if lr["weight_grad"]["status"] == "nonfinite")
    assert nonfinite
    clipped = next(c for c in fig.clipped if c.key == "weight-grad-nonfinite")
    assert clipped.x == nonfinite and clipped.edge == "top"


def test_theory_line_meets_the_theorys_total(sigmoid_vanishing: dict[str, Any]) -> None:
    predicted = predicted_log10_frobenius(sigmoid_vanishing)
    shift = 0.5 * math.log10(sigmoid_vanishing["layers"][-1]["out_features"])
    assert math.isclose(predicted[-1], shift)  # ‖I‖_F = √n_d at t = d
    total = sigmoid_vanishing["theory"]["predicted_log10_total_growth"]
    assert math.isclose(predicted[0], total + shift, rel_tol=1e-9, abs_tol=1e-9)


def test_fixes_figure_before_and_after(float16_exploding: dict[str, Any], sigmoid_vanishing: dict[str, Any]) -> None:
    fig = fixes_figure(float16_exploding)
    assert fig is not None
    verified = [r for r in float16_exploding["diagnosis"]["recommendations"] if r["verified"]]
    assert len(fig.series) == 1 + len(verified)
    for series, rec in zip(fig.series[1:], verified, strict=True):
        assert math.isclose(series.y[0], rec["verified"]["log10_total_growth"])  # t = 1: the measured total
        assert series.y[-1] == 0.0  # t = d: the identity
    assert fixes_figure(sigmoid_vanishing) is None  # verification was off: nothing to show
