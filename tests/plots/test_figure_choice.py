"""Which picture an image answer draws: `?figure=` on POST /v1/analyses and GET /v1/jobs/{id}, `--figure` of the
CLI (issue 22 item 5: the training pictures under Accept image/* and --plot, not only in the HTML page)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from schemas.figures import FIGURES, TRAINING_FIGURES
from service.cli import main
from service.plots.figures import gradient_figure
from service.plots.render import render_svg
from service.plots.training_figures import training_gradient_heatmap, training_loss_figure, training_update_figure
from tests.api.conftest import make_app
from tests.jobs.conftest import make_jobs_app, wait_for

TRAINED = {
    "layers": [4, 8, 8, 2],
    "batch_size": 4,
    "verify_recommendations": False,
    "training": {"steps": 5, "examples": 16},
}
PLAIN = {"layers": [4, 8, 2], "batch_size": 4, "verify_recommendations": False}
DRAW = {
    "gradients": gradient_figure,
    "training_gradients": lambda r: training_gradient_heatmap(r["training"]),
    "training_loss": lambda r: training_loss_figure(r["training"]),
    "training_updates": lambda r: training_update_figure(r["training"]),
}


def _expected(report: dict[str, Any], figure: str) -> bytes:
    return render_svg(DRAW[figure](report)).encode("utf-8")


@pytest.fixture(scope="module")
def client() -> Any:
    return make_app().test_client()


@pytest.fixture(scope="module")
def trained_report(client) -> dict[str, Any]:
    return client.post("/v1/analyses", json=TRAINED).get_json()


def test_every_figure_is_named_and_drawn() -> None:
    assert set(DRAW) == set(FIGURES)


@pytest.mark.parametrize("figure", list(FIGURES))
def test_the_named_figure_is_the_one_drawn(client, trained_report, figure: str) -> None:
    r = client.post(f"/v1/analyses?figure={figure}", json=TRAINED, headers={"Accept": "image/svg+xml"})
    assert r.status_code == 200 and r.mimetype == "image/svg+xml"
    assert r.get_data() == _expected(trained_report, figure)


def test_png_and_the_default(client, trained_report) -> None:
    png = client.post("/v1/analyses?figure=training_loss", json=TRAINED, headers={"Accept": "image/png"})
    assert png.status_code == 200 and png.get_data().startswith(b"\x89PNG")
    default = client.post("/v1/analyses", json=TRAINED, headers={"Accept": "image/svg+xml"})
    assert default.get_data() == _expected(trained_report, "gradients")


@pytest.mark.parametrize("figure", TRAINING_FIGURES)
def test_a_training_figure_of_a_spec_without_training_is_a_422_naming_figure(client, figure: str) -> None:
    r = client.post(f"/v1/analyses?figure={figure}", json=PLAIN, headers={"Accept": "image/svg+xml"})
    assert r.status_code == 422
    body = r.get_json()
    assert body["type"].endswith("/invalid_figure") and body["errors"][0]["field"] == "figure"
    assert "no training" in body["detail"]


def test_an_unknown_figure_is_a_422_and_json_answers_ignore_the_argument(client) -> None:
    r = client.post("/v1/analyses?figure=weights", json=PLAIN, headers={"Accept": "image/svg+xml"})
    assert r.status_code == 422 and r.get_json()["errors"][0]["field"] == "query.figure"
    assert client.post("/v1/analyses?figure=training_loss", json=PLAIN).status_code == 200  # JSON: not a picture


def test_an_analysis_job_draws_the_named_figure(tmp_path) -> None:
    jobs = make_jobs_app(str(tmp_path / "jobs.sqlite3")).test_client()
    location = jobs.post("/v1/jobs", json={"analysis": TRAINED}).headers["Location"]
    report = wait_for(jobs, location)["result"]
    r = jobs.get(f"{location}?figure=training_updates", headers={"Accept": "image/svg+xml"})
    assert r.status_code == 200 and r.get_data() == _expected(report, "training_updates")


def test_cli_figure(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    spec, plot = tmp_path / "spec.json", tmp_path / "loss.svg"
    spec.write_text(json.dumps(TRAINED))
    assert main(["analyze", str(spec), "--plot", str(plot), "--figure", "training_loss"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert plot.read_bytes() == _expected(report, "training_loss")


def test_cli_refuses_a_training_figure_without_training_before_the_work(tmp_path: Path, capsys) -> None:
    spec, plot = tmp_path / "spec.json", tmp_path / "loss.svg"
    spec.write_text(json.dumps(PLAIN))
    assert main(["analyze", str(spec), "--plot", str(plot), "--figure", "training_loss"]) != 0
    assert "no training" in capsys.readouterr().err and not plot.exists()
