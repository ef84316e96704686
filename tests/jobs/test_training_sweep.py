"""A sweep over training.learning_rate: each point's training outcome, the largest-stable-learning-rate summary
kind (checked against the points themselves), its refusal without the axis, and the phase diagram's marked cells."""

from __future__ import annotations

from service.jobs.stable_lr import largest_stable
from service.plots.phase import phase_figures

from .conftest import wait_for

LR_SWEEP = {
    "base": {
        "layers": {"depth": 6, "width": 16},
        "batch_size": 8,
        "verify_recommendations": False,
        "training": {"steps": 12, "examples": 64},
    },
    "grid": {"weight_scale": [1.0, 2.0], "training.learning_rate": [0.001, 0.1, 10.0]},
    "summary": ["largest_stable_learning_rate"],
}


def test_the_sweep_names_the_largest_stable_learning_rate_per_weight_scale(client) -> None:
    r = client.post("/v1/sweeps", json=LR_SWEEP)
    assert r.status_code == 202, r.get_json()
    job = wait_for(client, r.headers["Location"])
    assert job["status"] == "succeeded", job
    result = job["result"]
    answers = {a["params"]["weight_scale"]: a for a in result["largest_stable_learning_rate"]}
    assert set(answers) == {1.0, 2.0}
    for scale, answer in answers.items():
        points = [p for p in result["points"] if p["params"]["weight_scale"] == scale]
        single = [
            client.post("/v1/analyses", json=_spec(scale, p["params"]["training.learning_rate"])).get_json()
            for p in points
        ]
        stable = {
            rep["training"]["learning_rate"]: not rep["training"]["summary"]["diverged"]
            and rep["training"]["summary"]["loss_ratio"] is not None
            and rep["training"]["summary"]["loss_ratio"] < 1
            for rep in single
        }
        assert answer["stable"] == [stable[lr] for lr in sorted(stable)]
        assert answer["largest_stable_learning_rate"] == max((lr for lr, ok in stable.items() if ok), default=None)


def _spec(scale: float, lr: float) -> dict:
    base = dict(LR_SWEEP["base"])
    base["weight_scale"] = scale
    base["training"] = base["training"] | {"learning_rate": lr}
    return base


def test_the_summary_kind_needs_a_learning_rate_axis(client) -> None:
    body = LR_SWEEP | {"grid": {"weight_scale": [1.0, 2.0]}}
    r = client.post("/v1/sweeps", json=body)
    assert r.status_code == 422
    assert any(e["field"] == "summary.0" and "training.learning_rate" in e["message"] for e in r.get_json()["errors"])


def _point(scale: float, lr: float, stable: bool) -> dict:
    return {
        "params": {"weight_scale": scale, "training.learning_rate": lr},
        "verdict": "stable",
        "log10_total_growth": 0.0,
        "theory": {"chi": 1.0},
        "training": {"learning_rate": lr, "stable": stable},
    }


def test_largest_stable_is_the_largest_stable_rate_even_past_an_unstable_one() -> None:
    points = [_point(1.0, 0.1, True), _point(1.0, 1.0, False), _point(1.0, 3.0, True), _point(2.0, 0.1, False)]
    axes = {"weight_scale": [1.0, 2.0], "training.learning_rate": [0.1, 1.0, 3.0]}
    answers = {a["params"]["weight_scale"]: a for a in largest_stable(points, axes)}
    assert answers[1.0]["largest_stable_learning_rate"] == 3.0 and answers[1.0]["monotone"] is False
    assert answers[2.0]["largest_stable_learning_rate"] is None


def test_the_phase_diagram_outlines_each_rows_largest_stable_rate() -> None:
    points = [_point(1.0, 0.1, True), _point(1.0, 1.0, True), _point(2.0, 0.1, True), _point(2.0, 1.0, False)]
    result = {"points": points, "axes": {"weight_scale": [1.0, 2.0], "training.learning_rate": [0.1, 1.0]}}
    (fig,) = phase_figures(result, "verdict")
    assert fig.xlabel == "training.learning_rate" and fig.ylabel == "weight_scale"
    assert fig.marked == ((1, 0), (0, 1))  # (column, row): lr 1.0 at scale 1.0, lr 0.1 at scale 2.0
    assert "largest stable" in fig.marked_label
