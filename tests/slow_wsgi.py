"""A WSGI module for tests/test_server_hostile.py: the service's app plus two routes that take long.

`/test/sleep?s=N` sleeps in Python (the soft deadline stops it); `/test/block?s=N` sleeps with SIGALRM
blocked, as a long C operation would hold off the soft deadline, so only gunicorn's worker timeout ends
it. Both are added here, never in the service.
"""

from __future__ import annotations

import signal
import time

from flask import request

from service.api.app import create_app

app = create_app()


@app.get("/test/sleep")
def sleep() -> dict[str, float]:
    seconds = float(request.args.get("s", "1"))
    time.sleep(seconds)
    return {"slept": seconds}


@app.get("/test/block")
def block() -> dict[str, float]:
    seconds = float(request.args.get("s", "1"))
    signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGALRM})
    try:
        time.sleep(seconds)
    finally:
        signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGALRM})
    return {"slept": seconds}
