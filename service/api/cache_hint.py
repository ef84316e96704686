"""What a caller may learn about the report cache: a hit only on its own earlier request (issue 13, item 21).

`X-Cache: hit` (and `cache.hit` in an analysis) told a second key that someone had already submitted the
same spec, a leak between students of one assignment. A hit is reported as a hit only where this caller
has been served that report before by this worker; otherwise it reads as a miss. Conservative: a caller's
own repeat answered by another worker or replica also reads as a miss. (A hit is still faster; the
timing is not hidden.)
"""

from __future__ import annotations

import hashlib

from .auth import caller_name
from .state import state

CACHE_SEEN_MAX = 100_000  # (caller, report id) pairs remembered per worker


def hit_for_caller(report_id: str, hit: bool) -> bool:
    seen = state().cache_seen
    mark = hashlib.sha256(f"{caller_name()}\0{report_id}".encode()).hexdigest()
    known = mark in seen
    seen[mark] = None
    seen.move_to_end(mark)
    while len(seen) > CACHE_SEEN_MAX:
        seen.popitem(last=False)
    return hit and known
