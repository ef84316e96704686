"""What a caller may learn about the report cache (issues 13 and 20): only its own history.

`X-Cache: hit` (and `cache.hit`) told a second key that someone had already submitted the same spec, a leak
between students of one assignment. A hit is reported as a hit only where this caller has been served that
report before by this worker; otherwise it reads as a miss, in the header and the body alike (one
`CacheView` decides both). The caller is the key, and for an instructor key each student it names in
X-Gradstab-Student (ratelimit.rate_key), or the client address on an open service. Conservative: a caller's
own repeat answered by another worker or replica also reads as a miss.

A hit is still faster than a miss, and that timing would tell too. GRADSTAB_CACHE_SHARE_STUDENTS (default off)
decides whether student keys are served from what other callers put in the cache: off, a student key is
served from the cache only what it has been served itself, so its first request for a spec always runs the
engine. Student keys call the API directly and can time it; instructor keys (course autograders, whose
students see a grade, not a response time) share the cache, so a class's identical starter specs through the
autograder still cost one analysis.
"""

from __future__ import annotations

import hashlib

from flask import g

from service.application.reports import CacheView

from .ratelimit import rate_key
from .state import state

CACHE_SEEN_MAX = 100_000  # (caller, report id) pairs remembered per worker


def _mark(report_id: str) -> str:
    return hashlib.sha256(f"{rate_key()}\0{report_id}".encode()).hexdigest()


def seen_by_caller(report_id: str) -> bool:
    return _mark(report_id) in state().cache_seen


def hit_for_caller(report_id: str, hit: bool) -> bool:
    """The hit as this caller is told it; remembers that it has been served this report."""
    seen = state().cache_seen
    mark = _mark(report_id)
    known = mark in seen
    seen[mark] = None
    seen.move_to_end(mark)
    while len(seen) > CACHE_SEEN_MAX:
        seen.popitem(last=False)
    return hit and known


def cache_view() -> CacheView:
    """This request's view of the cache: its own history, and for a student key without sharing, no more."""
    key = g.get("api_key")
    private = key is not None and key.role == "student" and not state().settings.cache_share_students
    return CacheView(may_read=seen_by_caller if private else CacheView.may_read, hit=hit_for_caller)
