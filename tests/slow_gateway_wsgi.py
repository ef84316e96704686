"""tests.slow_gateway_wsgi:app, for tests/grading/test_examples_deadline.py: a real gunicorn server that is slow.

`GET /readyz` answers at once (so the test can wait for it); every other request sleeps
GRADSTAB_TEST_SLOW_S seconds (default 60) before answering 504, as an overloaded service behind a
proxy would. Nothing here imports torch or Flask: the server starts in a second.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Iterable
from typing import Any


def app(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
    if environ.get("PATH_INFO") != "/readyz":
        time.sleep(float(os.environ.get("GRADSTAB_TEST_SLOW_S", "60")))
        start_response("504 Gateway Timeout", [("Content-Type", "application/problem+json")])
        return [b'{"title": "Gateway Timeout", "status": 504}']
    start_response("200 OK", [("Content-Type", "application/json")])
    return [b'{"status": "ready"}']
