"""Run points of a job: the one function every backend calls (an RQ worker on any machine, or
the in-process pool), so the same code computes a point wherever it runs.

A point is analysed with the engine (through the report cache when there is one), summarised,
and delivered to the store first-write-wins: a chunk redelivered after its worker died rewrites
nothing. Failures of a point (the engine's refusal, the per-task time limit) become that
point's `error`; they are not retried. Retries are for lost workers only.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Iterable
from typing import Any

from service.engine.progress import training_steps

from .model import Plan, spec_from_dict
from .store import JobStore
from .summary import point_summary

log = logging.getLogger("service.jobs")

STEP_WRITE_INTERVAL_S = 0.5  # an analysis job's training progress reaches the store at most this often (and at the end)
_PLANS: OrderedDict[str, Plan] = OrderedDict()  # a few recent plans per process: one store read per job
_PLANS_LOCK = threading.Lock()


def _plan(store: JobStore, job_id: str) -> Plan | None:
    with _PLANS_LOCK:
        plan = _PLANS.get(job_id)
    if plan is not None:
        return plan
    record = store.get(job_id, with_plan=True)
    if record is None or record.plan is None:
        return None
    plan = Plan.from_dict(record.plan)
    with _PLANS_LOCK:
        _PLANS[job_id] = plan
        while len(_PLANS) > 16:
            _PLANS.popitem(last=False)
    return plan


def compute_report(spec_dict: dict[str, Any], auto_exact_gflop: float, cache: Any = None) -> dict[str, Any]:
    """The report's JSON dict, as POST /v1/analyses returns it (without its cache marker): the same report
    service, so a point already analysed synchronously (or by another sweep) comes from the cache."""
    from service.application.cache import NoCache
    from service.application.reports import ReportService

    reports = ReportService(auto_exact_gflop, cache if cache is not None else NoCache())
    return reports.report(spec_from_dict(spec_dict)).report


def run_points(
    store: JobStore, ttl_s: int, job_id: str, indices: Iterable[int], cache: Any = None, retried: bool = False
) -> int:
    """Analyse and deliver `indices` of the job; the number of points this call delivered first.
    `retried`: this run is a redelivery (counted in the store's task statistics)."""
    plan = _plan(store, job_id)
    if plan is None:
        return 0  # expired or deleted: nothing to deliver to
    outcome = {"failed": True}
    try:
        return _deliver(store, ttl_s, job_id, plan, indices, cache, outcome)
    finally:
        try:
            store.stats.task_done(failed=outcome["failed"], retried=retried)
        except Exception:  # statistics never fail a task
            log.warning("task statistics not recorded", exc_info=True, extra={"job_id": job_id})


def _deliver(
    store: JobStore,
    ttl_s: int,
    job_id: str,
    plan: Plan,
    indices: Iterable[int],
    cache: Any,
    outcome: dict[str, bool],
) -> int:
    delivered, failed = 0, False
    for index in indices:
        record = store.get(job_id)
        if record is None or record.cancelled_at is not None:
            break
        if record.started_at is None:
            store.mark_started(job_id)
        point = plan.points[index]
        entry: dict[str, Any]
        try:
            token = training_steps.set(_step_writer(store, job_id) if plan.kind == "analysis" else None)
            try:
                report = compute_report(point["spec"], plan.auto_exact_gflop, cache)
            finally:
                training_steps.reset(token)
            if plan.kind == "analysis":
                entry = {"report": report}
            else:
                entry = {"index": index, **point_summary(report, point["params"], plan.summary)}
        except Exception as exc:  # the engine's refusal or rq's JobTimeoutException: this point's error
            log.warning("point failed", extra={"job_id": job_id, "index": index, "error": str(exc)})
            entry = {"index": index, "params": point["params"], "error": f"{type(exc).__name__}: {exc}"}
            failed = True
        if store.add_entry(job_id, index, entry, ttl_s):
            delivered += 1
    outcome["failed"] = failed
    return delivered


def _step_writer(store: JobStore, job_id: str) -> Callable[[int, int], None]:
    """progress(done, total) of an analysis job's training probe, written to the store (throttled; the last step
    always). A store that fails here fails no analysis: the report still arrives, only the count lags."""
    last = [0.0]

    def write(done: int, total: int) -> None:
        t = time.monotonic()
        if done < total and t - last[0] < STEP_WRITE_INTERVAL_S:
            return
        last[0] = t
        try:
            store.set_training_steps(job_id, done, total)
        except Exception:
            log.warning("training progress not recorded", exc_info=True, extra={"job_id": job_id})

    return write
