"""The report service: a spec in, its report's wire form out, from the cache or the engine.

The one path every analysis takes (POST /v1/analyses, grading, the CLI, the warm-up): the plan
(the Jacobian method auto resolves to and the report id) is made once, the id is the cache key,
the engine runs only on a miss and gets the plan, and the report is dumped once by
`schemas.report.dump_report`. What the cache stores is what a client receives.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from schemas.report import dump_report
from service.engine.analysis import analyze, plan
from service.engine.cost import charged_gflop
from service.engine.spec import ModelSpec

from .cache import CachedReport, NoCache, ReportCache


def _ignore(*args: Any) -> None:
    return None


@dataclass(frozen=True)
class CacheView:
    """What one caller may see of the shared cache (the HTTP layer makes one per request).

    `may_read(report_id)`: whether this caller may be served from the cache at all (False: the engine runs, so
    not even the time of the answer tells the caller that someone else submitted the spec); `hit(report_id,
    hit)`: the hit as the caller is told it, in `cache.hit` and `X-Cache` alike (a hit only on its own earlier
    request)."""

    may_read: Callable[[str], bool] = lambda report_id: True
    hit: Callable[[str, bool], bool] = lambda report_id, hit: hit


SHARED = CacheView()  # outside a request (warm-up, jobs, the CLI): the cache as it is


@dataclass
class ReportService:
    """`auto_exact_gflop`: the server's budget for jacobian.method=auto (Limits.auto_exact_gflop).

    `on_analysed(report)` runs after each engine run (the wire dict); `on_lookup(backend, hit)` after
    each cache lookup: the HTTP layer counts both in its metrics. `admit(gflop)` runs before the engine on a
    miss, with the analysis's predicted time in GEMM-equivalent GFLOP (cost.charged_gflop): the HTTP layer
    charges it to the caller's work budget there (and raises to refuse); a cache hit costs nothing."""

    auto_exact_gflop: float
    cache: ReportCache
    on_analysed: Callable[[dict[str, Any]], None] = _ignore
    on_lookup: Callable[[str, bool], None] = _ignore
    admit: Callable[[float], None] = _ignore

    @classmethod
    def uncached(cls, auto_exact_gflop: float) -> ReportService:
        return cls(auto_exact_gflop, NoCache())

    def compute(self, spec: ModelSpec) -> dict[str, Any]:
        """The engine's report in wire form, past the cache and the counters (the warm-up's path).

        Raises service.engine.errors.SpecError for a spec that cannot run here (no CUDA)."""
        return dump_report(analyze(spec, self.auto_exact_gflop))

    def report(self, spec: ModelSpec, view: CacheView = SHARED) -> CachedReport:
        """The report's wire dict for `spec`, from the cache or the engine (which then fills it); `hit` as
        `view` lets the caller know it."""
        planned = plan(spec, self.auto_exact_gflop)
        cached = self.cache.get(planned.id) if view.may_read(planned.id) else None
        self.on_lookup(self.cache.backend, cached is not None)
        if cached is not None:
            return CachedReport(cached, hit=view.hit(planned.id, True))
        self.admit(charged_gflop(spec, self.auto_exact_gflop))
        report = dump_report(analyze(spec, self.auto_exact_gflop, planned=planned))
        self.on_analysed(report)
        self.cache.set(planned.id, report)
        return CachedReport(report, hit=view.hit(planned.id, False))
