"""A recurrent spec whose training probe passes the request budget is refused naming training.steps and runs as a
job (POST /v1/jobs), its probe's steps counted as the job's progress."""

from __future__ import annotations

from .conftest import make_jobs_app, wait_for

SPEC = {
    "recurrent": {"cell": "gru", "steps": 6, "hidden": 8, "input_dim": 4},
    "batch_size": 4,
    "verify_recommendations": False,
    "training": {"steps": 400, "examples": 16},
}


def test_a_recurrent_training_spec_past_the_request_budget_runs_as_a_job(tmp_path) -> None:
    client = make_jobs_app(str(tmp_path / "r.sqlite3"), GRADSTAB_MAX_GFLOP=0.01).test_client()
    refused = client.post("/v1/analyses", json=SPEC)
    assert refused.status_code == 422
    assert any(e["field"] == "training.steps" for e in refused.get_json()["errors"]), refused.get_json()
    r = client.post("/v1/jobs", json={"analysis": SPEC})
    assert r.status_code == 202, r.get_json()
    job = wait_for(client, r.headers["Location"])
    assert job["status"] == "succeeded"
    assert job["progress"]["training_steps"] == {"done": 400, "total": 400}
    layers = job["result"]["training"]["layers"]
    assert [ly["matrix"] for ly in layers] == ["W_ih^1", "W_hh^1"]
