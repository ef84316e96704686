"""Sweeps and jobs without Redis: the in-process pool serves the whole contract."""

from __future__ import annotations

import time

import pytest

from .conftest import SWEEP_2X2, make_jobs_app, wait_for

PROBLEM = "application/problem+json"


def test_2x2_sweep_verdicts_and_theory_match_single_analyses(client) -> None:
    r = client.post("/v1/sweeps", json=SWEEP_2X2)
    assert r.status_code == 202
    body = r.get_json()
    assert r.headers["Location"] == f"/v1/jobs/{body['id']}"
    assert body["progress"] == {"done": 0, "total": 4} and body["status"] in ("queued", "running")

    job = wait_for(client, r.headers["Location"])
    assert job["status"] == "succeeded" and job["progress"] == {"done": 4, "total": 4}
    assert job["kind"] == "sweep" and job["finished_at"] is not None
    result = job["result"]
    assert result["axes"] == SWEEP_2X2["grid"]
    verdicts = {(p["params"]["init"], p["params"]["layers.depth"]): p["verdict"] for p in result["points"]}
    assert verdicts[("kaiming_normal", 10)] == "stable"
    assert verdicts[("kaiming_normal", 50)] == "stable"
    assert verdicts[("xavier_normal", 50)] == "vanishing"
    xavier50 = next(p for p in result["points"] if p["params"] == {"init": "xavier_normal", "layers.depth": 50})
    assert xavier50["log10_total_growth"] == pytest.approx(49 * -0.1505, abs=0.5)  # 0.707^49 ≈ 1e-7.4

    for point in result["points"]:
        assert set(point) >= {"params", "verdict", "log10_total_growth", "growth_per_layer", "onset_layer"}
        assert set(point) >= {"overflow", "underflow", "theory", "report_id"}
        spec = dict(SWEEP_2X2["base"], init=point["params"]["init"])
        spec["layers"] = {"depth": point["params"]["layers.depth"], "width": 128}
        single = client.post("/v1/analyses", json=spec).get_json()
        assert point["report_id"] == single["id"]
        assert point["theory"]["chi"] == single["theory"]["chi_mean"]
        assert point["theory"]["predicted_log10_total_growth"] == single["theory"]["predicted_log10_total_growth"]
        assert point["verdict"] == single["diagnosis"]["verdict"]
        assert point["log10_total_growth"] == single["diagnosis"]["log10_total_growth"]


def test_resubmission_returns_the_same_job(client) -> None:
    first = client.post("/v1/sweeps", json=SWEEP_2X2).get_json()
    # Same request written differently (defaults spelled out, axes in another order): same id.
    same = {
        "base": SWEEP_2X2["base"] | {"dtype": "float32", "seed": 0},
        "grid": {"layers.depth": [10, 50], "init": ["kaiming_normal", "xavier_normal"]},
    }
    again = client.post("/v1/sweeps", json=SWEEP_2X2)
    assert again.status_code == 202 and again.get_json()["id"] == first["id"]
    reordered = client.post("/v1/sweeps", json=same).get_json()
    assert reordered["id"] != first["id"]  # a different axis order is a different grid (rows × columns)
    spelled = client.post("/v1/sweeps", json={"base": same["base"], "grid": SWEEP_2X2["grid"]}).get_json()
    assert spelled["id"] == first["id"]
    wait_for(client, f"/v1/jobs/{reordered['id']}")
    wait_for(client, f"/v1/jobs/{first['id']}")


def test_single_analysis_job_returns_the_full_report(client) -> None:
    spec = {"layers": [8, 16, 16, 4], "activation": "tanh", "batch_size": 4}
    r = client.post("/v1/jobs", json={"analysis": spec})
    assert r.status_code == 202
    job = wait_for(client, r.headers["Location"])
    assert job["kind"] == "analysis" and job["status"] == "succeeded"
    assert job["result"]["id"] == client.post("/v1/analyses", json=spec).get_json()["id"]
    assert job["result"]["diagnosis"]["verdict"] in ("stable", "vanishing", "exploding")


def test_analysis_job_accepts_what_the_sync_endpoint_refuses(tmp_path) -> None:
    client = make_jobs_app(str(tmp_path / "k.sqlite3"), GRADSTAB_MAX_GFLOP=0.001).test_client()
    spec = {"layers": {"depth": 20, "width": 64}, "batch_size": 8}
    refused = client.post("/v1/analyses", json=spec)
    assert refused.status_code == 422 and "GRADSTAB_MAX_GFLOP" in refused.get_json()["detail"]
    r = client.post("/v1/jobs", json={"analysis": spec})
    assert r.status_code == 202, r.get_json()
    assert wait_for(client, r.headers["Location"])["status"] == "succeeded"


def test_cancel_keeps_delivered_points_readable(tmp_path) -> None:
    client = make_jobs_app(str(tmp_path / "c.sqlite3"), GRADSTAB_JOB_THREADS=1).test_client()
    sweep = {"base": {"layers": {"depth": 30, "width": 96}}, "grid": {"seed": list(range(12))}}
    loc = client.post("/v1/sweeps", json=sweep).headers["Location"]
    wait_for(client, loc, until=lambda j: j["progress"]["done"] >= 1)
    r = client.delete(loc)
    assert r.status_code == 200
    cancelled = r.get_json()
    assert cancelled["status"] == "cancelled" and cancelled["finished_at"] is not None
    done = cancelled["progress"]["done"]
    assert 1 <= done < 12
    time.sleep(1.0)
    later = client.get(loc).get_json()
    assert later["status"] == "cancelled"
    assert later["progress"]["done"] <= done + 1  # at most the point that was running when cancelled
    assert len(later["result"]["points"]) == later["progress"]["done"]
    assert all("verdict" in p for p in later["result"]["points"])
    # Resubmitting a cancelled sweep returns it (same id) until it expires.
    assert client.post("/v1/sweeps", json=sweep).get_json()["status"] == "cancelled"


def test_results_expire_after_the_ttl(tmp_path) -> None:
    client = make_jobs_app(str(tmp_path / "e.sqlite3"), GRADSTAB_JOB_TTL=1).test_client()
    spec = {"layers": [4, 8, 2], "batch_size": 2}
    loc = client.post("/v1/jobs", json={"analysis": spec}).headers["Location"]
    assert wait_for(client, loc)["status"] == "succeeded"
    time.sleep(1.2)
    r = client.get(loc)
    assert r.status_code == 404 and r.content_type == PROBLEM
    # After expiry the same request is a new job with the same id.
    again = client.post("/v1/jobs", json={"analysis": spec})
    assert again.headers["Location"] == loc and again.get_json()["progress"]["done"] == 0


def test_unknown_job_is_404_problem(client) -> None:
    for method in (client.get, client.delete):
        r = method("/v1/jobs/0123456789abcdef")
        assert r.status_code == 404 and r.content_type == PROBLEM
        assert "GRADSTAB_JOB_TTL" in r.get_json()["detail"]


@pytest.mark.parametrize(
    ("grid", "field", "kind"),
    [
        ({"nope": [1]}, "grid.nope", "validation"),
        ({"layers.nope": [1]}, "grid.layers.nope", "validation"),
        ({"init": []}, "grid.init", "validation"),
        ({}, "grid", "validation"),
        ({"seed": list(range(20)), "batch_size": list(range(1, 20))}, "grid", "limit"),
        ({"layers.depth": [10, 5000]}, "points.1.layers", "limit"),
        ({"init": ["kaiming_normal", "bogus"]}, "points.1.init", "validation"),
    ],
)
def test_bad_grids_are_422_problems(client, grid, field, kind) -> None:
    r = client.post("/v1/sweeps", json={"base": SWEEP_2X2["base"], "grid": grid})
    assert r.status_code == 422 and r.content_type == PROBLEM
    problem = r.get_json()
    assert problem["type"].endswith(f"/problems/{kind}")
    assert field in [e["field"] for e in problem["errors"]], problem


def test_point_limit_is_configurable_and_named(tmp_path) -> None:
    client = make_jobs_app(str(tmp_path / "p.sqlite3"), GRADSTAB_MAX_SWEEP_POINTS=3).test_client()
    r = client.post("/v1/sweeps", json=SWEEP_2X2)
    assert r.status_code == 422
    assert "GRADSTAB_MAX_SWEEP_POINTS" in r.get_json()["errors"][0]["message"]


def test_job_work_limit_is_named(tmp_path) -> None:
    client = make_jobs_app(str(tmp_path / "w.sqlite3"), GRADSTAB_MAX_JOB_GFLOP=0.001).test_client()
    r = client.post("/v1/sweeps", json=SWEEP_2X2)
    assert r.status_code == 422 and "GRADSTAB_MAX_JOB_GFLOP" in r.get_json()["detail"]


def test_quota_per_caller_is_429(tmp_path) -> None:
    client = make_jobs_app(str(tmp_path / "q.sqlite3"), GRADSTAB_JOB_QUOTA=1, GRADSTAB_JOB_THREADS=1).test_client()
    slow = {"base": {"layers": {"depth": 30, "width": 96}}, "grid": {"seed": list(range(6))}}
    loc = client.post("/v1/sweeps", json=slow).headers["Location"]
    r = client.post("/v1/jobs", json={"analysis": {"layers": [4, 4]}})
    assert r.status_code == 429 and r.content_type == PROBLEM and "GRADSTAB_JOB_QUOTA" in r.get_json()["detail"]
    client.delete(loc)
    assert client.post("/v1/jobs", json={"analysis": {"layers": [4, 4]}}).status_code == 202


def test_summary_pointers_are_kept_per_point(client) -> None:
    body = {
        "base": {"layers": [4, 8, 8, 2], "batch_size": 2},
        "grid": {"activation": ["tanh", "sigmoid"]},
        "summary": ["/diagnosis/summary", "/runtime/jacobian_method", "/no/such"],
    }
    job = wait_for(client, client.post("/v1/sweeps", json=body).headers["Location"])
    for p in job["result"]["points"]:
        assert p["extra"]["/runtime/jacobian_method"] in ("exact", "estimate")
        assert p["extra"]["/no/such"] is None
    bad = client.post("/v1/sweeps", json=body | {"summary": ["no-slash"]})
    assert bad.status_code == 422 and bad.get_json()["errors"][0]["field"] == "summary.0"


def test_redis_unavailable_is_503_problem(tmp_path) -> None:
    client = make_jobs_app(str(tmp_path / "r.sqlite3"), REDIS_URL="redis://127.0.0.1:1/0").test_client()
    r = client.post("/v1/sweeps", json=SWEEP_2X2)
    assert r.status_code == 503 and r.content_type == PROBLEM and r.headers["Retry-After"]
    assert client.get("/v1/jobs/abc").status_code == 503


def test_openapi_describes_every_job_operation(client) -> None:
    doc = client.get("/openapi.json").get_json()
    ops = {(path, m) for path, item in doc["paths"].items() for m in item}
    assert {("/v1/sweeps", "post"), ("/v1/jobs", "post"), ("/v1/jobs/{job_id}", "get")} <= ops
    assert ("/v1/jobs/{job_id}", "delete") in ops
    sweep = doc["paths"]["/v1/sweeps"]["post"]
    assert {"202", "422", "503"} <= set(sweep["responses"])
    assert "Location" in sweep["responses"]["202"]["headers"]
    assert "Job" in doc["components"]["schemas"] and "SweepRequest" in doc["components"]["schemas"]


def test_a_sweep_answers_its_phase_diagram(client) -> None:
    """GET /v1/jobs/{id} with Accept: the page (verdict and growth heatmaps, χ = 1) or the verdict heatmap."""
    import xml.etree.ElementTree as ET

    location = client.post("/v1/sweeps", json=SWEEP_2X2).headers["Location"]
    wait_for(client, location)
    page = client.get(location, headers={"Accept": "text/html"})
    assert page.status_code == 200 and page.mimetype == "text/html"
    html = page.get_data(as_text=True)
    assert html.count("<svg") >= 2 and "xavier_normal" in html and "vanishing" in html
    svg = client.get(location, headers={"Accept": "image/svg+xml"})
    assert svg.status_code == 200 and svg.mimetype == "image/svg+xml"
    root = ET.fromstring(svg.get_data())
    assert root.tag.endswith("svg") and root.find("{http://www.w3.org/2000/svg}title") is not None
    png = client.get(location, headers={"Accept": "image/png"})
    assert png.status_code == 200 and png.get_data().startswith(b"\x89PNG")
    assert client.get(location, headers={"Accept": "text/csv"}).status_code == 406
    assert client.get(location).get_json()["kind"] == "sweep"  # JSON stays the default


def test_sweep_over_architecture_fields_with_its_phase_diagram(client) -> None:
    """The issue's grid: branch scale × normalisation kind, each point the single analysis of that spec."""
    body = {
        "base": {
            "layers": {"depth": 12, "width": 16},
            "batch_size": 4,
            "verify_recommendations": False,
            "architecture": {"residual": {"every": 2}},
        },
        "grid": {
            "architecture.residual.branch_scale": [0, 0.1, 1],
            "architecture.normalization.kind": ["none", "layernorm", "batchnorm"],
        },
    }
    r = client.post("/v1/sweeps", json=body)
    assert r.status_code == 202, r.get_json()
    job = wait_for(client, r.headers["Location"])
    assert job["status"] == "succeeded" and job["progress"] == {"done": 9, "total": 9}
    for point in job["result"]["points"]:
        spec = {
            **body["base"],
            "architecture": {
                "residual": {"every": 2, "branch_scale": point["params"]["architecture.residual.branch_scale"]},
                "normalization": {"kind": point["params"]["architecture.normalization.kind"]},
            },
        }
        single = client.post("/v1/analyses", json=spec).get_json()
        assert point["report_id"] == single["id"] and point["verdict"] == single["diagnosis"]["verdict"]
        if point["params"]["architecture.residual.branch_scale"] == 0:
            assert point["log10_total_growth"] == pytest.approx(0.0, abs=1e-12)  # every block the identity
    page = client.get(r.headers["Location"], headers={"Accept": "image/svg+xml"})
    assert page.status_code == 200 and b"<svg" in page.data


def test_a_grid_may_not_set_an_object_and_its_member(client) -> None:
    body = {
        "base": {"layers": {"depth": 4, "width": 8}},
        "grid": {"architecture.residual": [None], "architecture.residual.every": [1, 2]},
    }
    r = client.post("/v1/sweeps", json=body)
    assert r.status_code == 422
    assert "architecture.residual" in str(r.get_json())
