"""The training pictures hold the report's own numbers: heat-map cells, skipped-step markers, histogram counts."""

from __future__ import annotations

import math

import pytest

from schemas.report import dump_report
from schemas.spec import ModelSpecSchema
from service.engine.analysis import analyze
from service.plots.html import report_page
from service.plots.render import render_svg
from service.plots.training_figures import training_figures


@pytest.fixture(scope="module")
def report() -> dict:
    spec = ModelSpecSchema().load(
        {
            "layers": [4, 8, 8, 8, 2],
            "dtype": "float16",
            "weight_scale": 1.5,
            "batch_size": 4,
            "verify_recommendations": False,
            "training": {"steps": 30, "examples": 16, "loss_scaling": "dynamic", "histograms": [0, 29]},
        }
    )
    return dump_report(analyze(spec))


def test_the_heatmap_cells_are_the_reported_log10_norms(report) -> None:
    heat = training_figures(report)[0]
    tr = report["training"]
    for j, layer_index in enumerate(heat.y_values):
        for i, step in enumerate(heat.x_values):
            assert heat.values[j][i] == tr["layers"][layer_index - 1]["log10_grad_norm"][step]


def test_the_loss_curve_marks_every_skipped_step(report) -> None:
    loss = training_figures(report)[1]
    skipped = [s["index"] for s in report["training"]["steps"] if s["skipped"]]
    assert skipped  # weight_scale 1.5 overflows float16 at GradScaler's 2^16
    assert [m.x for m in loss.markers if m.key.startswith("skipped")] == skipped
    assert loss.series[0].y == tuple(math.log10(s["loss"]) if s["loss"] else None for s in report["training"]["steps"])


def test_the_histograms_plot_the_counts_and_mark_the_dtype_range(report) -> None:
    hists = [f for f in training_figures(report) if f.key.startswith("training-histogram")]
    assert [f.key for f in hists] == ["training-histogram-0", "training-histogram-29"]
    limits = report["diagnosis"]["dtype_limits"]
    last = report["training"]["histograms"][-1]
    for fig in hists:
        assert {m.x for m in fig.markers} == {limits["log10_smallest_normal"], limits["log10_max"]}
    bottom = hists[-1].series[0]
    assert bottom.y == tuple(math.log10(c) if c else None for c in last["layers"][0]["counts"])
    assert "<svg" in render_svg(hists[-1])


def test_the_html_report_has_a_training_section(report) -> None:
    page = report_page(report)
    assert 'id="training"' in page and report["training"]["summary"]["sentence"].split(";")[0] in page
    assert page.count("<figure>") == 2 + 3 + len(report["training"]["histograms"])  # gradients, σ', then training


def test_no_training_no_pictures() -> None:
    rep = dump_report(analyze(ModelSpecSchema().load({"layers": [4, 8, 2], "verify_recommendations": False})))
    assert training_figures(rep) == [] and 'id="training"' not in report_page(rep)
