"""POST /v1/analyses refuses, by predicted time, a spec that would outlive the request deadline (issue 20),
with a 422 that names what to shrink and the jobs route; POST /v1/jobs admits the same spec."""

from __future__ import annotations

from schemas.jobs import AnalysisJobRequestSchema
from schemas.limits import Limits
from service.jobs.settings import JobSettings

from .conftest import make_app

DEEP_NARROW = {
    "layers": {"depth": 2000, "width": 2},
    "batch_size": 1024,
    "jacobian": {"method": "exact", "power_iterations": 100},
}
# the default limits, under the default 108 s deadline: what `make run` admits by
SERVER = Limits(max_seconds=54.0).as_dict()


def test_a_spec_past_the_deadline_is_refused_naming_what_to_shrink() -> None:
    client = make_app(warm_up=False, **SERVER).test_client()
    resp = client.post("/v1/analyses", json=DEEP_NARROW)
    assert resp.status_code == 422 and resp.content_type == "application/problem+json"
    (error,) = resp.get_json()["errors"]
    message = error["message"]
    assert error["field"] == "jacobian" and "…" not in message
    assert "max_seconds=54" in message and "jacobian.power_iterations" in message and "/v1/jobs" in message


def test_the_jobs_route_admits_it_up_to_its_task_timeout() -> None:
    plan = AnalysisJobRequestSchema(limits=Limits(**SERVER), jobs=JobSettings()).load({"analysis": DEEP_NARROW})
    assert plan.kind == "analysis"
