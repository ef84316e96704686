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

The same tick asks, once a second, whether the client is still there (`client_gone`; the HTTP layer
peeks at the connection): an analysis whose client has closed the connection stops with `ClientGone`
instead of running on for nobody. Limits: a sync worker only learns of it at the next tick, and a client
that half-closes its side after sending (rare for HTTP clients; nginx does not) looks gone too.
"""

from __future__ import annotations

import signal
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any


class ClientGone(Exception):
    """The client closed its connection while its request was still being worked on."""


class DeadlineExceeded(Exception):
    """The request ran past its soft deadline."""

    def __init__(self, seconds: float) -> None:
        super().__init__(f"stopped after {seconds:g} s")
        self.seconds = seconds


POLL_S = 1.0  # how often `client_gone` is asked


@contextmanager
def deadline(seconds: float | None, client_gone: Callable[[], bool] | None = None) -> Iterator[None]:
    """Raise DeadlineExceeded in this thread after `seconds`, or ClientGone as soon as `client_gone()`
    (asked every POLL_S seconds) is true. None or ≤ 0 seconds, or not the main thread: neither."""
    if not seconds or seconds <= 0 or threading.current_thread() is not threading.main_thread():
        yield
        return
    ends = time.monotonic() + seconds

    def tick(signum: int, frame: Any) -> None:
        if time.monotonic() >= ends:
            raise DeadlineExceeded(seconds)
        if client_gone is not None and client_gone():
            raise ClientGone()

    previous = signal.signal(signal.SIGALRM, tick)
    first = min(seconds, POLL_S) if client_gone is not None else seconds
    signal.setitimer(signal.ITIMER_REAL, first, POLL_S)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)
