"""Work the request path must not repeat per request (bench/bench_http.py measures the effect).

Why: with a small spec the engine takes ~25 ms and the service's own share of a request was
~4 ms, much of it rebuilding things that never change: a ReportSchema per report (~1.2 ms),
the report id of a spec no cache will store, installed package versions read from disk.
"""

from __future__ import annotations

from typing import Any

from schemas.report import ReportSchema
from service.api import capabilities
from service.application import reports
from service.engine import analysis
from tests.api.conftest import TINY_SPEC


def test_analysis_request_builds_no_report_schema(post_json, monkeypatch):
    built: list[int] = []
    original = ReportSchema.__init__

    def counting_init(self: ReportSchema, *args: Any, **kwargs: Any) -> None:
        built.append(1)
        original(self, *args, **kwargs)

    monkeypatch.setattr(ReportSchema, "__init__", counting_init)
    for seed in range(3):
        resp = post_json(TINY_SPEC | {"seed": seed})
        assert resp.status_code == 200, resp.get_data(as_text=True)
    assert built == []


def test_the_plan_is_made_once_per_analysis(post_json, monkeypatch):
    """The Jacobian method auto resolves to, and the report id (the cache key), are computed once per
    request: the report service makes the plan and hands it to the engine, which does not redo it."""
    plans: list[str] = []
    real = analysis.plan

    def counting_plan(*args: Any, **kwargs: Any) -> analysis.Plan:
        plans.append("plan")
        return real(*args, **kwargs)

    monkeypatch.setattr(reports, "plan", counting_plan)
    monkeypatch.setattr(analysis, "plan", counting_plan)
    resp = post_json(TINY_SPEC | {"verify_recommendations": False})
    assert resp.status_code == 200, resp.get_data(as_text=True)
    assert plans == ["plan"]


def test_installed_versions_are_read_once(client, monkeypatch):
    calls: list[str] = []
    original = capabilities.metadata.version

    def counting_version(name: str) -> str:
        calls.append(name)
        return original(name)

    capabilities._installed_versions.cache_clear()
    monkeypatch.setattr(capabilities.metadata, "version", counting_version)
    first = client.get("/v1/capabilities").get_json()
    second = client.get("/v1/capabilities").get_json()
    assert first["versions"] == second["versions"] and first["versions"]["flask"] != "unknown"
    assert sorted(calls) == sorted(set(calls)) and len(calls) == 4  # once per distribution
    capabilities._versions()["flask"] = "mutated"  # callers get a copy
    assert capabilities._versions()["flask"] == first["versions"]["flask"]
