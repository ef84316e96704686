"""A job: what was asked (its plan), what has been delivered (its points), and its status.

A job is a list of points, each one analysis: a sweep has one per cell of its grid, a single
analysis job has one. The status is derived from the stored facts, never stored itself, so
that concurrent writers (workers on several machines) cannot leave it inconsistent:

    cancelled   cancelled_at is set
    succeeded   every point has an entry, at least one without an error
    failed      every point has an entry, all of them errors
    running     started_at is set or some point has an entry
    queued      otherwise

Points are written first-write-wins, so a task redelivered after its worker died delivers
each point exactly once however often it ran.
"""

from __future__ import annotations

import hashlib
import json
import time
from dataclasses import dataclass, field
from typing import Any

from service.engine.spec import spec_dict, spec_from_dict  # noqa: F401 (spec_from_dict: re-exported for the runner)

KINDS = ("sweep", "analysis")
STATUSES = ("queued", "running", "succeeded", "failed", "cancelled")
TERMINAL = ("succeeded", "failed", "cancelled")


def now() -> float:
    return time.time()


spec_to_dict = spec_dict


def job_id(kind: str, payload: Any) -> str:
    """The content hash of a normalised request: the same request gets the same id."""
    text = json.dumps({"kind": kind, "request": payload}, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()[:32]


@dataclass(frozen=True)
class Plan:
    """What a job computes. `points[i]` = {"params": {...}, "spec": spec_to_dict(...), "report_id": ...}."""

    kind: str
    points: list[dict[str, Any]]
    axes: dict[str, list[Any]] = field(default_factory=dict)
    summary: list[str] = field(default_factory=list)  # JSON pointers kept per point
    auto_exact_gflop: float = 20.0  # the server's budget the report ids were resolved with

    def to_dict(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "points": self.points,
            "axes": self.axes,
            "summary": self.summary,
            "auto_exact_gflop": self.auto_exact_gflop,
        }

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Plan:
        return cls(d["kind"], d["points"], d.get("axes", {}), d.get("summary", []), d.get("auto_exact_gflop", 20.0))

    @property
    def id(self) -> str:
        payload = {
            "points": [[p["params"], p["report_id"]] for p in self.points],
            "axes": list(self.axes),
            "summary": self.summary,
        }
        return job_id(self.kind, payload)


@dataclass(frozen=True)
class JobRecord:
    id: str
    kind: str
    total: int
    created_at: float
    owner: str = "anonymous"
    started_at: float | None = None
    cancelled_at: float | None = None
    finished_at: float | None = None
    plan: dict[str, Any] | None = None  # Plan.to_dict(); absent where the reader asked for state only
    # an analysis job's training probe: steps done and in all, as its worker last wrote them (None: no probe yet)
    training_steps: tuple[int, int] | None = None


@dataclass(frozen=True)
class JobView:
    """A job as clients see it (the API and the CLI dump this)."""

    record: JobRecord
    entries: dict[int, dict[str, Any]]

    @property
    def done(self) -> int:
        return len(self.entries)

    @property
    def status(self) -> str:
        r = self.record
        if r.cancelled_at is not None:
            return "cancelled"
        if self.done >= r.total:
            return "failed" if all("error" in e for e in self.entries.values()) else "succeeded"
        if r.started_at is not None or self.done:
            return "running"
        return "queued"

    @property
    def finished_at(self) -> float | None:
        r = self.record
        if r.cancelled_at is not None:
            return r.cancelled_at
        return r.finished_at if self.status in TERMINAL else None
