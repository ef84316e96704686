"""A WSGI module for tests/test_server_workers.py: the first worker's warm-up hangs, the next ones run.

gunicorn loads it in each worker (`gunicorn ... tests.hang_wsgi:app`). The first worker to get here
claims the marker file (GRADSTAB_TEST_HANG_MARKER, created exclusively) and replaces the warm-up that
service/gunicorn_conf.py's post_worker_init calls with one that never returns, as the OpenMP deadlock
of issue 8 did; the watchdog must kill that worker and gunicorn must fork one that serves.
"""

from __future__ import annotations

import os
import threading
from typing import Any

import service.api.health as health
from service.api.app import create_app

app = create_app()


def _hang(app: Any) -> bool:
    threading.Event().wait()  # forever
    return False


try:
    fd = os.open(os.environ["GRADSTAB_TEST_HANG_MARKER"], os.O_CREAT | os.O_EXCL | os.O_WRONLY)
except FileExistsError:
    pass
else:
    os.write(fd, str(os.getpid()).encode())
    os.close(fd)
    health.warm_up = _hang
