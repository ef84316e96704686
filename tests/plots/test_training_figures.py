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


def test_a_recurrent_specs_training_pictures_name_its_matrices() -> None:
    """One row (heat map) or line (updates, histograms) per trainable matrix, named as training.layers[].matrix."""
    body = {
        "recurrent": {"cell": "gru", "steps": 8, "hidden": 6, "input_dim": 3, "stacked": 2},
        "batch_size": 4,
        "verify_recommendations": False,
        "training": {"steps": 5, "examples": 16, "histograms": [4]},
    }
    rep = dump_report(analyze(ModelSpecSchema().load(body)))
    layers = rep["training"]["layers"]
    assert [ly["matrix"] for ly in layers] == ["W_ih^1", "W_hh^1", "W_ih^2", "W_hh^2"]
    heat, _loss, updates, *histograms = training_figures(rep)
    assert heat.ylabel == "matrix (index)" and list(heat.y_values) == [ly["index"] for ly in layers]
    assert [row for row in heat.values] == [tuple(ly["log10_grad_norm"]) for ly in layers]
    assert {s.label for s in updates.series} <= {ly["matrix"] for ly in layers}
    assert len(histograms) == 1 and all(s.label.startswith("W_") for s in histograms[0].series)
    for figure in training_figures(rep):
        render_svg(figure)
    assert 'id="training"' in report_page(rep)
