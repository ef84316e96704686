"""A soft deadline for one request's work: past it, the work stops with `DeadlineExceeded`.

gunicorn's sync worker is killed by its arbiter once a request has run GRADSTAB_TIMEOUT seconds;
the client then gets whatever the dying worker manages to write. A soft deadline a few seconds
earlier (`ServerSettings.request_deadline`) raises `DeadlineExceeded` in the request's own
thread instead, so the request ends through the ordinary error path: a 503 problem+json with its
request id, counted in the metrics, and the worker lives on.

How: SIGALRM (setitimer, wall clock) whose handler raises. Python runs a signal handler in the main
thread between bytecodes, so this only arms in the main thread (gunicorn's sync workers; never in
test clients' or job pools' threads), and an engine call stuck inside one long C operation is
stopped when that operation returns (the cost limits keep each one far below the timeout); past
that the worker timeout is the backstop (service/gunicorn_worker.py).
"""

from __future__ import annotations

import signal
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any


class DeadlineExceeded(Exception):
    """The request ran past its soft deadline."""

    def __init__(self, seconds: float) -> None:
        super().__init__(f"stopped after {seconds:g} s")
        self.seconds = seconds


@contextmanager
def deadline(seconds: float | None) -> Iterator[None]:
    """Raise DeadlineExceeded in this thread after `seconds` (None or ≤ 0, or not the main thread: no deadline)."""
    if not seconds or seconds <= 0 or threading.current_thread() is not threading.main_thread():
        yield
        return

    def expire(signum: int, frame: Any) -> None:
        raise DeadlineExceeded(seconds)

    previous = signal.signal(signal.SIGALRM, expire)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)
