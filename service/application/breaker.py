"""A circuit breaker for a shared backend (Redis): after a failure, skip it for a while.

A hung Redis answers nothing: every call waits out its socket timeout. Without a breaker each
request paid that wait on every cache lookup and store (6-8 s per request in issue 13, item 19).
With one, the first failure opens the circuit: for `open_s` seconds callers skip the backend at
once (a cache miss, a store not made); then one call is let through (half-open), and its outcome
closes the circuit or opens it again. `on_change(open)` reports the state (a metric).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

DEFAULT_OPEN_S = 30.0


def _ignore(is_open: bool) -> None:
    return None


class CircuitBreaker:
    def __init__(
        self,
        open_s: float = DEFAULT_OPEN_S,
        on_change: Callable[[bool], None] = _ignore,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.open_s = open_s
        self.on_change = on_change
        self.clock = clock
        self._opened_at: float | None = None
        self._trial = False  # a half-open call is in flight
        self._lock = threading.Lock()

    @property
    def is_open(self) -> bool:
        return self._opened_at is not None

    def allow(self) -> bool:
        """Whether to call the backend now: always while closed; once per `open_s` while open."""
        with self._lock:
            if self._opened_at is None:
                return True
            if not self._trial and self.clock() - self._opened_at >= self.open_s:
                self._trial = True
                return True
            return False

    def success(self) -> None:
        with self._lock:
            was_open, self._opened_at, self._trial = self._opened_at is not None, None, False
        if was_open:
            self.on_change(False)

    def failure(self) -> None:
        with self._lock:
            was_open = self._opened_at is not None
            self._opened_at, self._trial = self.clock(), False
        if not was_open:
            self.on_change(True)
