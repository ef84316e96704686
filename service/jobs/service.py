"""The jobs domain, as the HTTP API and the command line use it: submit a plan, read a job,
cancel it. Picks the backend: RQ + Redis with REDIS_URL, else the in-process pool + SQLite.
"""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Any

from . import stable_lr
from .errors import QuotaExceeded, StoreUnavailable
from .health import QueueHealth, waiting
from .model import JobRecord, JobView, Plan, now
from .queue import Dispatcher, RQDispatcher, ThreadDispatcher
from .settings import JobSettings
from .store import JobStore, make_store, view


def _time(t: float | None) -> datetime | None:
    return None if t is None else datetime.fromtimestamp(t, tz=timezone.utc)


class JobService:
    def __init__(self, settings: JobSettings, store: JobStore, dispatcher: Dispatcher) -> None:
        self.settings = settings
        self.store = store
        self.dispatcher = dispatcher

    @classmethod
    def from_settings(cls, settings: JobSettings, cache: Any = None) -> JobService:
        store = make_store(settings.redis_url, settings.db_path)
        rq = settings.redis_url
        dispatcher: Dispatcher = RQDispatcher(settings) if rq else ThreadDispatcher(store, settings, cache)
        return cls(settings, store, dispatcher)

    @property
    def backend(self) -> str:
        return self.dispatcher.backend

    def submit(self, plan: Plan, owner: str = "anonymous") -> tuple[JobView, bool]:
        """The job for `plan`: the existing one (same content hash), or a new one queued now."""
        existing = view(self.store, plan.id)
        if existing is not None:
            return existing, False
        quota = self.settings.quota
        if quota and self.store.unfinished(owner) >= quota:
            raise QuotaExceeded(owner, quota)
        record = JobRecord(
            id=plan.id, kind=plan.kind, total=len(plan.points), created_at=now(), owner=owner, plan=plan.to_dict()
        )
        record, created = self.store.create(record, self.settings.ttl_s)
        if created:
            try:
                self.dispatcher.submit(record.id, record.total)
            except StoreUnavailable:
                try:  # no tasks were queued: a resubmission must not find a job that never runs
                    self.store.delete(record.id)
                finally:
                    raise
        found = view(self.store, record.id)
        assert found is not None
        return found, created

    def get(self, job_id: str) -> JobView | None:
        return view(self.store, job_id, with_plan=True)

    def health(self) -> QueueHealth:
        return self.dispatcher.health()

    def describe(self, v: JobView, with_result: bool = True) -> dict[str, Any]:
        """The job as clients read it, and, while it is unfinished and no worker consumes its queue, why it
        waits (`waiting`: reason, since, detail)."""
        out = as_dict(v, with_result)
        if v.status in ("queued", "running"):
            why = waiting(self.health(), v.record.created_at)
            if why is not None:
                out["waiting"] = why
        return out

    def cancel(self, job_id: str) -> JobView | None:
        if self.store.cancel(job_id, self.settings.ttl_s) is None:
            return None
        return self.get(job_id)


def as_dict(v: JobView, with_result: bool = True) -> dict[str, Any]:
    """The job as clients read it (schemas.jobs.JobSchema documents and dumps it)."""
    r = v.record
    out: dict[str, Any] = {
        "id": r.id,
        "kind": r.kind,
        "status": v.status,
        "progress": {"done": v.done, "total": r.total},
        "created_at": _time(r.created_at),
        "started_at": _time(r.started_at),
        "finished_at": _time(v.finished_at),
    }
    if r.training_steps is not None:
        out["progress"]["training_steps"] = {"done": r.training_steps[0], "total": r.training_steps[1]}
    if not with_result or r.plan is None:
        return out
    entries = [v.entries[i] for i in sorted(v.entries)]
    if r.kind == "analysis":
        if entries and "report" in entries[0]:
            out["result"] = entries[0]["report"]
        elif entries:
            out["error"] = entries[0]["error"]
        return out
    if entries:
        plan = Plan.from_dict(r.plan)
        out["result"] = {"points": entries, "axes": plan.axes}
        if plan.summary:
            out["result"]["summary"] = plan.summary
        if stable_lr.KIND in plan.summary:
            out["result"][stable_lr.KIND] = stable_lr.largest_stable(entries, plan.axes)
        failed = [e for e in entries if "error" in e]
        if v.status == "failed":
            out["error"] = f"every point failed; the first: {failed[0]['error']}"
    return out
